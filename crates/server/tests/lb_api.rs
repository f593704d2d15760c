//! Berth's data plane API (`/_berth/lb/v1/config` and `/health`) on the real router: instance
//! targets resolved to their host's address, cheap polling by revision, and health reports
//! that show in DescribeTargetHealth but never overwrite a draining target.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use berth_model::elbv2::data_plane::{ConfigResponse, HealthAnswer, Stickiness};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::{harness, with_last_changed, xml_value};
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

    assert_eq!(group.stickiness, None, "stickiness is off by default");

    let again = config(&h, Some(answer.revision)).await;
    assert_eq!(again.revision, answer.revision);
    assert!(again.config.is_none(), "nothing changed");

    // Stickiness reaches the data plane: by duration, or by the application's cookie once the
    // group names one.
    let stickiness = |kind: &'static str, cookie_name: &'static str| {
        let tg_arn = tg_arn.clone();
        let h = &h;
        async move {
            h.elbv2(
                "ModifyTargetGroupAttributes",
                &[
                    ("TargetGroupArn", &tg_arn),
                    ("Attributes.member.1.Key", "stickiness.enabled"),
                    ("Attributes.member.1.Value", "true"),
                    ("Attributes.member.2.Key", "stickiness.type"),
                    ("Attributes.member.2.Value", kind),
                    (
                        "Attributes.member.3.Key",
                        "stickiness.lb_cookie.duration_seconds",
                    ),
                    ("Attributes.member.3.Value", "120"),
                    (
                        "Attributes.member.4.Key",
                        "stickiness.app_cookie.cookie_name",
                    ),
                    ("Attributes.member.4.Value", cookie_name),
                ],
            )
            .await;
            config(h, None).await.config.unwrap().target_groups[0]
                .stickiness
                .clone()
        }
    };
    assert_eq!(
        stickiness("lb_cookie", "").await,
        Some(Stickiness::LbCookie { seconds: 120 })
    );
    assert_eq!(
        stickiness("app_cookie", "").await,
        None,
        "no cookie to follow"
    );
    assert_eq!(
        stickiness("app_cookie", "SESSIONID").await,
        Some(Stickiness::AppCookie {
            cookie_name: "SESSIONID".into(),
            seconds: 86400
        })
    );
    let answer = config(&h, None).await;

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

