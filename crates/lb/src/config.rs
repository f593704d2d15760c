//! The configuration the data plane serves: polled from the control plane, compiled into
//! routing tables (one per listener port) and target groups, and swapped in atomically. A
//! request reads the table current when it arrives and keeps it to its end, so a change never
//! disturbs requests in flight; the next request sees the new table.

use crate::balancer::{Group, Health, Target, TargetStats};
use crate::router::Rule;
use crate::sticky::Policy;
use crate::tls;
use berth_client::Client;
use berth_model::elbv2::Protocol;
use berth_model::elbv2::data_plane::{
    CONFIG_PATH, CertificateConfig, ConfigRequest, ConfigResponse, DataPlaneConfig,
    HealthCheckConfig, SIGNING_SERVICE, Stickiness,
};
use berth_model::elbv2::target::TargetState;
use http::HeaderValue;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// A target, as health checks and reports name it: target group, id, port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    pub target_group_arn: String,
    pub id: String,
    pub port: u16,
}

/// One listener port's routing table.
#[derive(Debug)]
pub struct ListenerTable {
    pub load_balancer: String,
    pub port: u16,
    pub protocol: Protocol,
    /// The load balancer's idle timeout: how long a target may take to answer.
    pub idle_timeout: Duration,
    /// `X-Forwarded-Proto` and `X-Forwarded-Port` as the listener sends them.
    pub forwarded_proto: HeaderValue,
    pub forwarded_port: HeaderValue,
    /// An HTTPS listener's TLS settings (its certificates).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Priority order, the default rule last.
    pub rules: Vec<Rule>,
}

/// What one target's health checks need.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub key: TargetKey,
    /// The target's address with the health check port.
    pub address: SocketAddr,
    pub check: HealthCheckConfig,
    pub stats: Arc<TargetStats>,
    /// The health the control plane holds for it.
    pub stored: TargetState,
}

/// A compiled configuration.
#[derive(Debug, Default)]
pub struct Compiled {
    pub source: DataPlaneConfig,
    pub listeners: HashMap<u16, Arc<ListenerTable>>,
    pub groups: HashMap<String, Arc<Group>>,
    pub checks: Vec<CheckSpec>,
}

/// The state that outlives configurations: each target's counters, each group's rotation, and
/// each HTTPS listener's TLS settings (so its session cache survives unrelated changes).
#[derive(Debug, Default)]
struct Registry {
    targets: HashMap<TargetKey, Arc<TargetStats>>,
    rotations: HashMap<String, Arc<AtomicUsize>>,
    tls: HashMap<Vec<CertificateConfig>, Arc<rustls::ServerConfig>>,
}

/// The TLS settings of a listener serving the certificates `arns` names, made once for as long
/// as the certificates stay the same.
fn tls_for(
    listener: &str,
    arns: &[String],
    certificates: &HashMap<&str, &CertificateConfig>,
    registry: &Registry,
    made: &mut HashMap<Vec<CertificateConfig>, Arc<rustls::ServerConfig>>,
) -> Option<Arc<rustls::ServerConfig>> {
    let mut wanted = Vec::new();
    for arn in arns {
        match certificates.get(arn.as_str()) {
            Some(c) => wanted.push((*c).clone()),
            None => {
                tracing::warn!(listener, certificate = %arn, "the listener's certificate is not in the configuration")
            }
        }
    }
    if let Some(config) = made
        .get(&wanted)
        .or_else(|| registry.tls.get(&wanted))
        .cloned()
    {
        made.insert(wanted, config.clone());
        return Some(config);
    }
    let mut loaded = Vec::new();
    for c in &wanted {
        match tls::load(c) {
            Ok(key) => loaded.push(key),
            Err(e) => tracing::warn!(listener, certificate = %c.arn, "certificate left out: {e}"),
        }
    }
    let config = tls::server_config(loaded)?;
    made.insert(wanted, config.clone());
    Some(config)
}

fn seed(state: TargetState) -> Health {
    match state {
        TargetState::Healthy => Health::Healthy,
        TargetState::Unhealthy => Health::Unhealthy,
        TargetState::Initial | TargetState::Draining => Health::Unknown,
    }
}

