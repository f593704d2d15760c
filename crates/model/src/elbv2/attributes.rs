//! Load balancer and target group attributes: their keys, defaults and allowed values. Only
//! the attributes set by the caller are stored; every other key reads as its default.

use super::config_error;
use crate::ValidationError;
use std::collections::BTreeMap;

/// What values an attribute takes.
#[derive(Debug, Clone, Copy)]
pub enum Allowed {
    Bool,
    /// An integer in an inclusive range.
    Int(i64, i64),
    OneOf(&'static [&'static str]),
    /// Free text up to this many characters.
    Text(usize),
}

/// One attribute: key, default value and allowed values.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub key: &'static str,
    pub default: &'static str,
    pub allowed: Allowed,
}

const fn spec(key: &'static str, default: &'static str, allowed: Allowed) -> Spec {
    Spec {
        key,
        default,
        allowed,
    }
}

pub const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
pub const SLOW_START: &str = "slow_start.duration_seconds";
pub const ALGORITHM: &str = "load_balancing.algorithm.type";
pub const DELETION_PROTECTION: &str = "deletion_protection.enabled";
pub const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";

/// An application load balancer's attributes, in the order DescribeLoadBalancerAttributes
/// lists them.
pub const LOAD_BALANCER: &[Spec] = &[
    spec("access_logs.s3.enabled", "false", Allowed::Bool),
    spec("access_logs.s3.bucket", "", Allowed::Text(255)),
    spec("access_logs.s3.prefix", "", Allowed::Text(255)),
    spec(
        "client_keep_alive.seconds",
        "3600",
        Allowed::Int(60, 604800),
    ),
    spec("connection_logs.s3.enabled", "false", Allowed::Bool),
    spec("connection_logs.s3.bucket", "", Allowed::Text(255)),
    spec("connection_logs.s3.prefix", "", Allowed::Text(255)),
    spec(DELETION_PROTECTION, "false", Allowed::Bool),
    spec(IDLE_TIMEOUT, "60", Allowed::Int(1, 4000)),
    spec("load_balancing.cross_zone.enabled", "true", Allowed::Bool),
    spec(
        "routing.http.desync_mitigation_mode",
        "defensive",
        Allowed::OneOf(&["monitor", "defensive", "strictest"]),
    ),
    spec(
        "routing.http.drop_invalid_header_fields.enabled",
        "false",
        Allowed::Bool,
    ),
    spec(
        "routing.http.preserve_host_header.enabled",
        "false",
        Allowed::Bool,
    ),
    spec(
        "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
        "false",
        Allowed::Bool,
    ),
    spec(
        "routing.http.xff_client_port.enabled",
        "false",
        Allowed::Bool,
    ),
    spec(
        "routing.http.xff_header_processing.mode",
        "append",
        Allowed::OneOf(&["append", "preserve", "remove"]),
    ),
    spec("routing.http2.enabled", "true", Allowed::Bool),
    spec("waf.fail_open.enabled", "false", Allowed::Bool),
    spec("zonal_shift.config.enabled", "false", Allowed::Bool),
];

/// An HTTP(S) target group's attributes.
pub const TARGET_GROUP: &[Spec] = &[
    spec(DEREGISTRATION_DELAY, "300", Allowed::Int(0, 3600)),
    spec(
        "load_balancing.algorithm.anomaly_mitigation",
        "off",
        Allowed::OneOf(&["on", "off"]),
    ),
    spec(
        ALGORITHM,
        "round_robin",
        Allowed::OneOf(&[
            "round_robin",
            "least_outstanding_requests",
            "weighted_random",
        ]),
    ),
    spec(
        "load_balancing.cross_zone.enabled",
        "use_load_balancer_configuration",
        Allowed::OneOf(&["true", "false", "use_load_balancer_configuration"]),
    ),
    spec(SLOW_START, "0", Allowed::Int(0, 900)),
    spec("stickiness.app_cookie.cookie_name", "", Allowed::Text(255)),
    spec(
        "stickiness.app_cookie.duration_seconds",
        "86400",
        Allowed::Int(1, 604800),
    ),
    spec("stickiness.enabled", "false", Allowed::Bool),
    spec(
        "stickiness.lb_cookie.duration_seconds",
        "86400",
        Allowed::Int(1, 604800),
    ),
    spec(
        "stickiness.type",
        "lb_cookie",
        Allowed::OneOf(&["lb_cookie", "app_cookie"]),
    ),
    spec(
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "1",
        Allowed::Int(1, 1000),
    ),
    spec(
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "off",
        Allowed::Text(3),
    ),
    spec(
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "1",
        Allowed::Int(1, 1000),
    ),
    spec(
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "off",
        Allowed::Text(3),
    ),
];

