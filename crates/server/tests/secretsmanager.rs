//! Secrets Manager in process: what the AWS CLI test cannot reach quickly — the end of a
//! recovery window (a pinned clock) and `ClientRequestToken` retries.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use berth_server::App;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::harness;
use tower::ServiceExt;

async fn call(app: &App, op: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("secretsmanager.{op}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.router().oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn ok(app: &App, op: &str, body: Value) -> Value {
    let (status, out) = call(app, op, body).await;
    assert_eq!(status, StatusCode::OK, "{op}: {out}");
    out
}

async fn fails(app: &App, op: &str, body: Value, code: &str) -> String {
    let (status, out) = call(app, op, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{op}: {out}");
    assert_eq!(out["__type"], code, "{op}: {out}");
    out["message"].as_str().unwrap_or_default().to_owned()
}

const DAY: i64 = 86_400;

#[tokio::test]
async fn a_secret_is_gone_once_its_recovery_window_has_passed() {
    let h = harness().await;
    let created = ok(
        &h.app,
        "CreateSecret",
        json!({"Name": "db", "SecretString": "v"}),
    )
    .await;
    ok(
        &h.app,
        "DeleteSecret",
        json!({"SecretId": "db", "RecoveryWindowInDays": 7}),
    )
    .await;
    let (six_days, eight_days) = (h.later(6 * DAY), h.later(8 * DAY));
    ok(&six_days, "DescribeSecret", json!({"SecretId": "db"})).await;
    assert_eq!(
        berth_server::secretsmanager::purge(&six_days)
            .await
            .unwrap(),
        0
    );
    // Past the window it no longer exists for any call, and its name is free again.
    fails(
        &eight_days,
        "DescribeSecret",
        json!({"SecretId": "db"}),
        "ResourceNotFoundException",
    )
    .await;
    let listed = ok(
        &eight_days,
        "ListSecrets",
        json!({"IncludePlannedDeletion": true}),
    )
    .await;
    assert_eq!(listed["SecretList"], json!([]));
    assert_eq!(
        berth_server::secretsmanager::purge(&eight_days)
            .await
            .unwrap(),
        1
    );
    let again = ok(
        &eight_days,
        "CreateSecret",
        json!({"Name": "db", "SecretString": "w"}),
    )
    .await;
    assert_ne!(again["ARN"], created["ARN"]);
    let got = ok(&eight_days, "GetSecretValue", json!({"SecretId": "db"})).await;
    assert_eq!(got["SecretString"], "w");
}

#[tokio::test]
async fn client_request_tokens_make_retries_harmless() {
    let h = harness().await;
    let token = "11111111-2222-3333-4444-555555555555";
    let create = json!({"Name": "api", "SecretString": "one", "ClientRequestToken": token});
    let first = ok(&h.app, "CreateSecret", create.clone()).await;
    let retried = ok(&h.app, "CreateSecret", create).await;
    assert_eq!(first, retried);
    assert_eq!(first["VersionId"], token);
    let msg = fails(
        &h.app,
        "CreateSecret",
        json!({"Name": "api", "SecretString": "other", "ClientRequestToken": token}),
        "ResourceExistsException",
    )
    .await;
    assert!(msg.contains("already exists"), "{msg}");

    let put_token = "66666666-2222-3333-4444-555555555555";
    let put = json!({"SecretId": "api", "SecretString": "two", "ClientRequestToken": put_token});
    ok(&h.app, "PutSecretValue", put.clone()).await;
    ok(&h.app, "PutSecretValue", put).await;
    let described = ok(&h.app, "DescribeSecret", json!({"SecretId": "api"})).await;
    assert_eq!(
        described["VersionIdsToStages"],
        json!({token: ["AWSPREVIOUS"], put_token: ["AWSCURRENT"]})
    );
    let msg = fails(
        &h.app,
        "PutSecretValue",
        json!({"SecretId": "api", "SecretString": "three", "ClientRequestToken": put_token}),
        "ResourceExistsException",
    )
    .await;
    assert!(msg.contains("ClientRequestToken"), "{msg}");
    fails(
        &h.app,
        "PutSecretValue",
        json!({"SecretId": "api"}),
        "InvalidRequestException",
    )
    .await;
    fails(
        &h.app,
        "CreateSecret",
        json!({"Name": "k", "SecretString": "v", "KmsKeyId": "alias/x"}),
        "InvalidParameterException",
    )
    .await;
    fails(
        &h.app,
        "ListSecrets",
        json!({"NextToken": "not-a-token"}),
        "InvalidNextTokenException",
    )
    .await;
}
