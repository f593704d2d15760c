//! In-process tests of the ELBv2 API (query protocol, XML answers) on the real router and a
//! real SQLite store, called with `oneshot`, auth off.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use support::harness;
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Reply {
    /// The text of every `<tag>` element, in document order.
    fn all(&self, tag: &str) -> Vec<String> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find(&open) {
            rest = &rest[i + open.len()..];
            let end = rest.find(&close).expect("element is closed");
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
        out
    }
    fn one(&self, tag: &str) -> String {
        self.all(tag)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no <{tag}> in {}", self.body))
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn call(h: &support::Harness, action: &str, params: &[(&str, &str)]) -> Reply {
    let mut body = format!("Action={action}&Version=2015-12-01");
    for (k, v) in params {
        body.push_str(&format!("&{}={}", encode(k), encode(v)));
    }
    let req = Request::post("/")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(Body::from(body))
        .unwrap();
    let response = h.app.router().oneshot(req).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        content_type,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn ok(h: &support::Harness, action: &str, params: &[(&str, &str)]) -> Reply {
    let r = call(h, action, params).await;
    assert_eq!(r.status, StatusCode::OK, "{action}: {}", r.body);
    assert!(r.body.starts_with(&format!(
        "<{action}Response xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><{action}Result>"
    )));
    r
}

async fn fails(h: &support::Harness, action: &str, params: &[(&str, &str)], code: &str) -> String {
    let r = call(h, action, params).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{action}: {}", r.body);
    assert!(r.body.starts_with("<ErrorResponse"), "{}", r.body);
    assert_eq!(r.one("Type"), "Sender");
    assert_eq!(r.one("Code"), code, "{action}: {}", r.body);
    r.one("Message")
}

/// A load balancer, two target groups, a listener forwarding to the first and a rule sending
/// `/random/*` to the second; returns (lb, tg1, tg2, listener).
async fn seed(h: &support::Harness) -> (String, String, String, String) {
    let lb = ok(
        h,
        "CreateLoadBalancer",
        &[
            ("Name", "stage01-alb"),
            ("Subnets.member.1", "subnet-a"),
            ("Subnets.member.2", "subnet-b"),
            ("SecurityGroups.member.1", "sg-1"),
        ],
    )
    .await;
    assert_eq!(lb.one("Code"), "provisioning");
    assert_eq!(lb.all("SubnetId"), ["subnet-a", "subnet-b"]);
    let lb = lb.one("LoadBalancerArn");
    let tg1 = ok(
        h,
        "CreateTargetGroup",
        &[
            ("Name", "auth"),
            ("Protocol", "HTTP"),
            ("Port", "10080"),
            ("VpcId", "vpc-1"),
        ],
    )
    .await
    .one("TargetGroupArn");
    let tg2 = ok(
        h,
        "CreateTargetGroup",
        &[
            ("Name", "random"),
            ("Protocol", "HTTP"),
            ("Port", "10081"),
            ("HealthCheckPort", "traffic-port"),
            ("HealthCheckPath", "/random/"),
            ("HealthCheckIntervalSeconds", "10"),
            ("Matcher.HttpCode", "200-299"),
        ],
    )
    .await
    .one("TargetGroupArn");
    let l = ok(
        h,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tg1),
        ],
    )
    .await
    .one("ListenerArn");
    ok(
        h,
        "CreateRule",
        &[
            ("ListenerArn", &l),
            ("Priority", "10"),
            ("Conditions.member.1.Field", "path-pattern"),
            ("Conditions.member.1.Values.member.1", "/random/*"),
            ("Actions.member.1.Type", "forward"),
            ("Actions.member.1.TargetGroupArn", &tg2),
        ],
    )
    .await;
    (lb, tg1, tg2, l)
}

#[tokio::test]
async fn load_balancers_describe_page_and_delete() {
    let h = harness().await;
    let (lb, ..) = seed(&h).await;
    assert!(lb.starts_with(
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/stage01-alb/"
    ));
    let d = ok(
        &h,
        "DescribeLoadBalancers",
        &[("Names.member.1", "stage01-alb")],
    )
    .await;
    assert_eq!(d.one("Code"), "active");
    assert!(d.one("DNSName").starts_with("stage01-alb-"));
    assert!(d.one("CreatedTime").ends_with('Z'));
    ok(&h, "CreateLoadBalancer", &[("Name", "second")]).await;
    let page1 = ok(&h, "DescribeLoadBalancers", &[("PageSize", "1")]).await;
    assert_eq!(page1.all("LoadBalancerName"), ["second"]);
    let marker = page1.one("NextMarker");
    let page2 = ok(
        &h,
        "DescribeLoadBalancers",
        &[("PageSize", "1"), ("Marker", &marker)],
    )
    .await;
    assert_eq!(page2.all("LoadBalancerName"), ["stage01-alb"]);
    assert!(page2.all("NextMarker").is_empty());
    fails(
        &h,
        "CreateLoadBalancer",
        &[("Name", "second")],
        "DuplicateLoadBalancerName",
    )
    .await;
    fails(
        &h,
        "DescribeLoadBalancers",
        &[("Names.member.1", "nope")],
        "LoadBalancerNotFound",
    )
    .await;
    let m = fails(
        &h,
        "CreateLoadBalancer",
        &[("Name", "bad_name")],
        "ValidationError",
    )
    .await;
    assert!(m.contains("Name"), "{m}");
    let m = fails(
        &h,
        "DescribeLoadBalancers",
        &[("LoadBalancerArns.member.1", "nope")],
        "ValidationError",
    )
    .await;
    assert!(m.contains("LoadBalancerArns"), "{m}");
    fails(
        &h,
        "DescribeLoadBalancers",
        &[("PageSize", "401")],
        "ValidationError",
    )
    .await;

    let attrs = ok(
        &h,
        "DescribeLoadBalancerAttributes",
        &[("LoadBalancerArn", &lb)],
    )
    .await;
    assert!(
        attrs
            .body
            .contains("<Key>idle_timeout.timeout_seconds</Key><Value>60</Value>")
    );
    ok(
        &h,
        "ModifyLoadBalancerAttributes",
        &[
            ("LoadBalancerArn", &lb),
            ("Attributes.member.1.Key", "deletion_protection.enabled"),
            ("Attributes.member.1.Value", "true"),
        ],
    )
    .await;
    fails(
        &h,
        "ModifyLoadBalancerAttributes",
        &[
            ("LoadBalancerArn", &lb),
            ("Attributes.member.1.Key", "idle_timeout.timeout_seconds"),
            ("Attributes.member.1.Value", "0"),
        ],
        "ValidationError",
    )
    .await;
    fails(
        &h,
        "DeleteLoadBalancer",
        &[("LoadBalancerArn", &lb)],
        "OperationNotPermitted",
    )
    .await;
    ok(
        &h,
        "ModifyLoadBalancerAttributes",
        &[
            ("LoadBalancerArn", &lb),
            ("Attributes.member.1.Key", "deletion_protection.enabled"),
            ("Attributes.member.1.Value", "false"),
        ],
    )
    .await;
    ok(&h, "DeleteLoadBalancer", &[("LoadBalancerArn", &lb)]).await;
    ok(&h, "DeleteLoadBalancer", &[("LoadBalancerArn", &lb)]).await;
    fails(
        &h,
        "DescribeListeners",
        &[("LoadBalancerArn", &lb)],
        "LoadBalancerNotFound",
    )
    .await;
    // The listener and its rules went with it, so the target groups are free.
    let tgs = ok(&h, "DescribeTargetGroups", &[]).await;
    assert!(
        tgs.all("LoadBalancerArns").iter().all(String::is_empty),
        "{}",
        tgs.body
    );
}

#[tokio::test]
async fn target_groups_defaults_modify_attributes_and_in_use() {
    let h = harness().await;
    let (lb, tg1, tg2, l) = seed(&h).await;
    let d = ok(
        &h,
        "DescribeTargetGroups",
        &[("TargetGroupArns.member.1", &tg1)],
    )
    .await;
    for (tag, value) in [
        ("HealthCheckPort", "traffic-port"),
        ("HealthCheckPath", "/"),
        ("HealthCheckIntervalSeconds", "30"),
        ("HealthCheckTimeoutSeconds", "5"),
        ("HealthyThresholdCount", "5"),
        ("UnhealthyThresholdCount", "2"),
        ("HttpCode", "200"),
        ("TargetType", "instance"),
        ("VpcId", "vpc-1"),
    ] {
        assert_eq!(d.one(tag), value, "{tag}");
    }
    assert_eq!(d.one("LoadBalancerArns"), format!("<member>{lb}</member>"));
    let by_lb = ok(&h, "DescribeTargetGroups", &[("LoadBalancerArn", &lb)]).await;
    assert_eq!(by_lb.all("TargetGroupName"), ["auth", "random"]);
    fails(
        &h,
        "CreateTargetGroup",
        &[("Name", "auth"), ("Protocol", "HTTP"), ("Port", "80")],
        "DuplicateTargetGroupName",
    )
    .await;
    fails(
        &h,
        "DescribeTargetGroups",
        &[("Names.member.1", "nope")],
        "TargetGroupNotFound",
    )
    .await;
    let m = fails(
        &h,
        "CreateTargetGroup",
        &[
            ("Name", "x"),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("HealthCheckTimeoutSeconds", "30"),
        ],
        "ValidationError",
    )
    .await;
    assert!(m.contains("HealthCheckTimeoutSeconds"), "{m}");
    let m = ok(
        &h,
        "ModifyTargetGroup",
        &[
            ("TargetGroupArn", &tg2),
            ("HealthCheckPath", "/health"),
            ("Matcher.HttpCode", "200,204"),
        ],
    )
    .await;
    assert_eq!(
        (m.one("HealthCheckPath"), m.one("HttpCode")),
        ("/health".to_string(), "200,204".to_string())
    );

    let attrs = ok(
        &h,
        "DescribeTargetGroupAttributes",
        &[("TargetGroupArn", &tg1)],
    )
    .await;
    assert!(
        attrs
            .body
            .contains("<Key>deregistration_delay.timeout_seconds</Key><Value>300</Value>")
    );
    let attrs = ok(
        &h,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg1),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "5"),
            ("Attributes.member.2.Key", "load_balancing.algorithm.type"),
            ("Attributes.member.2.Value", "least_outstanding_requests"),
        ],
    )
    .await;
    assert!(
        attrs
            .body
            .contains("<Key>deregistration_delay.timeout_seconds</Key><Value>5</Value>")
    );
    let m = fails(
        &h,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg1),
            ("Attributes.member.1.Key", "nope"),
            ("Attributes.member.1.Value", "1"),
        ],
        "ValidationError",
    )
    .await;
    assert!(m.contains("Attributes.member.1.Key"), "{m}");
    fails(
        &h,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg1),
            ("Attributes.member.1.Key", "slow_start.duration_seconds"),
            ("Attributes.member.1.Value", "30"),
        ],
        "InvalidConfigurationRequest",
    )
    .await;

    let m = fails(
        &h,
        "DeleteTargetGroup",
        &[("TargetGroupArn", &tg1)],
        "ResourceInUse",
    )
    .await;
    assert!(m.contains(&tg1), "{m}");
    fails(
        &h,
        "DeleteTargetGroup",
        &[("TargetGroupArn", &tg2)],
        "ResourceInUse",
    )
    .await;
    ok(&h, "DeleteListener", &[("ListenerArn", &l)]).await;
    ok(&h, "DeleteTargetGroup", &[("TargetGroupArn", &tg1)]).await;
    ok(&h, "DeleteTargetGroup", &[("TargetGroupArn", &tg2)]).await;
    fails(
        &h,
        "DescribeTargetGroups",
        &[("TargetGroupArns.member.1", &tg1)],
        "TargetGroupNotFound",
    )
    .await;
}