/// An ACM call (JSON 1.1, `CertificateManager`): status and JSON answer.
async fn acm(h: &support::Harness, op: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post("/")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("CertificateManager.{op}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = h.app.router().oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// An ELBv2 call that may fail: status and XML answer.
async fn elbv2_raw(
    h: &support::Harness,
    action: &str,
    params: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut body = format!("Action={action}&Version=2015-12-01");
    for (k, v) in params {
        let v: String = v
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        body.push_str(&format!("&{k}={v}"));
    }
    let req = Request::post("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let response = h.app.router().oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// A self-signed certificate for `name`: certificate and key PEMs.
fn self_signed(name: &str) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn imported_certificates_serve_https_listeners_and_stay_while_in_use() {
    let h = harness().await;
    let (cert, key) = self_signed("shop.example.com");
    let (other_cert, _) = self_signed("other.example.com");

    let (status, bad) = acm(
        &h,
        "ImportCertificate",
        json!({"Certificate": b64(&other_cert), "PrivateKey": b64(&key)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["__type"], "ValidationException", "{bad}");

    let (status, imported) = acm(
        &h,
        "ImportCertificate",
        json!({"Certificate": b64(&cert), "PrivateKey": b64(&key),
               "Tags": [{"Key": "team", "Value": "web"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{imported}");
    let arn = imported["CertificateArn"].as_str().unwrap().to_string();
    assert!(arn.starts_with("arn:aws:acm:us-east-1:"), "{arn}");

    let (_, described) = acm(&h, "DescribeCertificate", json!({"CertificateArn": arn})).await;
    let d = &described["Certificate"];
    assert_eq!(d["DomainName"], "shop.example.com");
    assert_eq!(d["SubjectAlternativeNames"], json!(["shop.example.com"]));
    assert_eq!(d["Status"], "ISSUED");
    assert_eq!(d["Type"], "IMPORTED");
    assert_eq!(d["KeyAlgorithm"], "EC_prime256v1");
    assert_eq!(d["InUseBy"], json!([]));
    let (_, got) = acm(&h, "GetCertificate", json!({"CertificateArn": arn})).await;
    assert_eq!(got["Certificate"], cert.as_str());
    let (_, listed) = acm(&h, "ListCertificates", json!({})).await;
    assert_eq!(
        listed["CertificateSummaryList"][0]["CertificateArn"],
        arn.as_str()
    );
    assert_eq!(listed["CertificateSummaryList"][0]["InUse"], false);

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
            ],
        )
        .await;
    let tg_arn = xml_value(&tg, "TargetGroupArn");
    let https = |cert: &str| {
        vec![
            ("LoadBalancerArn", lb_arn.clone()),
            ("Protocol", "HTTPS".to_string()),
            ("Port", "8443".to_string()),
            ("Certificates.member.1.CertificateArn", cert.to_string()),
            ("DefaultActions.member.1.Type", "forward".to_string()),
            ("DefaultActions.member.1.TargetGroupArn", tg_arn.clone()),
        ]
    };
    let missing = with_last_changed(&arn);
    let params = https(&missing);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, refused) = elbv2_raw(&h, "CreateListener", &params).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused.contains("<Code>CertificateNotFound</Code>"),
        "{refused}"
    );

    let params = https(&arn);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let listener = h.elbv2("CreateListener", &params).await;
    let listener_arn = xml_value(&listener, "ListenerArn");
    assert_eq!(
        xml_value(&listener, "SslPolicy"),
        "ELBSecurityPolicy-2016-08"
    );

    let c = config(&h, None).await.config.unwrap();
    let l = &c.load_balancers[0].listeners[0];
    assert_eq!(l.certificates, std::slice::from_ref(&arn));
    assert_eq!(c.certificates.len(), 1);
    assert_eq!(c.certificates[0].arn, arn);
    assert_eq!(c.certificates[0].certificate_chain_pem, cert);
    assert_eq!(c.certificates[0].private_key_pem, key);

    let (_, described) = acm(&h, "DescribeCertificate", json!({"CertificateArn": arn})).await;
    assert_eq!(described["Certificate"]["InUseBy"], json!([listener_arn]));
    let (status, in_use) = acm(&h, "DeleteCertificate", json!({"CertificateArn": arn})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(in_use["__type"], "ResourceInUseException");

    // Re-imported under the same ARN, the listener serves the new files.
    let (new_cert, new_key) = self_signed("shop.example.com");
    let (status, again) = acm(
        &h,
        "ImportCertificate",
        json!({"CertificateArn": arn, "Certificate": b64(&new_cert), "PrivateKey": b64(&new_key)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["CertificateArn"], arn.as_str());
    let c = config(&h, None).await.config.unwrap();
    assert_eq!(c.certificates[0].certificate_chain_pem, new_cert);

    h.elbv2("DeleteListener", &[("ListenerArn", &listener_arn)])
        .await;
    let (status, _) = acm(&h, "DeleteCertificate", json!({"CertificateArn": arn})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, gone) = acm(&h, "DescribeCertificate", json!({"CertificateArn": arn})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(gone["__type"], "ResourceNotFoundException");
    let (status, not_arn) = acm(&h, "DescribeCertificate", json!({"CertificateArn": "nope"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(not_arn["__type"], "InvalidArnException");
}

/// Every `CertificateArn`/`IsDefault` pair in a certificates document, in order.
fn listed_certificates(xml: &str) -> Vec<(String, String)> {
    xml.split("<member>")
        .skip(1)
        .map(|m| (xml_value(m, "CertificateArn"), xml_value(m, "IsDefault")))
        .collect()
}

async fn import(h: &support::Harness, name: &str) -> String {
    let (cert, key) = self_signed(name);
    let (status, imported) = acm(
        h,
        "ImportCertificate",
        json!({"Certificate": b64(&cert), "PrivateKey": b64(&key)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{imported}");
    imported["CertificateArn"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_https_listener_lists_certificates_beside_its_default() {
    let h = harness().await;
    let (shop, api, admin) = (
        import(&h, "shop.example.com").await,
        import(&h, "api.example.com").await,
        import(&h, "admin.example.com").await,
    );
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
            &[("Name", "app"), ("Protocol", "HTTP"), ("Port", "80")],
        )
        .await;
    let tg_arn = xml_value(&tg, "TargetGroupArn");
    let mut create = vec![
        ("LoadBalancerArn", lb_arn.as_str()),
        ("Protocol", "HTTPS"),
        ("Port", "443"),
        ("Certificates.member.1.CertificateArn", shop.as_str()),
        ("DefaultActions.member.1.Type", "forward"),
        ("DefaultActions.member.1.TargetGroupArn", tg_arn.as_str()),
    ];
    create.push(("Certificates.member.2.CertificateArn", api.as_str()));
    let (status, two_defaults) = elbv2_raw(&h, "CreateListener", &create).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        two_defaults.contains("<Code>ValidationError</Code>")
            && two_defaults.contains("AddListenerCertificates"),
        "{two_defaults}"
    );
    create.pop();
    let listener = h.elbv2("CreateListener", &create).await;
    let listener_arn = xml_value(&listener, "ListenerArn");

    let added = h
        .elbv2(
            "AddListenerCertificates",
            &[
                ("ListenerArn", &listener_arn),
                ("Certificates.member.1.CertificateArn", &api),
                ("Certificates.member.2.CertificateArn", &admin),
            ],
        )
        .await;
    assert_eq!(
        listed_certificates(&added),
        [
            (api.clone(), "false".into()),
            (admin.clone(), "false".into())
        ]
    );
    // Adding one listed already changes nothing.
    h.elbv2(
        "AddListenerCertificates",
        &[
            ("ListenerArn", &listener_arn),
            ("Certificates.member.1.CertificateArn", &api),
        ],
    )
    .await;
    let described = h
        .elbv2(
            "DescribeListenerCertificates",
            &[("ListenerArn", &listener_arn)],
        )
        .await;
    assert_eq!(
        listed_certificates(&described),
        [
            (shop.clone(), "true".into()),
            (api.clone(), "false".into()),
            (admin.clone(), "false".into())
        ]
    );
    let first_page = h
        .elbv2(
            "DescribeListenerCertificates",
            &[("ListenerArn", &listener_arn), ("PageSize", "2")],
        )
        .await;
    assert_eq!(listed_certificates(&first_page).len(), 2);
    assert_eq!(xml_value(&first_page, "NextMarker"), "2");
    // DescribeListeners shows the default only, as ALB does; the data plane serves all three.
    let listeners = h
        .elbv2(
            "DescribeListeners",
            &[("ListenerArns.member.1", &listener_arn)],
        )
        .await;
    assert_eq!(
        listeners.matches("<CertificateArn>").count(),
        1,
        "{listeners}"
    );
    let c = config(&h, None).await.config.unwrap();
    assert_eq!(
        c.load_balancers[0].listeners[0].certificates,
        [shop.clone(), api.clone(), admin.clone()]
    );
    assert_eq!(c.certificates.len(), 3);

    let (status, refused) = elbv2_raw(
        &h,
        "RemoveListenerCertificates",
        &[
            ("ListenerArn", &listener_arn),
            ("Certificates.member.1.CertificateArn", &shop),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused.contains("<Code>OperationNotPermitted</Code>"),
        "{refused}"
    );
    let missing = with_last_changed(&api);
    let (status, unknown) = elbv2_raw(
        &h,
        "AddListenerCertificates",
        &[
            ("ListenerArn", &listener_arn),
            ("Certificates.member.1.CertificateArn", &missing),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.contains("<Code>CertificateNotFound</Code>"),
        "{unknown}"
    );

    h.elbv2(
        "RemoveListenerCertificates",
        &[
            ("ListenerArn", &listener_arn),
            ("Certificates.member.1.CertificateArn", &api),
        ],
    )
    .await;
    // A new default keeps the list.
    h.elbv2(
        "ModifyListener",
        &[
            ("ListenerArn", &listener_arn),
            ("Certificates.member.1.CertificateArn", &api),
        ],
    )
    .await;
    let described = h
        .elbv2(
            "DescribeListenerCertificates",
            &[("ListenerArn", &listener_arn)],
        )
        .await;
    assert_eq!(
        listed_certificates(&described),
        [
            (api.clone(), "true".into()),
            (admin.clone(), "false".into())
        ]
    );
    let (_, in_use) = acm(&h, "DescribeCertificate", json!({"CertificateArn": admin})).await;
    assert_eq!(in_use["Certificate"]["InUseBy"], json!([listener_arn]));
}
