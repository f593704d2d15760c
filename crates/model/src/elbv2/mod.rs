//! Elastic Load Balancing v2 (application load balancers): load balancers, target groups,
//! listeners, rules with their conditions and actions, registered targets with their health,
//! attributes and tags, and the validation ELBv2 applies to each (reported with the member
//! that failed). These are the stored records; the XML wire shapes live in `berth-api`.
//!
//! Validation failures use [`ErrorKind::InvalidParameter`] for ELBv2's `ValidationError` and
//! [`ErrorKind::Client`] for `InvalidConfigurationRequest`.

pub mod action;
pub mod arn;
pub mod attributes;
pub mod condition;
pub mod data_plane;
pub mod target;

use crate::{ErrorKind, Timestamp, ValidationError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use action::{Action, ActionType, FixedResponse, Forward, Redirect, WeightedTargetGroup};
pub use condition::Condition;
pub use target::{RegisteredTarget, TargetHealth, TargetState};

/// The VPC every Berth load balancer and target group is in unless the caller names one.
pub const DEFAULT_VPC_ID: &str = "vpc-00000000000berth";
/// The hosted zone id reported for every load balancer's DNS name.
pub const CANONICAL_HOSTED_ZONE_ID: &str = "Z0BERTHLOCAL000";
/// At most this many tags per resource.
pub const MAX_TAGS: usize = 50;

/// A resource tag; ELBv2 tags may have no value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Listener and target group protocols an application load balancer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Http,
    Https,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
        }
    }
    /// Parses `HTTP` or `HTTPS`; the other ELBv2 protocols are network load balancer ones.
    pub fn parse(field: &str, value: &str) -> Result<Protocol, ValidationError> {
        match value {
            "HTTP" => Ok(Protocol::Http),
            "HTTPS" => Ok(Protocol::Https),
            "TCP" | "TLS" | "UDP" | "TCP_UDP" | "GENEVE" | "QUIC" | "TCP_QUIC" => {
                Err(ValidationError::invalid(
                    field,
                    format!(
                        "protocol '{value}' is not supported by application load balancers (HTTP or HTTPS)"
                    ),
                ))
            }
            _ => Err(ValidationError::invalid(
                field,
                format!("'{value}' is not a valid protocol (HTTP or HTTPS)"),
            )),
        }
    }
}

/// How a target group names its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    Instance,
    Ip,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Instance => "instance",
            TargetType::Ip => "ip",
        }
    }
    pub fn parse(field: &str, value: &str) -> Result<TargetType, ValidationError> {
        match value {
            "instance" => Ok(TargetType::Instance),
            "ip" => Ok(TargetType::Ip),
            "lambda" | "alb" => Err(ValidationError::invalid(
                field,
                format!("target type '{value}' is not supported by Berth (instance or ip)"),
            )),
            _ => Err(ValidationError::invalid(
                field,
                format!("'{value}' is not a valid target type (instance or ip)"),
            )),
        }
    }
}

/// A load balancer's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancerState {
    Provisioning,
    Active,
    ActiveImpaired,
    Failed,
}

impl LoadBalancerState {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalancerState::Provisioning => "provisioning",
            LoadBalancerState::Active => "active",
            LoadBalancerState::ActiveImpaired => "active_impaired",
            LoadBalancerState::Failed => "failed",
        }
    }
}

/// An application load balancer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub id: String,
    pub dns_name: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    /// `ipv4`, `dualstack` or `dualstack-without-public-ipv4`.
    pub ip_address_type: String,
    /// Subnet ids as given (with `Subnets` or `SubnetMappings`), kept in order.
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub vpc_id: String,
    pub created_at: Timestamp,
    pub state: LoadBalancerState,
    /// Attributes set with ModifyLoadBalancerAttributes; the rest have their defaults.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// How a target group checks its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: Protocol,
    /// A port number or `traffic-port` (the port each target receives traffic on).
    pub port: String,
    pub path: String,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// HTTP codes that mean healthy: `200`, `200,202`, `200-299`.
    pub matcher: String,
}

pub const TRAFFIC_PORT: &str = "traffic-port";

impl HealthCheck {
    /// ELBv2's defaults for an HTTP(S) target group of an application load balancer.
    pub fn defaults(protocol: Protocol) -> HealthCheck {
        HealthCheck {
            enabled: true,
            protocol,
            port: TRAFFIC_PORT.into(),
            path: "/".into(),
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: "200".into(),
        }
    }

