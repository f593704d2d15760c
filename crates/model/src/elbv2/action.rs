//! Rule and listener actions: forward (to one target group or weighted across several),
//! redirect and fixed-response.

use super::config_error;
use crate::ValidationError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionType {
    Forward,
    Redirect,
    FixedResponse,
}

impl ActionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Forward => "forward",
            ActionType::Redirect => "redirect",
            ActionType::FixedResponse => "fixed-response",
        }
    }
    pub fn parse(field: &str, value: &str) -> Result<ActionType, ValidationError> {
        match value {
            "forward" => Ok(ActionType::Forward),
            "redirect" => Ok(ActionType::Redirect),
            "fixed-response" => Ok(ActionType::FixedResponse),
            "authenticate-oidc" | "authenticate-cognito" | "jwt-validation" => {
                Err(ValidationError::invalid(
                    field,
                    format!("action type '{value}' is not supported by Berth"),
                ))
            }
            _ => Err(ValidationError::invalid(
                field,
                format!(
                    "'{value}' is not a valid action type (forward, redirect or fixed-response)"
                ),
            )),
        }
    }
}

/// A target group a forward action sends a share of requests to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedTargetGroup {
    pub target_group_arn: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Forward {
    pub target_groups: Vec<WeightedTargetGroup>,
    pub stickiness_enabled: bool,
    pub stickiness_duration_seconds: Option<u32>,
}

/// A redirect; components left out keep the request's (`#{host}`, `#{path}`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redirect {
    pub protocol: String,
    pub port: String,
    pub host: String,
    pub path: String,
    pub query: String,
    /// `HTTP_301` or `HTTP_302`.
    pub status_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixedResponse {
    pub status_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

/// One action; exactly the member matching `kind` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub kind: ActionType,
    pub order: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<Forward>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_response: Option<FixedResponse>,
}

const CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

impl Action {
    /// The target groups the action forwards to.
    pub fn target_group_arns(&self) -> impl Iterator<Item = &str> {
        self.forward
            .iter()
            .flat_map(|f| f.target_groups.iter().map(|t| t.target_group_arn.as_str()))
    }