#[tokio::test]
async fn listeners_and_rules() {
    let h = harness().await;
    let (lb, tg1, tg2, l) = seed(&h).await;
    fails(
        &h,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Port", "80"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tg1),
        ],
        "DuplicateListener",
    )
    .await;
    let missing = tg1.replace("/auth/", "/gone/");
    fails(
        &h,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Port", "81"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &missing),
        ],
        "TargetGroupNotFound",
    )
    .await;
    let fixed = ok(
        &h,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Port", "8080"),
            ("DefaultActions.member.1.Type", "fixed-response"),
            (
                "DefaultActions.member.1.FixedResponseConfig.StatusCode",
                "404",
            ),
            (
                "DefaultActions.member.1.FixedResponseConfig.ContentType",
                "text/plain",
            ),
            (
                "DefaultActions.member.1.FixedResponseConfig.MessageBody",
                "nothing here",
            ),
        ],
    )
    .await;
    assert_eq!(fixed.one("MessageBody"), "nothing here");
    let listeners = ok(&h, "DescribeListeners", &[("LoadBalancerArn", &lb)]).await;
    assert_eq!(listeners.all("Port"), ["80", "8080"]);
    let redirect = ok(
        &h,
        "ModifyListener",
        &[
            ("ListenerArn", &fixed.one("ListenerArn")),
            ("Port", "8081"),
            ("DefaultActions.member.1.Type", "redirect"),
            ("DefaultActions.member.1.RedirectConfig.Protocol", "HTTPS"),
            ("DefaultActions.member.1.RedirectConfig.Port", "443"),
            (
                "DefaultActions.member.1.RedirectConfig.StatusCode",
                "HTTP_301",
            ),
        ],
    )
    .await;
    assert_eq!(
        (redirect.one("Port"), redirect.one("Host")),
        ("8081".to_string(), "#{host}".to_string())
    );
    fails(
        &h,
        "ModifyListener",
        &[("ListenerArn", &fixed.one("ListenerArn")), ("Port", "80")],
        "DuplicateListener",
    )
    .await;

    let rules = ok(&h, "DescribeRules", &[("ListenerArn", &l)]).await;
    assert_eq!(rules.all("Priority"), ["10", "default"]);
    assert_eq!(rules.all("IsDefault"), ["false", "true"]);
    assert_eq!(
        rules.all("TargetGroupArn"),
        [tg2.clone(), tg2.clone(), tg1.clone(), tg1.clone()]
    );
    let default_rule = rules.all("RuleArn")[1].clone();
    let first = rules.all("RuleArn")[0].clone();
    fails(
        &h,
        "CreateRule",
        &[
            ("ListenerArn", &l),
            ("Priority", "10"),
            ("Conditions.member.1.Field", "host-header"),
            (
                "Conditions.member.1.HostHeaderConfig.Values.member.1",
                "a.example.com",
            ),
            ("Actions.member.1.Type", "forward"),
            ("Actions.member.1.TargetGroupArn", &tg1),
        ],
        "PriorityInUse",
    )
    .await;
    let weighted = ok(
        &h,
        "CreateRule",
        &[
            ("ListenerArn", &l),
            ("Priority", "20"),
            ("Conditions.member.1.Field", "http-header"),
            (
                "Conditions.member.1.HttpHeaderConfig.HttpHeaderName",
                "X-Stage",
            ),
            (
                "Conditions.member.1.HttpHeaderConfig.Values.member.1",
                "canary",
            ),
            ("Actions.member.1.Type", "forward"),
            (
                "Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn",
                &tg1,
            ),
            (
                "Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight",
                "90",
            ),
            (
                "Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn",
                &tg2,
            ),
            (
                "Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight",
                "10",
            ),
        ],
    )
    .await;
    assert_eq!(weighted.all("Weight"), ["90", "10"]);
    let second = weighted.one("RuleArn");
    let m = fails(
        &h,
        "CreateRule",
        &[
            ("ListenerArn", &l),
            ("Priority", "30"),
            ("Conditions.member.1.Field", "source-ip"),
            (
                "Conditions.member.1.SourceIpConfig.Values.member.1",
                "10.0.0.1",
            ),
            ("Actions.member.1.Type", "forward"),
            ("Actions.member.1.TargetGroupArn", &tg1),
        ],
        "ValidationError",
    )
    .await;
    assert!(m.contains("SourceIpConfig"), "{m}");

    // Swapping two priorities in one call is allowed; a clash is not.
    let swapped = ok(
        &h,
        "SetRulePriorities",
        &[
            ("RulePriorities.member.1.RuleArn", &first),
            ("RulePriorities.member.1.Priority", "20"),
            ("RulePriorities.member.2.RuleArn", &second),
            ("RulePriorities.member.2.Priority", "10"),
        ],
    )
    .await;
    assert_eq!(swapped.all("Priority"), ["10", "20"]);
    assert_eq!(swapped.all("RuleArn"), [second.clone(), first.clone()]);
    fails(
        &h,
        "SetRulePriorities",
        &[
            ("RulePriorities.member.1.RuleArn", &first),
            ("RulePriorities.member.1.Priority", "10"),
        ],
        "PriorityInUse",
    )
    .await;
    fails(
        &h,
        "SetRulePriorities",
        &[
            ("RulePriorities.member.1.RuleArn", &default_rule),
            ("RulePriorities.member.1.Priority", "5"),
        ],
        "OperationNotPermitted",
    )
    .await;

    let modified = ok(
        &h,
        "ModifyRule",
        &[
            ("RuleArn", &first),
            ("Conditions.member.1.Field", "path-pattern"),
            (
                "Conditions.member.1.PathPatternConfig.Values.member.1",
                "/v2/*",
            ),
        ],
    )
    .await;
    assert_eq!(modified.all("Values")[0], "<member>/v2/*</member>");
    fails(
        &h,
        "ModifyRule",
        &[
            ("RuleArn", &default_rule),
            ("Actions.member.1.Type", "forward"),
            ("Actions.member.1.TargetGroupArn", &tg1),
        ],
        "OperationNotPermitted",
    )
    .await;
    fails(
        &h,
        "DeleteRule",
        &[("RuleArn", &default_rule)],
        "OperationNotPermitted",
    )
    .await;
    ok(&h, "DeleteRule", &[("RuleArn", &first)]).await;
    fails(&h, "DeleteRule", &[("RuleArn", &first)], "RuleNotFound").await;
    fails(
        &h,
        "DescribeRules",
        &[("RuleArns.member.1", &first)],
        "RuleNotFound",
    )
    .await;
    let by_arn = ok(&h, "DescribeRules", &[("RuleArns.member.1", &default_rule)]).await;
    assert_eq!(by_arn.one("IsDefault"), "true");
    ok(&h, "DeleteListener", &[("ListenerArn", &l)]).await;
    fails(
        &h,
        "DeleteListener",
        &[("ListenerArn", &l)],
        "ListenerNotFound",
    )
    .await;
    fails(
        &h,
        "DescribeRules",
        &[("RuleArns.member.1", &second)],
        "RuleNotFound",
    )
    .await;
}