    /// The port a target registered on `target_port` is checked on.
    pub fn port_for(&self, target_port: u16) -> u16 {
        self.port.parse().unwrap_or(target_port)
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.port != TRAFFIC_PORT {
            match self.port.parse::<u32>() {
                Ok(1..=65535) => {}
                _ => {
                    return Err(ValidationError::invalid(
                        "HealthCheckPort",
                        format!("'{}' is not a port (1-65535) or 'traffic-port'", self.port),
                    ));
                }
            }
        }
        if !self.path.starts_with('/') || self.path.len() > 1024 {
            return Err(ValidationError::invalid(
                "HealthCheckPath",
                "must start with '/' and be at most 1024 characters",
            ));
        }
        range("HealthCheckIntervalSeconds", self.interval_seconds, 5, 300)?;
        range("HealthCheckTimeoutSeconds", self.timeout_seconds, 2, 120)?;
        range("HealthyThresholdCount", self.healthy_threshold, 2, 10)?;
        range("UnhealthyThresholdCount", self.unhealthy_threshold, 2, 10)?;
        if self.timeout_seconds >= self.interval_seconds {
            return Err(ValidationError::invalid(
                "HealthCheckTimeoutSeconds",
                format!(
                    "the health check timeout ({}) must be smaller than the interval ({})",
                    self.timeout_seconds, self.interval_seconds
                ),
            ));
        }
        validate_matcher(&self.matcher)
    }
}

fn range(field: &str, value: u32, min: u32, max: u32) -> Result<(), ValidationError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::invalid(
            field,
            format!("{value} is not between {min} and {max}"),
        ))
    }
}

/// Checks a matcher: codes 200-499 as `200`, `200,202` or `200-299`.
pub fn validate_matcher(matcher: &str) -> Result<(), ValidationError> {
    let bad = || {
        ValidationError::invalid(
            "Matcher.HttpCode",
            format!(
                "'{matcher}' is not a list or range of HTTP codes between 200 and 499 (e.g. 200,202 or 200-299)"
            ),
        )
    };
    let code = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|c| (200..=499).contains(c))
            .ok_or_else(bad)
    };
    if let Some((low, high)) = matcher.split_once('-') {
        if code(low)? > code(high)? {
            return Err(bad());
        }
        return Ok(());
    }
    for part in matcher.split(',') {
        code(part)?;
    }
    Ok(())
}

/// A target group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub id: String,
    pub protocol: Protocol,
    /// `HTTP1`, `HTTP2` or `GRPC`.
    pub protocol_version: String,
    pub port: u16,
    pub vpc_id: String,
    pub target_type: TargetType,
    /// `ipv4` or `ipv6`.
    pub ip_address_type: String,
    pub health_check: HealthCheck,
    /// Attributes set with ModifyTargetGroupAttributes; the rest have their defaults.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub created_at: Timestamp,
}

impl TargetGroup {
    /// How long a deregistered target drains, in seconds.
    pub fn deregistration_delay_seconds(&self) -> u32 {
        attributes::value(
            attributes::TARGET_GROUP,
            &self.attributes,
            attributes::DEREGISTRATION_DELAY,
        )
        .parse()
        .unwrap_or(300)
    }
}

/// A listener: a port of a load balancer and what it does with requests no rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub arn: String,
    pub load_balancer_arn: String,
    pub id: String,
    pub port: u16,
    pub protocol: Protocol,
    #[serde(default)]
    pub certificates: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    pub default_actions: Vec<Action>,
    /// The id in the ARN of the listener's default rule.
    pub default_rule_id: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A listener rule other than the default one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub arn: String,
    pub listener_arn: String,
    pub id: String,
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// Rule priorities run from 1 to 50000; the default rule comes after them all.
pub fn validate_priority(field: &str, priority: i64) -> Result<u32, ValidationError> {
    u32::try_from(priority)
        .ok()
        .filter(|p| (1..=50000).contains(p))
        .ok_or_else(|| {
            ValidationError::invalid(
                field,
                format!("priority {priority} is not between 1 and 50000"),
            )
        })
}

/// Which resource a name belongs to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    LoadBalancer,
    TargetGroup,
}

/// Load balancer and target group names: 1 to 32 letters, digits and hyphens, not starting or
/// ending with a hyphen; a load balancer's may not start with `internal-`.
pub fn validate_name(field: &str, name: &str, kind: Named) -> Result<(), ValidationError> {
    let what = match kind {
        Named::LoadBalancer => "load balancer",
        Named::TargetGroup => "target group",
    };
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(ValidationError::invalid(
            field,
            format!(
                "{what} name '{name}' must be 1 to 32 letters, digits and hyphens, and must not begin or end with a hyphen"
            ),
        ));
    }
    if kind == Named::LoadBalancer && name.starts_with("internal-") {
        return Err(ValidationError::invalid(
            field,
            format!("load balancer name '{name}' cannot begin with 'internal-'"),
        ));
    }
    Ok(())
}