    fn validate(&self, field: &str) -> Result<(), ValidationError> {
        if let Some(order) = self.order
            && !(1..=50000).contains(&order)
        {
            return Err(ValidationError::invalid(
                format!("{field}.Order"),
                format!("{order} is not between 1 and 50000"),
            ));
        }
        match self.kind {
            ActionType::Forward => {
                let forward = self.forward.as_ref().ok_or_else(|| {
                    ValidationError::invalid(
                        format!("{field}.TargetGroupArn"),
                        "a forward action needs a TargetGroupArn or a ForwardConfig with target groups",
                    )
                })?;
                if forward.target_groups.is_empty() || forward.target_groups.len() > 5 {
                    return Err(ValidationError::invalid(
                        format!("{field}.ForwardConfig.TargetGroups"),
                        "a forward action needs 1 to 5 target groups",
                    ));
                }
                for (i, tg) in forward.target_groups.iter().enumerate() {
                    if tg.weight > 999 {
                        return Err(ValidationError::invalid(
                            format!("{field}.ForwardConfig.TargetGroups.member.{}.Weight", i + 1),
                            format!("weight {} is not between 0 and 999", tg.weight),
                        ));
                    }
                    if forward.target_groups[..i]
                        .iter()
                        .any(|t| t.target_group_arn == tg.target_group_arn)
                    {
                        return Err(config_error(
                            &format!("{field}.ForwardConfig.TargetGroups"),
                            format!("target group '{}' is listed twice", tg.target_group_arn),
                        ));
                    }
                }
                if let Some(d) = forward.stickiness_duration_seconds
                    && !(1..=604800).contains(&d)
                {
                    return Err(ValidationError::invalid(
                        format!(
                            "{field}.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds"
                        ),
                        format!("{d} is not between 1 and 604800"),
                    ));
                }
            }
            ActionType::Redirect => {
                let r = self.redirect.as_ref().ok_or_else(|| {
                    ValidationError::invalid(
                        format!("{field}.RedirectConfig"),
                        "a redirect action needs a RedirectConfig",
                    )
                })?;
                let f = |m: &str| format!("{field}.RedirectConfig.{m}");
                if r.status_code != "HTTP_301" && r.status_code != "HTTP_302" {
                    return Err(ValidationError::invalid(
                        f("StatusCode"),
                        format!("'{}' is not HTTP_301 or HTTP_302", r.status_code),
                    ));
                }
                if !matches!(r.protocol.as_str(), "HTTP" | "HTTPS" | "#{protocol}") {
                    return Err(ValidationError::invalid(
                        f("Protocol"),
                        format!("'{}' is not HTTP, HTTPS or #{{protocol}}", r.protocol),
                    ));
                }
                if r.port != "#{port}"
                    && !r
                        .port
                        .parse::<u32>()
                        .is_ok_and(|p| (1..=65535).contains(&p))
                {
                    return Err(ValidationError::invalid(
                        f("Port"),
                        format!("'{}' is not a port (1-65535) or #{{port}}", r.port),
                    ));
                }
                if r.host.is_empty() || r.host.len() > 128 {
                    return Err(ValidationError::invalid(
                        f("Host"),
                        "must be 1 to 128 characters",
                    ));
                }
                if !r.path.starts_with('/') || r.path.len() > 128 {
                    return Err(ValidationError::invalid(
                        f("Path"),
                        "must start with '/' and be at most 128 characters",
                    ));
                }
                if r.query.len() > 128 {
                    return Err(ValidationError::invalid(
                        f("Query"),
                        "must be at most 128 characters",
                    ));
                }
                if r.protocol == "#{protocol}"
                    && r.port == "#{port}"
                    && r.host == "#{host}"
                    && r.path == "/#{path}"
                    && r.query == "#{query}"
                {
                    return Err(config_error(
                        &f("StatusCode"),
                        "the redirect would redirect to itself: change at least one of protocol, port, host, path or query",
                    ));
                }
            }
            ActionType::FixedResponse => {
                let r = self.fixed_response.as_ref().ok_or_else(|| {
                    ValidationError::invalid(
                        format!("{field}.FixedResponseConfig"),
                        "a fixed-response action needs a FixedResponseConfig",
                    )
                })?;
                let f = |m: &str| format!("{field}.FixedResponseConfig.{m}");
                let code_ok = r.status_code.len() == 3
                    && r.status_code.bytes().all(|b| b.is_ascii_digit())
                    && matches!(r.status_code.as_bytes()[0], b'2' | b'4' | b'5');
                if !code_ok {
                    return Err(ValidationError::invalid(
                        f("StatusCode"),
                        format!("'{}' is not a 2XX, 4XX or 5XX code", r.status_code),
                    ));
                }
                if let Some(t) = &r.content_type
                    && !CONTENT_TYPES.contains(&t.as_str())
                {
                    return Err(ValidationError::invalid(
                        f("ContentType"),
                        format!("'{t}' is not one of {}", CONTENT_TYPES.join(", ")),
                    ));
                }
                if r.message_body.as_ref().is_some_and(|b| b.len() > 1024) {
                    return Err(ValidationError::invalid(
                        f("MessageBody"),
                        "must be at most 1024 characters",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Checks a list of actions (`field` names it, e.g. `DefaultActions`): each is valid, there is
/// exactly one, orders are unique, and the list is returned in order.
pub fn validate_actions(
    field: &str,
    mut actions: Vec<Action>,
) -> Result<Vec<Action>, ValidationError> {
    if actions.is_empty() {
        return Err(ValidationError::invalid(
            field,
            "at least one action is required",
        ));
    }
    for (i, action) in actions.iter().enumerate() {
        action.validate(&format!("{field}.member.{}", i + 1))?;
    }
    if actions.len() > 1 {
        return Err(config_error(
            field,
            "only one forward, redirect or fixed-response action is allowed (authentication actions are not supported by Berth)",
        ));
    }
    actions.sort_by_key(|a| a.order);
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn forward(arns: &[(&str, u32)]) -> Action {
        Action {
            kind: ActionType::Forward,
            order: None,
            forward: Some(Forward {
                target_groups: arns
                    .iter()
                    .map(|(a, w)| WeightedTargetGroup {
                        target_group_arn: a.to_string(),
                        weight: *w,
                    })
                    .collect(),
                stickiness_enabled: false,
                stickiness_duration_seconds: None,
            }),
            redirect: None,
            fixed_response: None,
        }
    }

    fn redirect(r: impl FnOnce(&mut Redirect)) -> Action {
        let mut red = Redirect {
            protocol: "HTTPS".into(),
            port: "443".into(),
            host: "#{host}".into(),
            path: "/#{path}".into(),
            query: "#{query}".into(),
            status_code: "HTTP_301".into(),
        };
        r(&mut red);
        Action {
            kind: ActionType::Redirect,
            order: None,
            forward: None,
            redirect: Some(red),
            fixed_response: None,
        }
    }

    #[test]
    fn forward_actions() {
        let ok = validate_actions("Actions", vec![forward(&[("a", 1), ("b", 3)])]).unwrap();
        assert_eq!(ok[0].target_group_arns().collect::<Vec<_>>(), ["a", "b"]);
        let e = validate_actions("Actions", vec![forward(&[])]).unwrap_err();
        assert_eq!(e.field, "Actions.member.1.ForwardConfig.TargetGroups");
        let e = validate_actions("Actions", vec![forward(&[("a", 1000)])]).unwrap_err();
        assert_eq!(
            e.field,
            "Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight"
        );
        let e = validate_actions("Actions", vec![forward(&[("a", 1), ("a", 1)])]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Client);
        let e = validate_actions("Actions", vec![forward(&[("a", 1)]), forward(&[("b", 1)])])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Client);
        assert!(validate_actions("Actions", vec![]).is_err());
    }

    #[test]
    fn redirect_and_fixed_response_actions() {
        validate_actions("A", vec![redirect(|_| {})]).unwrap();
        for (change, member) in [
            (
                (|r: &mut Redirect| r.status_code = "HTTP_307".into()) as fn(&mut Redirect),
                "StatusCode",
            ),
            (|r| r.protocol = "FTP".into(), "Protocol"),
            (|r| r.port = "0".into(), "Port"),
            (|r| r.path = "x".into(), "Path"),
        ] {
            let e = validate_actions("A", vec![redirect(change)]).unwrap_err();
            assert_eq!(e.field, format!("A.member.1.RedirectConfig.{member}"));
        }
        let e = validate_actions(
            "A",
            vec![redirect(|r| {
                r.protocol = "#{protocol}".into();
                r.port = "#{port}".into();
            })],
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Client);
        let fixed = |code: &str, ct: Option<&str>| Action {
            kind: ActionType::FixedResponse,
            order: Some(1),
            forward: None,
            redirect: None,
            fixed_response: Some(FixedResponse {
                status_code: code.into(),
                content_type: ct.map(str::to_string),
                message_body: Some("nope".into()),
            }),
        };
        validate_actions("A", vec![fixed("404", Some("text/plain"))]).unwrap();
        for (code, ct, member) in [
            ("302", None, "StatusCode"),
            ("4x4", None, "StatusCode"),
            ("200", Some("image/png"), "ContentType"),
        ] {
            let e = validate_actions("A", vec![fixed(code, ct)]).unwrap_err();
            assert_eq!(e.field, format!("A.member.1.FixedResponseConfig.{member}"));
        }
    }
}
