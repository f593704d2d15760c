//! The official Rust SDK for ELBv2 (`aws-sdk-elasticloadbalancingv2`) against the real binary:
//! the query protocol's serializer, XML parsing into typed shapes and typed errors, the
//! `Marker` paginator and the SDK's own waiters — a client stack other than the AWS CLI's.

mod support;

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::client::Waiters;
use aws_sdk_elasticloadbalancingv2::config::Region;
use aws_sdk_elasticloadbalancingv2::config::http::HttpResponse;
use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig,
    HttpRequestMethodConditionConfig, LoadBalancerSchemeEnum, LoadBalancerStateEnum, Matcher,
    ProtocolEnum, QueryStringConditionConfig, QueryStringKeyValuePair, RedirectActionConfig,
    RedirectActionStatusCodeEnum, RuleCondition, SourceIpConditionConfig, Tag, TargetDescription,
    TargetGroupAttribute, TargetGroupTuple, TargetHealthStateEnum,
};
use support::{ACCESS_KEY, ACCOUNT, Berth, REGION, SECRET_KEY};

fn client(berth: &Berth) -> Client {
    let credentials =
        aws_credential_types::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "berth-test");
    let config = aws_sdk_elasticloadbalancingv2::config::Builder::new()
        .behavior_version_latest()
        .endpoint_url(&berth.endpoint)
        .region(Region::new(REGION))
        .credentials_provider(credentials)
        .build();
    Client::from_conf(config)
}

fn forward(target_group_arn: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(target_group_arn)
        .build()
}

