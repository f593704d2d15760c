//! Raw HTTP against the real binary: authentication failures, protocol errors and limits, each
//! checked for its status and its JSON 1.1 `__type`.

mod support;

use std::time::Duration;
use support::{Berth, Signing, raw_request};

#[test]
fn a_well_signed_request_succeeds() {
    let berth = Berth::start();
    let r = berth.post("ListClusters", b"{}", Signing::root());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
    assert!(
        r.header("x-amzn-requestid").is_some_and(|v| !v.is_empty()),
        "no request id: {:?}",
        r.headers
    );
    assert_eq!(r.json()["clusterArns"], serde_json::json!([]));
}

#[test]
fn an_unsigned_request_is_missing_its_token() {
    let berth = Berth::start();
    let r = berth.post("ListClusters", b"{}", Signing::None);
    assert!((400..500).contains(&r.status), "status {}", r.status);
    assert_eq!(
        r.error_type(),
        "MissingAuthenticationTokenException",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
}

#[test]
fn a_wrong_secret_is_an_invalid_signature() {
    let berth = Berth::start();
    let r = berth.post(
        "ListClusters",
        b"{}",
        Signing::with_secret("not-the-secret"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error_type(),
        "InvalidSignatureException",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[test]
fn an_unknown_access_key_is_unrecognized() {
    let berth = Berth::start();
    let r = berth.post(
        "ListClusters",
        b"{}",
        Signing::with_key("AKIAUNKNOWNKEY000000", "whatever"),
    );
    assert!((400..500).contains(&r.status), "status {}", r.status);
    assert_eq!(
        r.error_type(),
        "UnrecognizedClientException",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[test]
fn a_signature_from_ten_minutes_ago_has_expired() {
    let berth = Berth::start();
    let r = berth.post(
        "ListClusters",
        b"{}",
        Signing::aged(Duration::from_secs(600)),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error_type(),
        "InvalidSignatureException",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.message().contains("Signature expired"),
        "message: {}",
        r.message()
    );
    // Four minutes is within the allowed skew.
    let r = berth.post(
        "ListClusters",
        b"{}",
        Signing::aged(Duration::from_secs(240)),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn malformed_json_is_a_serialization_error() {
    let berth = Berth::start();
    for body in [&b"{"[..], b"[1,2]", b"{\"clusterName\": }"] {
        let r = berth.post("CreateCluster", body, Signing::root());
        assert_eq!(r.status, 400, "body {:?}", String::from_utf8_lossy(body));
        assert_eq!(
            r.error_type(),
            "SerializationException",
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // Nothing was created.
    let r = berth.post("ListClusters", b"{}", Signing::root());
    assert_eq!(r.json()["clusterArns"], serde_json::json!([]));
}

#[test]
fn a_member_of_the_wrong_type_is_named() {
    let berth = Berth::start();
    let r = berth.post(
        "RunTask",
        br#"{"count":"x","taskDefinition":"a"}"#,
        Signing::root(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error_type(),
        "InvalidParameterException",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.message().contains("count"),
        "message does not name 'count': {}",
        r.message()
    );
}

#[test]
fn an_unknown_operation_is_refused() {
    let berth = Berth::start();
    let r = berth.post("LaunchRockets", b"{}", Signing::root());
    assert!((400..500).contains(&r.status), "status {}", r.status);
    assert_eq!(
        r.error_type(),
        "UnknownOperationException",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = raw_request(
        berth.port,
        Some("AmazonSomethingElse.ListClusters"),
        b"{}",
        Signing::root(),
    );
    assert_eq!(
        r.error_type(),
        "UnknownOperationException",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = raw_request(berth.port, None, b"{}", Signing::root());
    assert_eq!(
        r.error_type(),
        "UnknownOperationException",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[test]
fn a_body_over_four_mib_is_refused_and_the_server_lives_on() {
    let berth = Berth::start();
    let mut body = b"{\"clusterName\":\"".to_vec();
    body.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024 + 16));
    body.extend_from_slice(b"\"}");
    let r = berth.post("CreateCluster", &body, Signing::root());
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.error_type(),
        "RequestEntityTooLargeException",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        berth.answers(),
        "server stopped answering after a large body; stderr:\n{}",
        berth.stderr()
    );
    // Just under the limit is read (and refused for its content, not its size).
    let mut body = b"{\"clusterName\":\"".to_vec();
    body.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024 - 100));
    body.extend_from_slice(b"\"}");
    let r = berth.post("CreateCluster", &body, Signing::root());
    assert_ne!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.error_type(),
        "InvalidParameterException",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(berth.answers());
}

#[test]
fn other_paths_are_not_found() {
    let berth = Berth::start();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/nothing/here", berth.endpoint),
        ])
        .output();
    if let Ok(out) = out {
        assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    }
}

#[test]
fn the_aws_cli_with_wrong_credentials_is_refused() {
    let berth = Berth::start();
    let err = berth
        .aws_env(
            &["ecs", "list-clusters"],
            &[("AWS_SECRET_ACCESS_KEY", "wrong")],
        )
        .fails_with("InvalidSignatureException");
    assert!(err.contains("ListClusters"), "{err}");
    berth
        .aws_env(
            &["ecs", "list-clusters"],
            &[("AWS_ACCESS_KEY_ID", "AKIANOBODY0000000000")],
        )
        .fails_with("UnrecognizedClientException");
    // And the right ones work.
    let out = berth.aws(&["ecs", "list-clusters"]).ok();
    assert_eq!(out["clusterArns"], serde_json::json!([]));
}
