//! The seeds' load balancer flow through the unmodified AWS CLI (`aws elbv2 …`, the query
//! protocol with XML answers) against the real `berth server`.

mod support;

use support::{ACCOUNT, Berth, REGION, s};

#[test]
fn the_seed_flow_through_the_aws_cli() {
    let berth = Berth::start();
    let elb = |args: &[&str]| {
        let mut all = vec!["elbv2"];
        all.extend_from_slice(args);
        berth.aws(&all)
    };

    let created = elb(&[
        "create-load-balancer",
        "--name",
        "stage01-alb",
        "--subnets",
        "subnet-0a",
        "subnet-0b",
        "--security-groups",
        "sg-alb",
        "--scheme",
        "internet-facing",
        "--tags",
        "Key=stage,Value=01",
    ])
    .ok();
    let lb = &created["LoadBalancers"][0];
    let lb_arn = s(&lb["LoadBalancerArn"]);
    assert!(lb_arn.starts_with(&format!(
        "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/stage01-alb/"
    )));
    assert_eq!(lb["State"]["Code"], "provisioning");
    assert_eq!(lb["Type"], "application");
    assert_eq!(lb["SecurityGroups"][0], "sg-alb");
    assert_eq!(lb["AvailabilityZones"][1]["SubnetId"], "subnet-0b");
    assert!(s(&lb["DNSName"]).ends_with(".lb.berth.local"));
    elb(&[
        "wait",
        "load-balancer-available",
        "--load-balancer-arns",
        &lb_arn,
    ])
    .ok();
    let described = elb(&["describe-load-balancers", "--names", "stage01-alb"]).ok();
    assert_eq!(described["LoadBalancers"][0]["State"]["Code"], "active");
    assert!(s(&described["LoadBalancers"][0]["CreatedTime"]).starts_with("20"));

    let auth = elb(&[
        "create-target-group",
        "--name",
        "auth",
        "--protocol",
        "HTTP",
        "--port",
        "10080",
        "--vpc-id",
        "vpc-0stage01",
    ])
    .ok();
    let auth_arn = s(&auth["TargetGroups"][0]["TargetGroupArn"]);
    let random = elb(&[
        "create-target-group",
        "--name",
        "random",
        "--protocol",
        "HTTP",
        "--port",
        "10081",
        "--vpc-id",
        "vpc-0stage01",
        "--health-check-port",
        "traffic-port",
        "--health-check-path",
        "/random/",
        "--health-check-interval-seconds",
        "10",
        "--health-check-timeout-seconds",
        "5",
        "--healthy-threshold-count",
        "2",
        "--unhealthy-threshold-count",
        "3",
        "--matcher",
        "HttpCode=200-299",
    ])
    .ok();
    let random_tg = &random["TargetGroups"][0];
    let random_arn = s(&random_tg["TargetGroupArn"]);
    assert_eq!(random_tg["HealthCheckPort"], "traffic-port");
    assert_eq!(random_tg["HealthCheckIntervalSeconds"], 10);
    assert_eq!(random_tg["Matcher"]["HttpCode"], "200-299");
    elb(&[
        "create-target-group",
        "--name",
        "auth",
        "--protocol",
        "HTTP",
        "--port",
        "80",
    ])
    .fails_with("DuplicateTargetGroupName");

    let listener = elb(&[
        "create-listener",
        "--load-balancer-arn",
        &lb_arn,
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--default-actions",
        &format!("Type=forward,TargetGroupArn={auth_arn}"),
    ])
    .ok();
    let listener_arn = s(&listener["Listeners"][0]["ListenerArn"]);
    assert_eq!(listener["Listeners"][0]["Port"], 80);
    let rule = elb(&[
        "create-rule",
        "--listener-arn",
        &listener_arn,
        "--priority",
        "10",
        "--conditions",
        "Field=path-pattern,Values=/random/*",
        "--actions",
        &format!("Type=forward,TargetGroupArn={random_arn}"),
    ])
    .ok();
    let rule_arn = s(&rule["Rules"][0]["RuleArn"]);
    elb(&[
        "create-rule",
        "--listener-arn",
        &listener_arn,
        "--priority",
        "10",
        "--conditions",
        "Field=host-header,Values=api.example.com",
        "--actions",
        &format!("Type=forward,TargetGroupArn={auth_arn}"),
    ])
    .fails_with("PriorityInUse");
    let header_rule = elb(&[
        "create-rule",
        "--listener-arn",
        &listener_arn,
        "--priority",
        "20",
        "--conditions",
        r#"[{"Field":"http-header","HttpHeaderConfig":{"HttpHeaderName":"X-Canary","Values":["1"]}}]"#,
        "--actions",
        &format!(
            r#"[{{"Type":"forward","ForwardConfig":{{"TargetGroups":[{{"TargetGroupArn":"{auth_arn}","Weight":80}},{{"TargetGroupArn":"{random_arn}","Weight":20}}]}}}}]"#
        ),
    ])
    .ok();
    let header_rule_arn = s(&header_rule["Rules"][0]["RuleArn"]);

    let rules = elb(&["describe-rules", "--listener-arn", &listener_arn]).ok();
    let rules = rules["Rules"].as_array().unwrap().clone();
    let priorities: Vec<String> = rules.iter().map(|r| s(&r["Priority"])).collect();
    assert_eq!(priorities, ["10", "20", "default"]);
    assert_eq!(rules[0]["Conditions"][0]["Field"], "path-pattern");
    assert_eq!(
        rules[0]["Conditions"][0]["PathPatternConfig"]["Values"][0],
        "/random/*"
    );
    assert_eq!(
        rules[0]["Actions"][0]["TargetGroupArn"],
        random_arn.as_str()
    );
    assert_eq!(
        rules[1]["Actions"][0]["ForwardConfig"]["TargetGroups"][1]["Weight"],
        20
    );
    assert_eq!(rules[2]["IsDefault"], true);
    assert_eq!(rules[2]["Actions"][0]["TargetGroupArn"], auth_arn.as_str());

    elb(&[
        "set-rule-priorities",
        "--rule-priorities",
        &format!("RuleArn={rule_arn},Priority=20"),
        &format!("RuleArn={header_rule_arn},Priority=10"),
    ])
    .ok();
    let rules = elb(&["describe-rules", "--rule-arns", &rule_arn]).ok();
    assert_eq!(rules["Rules"][0]["Priority"], "20");

    elb(&[
        "register-targets",
        "--target-group-arn",
        &random_arn,
        "--targets",
        "Id=i-0aaa,Port=32768",
        "Id=i-0bbb,Port=32769",
    ])
    .ok();
    let health = elb(&["describe-target-health", "--target-group-arn", &random_arn]).ok();
    let descriptions = health["TargetHealthDescriptions"].as_array().unwrap();
    assert_eq!(descriptions.len(), 2);
    assert_eq!(descriptions[0]["Target"]["Id"], "i-0aaa");
    assert_eq!(descriptions[0]["Target"]["Port"], 32768);
    assert_eq!(descriptions[0]["HealthCheckPort"], "32768");
    assert_eq!(descriptions[0]["TargetHealth"]["State"], "initial");
    assert_eq!(
        descriptions[0]["TargetHealth"]["Reason"],
        "Elb.RegistrationInProgress"
    );

    let attrs = elb(&[
        "modify-target-group-attributes",
        "--target-group-arn",
        &random_arn,
        "--attributes",
        "Key=deregistration_delay.timeout_seconds,Value=1",
    ])
    .ok();
    let delay = attrs["Attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Key"] == "deregistration_delay.timeout_seconds")
        .unwrap()
        .clone();
    assert_eq!(delay["Value"], "1");
    elb(&[
        "deregister-targets",
        "--target-group-arn",
        &random_arn,
        "--targets",
        "Id=i-0aaa,Port=32768",
    ])
    .ok();
    let health = elb(&[
        "describe-target-health",
        "--target-group-arn",
        &random_arn,
        "--targets",
        "Id=i-0aaa,Port=32768",
    ])
    .ok();
    assert_eq!(
        health["TargetHealthDescriptions"][0]["TargetHealth"]["State"],
        "draining"
    );
    // After the one-second delay the target is gone (slept through, so the waiter's first
    // look, not its 15-second retry, sees it).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    elb(&[
        "wait",
        "target-deregistered",
        "--target-group-arn",
        &random_arn,
        "--targets",
        "Id=i-0aaa,Port=32768",
    ])
    .ok();
    let health = elb(&["describe-target-health", "--target-group-arn", &random_arn]).ok();
    assert_eq!(
        health["TargetHealthDescriptions"].as_array().unwrap().len(),
        1
    );

    let missing = random_arn.replace("/random/", "/gone/");
    elb(&["describe-target-groups", "--target-group-arns", &missing])
        .fails_with("TargetGroupNotFound");
    elb(&["delete-target-group", "--target-group-arn", &random_arn]).fails_with("ResourceInUse");
    elb(&[
        "add-tags",
        "--resource-arns",
        &random_arn,
        "--tags",
        "Key=team,Value=web",
    ])
    .ok();
    let tags = elb(&["describe-tags", "--resource-arns", &lb_arn, &random_arn]).ok();
    assert_eq!(tags["TagDescriptions"][0]["Tags"][0]["Key"], "stage");
    assert_eq!(tags["TagDescriptions"][1]["Tags"][0]["Value"], "web");

    elb(&["delete-rule", "--rule-arn", &rule_arn]).ok();
    elb(&["delete-rule", "--rule-arn", &header_rule_arn]).ok();
    elb(&["delete-listener", "--listener-arn", &listener_arn]).ok();
    elb(&["delete-load-balancer", "--load-balancer-arn", &lb_arn]).ok();
    elb(&["delete-target-group", "--target-group-arn", &random_arn]).ok();
    elb(&["delete-target-group", "--target-group-arn", &auth_arn]).ok();
    let left = elb(&["describe-load-balancers"]).ok();
    assert_eq!(left["LoadBalancers"].as_array().unwrap().len(), 0);
    let left = elb(&["describe-target-groups"]).ok();
    assert_eq!(left["TargetGroups"].as_array().unwrap().len(), 0);
    elb(&["describe-load-balancers", "--load-balancer-arns", &lb_arn])
        .fails_with("LoadBalancerNotFound");
}