fn compile(source: DataPlaneConfig, registry: &mut Registry) -> Compiled {
    let mut listeners: HashMap<u16, Arc<ListenerTable>> = HashMap::new();
    let certificates: HashMap<&str, &CertificateConfig> = source
        .certificates
        .iter()
        .map(|c| (c.arn.as_str(), c))
        .collect();
    let mut tls_made = HashMap::new();
    for lb in &source.load_balancers {
        for l in &lb.listeners {
            if let Some(other) = listeners.get(&l.port) {
                tracing::warn!(
                    port = l.port,
                    "load balancers '{}' and '{}' both listen on port {}; '{}' is served",
                    other.load_balancer,
                    lb.name,
                    l.port,
                    other.load_balancer
                );
                continue;
            }
            let tls = match l.protocol {
                Protocol::Http => None,
                Protocol::Https => {
                    let tls = tls_for(
                        &l.arn,
                        &l.certificates,
                        &certificates,
                        registry,
                        &mut tls_made,
                    );
                    if tls.is_none() {
                        tracing::warn!(
                            listener = %l.arn,
                            port = l.port,
                            "the HTTPS listener has no certificate that loads; it gets no traffic"
                        );
                        continue;
                    }
                    tls
                }
            };
            listeners.insert(
                l.port,
                Arc::new(ListenerTable {
                    load_balancer: lb.name.clone(),
                    port: l.port,
                    protocol: l.protocol,
                    idle_timeout: Duration::from_millis(lb.idle_timeout_ms.max(1)),
                    forwarded_proto: HeaderValue::from_static(match l.protocol {
                        Protocol::Http => "http",
                        Protocol::Https => "https",
                    }),
                    forwarded_port: HeaderValue::from(l.port),
                    tls,
                    rules: l.rules.iter().map(Rule::compile).collect(),
                }),
            );
        }
    }
    let mut targets = HashMap::new();
    let mut rotations = HashMap::new();
    let mut groups = HashMap::new();
    let mut checks = Vec::new();
    for tg in &source.target_groups {
        let mut members = Vec::new();
        for t in &tg.targets {
            let key = TargetKey {
                target_group_arn: tg.arn.clone(),
                id: t.id.clone(),
                port: t.port,
            };
            let stats = registry
                .targets
                .get(&key)
                .cloned()
                .unwrap_or_else(|| Arc::new(TargetStats::new(seed(t.state))));
            let ip: Option<IpAddr> = t.address.as_deref().and_then(|a| a.parse().ok());
            if t.address.is_some() && ip.is_none() {
                tracing::warn!(target = %t.id, "target address {:?} is not an IP address", t.address);
            }
            let draining = t.state == TargetState::Draining;
            if let Some(ip) = ip
                && tg.health_check.enabled
                && !draining
            {
                checks.push(CheckSpec {
                    key: key.clone(),
                    address: SocketAddr::new(ip, t.health_check_port),
                    check: tg.health_check.clone(),
                    stats: stats.clone(),
                    stored: t.state,
                });
            }
            members.push(Target {
                id: t.id.clone(),
                port: t.port,
                address: ip.map(|ip| SocketAddr::new(ip, t.port)),
                draining,
                stats: stats.clone(),
            });
            targets.insert(key, stats);
        }
        let next = registry.rotations.get(&tg.arn).cloned().unwrap_or_default();
        rotations.insert(tg.arn.clone(), next.clone());
        groups.insert(
            tg.arn.clone(),
            Arc::new(Group {
                arn: tg.arn.clone(),
                algorithm: tg.algorithm,
                checks_enabled: tg.health_check.enabled,
                targets: members,
                next,
                slow_start_ms: u64::from(tg.slow_start_seconds) * 1000,
                stickiness: tg.stickiness.as_ref().map(sticky_policy),
            }),
        );
    }
    registry.targets = targets;
    registry.rotations = rotations;
    registry.tls = tls_made;
    Compiled {
        source,
        listeners,
        groups,
        checks,
    }
}

/// The configuration being served, shared by the listeners, the health checks and the poller.
#[derive(Debug)]
pub struct Shared {
    current: watch::Sender<Arc<Compiled>>,
    registry: Mutex<Registry>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            current: watch::Sender::new(Arc::new(Compiled::default())),
            registry: Mutex::default(),
        }
    }
}

impl Shared {
    /// Serves `config` from now on; returns false when it is what is served already.
    pub fn apply(&self, config: DataPlaneConfig) -> bool {
        if self.current.borrow().source == config {
            return false;
        }
        let compiled = {
            let mut registry = self
                .registry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            compile(config, &mut registry)
        };
        self.current.send_replace(Arc::new(compiled));
        true
    }

    /// The configuration served now.
    pub fn current(&self) -> Arc<Compiled> {
        self.current.borrow().clone()
    }

    /// Wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Compiled>> {
        self.current.subscribe()
    }
}

/// How long one configuration call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the control plane for the configuration every `interval` and applies what changed,
/// until dropped. While the control plane cannot be reached the last configuration is served.
pub async fn poll(client: Client, shared: Arc<Shared>, interval: Duration) {
    let mut since: Option<i64> = None;
    let mut failing = false;
    loop {
        let request = ConfigRequest { since };
        let call = client.berth_json::<_, ConfigResponse>(SIGNING_SERVICE, CONFIG_PATH, &request);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(answer)) => {
                if failing {
                    tracing::info!("the control plane answers again");
                    failing = false;
                }
                if let Some(config) = answer.config
                    && shared.apply(config)
                {
                    tracing::debug!(revision = answer.revision, "configuration changed");
                }
                since = Some(answer.revision);
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::warn!(
                        "could not get the load balancer configuration: {e}; serving the last one"
                    );
                }
                failing = true;
            }
            Err(_) => {
                if !failing {
                    tracing::warn!(
                        "the control plane did not answer within {CALL_TIMEOUT:?}; serving the last configuration"
                    );
                }
                failing = true;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// The data plane's form of a group's stickiness.
fn sticky_policy(stickiness: &Stickiness) -> Policy {
    let seconds = |s: &u32| Duration::from_secs(u64::from(*s));
    match stickiness {
        Stickiness::LbCookie { seconds: s } => Policy::LbCookie(seconds(s)),
        Stickiness::AppCookie {
            cookie_name,
            seconds: s,
        } => Policy::AppCookie {
            cookie_name: cookie_name.clone(),
            duration: seconds(s),
        },
    }
}