/// Checks tags as AddTags and the Create calls receive them: keys 1-128 characters, values at
/// most 256, no key twice (`DuplicateTagKeys` is the caller's to report: `Err(None)`).
pub fn validate_tags(field: &str, tags: &[Tag]) -> Result<(), Option<ValidationError>> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, tag) in tags.iter().enumerate() {
        let n = i + 1;
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(Some(ValidationError::invalid(
                format!("{field}.member.{n}.Key"),
                "tag keys must be 1 to 128 characters",
            )));
        }
        if tag.key.starts_with("aws:") {
            return Err(Some(ValidationError::invalid(
                format!("{field}.member.{n}.Key"),
                "tag keys may not begin with 'aws:'",
            )));
        }
        if tag.value.as_ref().is_some_and(|v| v.chars().count() > 256) {
            return Err(Some(ValidationError::invalid(
                format!("{field}.member.{n}.Value"),
                "tag values must be at most 256 characters",
            )));
        }
        if !seen.insert(tag.key.as_str()) {
            return Err(None);
        }
    }
    Ok(())
}

/// Adds or replaces `tags` in `existing`; returns how many tags the resource then has.
pub fn merge_tags(existing: &mut Vec<Tag>, tags: &[Tag]) -> usize {
    for tag in tags {
        match existing.iter_mut().find(|t| t.key == tag.key) {
            Some(t) => t.value = tag.value.clone(),
            None => existing.push(tag.clone()),
        }
    }
    existing.len()
}

/// `InvalidConfigurationRequest`-kind failure.
pub(crate) fn config_error(field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        kind: ErrorKind::Client,
        field: field.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_elbv2_rules() {
        for ok in ["a", "stage01-alb", &"x".repeat(32)] {
            validate_name("Name", ok, Named::LoadBalancer).unwrap();
        }
        for bad in ["", "-a", "a-", "a_b", &"x".repeat(33), "internal-web"] {
            let e = validate_name("Name", bad, Named::LoadBalancer).unwrap_err();
            assert_eq!(e.field, "Name");
        }
        validate_name("Name", "internal-web", Named::TargetGroup).unwrap();
    }

    #[test]
    fn health_checks_are_checked_member_by_member() {
        let mut hc = HealthCheck::defaults(Protocol::Http);
        hc.validate().unwrap();
        assert_eq!(hc.port_for(32768), 32768);
        hc.port = "8080".into();
        assert_eq!(hc.port_for(32768), 8080);
        hc.validate().unwrap();
        for (field, change) in [
            (
                "HealthCheckPort",
                (|h: &mut HealthCheck| h.port = "0".into()) as fn(&mut HealthCheck),
            ),
            ("HealthCheckPort", |h| h.port = "traffic".into()),
            ("HealthCheckPath", |h| h.path = "health".into()),
            ("HealthCheckIntervalSeconds", |h| h.interval_seconds = 301),
            ("HealthCheckTimeoutSeconds", |h| h.timeout_seconds = 1),
            ("HealthCheckTimeoutSeconds", |h| h.timeout_seconds = 30),
            ("HealthyThresholdCount", |h| h.healthy_threshold = 11),
            ("UnhealthyThresholdCount", |h| h.unhealthy_threshold = 1),
            ("Matcher.HttpCode", |h| h.matcher = "199".into()),
            ("Matcher.HttpCode", |h| h.matcher = "300-200".into()),
            ("Matcher.HttpCode", |h| h.matcher = "200,abc".into()),
        ] {
            let mut hc = HealthCheck::defaults(Protocol::Http);
            change(&mut hc);
            assert_eq!(hc.validate().unwrap_err().field, field);
        }
        for ok in ["200", "200,202", "200-299", "404"] {
            validate_matcher(ok).unwrap();
        }
    }

    #[test]
    fn priorities_and_tags() {
        assert_eq!(validate_priority("Priority", 1).unwrap(), 1);
        assert_eq!(validate_priority("Priority", 50000).unwrap(), 50000);
        assert!(validate_priority("Priority", 0).is_err());
        assert!(validate_priority("Priority", 50001).is_err());
        let tag = |k: &str| Tag {
            key: k.into(),
            value: Some("v".into()),
        };
        validate_tags("Tags", &[tag("a"), tag("b")]).unwrap();
        assert_eq!(validate_tags("Tags", &[tag("a"), tag("a")]), Err(None));
        let e = validate_tags("Tags", &[tag("a"), tag("")])
            .unwrap_err()
            .unwrap();
        assert_eq!(e.field, "Tags.member.2.Key");
        let mut existing = vec![tag("a")];
        let n = merge_tags(
            &mut existing,
            &[
                Tag {
                    key: "a".into(),
                    value: None,
                },
                tag("b"),
            ],
        );
        assert_eq!(n, 2);
        assert_eq!(existing[0].value, None);
    }
}
