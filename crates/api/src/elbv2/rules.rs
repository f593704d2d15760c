//! Conditions, CreateRule / ModifyRule / SetRulePriorities parameters and the `Rule` document.

use super::listeners::{parse_actions, write_actions};
use super::{invalid, parse_tags};
use crate::ApiError;
use crate::query::{Params, validation};
use crate::xml::Xml;
use berth_model::elbv2::condition::{KeyValue, validate_conditions};
use berth_model::elbv2::{Action, Condition, Tag, validate_priority};

fn condition(p: &Params<'_>) -> Result<Condition, ApiError> {
    let field = p.required("Field")?;
    if p.has("RegexValues") {
        return Err(validation(format!(
            "{}: regex conditions are not supported by Berth",
            p.path("RegexValues")
        )));
    }
    let legacy = p.strings("Values")?;
    let config_values = |config: &str| -> Result<Option<Vec<String>>, ApiError> {
        let Some(c) = p.child(config) else {
            return Ok(None);
        };
        if c.has("RegexValues") {
            return Err(validation(format!(
                "{}: regex conditions are not supported by Berth",
                c.path("RegexValues")
            )));
        }
        Ok(Some(c.strings("Values")?.unwrap_or_default()))
    };
    let legacy_or = |config: &str| -> Result<Vec<String>, ApiError> {
        match (legacy.clone(), config_values(config)?) {
            (Some(_), Some(_)) => Err(validation(format!(
                "{}: give Values or {config}, not both",
                p.path("Values")
            ))),
            (Some(v), None) | (None, Some(v)) => Ok(v),
            (None, None) => Err(validation(format!(
                "{} is required for a {field} condition",
                p.path(config)
            ))),
        }
    };
    let config_only = |config: &str| -> Result<Vec<String>, ApiError> {
        if legacy.is_some() {
            return Err(validation(format!(
                "{}: a {field} condition takes its values in {config}",
                p.path("Values")
            )));
        }
        config_values(config)?.ok_or_else(|| {
            validation(format!(
                "{} is required for a {field} condition",
                p.path(config)
            ))
        })
    };
    Ok(match field {
        "path-pattern" => Condition::PathPattern {
            values: legacy_or("PathPatternConfig")?,
        },
        "host-header" => Condition::HostHeader {
            values: legacy_or("HostHeaderConfig")?,
        },
        "http-header" => {
            let values = config_only("HttpHeaderConfig")?;
            let name = p
                .child("HttpHeaderConfig")
                .and_then(|c| c.str("HttpHeaderName").map(str::to_string))
                .unwrap_or_default();
            Condition::HttpHeader { name, values }
        }
        "http-request-method" => Condition::HttpRequestMethod {
            values: config_only("HttpRequestMethodConfig")?,
        },
        "source-ip" => Condition::SourceIp {
            values: config_only("SourceIpConfig")?,
        },
        "query-string" => {
            if legacy.is_some() {
                return Err(validation(format!(
                    "{}: a query-string condition takes its values in QueryStringConfig",
                    p.path("Values")
                )));
            }
            let c = p.child("QueryStringConfig").ok_or_else(|| {
                validation(format!(
                    "{} is required for a query-string condition",
                    p.path("QueryStringConfig")
                ))
            })?;
            let values = c
                .list("Values")?
                .unwrap_or_default()
                .iter()
                .map(|kv| {
                    Ok(KeyValue {
                        key: kv.str("Key").map(str::to_string),
                        value: kv.required("Value")?.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Condition::QueryString { values }
        }
        other => {
            return Err(validation(format!(
                "{}: '{other}' is not a condition field (path-pattern, host-header, http-header, http-request-method, query-string, source-ip)",
                p.path("Field")
            )));
        }
    })
}

/// The condition list `Conditions`, validated; `None` when absent.
pub fn parse_conditions(p: &Params<'_>) -> Result<Option<Vec<Condition>>, ApiError> {
    let Some(items) = p.list("Conditions")? else {
        return Ok(None);
    };
    let conditions = items.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
    validate_conditions("Conditions", &conditions).map_err(invalid)?;
    Ok(Some(conditions))
}

fn write_condition(x: &mut Xml, c: &Condition) {
    x.text("Field", c.field());
    match c {
        Condition::PathPattern { values } => {
            x.strings("Values", values).node("PathPatternConfig", |x| {
                x.strings("Values", values);
            });
        }
        Condition::HostHeader { values } => {
            x.strings("Values", values).node("HostHeaderConfig", |x| {
                x.strings("Values", values);
            });
        }
        Condition::HttpHeader { name, values } => {
            x.node("HttpHeaderConfig", |x| {
                x.text("HttpHeaderName", name).strings("Values", values);
            });
        }
        Condition::HttpRequestMethod { values } => {
            x.node("HttpRequestMethodConfig", |x| {
                x.strings("Values", values);
            });
        }
        Condition::QueryString { values } => {
            x.node("QueryStringConfig", |x| {
                x.members("Values", values, |x, kv| {
                    x.opt("Key", kv.key.as_deref()).text("Value", &kv.value);
                });
            });
        }
        Condition::SourceIp { values } => {
            x.node("SourceIpConfig", |x| {
                x.strings("Values", values);
            });
        }
    }
}

/// A rule as DescribeRules shows it; the default rule has no priority.
pub struct RuleView<'a> {
    pub arn: &'a str,
    pub priority: Option<u32>,
    pub conditions: &'a [Condition],
    pub actions: &'a [Action],
}

/// One `<member>` of `Rules`.
pub fn write(x: &mut Xml, r: &RuleView<'_>) {
    x.text("RuleArn", r.arn);
    match r.priority {
        Some(p) => x.text("Priority", p),
        None => x.text("Priority", "default"),
    };
    x.members("Conditions", r.conditions, write_condition);
    write_actions(x, "Actions", r.actions);
    x.text("IsDefault", r.priority.is_none());
}

pub struct CreateRule {
    pub listener_arn: String,
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub tags: Vec<Tag>,
}

pub fn create(p: &Params<'_>) -> Result<CreateRule, ApiError> {
    let listener_arn = p.required("ListenerArn")?.to_string();
    let priority = p.required("Priority")?;
    let priority = priority
        .parse::<i64>()
        .map_err(|_| validation(format!("Priority: '{priority}' is not an integer")))
        .and_then(|n| validate_priority("Priority", n).map_err(invalid))?;
    let conditions = parse_conditions(p)?.ok_or_else(|| validation("Conditions is required"))?;
    if conditions.is_empty() {
        return Err(validation(
            "Conditions: a rule needs at least one condition",
        ));
    }
    let actions = parse_actions(p, "Actions")?.ok_or_else(|| validation("Actions is required"))?;
    Ok(CreateRule {
        listener_arn,
        priority,
        conditions,
        actions,
        tags: parse_tags(p, "Tags")?,
    })
}

pub struct ModifyRule {
    pub rule_arn: String,
    pub conditions: Option<Vec<Condition>>,
    pub actions: Option<Vec<Action>>,
}

pub fn modify(p: &Params<'_>) -> Result<ModifyRule, ApiError> {
    let conditions = parse_conditions(p)?;
    if conditions.as_ref().is_some_and(Vec::is_empty) {
        return Err(validation(
            "Conditions: a rule needs at least one condition",
        ));
    }
    Ok(ModifyRule {
        rule_arn: p.required("RuleArn")?.to_string(),
        conditions,
        actions: parse_actions(p, "Actions")?,
    })
}

/// `RulePriorities.member.N.RuleArn/Priority`.
pub fn priorities(p: &Params<'_>) -> Result<Vec<(String, u32)>, ApiError> {
    let items = p
        .list("RulePriorities")?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| validation("RulePriorities must list at least one rule"))?;
    items
        .iter()
        .map(|i| {
            let arn = i.required("RuleArn")?.to_string();
            let priority = i
                .int::<i64>("Priority", i64::MIN, i64::MAX)?
                .ok_or_else(|| validation(format!("{} is required", i.path("Priority"))))?;
            Ok((
                arn,
                validate_priority(&i.path("Priority"), priority).map_err(invalid)?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Form;

    fn conditions(body: &str) -> Result<Option<Vec<Condition>>, ApiError> {
        let f = Form::parse(body.as_bytes()).unwrap();
        parse_conditions(&f.root())
    }

    #[test]
    fn legacy_values_and_config_forms() {
        let c = conditions("Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=%2Frandom%2F*")
            .unwrap()
            .unwrap();
        assert_eq!(
            c,
            [Condition::PathPattern {
                values: vec!["/random/*".into()]
            }]
        );
        let c = conditions(
            "Conditions.member.1.Field=host-header&Conditions.member.1.HostHeaderConfig.Values.member.1=a.example.com\
             &Conditions.member.2.Field=http-header&Conditions.member.2.HttpHeaderConfig.HttpHeaderName=X-Stage\
             &Conditions.member.2.HttpHeaderConfig.Values.member.1=01\
             &Conditions.member.3.Field=query-string&Conditions.member.3.QueryStringConfig.Values.member.1.Key=v\
             &Conditions.member.3.QueryStringConfig.Values.member.1.Value=2\
             &Conditions.member.4.Field=http-request-method&Conditions.member.4.HttpRequestMethodConfig.Values.member.1=GET\
             &Conditions.member.5.Field=source-ip&Conditions.member.5.SourceIpConfig.Values.member.1=10.0.0.0%2F8",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.len(), 5);
        let mut x = Xml::new();
        write(
            &mut x,
            &RuleView {
                arn: "r",
                priority: None,
                conditions: &c,
                actions: &[],
            },
        );
        let xml = x.finish();
        assert!(xml.contains("<Priority>default</Priority>"), "{xml}");
        assert!(xml.contains("<IsDefault>true</IsDefault>"), "{xml}");
        assert!(
            xml.contains("<HttpHeaderName>X-Stage</HttpHeaderName>"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<QueryStringConfig><Values><member><Key>v</Key><Value>2</Value></member>"
            ),
            "{xml}"
        );
    }

    #[test]
    fn refuses_bad_conditions_by_parameter() {
        for (body, needle) in [
            (
                "Conditions.member.1.Field=cookie",
                "Conditions.member.1.Field",
            ),
            (
                "Conditions.member.1.Field=path-pattern",
                "Conditions.member.1.PathPatternConfig",
            ),
            (
                "Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=%2Fa&Conditions.member.1.PathPatternConfig.Values.member.1=%2Fb",
                "Conditions.member.1.Values",
            ),
            (
                "Conditions.member.1.Field=source-ip&Conditions.member.1.Values.member.1=1.2.3.4%2F32",
                "Conditions.member.1.Values",
            ),
            (
                "Conditions.member.1.Field=source-ip&Conditions.member.1.SourceIpConfig.Values.member.1=nope",
                "SourceIpConfig.Values.member.1",
            ),
        ] {
            let e = conditions(body).unwrap_err();
            assert!(e.message.contains(needle), "{needle}: {}", e.message);
        }
    }

    #[test]
    fn create_rule_and_priorities() {
        let f = Form::parse(
            b"ListenerArn=l&Priority=10&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=%2Fa\
              &Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn=tg",
        )
        .unwrap();
        assert_eq!(create(&f.root()).unwrap().priority, 10);
        let f = Form::parse(b"ListenerArn=l&Priority=0&Conditions.member.1.Field=path-pattern")
            .unwrap();
        assert!(
            create(&f.root())
                .err()
                .unwrap()
                .message
                .contains("Priority")
        );
        let f = Form::parse(
            b"RulePriorities.member.1.RuleArn=r&RulePriorities.member.1.Priority=50001",
        )
        .unwrap();
        assert!(
            priorities(&f.root())
                .unwrap_err()
                .message
                .contains("RulePriorities.member.1.Priority")
        );
        let f =
            Form::parse(b"RulePriorities.member.1.RuleArn=r&RulePriorities.member.1.Priority=5")
                .unwrap();
        assert_eq!(priorities(&f.root()).unwrap(), [("r".to_string(), 5)]);
    }
}
