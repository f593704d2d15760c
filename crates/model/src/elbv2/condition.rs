//! Rule conditions: what a request must look like for a rule to apply.

use super::config_error;
use crate::ValidationError;
use serde::{Deserialize, Serialize};

/// A query-string condition value: `key=value`, or any key with `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub value: String,
}

/// One condition; a rule applies when all its conditions match, and a condition matches when
/// any of its values does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "kebab-case")]
pub enum Condition {
    PathPattern { values: Vec<String> },
    HostHeader { values: Vec<String> },
    HttpHeader { name: String, values: Vec<String> },
    HttpRequestMethod { values: Vec<String> },
    QueryString { values: Vec<KeyValue> },
    SourceIp { values: Vec<String> },
}

impl Condition {
    pub fn field(&self) -> &'static str {
        match self {
            Condition::PathPattern { .. } => "path-pattern",
            Condition::HostHeader { .. } => "host-header",
            Condition::HttpHeader { .. } => "http-header",
            Condition::HttpRequestMethod { .. } => "http-request-method",
            Condition::QueryString { .. } => "query-string",
            Condition::SourceIp { .. } => "source-ip",
        }
    }

    /// How many values count against the rule's limit of five.
    fn value_count(&self) -> usize {
        match self {
            Condition::PathPattern { values }
            | Condition::HostHeader { values }
            | Condition::HttpHeader { values, .. }
            | Condition::HttpRequestMethod { values }
            | Condition::SourceIp { values } => values.len(),
            Condition::QueryString { values } => values.len(),
        }
    }

    fn validate(&self, field: &str) -> Result<(), ValidationError> {
        let values_field = |config: &str| format!("{field}.{config}.Values");
        let nonempty = |config: &str, n: usize| {
            if n == 0 {
                Err(ValidationError::invalid(
                    values_field(config),
                    format!("a {} condition needs at least one value", self.field()),
                ))
            } else {
                Ok(())
            }
        };
        let each = |config: &str, values: &[String], ok: &dyn Fn(&str) -> bool, what: &str| {
            for (i, v) in values.iter().enumerate() {
                if !ok(v) {
                    return Err(ValidationError::invalid(
                        format!("{}.member.{}", values_field(config), i + 1),
                        format!("'{v}' is not {what}"),
                    ));
                }
            }
            Ok(())
        };
        let pattern =
            |v: &str| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic());
        match self {
            Condition::PathPattern { values } => {
                nonempty("PathPatternConfig", values.len())?;
                each(
                    "PathPatternConfig",
                    values,
                    &pattern,
                    "a path pattern of 1 to 128 characters",
                )
            }
            Condition::HostHeader { values } => {
                nonempty("HostHeaderConfig", values.len())?;
                each(
                    "HostHeaderConfig",
                    values,
                    &|v| {
                        pattern(v)
                            && v.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-.*?".contains(&b))
                    },
                    "a host name pattern (letters, digits, '-', '.', '*', '?')",
                )
            }
            Condition::HttpHeader { name, values } => {
                let name_ok = !name.is_empty()
                    && name.len() <= 40
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !name_ok {
                    return Err(ValidationError::invalid(
                        format!("{field}.HttpHeaderConfig.HttpHeaderName"),
                        format!(
                            "'{name}' is not a header name of 1 to 40 letters, digits, '-' and '_'"
                        ),
                    ));
                }
                nonempty("HttpHeaderConfig", values.len())?;
                each(
                    "HttpHeaderConfig",
                    values,
                    &pattern,
                    "a header value pattern of 1 to 128 characters",
                )
            }
            Condition::HttpRequestMethod { values } => {
                nonempty("HttpRequestMethodConfig", values.len())?;
                each(
                    "HttpRequestMethodConfig",
                    values,
                    &|v| {
                        !v.is_empty()
                            && v.len() <= 40
                            && v.bytes()
                                .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
                    },
                    "an upper-case HTTP method of 1 to 40 characters",
                )
            }
            Condition::QueryString { values } => {
                nonempty("QueryStringConfig", values.len())?;
                for (i, kv) in values.iter().enumerate() {
                    let member = format!("{}.member.{}", values_field("QueryStringConfig"), i + 1);
                    if kv.value.is_empty() || kv.value.len() > 128 {
                        return Err(ValidationError::invalid(
                            format!("{member}.Value"),
                            "must be 1 to 128 characters",
                        ));
                    }
                    if kv
                        .key
                        .as_ref()
                        .is_some_and(|k| k.is_empty() || k.len() > 128)
                    {
                        return Err(ValidationError::invalid(
                            format!("{member}.Key"),
                            "must be 1 to 128 characters",
                        ));
                    }
                }
                Ok(())
            }
            Condition::SourceIp { values } => {
                nonempty("SourceIpConfig", values.len())?;
                each(
                    "SourceIpConfig",
                    values,
                    &|v| is_cidr(v),
                    "an IPv4 or IPv6 CIDR block",
                )
            }
        }
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`.
pub fn is_cidr(value: &str) -> bool {
    let Some((ip, bits)) = value.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// Checks a rule's conditions (`field` names the list): at most one each of host-header,
/// http-request-method, path-pattern and source-ip, and at most five values in all.
pub fn validate_conditions(field: &str, conditions: &[Condition]) -> Result<(), ValidationError> {
    for (i, c) in conditions.iter().enumerate() {
        c.validate(&format!("{field}.member.{}", i + 1))?;
        let once = !matches!(
            c,
            Condition::HttpHeader { .. } | Condition::QueryString { .. }
        );
        if once && conditions[..i].iter().any(|o| o.field() == c.field()) {
            return Err(config_error(
                field,
                format!("a rule can have only one '{}' condition", c.field()),
            ));
        }
    }
    let values: usize = conditions.iter().map(Condition::value_count).sum();
    if values > 5 {
        return Err(config_error(
            field,
            format!("a rule can have at most 5 condition values in all, {values} were given"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn path(values: &[&str]) -> Condition {
        Condition::PathPattern {
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn accepts_each_kind() {
        validate_conditions(
            "Conditions",
            &[
                path(&["/random/*"]),
                Condition::HostHeader {
                    values: vec!["*.example.com".into()],
                },
                Condition::HttpHeader {
                    name: "X-Stage".into(),
                    values: vec!["01".into()],
                },
                Condition::QueryString {
                    values: vec![KeyValue {
                        key: Some("v".into()),
                        value: "2".into(),
                    }],
                },
                Condition::SourceIp {
                    values: vec!["10.0.0.0/8".into()],
                },
            ],
        )
        .unwrap();
    }

    #[test]
    fn refuses_bad_conditions_by_member() {
        let e = validate_conditions("C", &[path(&[])]).unwrap_err();
        assert_eq!(e.field, "C.member.1.PathPatternConfig.Values");
        let e = validate_conditions(
            "C",
            &[
                path(&["/a"]),
                Condition::SourceIp {
                    values: vec!["10.0.0.1".into()],
                },
            ],
        )
        .unwrap_err();
        assert_eq!(e.field, "C.member.2.SourceIpConfig.Values.member.1");
        let e = validate_conditions(
            "C",
            &[Condition::HttpRequestMethod {
                values: vec!["get".into()],
            }],
        )
        .unwrap_err();
        assert_eq!(
            e.field,
            "C.member.1.HttpRequestMethodConfig.Values.member.1"
        );
        let e = validate_conditions(
            "C",
            &[Condition::HttpHeader {
                name: "a b".into(),
                values: vec!["x".into()],
            }],
        )
        .unwrap_err();
        assert_eq!(e.field, "C.member.1.HttpHeaderConfig.HttpHeaderName");
        let e = validate_conditions("C", &[path(&["/a"]), path(&["/b"])]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Client);
        let e =
            validate_conditions("C", &[path(&["/a", "/b", "/c", "/d", "/e", "/f"])]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Client);
        assert!(is_cidr("2001:db8::/32"));
        assert!(!is_cidr("10.0.0.0/33"));
    }
}
