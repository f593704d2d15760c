//! Berth's agent API (`/_berth/agent/v1/wait`) on the real router: the long poll answers at
//! once on a first call, wakes when a task is placed on the instance or asked to stop, and
//! sleeps through the agent's own status reports.

mod support;

use axum::http::StatusCode;
use berth_model::agent_channel::{TokenParts, WaitAnswer};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Harness, harness, with_last_changed};

async fn wait_call(h: &Harness, body: Value) -> (StatusCode, Value) {
    h.post_json("/_berth/agent/v1/wait", body).await
}

/// One wait that must be answered well before its own `wait_seconds` runs out, i.e. by a
/// change rather than by the heartbeat timeout.
async fn woken(h: &Harness, instance: &str, after: u64) -> u64 {
    let call = wait_call(
        h,
        json!({"containerInstance": instance, "after": after, "waitSeconds": 60}),
    );
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the wait was not woken by the change");
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value::<WaitAnswer>(body)
        .unwrap()
        .generation
}

/// A wait that returns on its timeout: the generation it holds.
async fn unchanged(h: &Harness, instance: &str, after: Option<u64>) -> u64 {
    let (status, body) = wait_call(
        h,
        json!({"containerInstance": instance, "after": after, "waitSeconds": 0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value::<WaitAnswer>(body)
        .unwrap()
        .generation
}

async fn register_instance(h: &Harness) -> String {
    h.ok(
        "RegisterContainerInstance",
        json!({"totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}
        ]}),
    )
    .await["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn wakes_the_agent_for_placements_and_stops_but_not_for_its_reports() {
    let h = harness().await;
    let instance = register_instance(&h).await;
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "web:1", "memory": 64}]}),
    )
    .await;

    let first = unchanged(&h, &instance, None).await;
    assert_eq!(unchanged(&h, &instance, Some(first)).await, first);

    let waiting = woken(&h, &instance, first);
    let placed = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.ok("RunTask", json!({"taskDefinition": "web"})).await
    };
    let (after_placement, run) = tokio::join!(waiting, placed);
    assert!(after_placement > first);
    let task = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();

    h.ok(
        "SubmitTaskStateChange",
        json!({"task": task, "status": "RUNNING"}),
    )
    .await;
    assert_eq!(
        unchanged(&h, &instance, Some(after_placement)).await,
        after_placement,
        "a status report is not new work"
    );

    let waiting = woken(&h, &instance, after_placement);
    let stopped = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.ok("StopTask", json!({"task": task})).await
    };
    let (after_stop, _) = tokio::join!(waiting, stopped);
    assert!(after_stop > after_placement);

    // What an agent sees after the server restarts: a generation unlike its own, at once.
    assert_ne!(
        unchanged(&h, &instance, Some(after_stop + 100)).await,
        after_stop + 100
    );
}

#[tokio::test]
async fn refuses_bad_waits_naming_the_field() {
    let h = harness().await;
    let (status, body) =
        wait_call(&h, json!({"containerInstance": "i-123", "waitSeconds": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "InvalidParameterException", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("containerInstance")
    );

    let arn = register_instance(&h).await;
    let (status, body) = wait_call(&h, json!({"containerInstance": arn, "waitSeconds": 61})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("waitSeconds"),
        "{body}"
    );

    let (status, body) = wait_call(&h, json!({"waitSeconds": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn join_tokens_trade_for_access_keys_until_they_expire() {
    let h = harness().await;
    let post = |path: &'static str, body: Value| h.post_json(path, body);
    let (status, created) = post(
        "/_berth/agent/v1/tokens",
        json!({"ttlSeconds": 3600, "cluster": "stage01"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("bjt."), "{token}");

    let (status, joined) = post(
        "/_berth/agent/v1/join",
        json!({"token": token, "cluster": "stage01"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    let akid = joined["accessKeyId"].as_str().unwrap();
    let stored = h
        .app
        .db
        .get::<berth_server::records::AccessKey>(&berth_server::records::keys::access_key(akid))
        .expect("the key is stored");
    assert_eq!(stored.value.secret_access_key, joined["secretAccessKey"]);
    assert!(
        stored.value.principal_arn.contains(":user/berth-agent/"),
        "{:?}",
        stored.value
    );

    // The same token serves another host, but only for its cluster.
    let (status, other) = post(
        "/_berth/agent/v1/join",
        json!({"token": token, "cluster": "default"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(other["__type"], "AccessDeniedException", "{other}");
    assert!(
        other["message"].as_str().unwrap().contains("stage01"),
        "{other}"
    );

    // The secret decides; the pin after it is the agent's business, not the server's.
    let parts = TokenParts::parse(&token).expect("a join token's shape");
    assert_eq!(parts.server_pin, Some(h.app.tls.pin.as_str()));
    let secret = with_last_changed(parts.secret);
    let forged = TokenParts {
        secret: &secret,
        ..parts
    }
    .to_string();
    let unpinned = parts.credential();
    let (status, body) = post(
        "/_berth/agent/v1/join",
        json!({"token": unpinned, "cluster": "stage01"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{unpinned}: {body}");
    for bad in [forged.as_str(), "bjt.nope.nope", "garbage"] {
        let (status, body) = post(
            "/_berth/agent/v1/join",
            json!({"token": bad, "cluster": "stage01"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["__type"], "AccessDeniedException", "{bad}: {body}");
    }

    // Two hours later the one-hour token is refused.
    let later = Harness::with_app(h.later(7200));
    let (status, _) = later
        .post_json(
            "/_berth/agent/v1/join",
            json!({"token": token, "cluster": "stage01"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = post("/_berth/agent/v1/tokens", json!({"ttlSeconds": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("ttlSeconds"),
        "{body}"
    );
}