/// The value of `key`: set or default (empty for an unknown key).
pub fn value<'a>(specs: &[Spec], set: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    match set.get(key) {
        Some(v) => v,
        None => specs
            .iter()
            .find(|s| s.key == key)
            .map_or("", |s| s.default),
    }
}

/// Every attribute with its value, in the specs' order.
pub fn effective(specs: &[Spec], set: &BTreeMap<String, String>) -> Vec<(String, String)> {
    specs
        .iter()
        .map(|s| (s.key.to_string(), value(specs, set, s.key).to_string()))
        .collect()
}

/// Applies `changes` to `set` after checking each key and value; `field` names the list.
pub fn apply(
    specs: &[Spec],
    set: &mut BTreeMap<String, String>,
    changes: &[(String, String)],
    field: &str,
) -> Result<(), ValidationError> {
    for (i, (key, value)) in changes.iter().enumerate() {
        let member = format!("{field}.member.{}", i + 1);
        let spec = specs.iter().find(|s| s.key == key).ok_or_else(|| {
            ValidationError::invalid(
                format!("{member}.Key"),
                format!("attribute key '{key}' is not recognized"),
            )
        })?;
        let ok = match spec.allowed {
            Allowed::Bool => value == "true" || value == "false",
            Allowed::Int(min, max) => value.parse::<i64>().is_ok_and(|n| (min..=max).contains(&n)),
            Allowed::OneOf(values) => values.contains(&value.as_str()),
            Allowed::Text(max) => value.chars().count() <= max,
        };
        let allowed = match spec.allowed {
            Allowed::Bool => "true or false".to_string(),
            Allowed::Int(min, max) => format!("an integer from {min} to {max}"),
            Allowed::OneOf(values) => values.join(", "),
            Allowed::Text(max) => format!("at most {max} characters"),
        };
        if !ok {
            return Err(ValidationError::invalid(
                format!("{member}.Value"),
                format!("'{value}' is not a valid value for '{key}' ({allowed})"),
            ));
        }
        if key == SLOW_START && value != "0" && value.parse::<i64>().is_ok_and(|n| n < 30) {
            return Err(ValidationError::invalid(
                format!("{member}.Value"),
                format!("'{key}' must be 0 (off) or from 30 to 900 seconds"),
            ));
        }
        set.insert(key.clone(), value.clone());
    }
    if value(specs, set, SLOW_START) != "0"
        && value(specs, set, ALGORITHM) == "least_outstanding_requests"
    {
        return Err(config_error(
            field,
            "slow start mode cannot be enabled with the least_outstanding_requests algorithm",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn change(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn defaults_and_changes() {
        let mut set = BTreeMap::new();
        assert_eq!(value(TARGET_GROUP, &set, DEREGISTRATION_DELAY), "300");
        assert_eq!(value(LOAD_BALANCER, &set, IDLE_TIMEOUT), "60");
        apply(
            TARGET_GROUP,
            &mut set,
            &[
                change(DEREGISTRATION_DELAY, "5"),
                change(ALGORITHM, "least_outstanding_requests"),
            ],
            "Attributes",
        )
        .unwrap();
        let all = effective(TARGET_GROUP, &set);
        assert_eq!(all.len(), TARGET_GROUP.len());
        assert!(all.contains(&change(DEREGISTRATION_DELAY, "5")));
    }

    #[test]
    fn bad_keys_and_values_name_the_member() {
        for (changes, field) in [
            (vec![change("nope", "1")], "Attributes.member.1.Key"),
            (
                vec![change(DEREGISTRATION_DELAY, "3601")],
                "Attributes.member.1.Value",
            ),
            (
                vec![
                    change(DEREGISTRATION_DELAY, "5"),
                    change(ALGORITHM, "random"),
                ],
                "Attributes.member.2.Value",
            ),
            (
                vec![change("stickiness.enabled", "yes")],
                "Attributes.member.1.Value",
            ),
            (vec![change(SLOW_START, "10")], "Attributes.member.1.Value"),
        ] {
            let mut set = BTreeMap::new();
            let e = apply(TARGET_GROUP, &mut set, &changes, "Attributes").unwrap_err();
            assert_eq!(e.field, field);
            assert_eq!(e.kind, ErrorKind::InvalidParameter);
        }
        let mut set = BTreeMap::new();
        let e = apply(
            TARGET_GROUP,
            &mut set,
            &[
                change(SLOW_START, "30"),
                change(ALGORITHM, "least_outstanding_requests"),
            ],
            "Attributes",
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Client);
    }
}
