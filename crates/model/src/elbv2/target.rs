//! Registered targets and their health.
//!
//! A target is stored once per (target group, id, port) with the health the control plane and
//! the data plane give it: registration makes it `initial`; the data plane's health checks move
//! it to `healthy` or `unhealthy` (writing [`TargetHealth::checked`]); deregistration makes it
//! `draining` until `drain_until` (now + the group's deregistration delay), after which it is
//! gone. What DescribeTargetHealth reports is [`RegisteredTarget::report`].

use crate::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Initial => "initial",
            TargetState::Healthy => "healthy",
            TargetState::Unhealthy => "unhealthy",
            TargetState::Draining => "draining",
        }
    }
}

/// A target's stored health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealth {
    pub state: TargetState,
    /// ELBv2's reason code, e.g. `Elb.RegistrationInProgress`, `Target.ResponseCodeMismatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When the state last changed.
    pub since: Timestamp,
    /// For a draining target: when it is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_until: Option<Timestamp>,
}

impl TargetHealth {
    /// Just registered: no health check has run yet.
    pub fn registered(now: Timestamp) -> TargetHealth {
        TargetHealth {
            state: TargetState::Initial,
            reason: Some("Elb.RegistrationInProgress".into()),
            description: Some("Target registration is in progress".into()),
            since: now,
            drain_until: None,
        }
    }

    /// Deregistered: draining for `delay_seconds`.
    pub fn draining(now: Timestamp, delay_seconds: u32) -> TargetHealth {
        TargetHealth {
            state: TargetState::Draining,
            reason: Some("Target.DeregistrationInProgress".into()),
            description: Some("Target deregistration is in progress".into()),
            since: now,
            drain_until: Some(now.plus_millis(i64::from(delay_seconds) * 1000)),
        }
    }

    /// The outcome of health checks as the data plane writes it: healthy, or unhealthy with
    /// the reason (`Target.ResponseCodeMismatch`, `Target.Timeout`, `Target.FailedHealthChecks`)
    /// and a description such as `Health checks failed with these codes: [404]`.
    pub fn checked(now: Timestamp, failure: Option<(&str, &str)>) -> TargetHealth {
        let (state, reason, description) = match failure {
            None => (TargetState::Healthy, None, None),
            Some((reason, description)) => (
                TargetState::Unhealthy,
                Some(reason.to_string()),
                Some(description.to_string()),
            ),
        };
        TargetHealth {
            state,
            reason,
            description,
            since: now,
            drain_until: None,
        }
    }

    /// A draining target whose delay has passed.
    pub fn drained(&self, now: Timestamp) -> bool {
        self.state == TargetState::Draining && self.drain_until.is_none_or(|t| t <= now)
    }
}

/// A target in a target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredTarget {
    pub target_group_arn: String,
    /// An instance id or an IP address, as the target group's type says.
    pub id: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    pub registered_at: Timestamp,
    pub health: TargetHealth,
}

/// Health as DescribeTargetHealth shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub state: &'static str,
    pub reason: Option<String>,
    pub description: Option<String>,
}

impl Reported {
    /// A target that is not (or no longer) registered.
    pub fn not_registered() -> Reported {
        Reported {
            state: "unused",
            reason: Some("Target.NotRegistered".into()),
            description: Some("Target is not registered to the target group".into()),
        }
    }
}

impl RegisteredTarget {
    /// What DescribeTargetHealth says of this target at `now`; `in_use` tells whether a
    /// listener or rule of a load balancer forwards to its target group.
    pub fn report(&self, now: Timestamp, in_use: bool) -> Reported {
        let h = &self.health;
        if h.drained(now) {
            return Reported::not_registered();
        }
        if h.state != TargetState::Draining && !in_use {
            return Reported {
                state: "unused",
                reason: Some("Target.NotInUse".into()),
                description: Some(
                    "Target group is not configured to receive traffic from the load balancer"
                        .into(),
                ),
            };
        }
        Reported {
            state: h.state.as_str(),
            reason: h.reason.clone(),
            description: h.description.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(health: TargetHealth) -> RegisteredTarget {
        RegisteredTarget {
            target_group_arn: "tg".into(),
            id: "i-1".into(),
            port: 32768,
            availability_zone: None,
            registered_at: Timestamp(0),
            health,
        }
    }

    #[test]
    fn lifecycle_as_reported() {
        let t = target(TargetHealth::registered(Timestamp(0)));
        let r = t.report(Timestamp(1), true);
        assert_eq!(
            (r.state, r.reason.as_deref()),
            ("initial", Some("Elb.RegistrationInProgress"))
        );
        let r = t.report(Timestamp(1), false);
        assert_eq!(
            (r.state, r.reason.as_deref()),
            ("unused", Some("Target.NotInUse"))
        );
        let t = target(TargetHealth::checked(Timestamp(5), None));
        assert_eq!(t.report(Timestamp(6), true).state, "healthy");
        let t = target(TargetHealth::checked(
            Timestamp(5),
            Some((
                "Target.ResponseCodeMismatch",
                "Health checks failed with these codes: [404]",
            )),
        ));
        let r = t.report(Timestamp(6), true);
        assert_eq!(
            (r.state, r.reason.as_deref()),
            ("unhealthy", Some("Target.ResponseCodeMismatch"))
        );
        let t = target(TargetHealth::draining(Timestamp(10_000), 5));
        let r = t.report(Timestamp(14_999), false);
        assert_eq!(
            (r.state, r.reason.as_deref()),
            ("draining", Some("Target.DeregistrationInProgress"))
        );
        assert!(!t.health.drained(Timestamp(14_999)));
        assert!(t.health.drained(Timestamp(15_000)));
        assert_eq!(
            t.report(Timestamp(15_000), true),
            Reported::not_registered()
        );
    }
}
