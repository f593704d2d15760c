//! Actions (shared by listeners and rules), CreateListener and ModifyListener parameters, and
//! the `Listener` document.

use super::{invalid, parse_tags};
use crate::ApiError;
use crate::query::{Params, validation};
use crate::xml::Xml;
use berth_model::elbv2::action::validate_actions;
use berth_model::elbv2::{
    Action, ActionType, FixedResponse, Forward, Listener, Protocol, Redirect, Tag,
    WeightedTargetGroup,
};

/// The SSL policy HTTPS listeners get when none is named.
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";

fn action(p: &Params<'_>) -> Result<Action, ApiError> {
    let kind = ActionType::parse(&p.path("Type"), p.required("Type")?).map_err(invalid)?;
    let mut action = Action {
        kind,
        order: p.int("Order", 1, 50000)?,
        forward: None,
        redirect: None,
        fixed_response: None,
    };
    match kind {
        ActionType::Forward => {
            let single = p.str("TargetGroupArn").map(str::to_string);
            let config = p.child("ForwardConfig");
            let mut target_groups = Vec::new();
            let (mut stickiness_enabled, mut stickiness_duration_seconds) = (false, None);
            if let Some(c) = &config {
                for tg in c.list("TargetGroups")?.unwrap_or_default() {
                    target_groups.push(WeightedTargetGroup {
                        target_group_arn: tg.required("TargetGroupArn")?.to_string(),
                        weight: tg.int("Weight", 0, 999)?.unwrap_or(1),
                    });
                }
                if let Some(s) = c.child("TargetGroupStickinessConfig") {
                    stickiness_enabled = s.bool("Enabled")?.unwrap_or(false);
                    stickiness_duration_seconds = s.int("DurationSeconds", 1, 604800)?;
                }
            }
            match (single, target_groups.is_empty()) {
                (Some(arn), true) => target_groups.push(WeightedTargetGroup {
                    target_group_arn: arn,
                    weight: 1,
                }),
                (Some(arn), false) => {
                    if target_groups.len() != 1 || target_groups[0].target_group_arn != arn {
                        return Err(validation(format!(
                            "{}: when both TargetGroupArn and ForwardConfig are given, ForwardConfig must list only that target group",
                            p.path("TargetGroupArn")
                        )));
                    }
                }
                (None, _) => {}
            }
            if !target_groups.is_empty() || config.is_some() {
                action.forward = Some(Forward {
                    target_groups,
                    stickiness_enabled,
                    stickiness_duration_seconds,
                });
            }
        }
        ActionType::Redirect => {
            if let Some(r) = p.child("RedirectConfig") {
                let get = |name: &str, default: &str| r.str(name).unwrap_or(default).to_string();
                action.redirect = Some(Redirect {
                    protocol: get("Protocol", "#{protocol}"),
                    port: get("Port", "#{port}"),
                    host: get("Host", "#{host}"),
                    path: get("Path", "/#{path}"),
                    query: get("Query", "#{query}"),
                    status_code: r.required("StatusCode")?.to_string(),
                });
            }
        }
        ActionType::FixedResponse => {
            if let Some(r) = p.child("FixedResponseConfig") {
                action.fixed_response = Some(FixedResponse {
                    status_code: r.required("StatusCode")?.to_string(),
                    content_type: r.str("ContentType").map(str::to_string),
                    message_body: r.str("MessageBody").map(str::to_string),
                });
            }
        }
    }
    Ok(action)
}

/// The action list `name` (`DefaultActions`, `Actions`), validated; `None` when absent.
pub fn parse_actions(p: &Params<'_>, name: &str) -> Result<Option<Vec<Action>>, ApiError> {
    let Some(items) = p.list(name)? else {
        return Ok(None);
    };
    let actions = items.iter().map(action).collect::<Result<Vec<_>, _>>()?;
    validate_actions(&p.path(name), actions)
        .map(Some)
        .map_err(invalid)
}

pub fn write_actions(x: &mut Xml, name: &str, actions: &[Action]) {
    x.members(name, actions, |x, a| {
        x.text("Type", a.kind.as_str());
        if let Some([only]) = a.forward.as_ref().map(|f| f.target_groups.as_slice()) {
            x.text("TargetGroupArn", &only.target_group_arn);
        }
        x.opt("Order", a.order);
        if let Some(r) = &a.redirect {
            x.node("RedirectConfig", |x| {
                x.text("Protocol", &r.protocol)
                    .text("Port", &r.port)
                    .text("Host", &r.host)
                    .text("Path", &r.path)
                    .text("Query", &r.query)
                    .text("StatusCode", &r.status_code);
            });
        }
        if let Some(r) = &a.fixed_response {
            x.node("FixedResponseConfig", |x| {
                x.opt("MessageBody", r.message_body.as_deref())
                    .text("StatusCode", &r.status_code)
                    .opt("ContentType", r.content_type.as_deref());
            });
        }
        if let Some(f) = &a.forward {
            x.node("ForwardConfig", |x| {
                x.members("TargetGroups", &f.target_groups, |x, tg| {
                    x.text("TargetGroupArn", &tg.target_group_arn)
                        .text("Weight", tg.weight);
                })
                .node("TargetGroupStickinessConfig", |x| {
                    x.text("Enabled", f.stickiness_enabled)
                        .opt("DurationSeconds", f.stickiness_duration_seconds);
                });
            });
        }
    });
}

