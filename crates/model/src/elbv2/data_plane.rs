//! What the control plane tells the load balancer data plane (`berth lb`), and what the data
//! plane tells it back: Berth's own JSON API under `/_berth/lb/v1/`, not an AWS one.
//!
//! The configuration is resolved for the data plane: only active load balancers, rules in
//! priority order with the default rule last, attributes as values, health check timings in
//! milliseconds, and each target with the address to connect to and the port to check.

use super::target::TargetState;
use super::{Action, Condition, Protocol};
use serde::{Deserialize, Serialize};

/// `POST /_berth/lb/v1/config`: the configuration, unless it has not changed since `since`.
pub const CONFIG_PATH: &str = "/_berth/lb/v1/config";
/// `POST /_berth/lb/v1/health`: health check results.
pub const HEALTH_PATH: &str = "/_berth/lb/v1/health";
/// The SigV4 service name of these calls.
pub const SIGNING_SERVICE: &str = "berth";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigRequest {
    /// The revision of the configuration the caller holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigResponse {
    /// The state's revision this answer was computed at.
    pub revision: i64,
    /// `None` when nothing changed since the caller's `since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<DataPlaneConfig>,
}

/// Everything one region's data plane serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataPlaneConfig {
    pub load_balancers: Vec<LoadBalancerConfig>,
    /// Every target group a listener or rule forwards to.
    pub target_groups: Vec<TargetGroupConfig>,
    /// Every certificate an HTTPS listener serves, with its private key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateConfig>,
}

/// A certificate as an HTTPS listener serves it (an ACM certificate the user imported).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateConfig {
    pub arn: String,
    /// PEM: the certificate, then the chain that was imported with it.
    pub certificate_chain_pem: String,
    /// PEM: the private key.
    pub private_key_pem: String,
}

impl std::fmt::Debug for CertificateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateConfig")
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerConfig {
    pub arn: String,
    pub name: String,
    /// `idle_timeout.timeout_seconds`, in milliseconds.
    pub idle_timeout_ms: u64,
    pub listeners: Vec<ListenerConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerConfig {
    pub arn: String,
    pub port: u16,
    pub protocol: Protocol,
    /// The ARNs of the certificates an HTTPS listener serves, its default one first.
    #[serde(default)]
    pub certificates: Vec<String>,
    /// In priority order; the last one is the default rule (no priority, no conditions).
    pub rules: Vec<RuleConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleConfig {
    /// `None` for the default rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    RoundRobin,
    LeastOutstandingRequests,
}

impl Algorithm {
    /// The `load_balancing.algorithm.type` attribute; `weighted_random` is served as round
    /// robin.
    pub fn from_attribute(value: &str) -> Algorithm {
        match value {
            "least_outstanding_requests" => Algorithm::LeastOutstandingRequests,
            _ => Algorithm::RoundRobin,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckConfig {
    pub enabled: bool,
    pub protocol: Protocol,
    pub path: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// `200`, `200,202` or `200-299`.
    pub matcher: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupConfig {
    pub arn: String,
    pub name: String,
    pub protocol: Protocol,
    pub health_check: HealthCheckConfig,
    pub algorithm: Algorithm,
    pub slow_start_seconds: u32,
    /// How a client is held to the target it was sent to (`stickiness.*`); `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<Stickiness>,
    pub deregistration_delay_seconds: u32,
    pub targets: Vec<TargetConfig>,
}

/// A target group's stickiness, from its `stickiness.*` attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Stickiness {
    /// `lb_cookie`: the load balancer's cookie holds the client for `seconds`.
    LbCookie { seconds: u32 },
    /// `app_cookie`: whenever the target sets the application's cookie `cookie_name`, the load
    /// balancer's cookie holds the client for `seconds`.
    #[serde(rename_all = "camelCase")]
    AppCookie { cookie_name: String, seconds: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetConfig {
    /// The registered id: an instance id or an IP address.
    pub id: String,
    pub port: u16,
    /// Where to connect: the IP itself, or the instance's host address; `None` when the
    /// instance is unknown or registered no address (the target gets no traffic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The port health checks go to (`traffic-port` resolved).
    pub health_check_port: u16,
    /// The health the control plane holds (draining targets get no new requests).
    pub state: TargetState,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReports {
    pub reports: Vec<HealthReport>,
}

/// One target's health as the data plane's checks decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub target_group_arn: String,
    pub id: String,
    pub port: u16,
    pub healthy: bool,
    /// For an unhealthy target: ELBv2's reason code, e.g. `Target.Timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthAnswer {
    /// How many reports changed a target's stored health.
    pub applied: usize,
}

/// The container instance attribute holding the address load balancers reach the host at.
pub const HOST_ADDRESS_ATTRIBUTE: &str = "berth.host-address";
