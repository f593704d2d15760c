//! Berth's data plane API (`/_berth/lb/v1/config` and `/health`) on the real router: instance
//! targets resolved to their host's address, cheap polling by revision, and health reports
//! that show in DescribeTargetHealth but never overwrite a draining target.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use berth_model::elbv2::data_plane::{ConfigResponse, HealthAnswer};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::{harness, xml_value};
use tower::ServiceExt;

async fn post(h: &support::Harness, path: &str, body: Value) -> (StatusCode, Vec<u8>) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = h.app.router().oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

async fn config(h: &support::Harness, since: Option<i64>) -> ConfigResponse {
    let (status, body) = post(h, "/_berth/lb/v1/config", json!({"since": since})).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn states(xml: &str) -> Vec<String> {
    xml.split("<State>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn serves_resolved_config_and_takes_health_reports() {
    let h = harness().await;
    let instance = h
        .ok(
            "RegisterContainerInstance",
            json!({
                "totalResources": [
                    {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                    {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}
                ],
                "attributes": [{"name": "berth.host-address", "value": "10.0.0.7"}]
            }),
        )
        .await;
    let ec2_id = instance["containerInstance"]["ec2InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let lb = h
        .elbv2(
            "CreateLoadBalancer",
            &[("Name", "web"), ("Subnets.member.1", "subnet-a")],
        )
        .await;
    let lb_arn = xml_value(&lb, "LoadBalancerArn");
    let tg = h
        .elbv2(
            "CreateTargetGroup",
            &[
                ("Name", "app"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", "vpc-1"),
                ("HealthCheckPort", "8081"),
                ("HealthCheckPath", "/ping"),
            ],
        )
        .await;
    let tg_arn = xml_value(&tg, "TargetGroupArn");
    let unused = h
        .elbv2(
            "CreateTargetGroup",
            &[
                ("Name", "unused"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", "vpc-1"),
            ],
        )
        .await;
    assert!(!xml_value(&unused, "TargetGroupArn").is_empty());
    h.elbv2(
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb_arn),
            ("Protocol", "HTTP"),
            ("Port", "8080"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tg_arn),
        ],
    )
    .await;
    h.elbv2(
        "RegisterTargets",
        &[
            ("TargetGroupArn", &tg_arn),
            ("Targets.member.1.Id", &ec2_id),
            ("Targets.member.1.Port", "32768"),
            ("Targets.member.2.Id", "i-unknown"),
            ("Targets.member.2.Port", "32769"),
        ],
    )
    .await;

    let answer = config(&h, None).await;
    let c = answer.config.expect("a first poll gets the configuration");
    assert_eq!(c.load_balancers.len(), 1);
    let listener = &c.load_balancers[0].listeners[0];
    assert_eq!(listener.port, 8080);
    assert_eq!(listener.rules.len(), 1, "the default rule");
    assert_eq!(listener.rules[0].priority, None);
    assert_eq!(c.load_balancers[0].idle_timeout_ms, 60_000);
    assert_eq!(c.target_groups.len(), 1, "only target groups in use");
    let group = &c.target_groups[0];
    assert_eq!(group.health_check.path, "/ping");
    assert_eq!(group.health_check.interval_ms, 30_000);
    let known = group.targets.iter().find(|t| t.id == ec2_id).unwrap();
    assert_eq!(known.address.as_deref(), Some("10.0.0.7"));
    assert_eq!((known.port, known.health_check_port), (32768, 8081));
    let unknown = group.targets.iter().find(|t| t.id == "i-unknown").unwrap();
    assert_eq!(unknown.address, None);

    let again = config(&h, Some(answer.revision)).await;
    assert_eq!(again.revision, answer.revision);
    assert!(again.config.is_none(), "nothing changed");

    let report = |healthy: bool| {
        json!({"reports": [{
            "targetGroupArn": tg_arn, "id": ec2_id, "port": 32768, "healthy": healthy,
            "reason": "Target.Timeout", "description": "Request timed out"
        }, {
            "targetGroupArn": tg_arn, "id": "i-not-registered", "port": 1, "healthy": true
        }]})
    };
    let (status, body) = post(&h, "/_berth/lb/v1/health", report(true)).await;
    assert_eq!(status, StatusCode::OK);
    let applied: HealthAnswer = serde_json::from_slice(&body).unwrap();
    assert_eq!(applied.applied, 1);
    let (_, body) = post(&h, "/_berth/lb/v1/health", report(true)).await;
    let applied: HealthAnswer = serde_json::from_slice(&body).unwrap();
    assert_eq!(applied.applied, 0, "the same health is not written again");
    let health = h
        .elbv2(
            "DescribeTargetHealth",
            &[
                ("TargetGroupArn", &tg_arn),
                ("Targets.member.1.Id", &ec2_id),
                ("Targets.member.1.Port", "32768"),
            ],
        )
        .await;
    assert_eq!(states(&health), ["healthy"]);
    let changed = config(&h, Some(answer.revision)).await;
    assert!(changed.revision > answer.revision);
    assert!(changed.config.is_some());

    post(&h, "/_berth/lb/v1/health", report(false)).await;
    let health = h
        .elbv2(
            "DescribeTargetHealth",
            &[
                ("TargetGroupArn", &tg_arn),
                ("Targets.member.1.Id", &ec2_id),
                ("Targets.member.1.Port", "32768"),
            ],
        )
        .await;
    assert_eq!(states(&health), ["unhealthy"]);
    assert_eq!(xml_value(&health, "Reason"), "Target.Timeout");

    h.elbv2(
        "DeregisterTargets",
        &[
            ("TargetGroupArn", &tg_arn),
            ("Targets.member.1.Id", &ec2_id),
            ("Targets.member.1.Port", "32768"),
        ],
    )
    .await;
    post(&h, "/_berth/lb/v1/health", report(true)).await;
    let health = h
        .elbv2(
            "DescribeTargetHealth",
            &[
                ("TargetGroupArn", &tg_arn),
                ("Targets.member.1.Id", &ec2_id),
                ("Targets.member.1.Port", "32768"),
            ],
        )
        .await;
    assert_eq!(
        states(&health),
        ["draining"],
        "a report never undoes draining"
    );

    let (status, body) = post(&h, "/_berth/lb/v1/nothing", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("UnknownOperation"));
    let (status, _) = post(&h, "/_berth/lb/v1/health", json!({"reports": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