pub struct CreateListener {
    pub load_balancer_arn: String,
    pub protocol: Protocol,
    pub port: u16,
    pub certificates: Vec<String>,
    pub ssl_policy: Option<String>,
    pub default_actions: Vec<Action>,
    pub tags: Vec<Tag>,
}

fn certificates(p: &Params<'_>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(items) = p.list("Certificates")? else {
        return Ok(None);
    };
    items
        .iter()
        .map(|c| Ok(c.required("CertificateArn")?.to_string()))
        .collect::<Result<Vec<_>, ApiError>>()
        .map(Some)
}

/// `Certificates` of CreateListener and ModifyListener name the default certificate only.
fn one_default(certificates: &[String]) -> Result<(), ApiError> {
    if certificates.len() > 1 {
        return Err(validation(
            "Certificates: give exactly one certificate, the listener's default; add others \
             with AddListenerCertificates",
        ));
    }
    Ok(())
}

/// AddListenerCertificates and RemoveListenerCertificates: a listener and certificate ARNs.
pub struct ListenerCertificates {
    pub listener_arn: String,
    pub certificates: Vec<String>,
}

pub fn listener_certificates(p: &Params<'_>) -> Result<ListenerCertificates, ApiError> {
    let listener_arn = p.required("ListenerArn")?.to_string();
    let certificates = certificates(p)?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| validation("Certificates: give at least one certificate"))?;
    Ok(ListenerCertificates {
        listener_arn,
        certificates,
    })
}

/// The result of DescribeListenerCertificates and AddListenerCertificates: each certificate
/// with whether it is the listener's default.
pub fn certificates_xml(items: &[(String, bool)], next: Option<String>) -> String {
    let mut x = Xml::new();
    x.members("Certificates", items, |x, (arn, default)| {
        x.text("CertificateArn", arn).text("IsDefault", default);
    })
    .opt("NextMarker", next);
    x.finish()
}

/// Checks that HTTPS listeners have a certificate and HTTP ones have none.
pub fn check_tls(
    protocol: Protocol,
    certificates: &[String],
    ssl_policy: &mut Option<String>,
) -> Result<(), ApiError> {
    match protocol {
        Protocol::Https if certificates.is_empty() => Err(validation(
            "Certificates: a certificate must be specified for HTTPS listeners",
        )),
        Protocol::Https => {
            ssl_policy.get_or_insert_with(|| DEFAULT_SSL_POLICY.to_string());
            Ok(())
        }
        Protocol::Http => {
            if !certificates.is_empty() || ssl_policy.is_some() {
                return Err(validation(
                    "Certificates: certificates and SslPolicy apply to HTTPS listeners only",
                ));
            }
            Ok(())
        }
    }
}

pub fn create(p: &Params<'_>) -> Result<CreateListener, ApiError> {
    let load_balancer_arn = p.required("LoadBalancerArn")?.to_string();
    let protocol = match p.str("Protocol") {
        None => Protocol::Http,
        Some(v) => Protocol::parse("Protocol", v).map_err(invalid)?,
    };
    let port = p
        .int::<u16>("Port", 1, 65535)?
        .ok_or_else(|| validation("Port is required for application load balancer listeners"))?;
    let certificates = certificates(p)?.unwrap_or_default();
    one_default(&certificates)?;
    let mut ssl_policy = p.str("SslPolicy").map(str::to_string);
    check_tls(protocol, &certificates, &mut ssl_policy)?;
    let default_actions = parse_actions(p, "DefaultActions")?
        .ok_or_else(|| validation("DefaultActions is required"))?;
    Ok(CreateListener {
        load_balancer_arn,
        protocol,
        port,
        certificates,
        ssl_policy,
        default_actions,
        tags: parse_tags(p, "Tags")?,
    })
}

pub struct ModifyListener {
    pub listener_arn: String,
    pub protocol: Option<Protocol>,
    pub port: Option<u16>,
    pub certificates: Option<Vec<String>>,
    pub ssl_policy: Option<String>,
    pub default_actions: Option<Vec<Action>>,
}

