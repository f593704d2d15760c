//! ELBv2 ARNs: `arn:aws:elasticloadbalancing:REGION:ACCOUNT:` followed by
//! `loadbalancer/app/NAME/ID`, `targetgroup/NAME/ID`, `listener/app/LBNAME/LBID/ID` or
//! `listener-rule/app/LBNAME/LBID/LISTENERID/ID`.

/// What an ELBv2 ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    LoadBalancer {
        name: String,
        id: String,
    },
    TargetGroup {
        name: String,
        id: String,
    },
    Listener {
        lb_name: String,
        lb_id: String,
        id: String,
    },
    Rule {
        lb_name: String,
        lb_id: String,
        listener_id: String,
        id: String,
    },
}

/// A parsed ELBv2 ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElbArn {
    pub region: String,
    pub account: String,
    pub resource: Resource,
}

fn prefix(region: &str, account: &str) -> String {
    format!("arn:aws:elasticloadbalancing:{region}:{account}")
}

pub fn load_balancer(region: &str, account: &str, name: &str, id: &str) -> String {
    format!("{}:loadbalancer/app/{name}/{id}", prefix(region, account))
}

pub fn target_group(region: &str, account: &str, name: &str, id: &str) -> String {
    format!("{}:targetgroup/{name}/{id}", prefix(region, account))
}

pub fn listener(region: &str, account: &str, lb_name: &str, lb_id: &str, id: &str) -> String {
    format!(
        "{}:listener/app/{lb_name}/{lb_id}/{id}",
        prefix(region, account)
    )
}

pub fn rule(
    region: &str,
    account: &str,
    lb_name: &str,
    lb_id: &str,
    listener_id: &str,
    id: &str,
) -> String {
    format!(
        "{}:listener-rule/app/{lb_name}/{lb_id}/{listener_id}/{id}",
        prefix(region, account)
    )
}

/// Parses an ELBv2 ARN; `None` when it is not one of the four shapes above.
pub fn parse(arn: &str) -> Option<ElbArn> {
    let rest = arn.strip_prefix("arn:aws:elasticloadbalancing:")?;
    let mut parts = rest.splitn(3, ':');
    let region = parts.next()?.to_string();
    let account = parts.next()?.to_string();
    let resource = parts.next()?;
    let segments: Vec<&str> = resource.split('/').collect();
    if region.is_empty() || account.is_empty() || segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let s = |i: usize| segments[i].to_string();
    let resource = match segments.as_slice() {
        ["loadbalancer", "app", _, _] => Resource::LoadBalancer {
            name: s(2),
            id: s(3),
        },
        ["targetgroup", _, _] => Resource::TargetGroup {
            name: s(1),
            id: s(2),
        },
        ["listener", "app", _, _, _] => Resource::Listener {
            lb_name: s(2),
            lb_id: s(3),
            id: s(4),
        },
        ["listener-rule", "app", _, _, _, _] => Resource::Rule {
            lb_name: s(2),
            lb_id: s(3),
            listener_id: s(4),
            id: s(5),
        },
        _ => return None,
    };
    Some(ElbArn {
        region,
        account,
        resource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        let lb = load_balancer("us-east-1", "000000000000", "web", "50dc6c495c0c9188");
        assert_eq!(
            lb,
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/50dc6c495c0c9188"
        );
        let parsed = parse(&lb).unwrap();
        assert_eq!(parsed.region, "us-east-1");
        assert_eq!(
            parsed.resource,
            Resource::LoadBalancer {
                name: "web".into(),
                id: "50dc6c495c0c9188".into()
            }
        );
        assert!(matches!(
            parse(&target_group("r", "1", "tg", "ab")).unwrap().resource,
            Resource::TargetGroup { .. }
        ));
        assert!(matches!(
            parse(&listener("r", "1", "web", "ab", "cd"))
                .unwrap()
                .resource,
            Resource::Listener { .. }
        ));
        assert_eq!(
            parse(&rule("r", "1", "web", "ab", "cd", "ef"))
                .unwrap()
                .resource,
            Resource::Rule {
                lb_name: "web".into(),
                lb_id: "ab".into(),
                listener_id: "cd".into(),
                id: "ef".into()
            }
        );
    }

    #[test]
    fn refuses_other_arns() {
        for bad in [
            "",
            "web",
            "arn:aws:ecs:us-east-1:1:cluster/x",
            "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/web/ab",
            "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tg",
            "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tg//",
            "arn:aws:elasticloadbalancing::1:targetgroup/tg/ab",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