#[tokio::test]
async fn targets_register_drain_and_report_health() {
    let h = harness().await;
    let (_, tg1, _, _) = seed(&h).await;
    let unused = ok(
        &h,
        "CreateTargetGroup",
        &[
            ("Name", "idle"),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("TargetType", "ip"),
        ],
    )
    .await
    .one("TargetGroupArn");
    ok(
        &h,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &tg1),
            ("Targets.member.1.Id", "i-0abc"),
            ("Targets.member.1.Port", "32768"),
            ("Targets.member.2.Id", "i-0def"),
        ],
    )
    .await;
    let health = ok(&h, "DescribeTargetHealth", &[("TargetGroupArn", &tg1)]).await;
    assert_eq!(health.all("Id"), ["i-0abc", "i-0def"]);
    assert_eq!(health.all("Port"), ["32768", "10080"]);
    assert_eq!(health.all("HealthCheckPort"), ["32768", "10080"]);
    assert_eq!(health.all("State"), ["initial", "initial"]);
    assert_eq!(
        health.all("Reason"),
        ["Elb.RegistrationInProgress", "Elb.RegistrationInProgress"]
    );
    let asked = ok(
        &h,
        "DescribeTargetHealth",
        &[
            ("TargetGroupArn", &tg1),
            ("Targets.member.1.Id", "i-0zzz"),
            ("Targets.member.1.Port", "80"),
        ],
    )
    .await;
    assert_eq!(
        (asked.one("State"), asked.one("Reason")),
        ("unused".to_string(), "Target.NotRegistered".to_string())
    );

    ok(
        &h,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &unused),
            ("Targets.member.1.Id", "10.0.0.5"),
        ],
    )
    .await;
    let idle = ok(&h, "DescribeTargetHealth", &[("TargetGroupArn", &unused)]).await;
    assert_eq!(
        (idle.one("State"), idle.one("Reason")),
        ("unused".to_string(), "Target.NotInUse".to_string())
    );
    fails(
        &h,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &unused),
            ("Targets.member.1.Id", "i-0abc"),
        ],
        "InvalidTarget",
    )
    .await;
    ok(
        &h,
        "DeregisterTargets",
        &[
            ("TargetGroupArn", &unused),
            ("Targets.member.1.Id", "10.0.0.5"),
        ],
    )
    .await;
    assert!(
        ok(&h, "DescribeTargetHealth", &[("TargetGroupArn", &unused)])
            .await
            .all("Id")
            .is_empty(),
        "a group no load balancer uses drains at once"
    );

    ok(
        &h,
        "DeregisterTargets",
        &[
            ("TargetGroupArn", &tg1),
            ("Targets.member.1.Id", "i-0abc"),
            ("Targets.member.1.Port", "32768"),
        ],
    )
    .await;
    let draining = ok(
        &h,
        "DescribeTargetHealth",
        &[("TargetGroupArn", &tg1), ("Targets.member.1.Id", "i-0abc")],
    )
    .await;
    assert_eq!(
        (draining.one("State"), draining.one("Reason")),
        (
            "draining".to_string(),
            "Target.DeregistrationInProgress".to_string()
        )
    );
    let m = fails(
        &h,
        "DeregisterTargets",
        &[("TargetGroupArn", &tg1), ("Targets.member.1.Id", "i-0nope")],
        "InvalidTarget",
    )
    .await;
    assert!(m.contains("i-0nope"), "{m}");
    // Registering a draining target again makes it a fresh registration.
    ok(
        &h,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &tg1),
            ("Targets.member.1.Id", "i-0abc"),
            ("Targets.member.1.Port", "32768"),
        ],
    )
    .await;
    let again = ok(
        &h,
        "DescribeTargetHealth",
        &[("TargetGroupArn", &tg1), ("Targets.member.1.Id", "i-0abc")],
    )
    .await;
    assert_eq!(again.one("State"), "initial");
    fails(
        &h,
        "RegisterTargets",
        &[
            ("TargetGroupArn", &tg1.replace("/auth/", "/gone/")),
            ("Targets.member.1.Id", "i-1"),
        ],
        "TargetGroupNotFound",
    )
    .await;
    fails(
        &h,
        "RegisterTargets",
        &[("TargetGroupArn", &tg1)],
        "ValidationError",
    )
    .await;

    // With a zero delay the target is gone as soon as it is deregistered.
    ok(
        &h,
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg1),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "0"),
        ],
    )
    .await;
    ok(
        &h,
        "DeregisterTargets",
        &[("TargetGroupArn", &tg1), ("Targets.member.1.Id", "i-0def")],
    )
    .await;
    let left = ok(&h, "DescribeTargetHealth", &[("TargetGroupArn", &tg1)]).await;
    assert_eq!(left.all("Id"), ["i-0abc"]);
}