pub fn modify(p: &Params<'_>) -> Result<ModifyListener, ApiError> {
    let certificates = certificates(p)?;
    if let Some(certificates) = &certificates {
        one_default(certificates)?;
    }
    Ok(ModifyListener {
        listener_arn: p.required("ListenerArn")?.to_string(),
        protocol: p
            .str("Protocol")
            .map(|v| Protocol::parse("Protocol", v).map_err(invalid))
            .transpose()?,
        port: p.int("Port", 1, 65535)?,
        certificates,
        ssl_policy: p.str("SslPolicy").map(str::to_string),
        default_actions: parse_actions(p, "DefaultActions")?,
    })
}

/// One `<member>` of `Listeners`.
pub fn write(x: &mut Xml, l: &Listener) {
    x.text("ListenerArn", &l.arn)
        .text("LoadBalancerArn", &l.load_balancer_arn)
        .text("Port", l.port)
        .text("Protocol", l.protocol.as_str());
    // Only the default: the rest are listed by DescribeListenerCertificates.
    if let Some(default) = l.certificates.first() {
        x.members("Certificates", std::slice::from_ref(default), |x, c| {
            x.text("CertificateArn", c);
        });
    }
    x.opt("SslPolicy", l.ssl_policy.as_deref());
    write_actions(x, "DefaultActions", &l.default_actions);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Form;

    fn parse(body: &str) -> Result<Option<Vec<Action>>, ApiError> {
        let f = Form::parse(body.as_bytes()).unwrap();
        parse_actions(&f.root(), "Actions")
    }

    #[test]
    fn forward_by_arn_or_weighted_config() {
        let a = parse("Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn=tg1")
            .unwrap()
            .unwrap();
        assert_eq!(a[0].target_group_arns().collect::<Vec<_>>(), ["tg1"]);
        let a = parse(
            "Actions.member.1.Type=forward\
             &Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=tg1\
             &Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight=80\
             &Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn=tg2\
             &Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight=20\
             &Actions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled=true\
             &Actions.member.1.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds=60",
        )
        .unwrap()
        .unwrap();
        let f = a[0].forward.as_ref().unwrap();
        assert_eq!(f.target_groups[1].weight, 20);
        assert!(f.stickiness_enabled);
        let mut x = Xml::new();
        write_actions(&mut x, "Actions", &a);
        let xml = x.finish();
        assert!(xml.contains("<Weight>80</Weight>"), "{xml}");
        assert!(
            !xml.contains("<Type>forward</Type><TargetGroupArn>"),
            "{xml}"
        );
        assert_eq!(parse("Other=1").unwrap(), None);
        let e = parse("Actions.member.1.Type=forward").unwrap_err();
        assert!(
            e.message.contains("Actions.member.1.TargetGroupArn"),
            "{}",
            e.message
        );
        let e = parse(
            "Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn=tg1\
             &Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=tg2",
        )
        .unwrap_err();
        assert!(e.message.contains("TargetGroupArn"), "{}", e.message);
    }

    #[test]
    fn redirect_and_fixed_response() {
        let a = parse(
            "Actions.member.1.Type=redirect&Actions.member.1.RedirectConfig.Protocol=HTTPS\
             &Actions.member.1.RedirectConfig.Port=443&Actions.member.1.RedirectConfig.StatusCode=HTTP_301",
        )
        .unwrap()
        .unwrap();
        let r = a[0].redirect.as_ref().unwrap();
        assert_eq!((r.host.as_str(), r.path.as_str()), ("#{host}", "/#{path}"));
        let a = parse(
            "Actions.member.1.Type=fixed-response&Actions.member.1.FixedResponseConfig.StatusCode=503\
             &Actions.member.1.FixedResponseConfig.ContentType=text%2Fplain",
        )
        .unwrap()
        .unwrap();
        assert_eq!(a[0].fixed_response.as_ref().unwrap().status_code, "503");
        let e = parse("Actions.member.1.Type=fixed-response").unwrap_err();
        assert!(e.message.contains("FixedResponseConfig"), "{}", e.message);
        let e = parse("Actions.member.1.Type=authenticate-oidc").unwrap_err();
        assert_eq!(e.code, "ValidationError");
    }

    #[test]
    fn https_listeners_need_a_certificate() {
        let f = Form::parse(
            b"LoadBalancerArn=lb&Protocol=HTTPS&Port=443&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn=tg",
        )
        .unwrap();
        assert!(
            create(&f.root())
                .err()
                .unwrap()
                .message
                .contains("Certificates")
        );
        let f = Form::parse(
            b"LoadBalancerArn=lb&Protocol=HTTPS&Port=443&Certificates.member.1.CertificateArn=c\
              &DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn=tg",
        )
        .unwrap();
        let c = create(&f.root()).unwrap();
        assert_eq!(c.ssl_policy.as_deref(), Some(DEFAULT_SSL_POLICY));
        let f = Form::parse(b"LoadBalancerArn=lb&Port=80").unwrap();
        assert!(
            create(&f.root())
                .err()
                .unwrap()
                .message
                .contains("DefaultActions")
        );
    }
}