/// The code of a failed call's error, after checking it is a service error (the XML parsed)
/// and not a transport or parse failure.
fn code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, SdkError<E, HttpResponse>>,
) -> String {
    match result {
        Ok(answer) => panic!("expected an error, got {answer:?}"),
        Err(SdkError::ServiceError(e)) => {
            let e = e.into_err();
            assert!(
                e.message().is_some_and(|m| !m.is_empty()),
                "an error without a message: {e:?}"
            );
            e.code().expect("an error code").to_string()
        }
        Err(other) => panic!("expected a service error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_sdk_builds_a_load_balancer_and_routes() {
    let berth = Berth::start();
    let elb = client(&berth);

    let created = elb
        .create_load_balancer()
        .name("sdk-alb")
        .subnets("subnet-0a")
        .subnets("subnet-0b")
        .security_groups("sg-alb")
        .scheme(LoadBalancerSchemeEnum::Internal)
        .tags(Tag::builder().key("stage").value("01").build())
        .send()
        .await
        .expect("create_load_balancer");
    let lb = &created.load_balancers()[0];
    let lb_arn = lb.load_balancer_arn().expect("arn").to_string();
    assert!(lb_arn.starts_with(&format!(
        "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/sdk-alb/"
    )));
    assert_eq!(lb.scheme(), Some(&LoadBalancerSchemeEnum::Internal));
    assert!(lb.created_time().is_some(), "CreatedTime did not parse");
    elb.wait_until_load_balancer_available()
        .load_balancer_arns(&lb_arn)
        .wait(Duration::from_secs(60))
        .await
        .expect("the load-balancer-available waiter");
    let described = elb
        .describe_load_balancers()
        .names("sdk-alb")
        .send()
        .await
        .expect("describe_load_balancers");
    let state = described.load_balancers()[0].state().expect("state");
    assert_eq!(state.code(), Some(&LoadBalancerStateEnum::Active));

    let idle = elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(&lb_arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
                .key("idle_timeout.timeout_seconds")
                .value("120")
                .build(),
        )
        .send()
        .await
        .expect("modify_load_balancer_attributes");
    assert!(
        idle.attributes()
            .iter()
            .any(|a| a.key() == Some("idle_timeout.timeout_seconds") && a.value() == Some("120"))
    );

    // Five target groups, read back three to a page.
    let mut arns = Vec::new();
    for i in 0..5 {
        let tg = elb
            .create_target_group()
            .name(format!("sdk-tg-{i}"))
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id("vpc-0sdk")
            .health_check_path("/health")
            .health_check_port("traffic-port")
            .health_check_interval_seconds(6)
            .healthy_threshold_count(2)
            .matcher(Matcher::builder().http_code("200,204").build())
            .send()
            .await
            .expect("create_target_group");
        let tg = &tg.target_groups()[0];
        assert_eq!(tg.health_check_path(), Some("/health"));
        assert_eq!(tg.matcher().and_then(|m| m.http_code()), Some("200,204"));
        arns.push(tg.target_group_arn().expect("arn").to_string());
    }
    let pages = elb
        .describe_target_groups()
        .page_size(3)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("describe_target_groups pages");
    assert_eq!(pages.len(), 2, "five groups three to a page");
    let mut paged: Vec<String> = pages
        .iter()
        .flat_map(|p| p.target_groups())
        .filter_map(|tg| tg.target_group_arn().map(str::to_string))
        .collect();
    paged.sort();
    let mut expected = arns.clone();
    expected.sort();
    assert_eq!(paged, expected);

    let duplicate = elb
        .create_target_group()
        .name("sdk-tg-0")
        .protocol(ProtocolEnum::Http)
        .port(80)
        .send()
        .await;
    let Err(SdkError::ServiceError(e)) = duplicate else {
        panic!("a duplicate name was accepted: {duplicate:?}");
    };
    assert!(
        e.err().is_duplicate_target_group_name_exception(),
        "not the typed error: {e:?}"
    );

    let attribute = |key: &str, value: &str| {
        TargetGroupAttribute::builder()
            .key(key)
            .value(value)
            .build()
    };
    let attributes = elb
        .modify_target_group_attributes()
        .target_group_arn(&arns[0])
        .attributes(attribute("slow_start.duration_seconds", "30"))
        .send()
        .await
        .expect("modify_target_group_attributes");
    let value = |key: &str| {
        attributes
            .attributes()
            .iter()
            .find(|a| a.key() == Some(key))
            .and_then(|a| a.value())
            .map(str::to_string)
    };
    assert_eq!(value("slow_start.duration_seconds").as_deref(), Some("30"));
    assert_eq!(
        value("load_balancing.algorithm.type").as_deref(),
        Some("round_robin")
    );
    let conflict = elb
        .modify_target_group_attributes()
        .target_group_arn(&arns[0])
        .attributes(attribute(
            "load_balancing.algorithm.type",
            "least_outstanding_requests",
        ))
        .send()
        .await;
    assert_eq!(code(conflict), "InvalidConfigurationRequest");
    let lor = elb
        .modify_target_group_attributes()
        .target_group_arn(&arns[1])
        .attributes(attribute(
            "load_balancing.algorithm.type",
            "least_outstanding_requests",
        ))
        .send()
        .await
        .expect("least outstanding requests");
    assert!(lor.attributes().iter().any(|a| {
        a.key() == Some("load_balancing.algorithm.type")
            && a.value() == Some("least_outstanding_requests")
    }));
    let refused = elb
        .modify_target_group_attributes()
        .target_group_arn(&arns[0])
        .attributes(attribute("slow_start.duration_seconds", "5000"))
        .send()
        .await;
    assert_eq!(code(refused), "ValidationError");

    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(forward(&arns[0]))
        .send()
        .await
        .expect("create_listener");
    let listener_arn = listener.listeners()[0]
        .listener_arn()
        .expect("arn")
        .to_string();

    // Every condition type and every action type the seeds' users reach for.
    let weighted = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(&arns[1])
                        .weight(90)
                        .build(),
                )
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(&arns[2])
                        .weight(10)
                        .build(),
                )
                .build(),
        )
        .build();
    let query_rule = elb
        .create_rule()
        .listener_arn(&listener_arn)
        .priority(5)
        .conditions(
            RuleCondition::builder()
                .field("query-string")
                .query_string_config(
                    QueryStringConditionConfig::builder()
                        .values(
                            QueryStringKeyValuePair::builder()
                                .key("canary")
                                .value("yes")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .conditions(
            RuleCondition::builder()
                .field("http-request-method")
                .http_request_method_config(
                    HttpRequestMethodConditionConfig::builder()
                        .values("GET")
                        .values("HEAD")
                        .build(),
                )
                .build(),
        )
        .actions(weighted)
        .send()
        .await
        .expect("create_rule with query-string and method");
    let query_rule_arn = query_rule.rules()[0].rule_arn().expect("arn").to_string();
    elb.create_rule()
        .listener_arn(&listener_arn)
        .priority(6)
        .conditions(
            RuleCondition::builder()
                .field("source-ip")
                .source_ip_config(
                    SourceIpConditionConfig::builder()
                        .values("10.0.0.0/8")
                        .build(),
                )
                .build(),
        )
        .actions(
            Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code("403")
                        .content_type("text/plain")
                        .message_body("internal only")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create_rule with source-ip");
    let redirect = elb
        .create_rule()
        .listener_arn(&listener_arn)
        .priority(7)
        .conditions(
            RuleCondition::builder()
                .field("path-pattern")
                .values("/old/*")
                .build(),
        )
        .actions(
            Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .path("/new/#{path}")
                        .status_code(RedirectActionStatusCodeEnum::Http301)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create_rule with a redirect");
    let redirect_arn = redirect.rules()[0].rule_arn().expect("arn").to_string();
    let taken = elb
        .create_rule()
        .listener_arn(&listener_arn)
        .priority(7)
        .conditions(
            RuleCondition::builder()
                .field("path-pattern")
                .values("/x")
                .build(),
        )
        .actions(forward(&arns[0]))
        .send()
        .await;
    assert_eq!(code(taken), "PriorityInUse");

    let rules = elb
        .describe_rules()
        .listener_arn(&listener_arn)
        .send()
        .await
        .expect("describe_rules");
    let rules = rules.rules();
    let priorities: Vec<&str> = rules.iter().filter_map(|r| r.priority()).collect();
    assert_eq!(priorities, ["5", "6", "7", "default"]);
    let conditions = rules[0].conditions();
    assert_eq!(
        conditions[0]
            .query_string_config()
            .map(|q| q.values()[0].value()),
        Some(Some("yes"))
    );
    assert_eq!(
        conditions[1]
            .http_request_method_config()
            .map(|m| m.values().to_vec()),
        Some(vec!["GET".to_string(), "HEAD".to_string()])
    );
    let weights: Vec<Option<i32>> = rules[0].actions()[0]
        .forward_config()
        .expect("forward config")
        .target_groups()
        .iter()
        .map(|t| t.weight())
        .collect();
    assert_eq!(weights, [Some(90), Some(10)]);
    assert_eq!(
        rules[1].actions()[0]
            .fixed_response_config()
            .and_then(|f| f.message_body()),
        Some("internal only")
    );
    assert_eq!(
        rules[2].actions()[0]
            .redirect_config()
            .and_then(|r| r.status_code()),
        Some(&RedirectActionStatusCodeEnum::Http301)
    );
    assert_eq!(rules[3].is_default(), Some(true));

    elb.modify_rule()
        .rule_arn(&redirect_arn)
        .conditions(
            RuleCondition::builder()
                .field("host-header")
                .values("old.example.com")
                .build(),
        )
        .send()
        .await
        .expect("modify_rule");
    elb.set_rule_priorities()
        .rule_priorities(
            aws_sdk_elasticloadbalancingv2::types::RulePriorityPair::builder()
                .rule_arn(&redirect_arn)
                .priority(1)
                .build(),
        )
        .send()
        .await
        .expect("set_rule_priorities");
    let moved = elb
        .describe_rules()
        .rule_arns(&redirect_arn)
        .send()
        .await
        .expect("describe_rules by arn");
    let moved = &moved.rules()[0];
    assert_eq!(moved.priority(), Some("1"));
    assert_eq!(moved.conditions()[0].field(), Some("host-header"));

    elb.register_targets()
        .target_group_arn(&arns[0])
        .targets(
            TargetDescription::builder()
                .id("i-0sdk1")
                .port(32768)
                .build(),
        )
        .targets(
            TargetDescription::builder()
                .id("i-0sdk2")
                .port(32769)
                .build(),
        )
        .send()
        .await
        .expect("register_targets");
    let health = elb
        .describe_target_health()
        .target_group_arn(&arns[0])
        .send()
        .await
        .expect("describe_target_health");
    let health = health.target_health_descriptions();
    assert_eq!(health.len(), 2);
    assert_eq!(
        health[0].target_health().and_then(|h| h.state()),
        Some(&TargetHealthStateEnum::Initial)
    );
    elb.modify_target_group_attributes()
        .target_group_arn(&arns[0])
        .attributes(attribute("deregistration_delay.timeout_seconds", "0"))
        .send()
        .await
        .expect("no deregistration delay");
    let gone = TargetDescription::builder()
        .id("i-0sdk1")
        .port(32768)
        .build();
    elb.deregister_targets()
        .target_group_arn(&arns[0])
        .targets(gone.clone())
        .send()
        .await
        .expect("deregister_targets");
    elb.wait_until_target_deregistered()
        .target_group_arn(&arns[0])
        .targets(gone)
        .wait(Duration::from_secs(60))
        .await
        .expect("the target-deregistered waiter");

    let missing = arns[0].replace("/sdk-tg-0/", "/gone/");
    let not_found = elb
        .describe_target_groups()
        .target_group_arns(&missing)
        .send()
        .await;
    let Err(SdkError::ServiceError(e)) = not_found else {
        panic!("a missing target group was found: {not_found:?}");
    };
    assert!(
        e.err().is_target_group_not_found_exception(),
        "not the typed error: {e:?}"
    );
    assert_eq!(
        code(
            elb.delete_target_group()
                .target_group_arn(&arns[0])
                .send()
                .await
        ),
        "ResourceInUse"
    );

    elb.delete_rule()
        .rule_arn(&query_rule_arn)
        .send()
        .await
        .expect("delete_rule");
    elb.delete_listener()
        .listener_arn(&listener_arn)
        .send()
        .await
        .expect("delete_listener");
    elb.delete_load_balancer()
        .load_balancer_arn(&lb_arn)
        .send()
        .await
        .expect("delete_load_balancer");
    for arn in &arns {
        elb.delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .expect("delete_target_group");
    }
    assert_eq!(
        code(
            elb.describe_load_balancers()
                .load_balancer_arns(&lb_arn)
                .send()
                .await
        ),
        "LoadBalancerNotFound"
    );
}