#[tokio::test]
async fn tags_and_protocol_errors() {
    let h = harness().await;
    let (lb, tg1, _, l) = seed(&h).await;
    ok(
        &h,
        "AddTags",
        &[
            ("ResourceArns.member.1", &lb),
            ("ResourceArns.member.2", &tg1),
            ("ResourceArns.member.3", &l),
            ("Tags.member.1.Key", "stage"),
            ("Tags.member.1.Value", "01"),
            ("Tags.member.2.Key", "bare"),
        ],
    )
    .await;
    let d = ok(
        &h,
        "DescribeTags",
        &[
            ("ResourceArns.member.1", &lb),
            ("ResourceArns.member.2", &tg1),
            ("ResourceArns.member.3", &l),
        ],
    )
    .await;
    assert_eq!(d.all("ResourceArn"), [lb.clone(), tg1.clone(), l.clone()]);
    assert_eq!(
        d.all("Key"),
        ["stage", "bare", "stage", "bare", "stage", "bare"]
    );
    ok(
        &h,
        "RemoveTags",
        &[
            ("ResourceArns.member.1", &lb),
            ("TagKeys.member.1", "stage"),
        ],
    )
    .await;
    let d = ok(&h, "DescribeTags", &[("ResourceArns.member.1", &lb)]).await;
    assert_eq!(d.all("Key"), ["bare"]);
    fails(
        &h,
        "AddTags",
        &[
            ("ResourceArns.member.1", &lb),
            ("Tags.member.1.Key", "a"),
            ("Tags.member.2.Key", "a"),
        ],
        "DuplicateTagKeys",
    )
    .await;
    let many: Vec<(String, String)> = (1..=51)
        .map(|i| (format!("Tags.member.{i}.Key"), format!("k{i}")))
        .collect();
    let mut params: Vec<(&str, &str)> = vec![("ResourceArns.member.1", &tg1)];
    params.extend(many.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    fails(&h, "AddTags", &params, "TooManyTags").await;
    fails(
        &h,
        "DescribeTags",
        &[("ResourceArns.member.1", &lb.replace("stage01-alb", "gone"))],
        "LoadBalancerNotFound",
    )
    .await;

    fails(&h, "NoSuchAction", &[], "InvalidAction").await;
    let r = call(&h, "DescribeLoadBalancers", &[("Version", "2012-06-01")]).await;
    assert_eq!(r.one("Code"), "InvalidAction");
    assert_eq!(r.content_type, "text/xml");
    // GET with a query string works as well.
    let req = Request::get("/?Action=DescribeLoadBalancers&Version=2015-12-01")
        .body(Body::empty())
        .unwrap();
    let response = h.app.router().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("<LoadBalancerName>stage01-alb</LoadBalancerName>")
    );
}
