//! Berth's own API for the load balancer data plane (`berth lb`), under `/_berth/lb/v1/`:
//! `config` answers the region's active load balancers resolved for serving (see
//! `berth_model::elbv2::data_plane`), `health` takes health check results and writes them into
//! the targets' records. Both are JSON and SigV4-signed like every other call.

use super::usage;
use crate::db::{Db, Writes};
use crate::front_door::{decode_own as decode, encode_own as encode};
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_model::container_instance::ContainerInstance;
use berth_model::elbv2::arn::{self, Resource};
use berth_model::elbv2::attributes::{self, IDLE_TIMEOUT, SLOW_START};
use berth_model::elbv2::data_plane::{
    Algorithm, CONFIG_PATH, CertificateConfig, ConfigRequest, ConfigResponse, DataPlaneConfig,
    HEALTH_PATH, HOST_ADDRESS_ATTRIBUTE, HealthAnswer, HealthCheckConfig, HealthReports,
    ListenerConfig, LoadBalancerConfig, RuleConfig, Stickiness, TargetConfig, TargetGroupConfig,
};
use berth_model::elbv2::{
    Listener, LoadBalancer, LoadBalancerState, RegisteredTarget, Rule, TargetGroup, TargetHealth,
    TargetState, TargetType,
};
use std::collections::{BTreeMap, BTreeSet};

/// Runs the call at `path` with the JSON `body`; returns the JSON answer.
pub async fn dispatch(app: &App, ctx: &Ctx, path: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match path {
        CONFIG_PATH => {
            let request: ConfigRequest = decode(body)?;
            let revision = app.db.revision();
            let config = (request.since != Some(revision)).then(|| config(&app.db, ctx));
            encode(&ConfigResponse { revision, config })
        }
        HEALTH_PATH => {
            let reports: HealthReports = decode(body)?;
            let applied = apply_health(app, ctx, &reports).await?;
            encode(&HealthAnswer { applied })
        }
        _ => Err(ApiError::unknown_operation(format!(
            "nothing is served at POST {path}"
        ))),
    }
}

fn seconds_attribute(set: &BTreeMap<String, String>, specs: &[attributes::Spec], key: &str) -> u32 {
    attributes::value(specs, set, key).parse().unwrap_or(0)
}

/// The group's stickiness, when its attributes turn it on. Application-based stickiness needs
/// the application's cookie name; without one there is nothing to follow.
fn stickiness(set: &BTreeMap<String, String>) -> Option<Stickiness> {
    let value = |key| attributes::value(attributes::TARGET_GROUP, set, key);
    let seconds = |key| seconds_attribute(set, attributes::TARGET_GROUP, key);
    if value("stickiness.enabled") != "true" {
        return None;
    }
    match value("stickiness.type") {
        "lb_cookie" => Some(Stickiness::LbCookie {
            seconds: seconds("stickiness.lb_cookie.duration_seconds"),
        }),
        "app_cookie" => {
            let cookie_name = value("stickiness.app_cookie.cookie_name").to_owned();
            (!cookie_name.is_empty()).then(|| Stickiness::AppCookie {
                cookie_name,
                seconds: seconds("stickiness.app_cookie.duration_seconds"),
            })
        }
        _ => None,
    }
}

/// The region's configuration as the data plane serves it.
pub fn config(db: &Db, ctx: &Ctx) -> DataPlaneConfig {
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut certificates_used: BTreeSet<String> = BTreeSet::new();
    let mut load_balancers = Vec::new();
    for lb in db.list::<LoadBalancer>(&keys::load_balancers(&ctx.region)) {
        let lb = lb.value;
        if lb.state != LoadBalancerState::Active {
            continue;
        }
        let mut listeners = Vec::new();
        for l in db.list::<Listener>(&keys::listeners_of(&ctx.region, &lb.id)) {
            let l = l.value;
            let mut rules: Vec<Rule> = db
                .list::<Rule>(&keys::rules_of(&ctx.region, &l.id))
                .into_iter()
                .map(|r| r.value)
                .collect();
            rules.sort_by_key(|r| r.priority);
            let mut compiled: Vec<RuleConfig> = rules
                .into_iter()
                .map(|r| RuleConfig {
                    priority: Some(r.priority),
                    conditions: r.conditions,
                    actions: r.actions,
                })
                .collect();
            compiled.push(RuleConfig {
                priority: None,
                conditions: Vec::new(),
                actions: l.default_actions.clone(),
            });
            for rule in &compiled {
                for a in &rule.actions {
                    used.extend(a.target_group_arns().map(str::to_string));
                }
            }
            certificates_used.extend(l.certificates.iter().cloned());
            listeners.push(ListenerConfig {
                arn: l.arn,
                port: l.port,
                protocol: l.protocol,
                certificates: l.certificates,
                rules: compiled,
            });
        }
        let idle = seconds_attribute(&lb.attributes, attributes::LOAD_BALANCER, IDLE_TIMEOUT);
        load_balancers.push(LoadBalancerConfig {
            arn: lb.arn,
            name: lb.name,
            idle_timeout_ms: u64::from(idle.max(1)) * 1000,
            listeners,
        });
    }
    let addresses = host_addresses(db, ctx);
    let target_groups = db
        .list::<TargetGroup>(&keys::target_groups(&ctx.region))
        .into_iter()
        .map(|tg| tg.value)
        .filter(|tg| used.contains(&tg.arn))
        .map(|tg| target_group_config(db, ctx, tg, &addresses))
        .collect();
    let mut certificates: Vec<CertificateConfig> = Vec::new();
    for arn in certificates_used {
        match crate::acm::find(db, ctx, &arn) {
            Some(c) => certificates.push(CertificateConfig {
                arn,
                certificate_chain_pem: c.value.full_chain_pem(),
                private_key_pem: c.value.private_key_pem,
            }),
            None => {
                tracing::warn!(certificate = %arn, "an HTTPS listener names a certificate that does not exist")
            }
        }
    }
    DataPlaneConfig {
        load_balancers,
        target_groups,
        certificates,
    }
}

/// Container instances' addresses by their `ec2InstanceId`.
fn host_addresses(db: &Db, ctx: &Ctx) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    db.scan::<ContainerInstance>(&keys::all_instances(&ctx.region), |_, i| {
        let address = i
            .attributes
            .iter()
            .find(|a| a.name == HOST_ADDRESS_ATTRIBUTE)
            .and_then(|a| a.value.clone());
        if let (Some(id), Some(address)) = (&i.ec2_instance_id, address) {
            out.insert(id.clone(), address);
        }
        true
    });
    out
}

fn target_group_config(
    db: &Db,
    ctx: &Ctx,
    tg: TargetGroup,
    addresses: &BTreeMap<String, String>,
) -> TargetGroupConfig {
    let hc = &tg.health_check;
    let targets = db
        .list::<RegisteredTarget>(&keys::targets_of(&ctx.region, &tg.id))
        .into_iter()
        .map(|t| t.value)
        .filter(|t| !t.health.drained(ctx.now))
        .map(|t| TargetConfig {
            address: match tg.target_type {
                TargetType::Ip => Some(t.id.clone()),
                TargetType::Instance => addresses.get(&t.id).cloned(),
            },
            health_check_port: hc.port_for(t.port),
            state: t.health.state,
            id: t.id,
            port: t.port,
        })
        .collect();
    let algorithm = Algorithm::from_attribute(attributes::value(
        attributes::TARGET_GROUP,
        &tg.attributes,
        attributes::ALGORITHM,
    ));
    TargetGroupConfig {
        health_check: HealthCheckConfig {
            enabled: hc.enabled,
            protocol: hc.protocol,
            path: hc.path.clone(),
            interval_ms: u64::from(hc.interval_seconds) * 1000,
            timeout_ms: u64::from(hc.timeout_seconds) * 1000,
            healthy_threshold: hc.healthy_threshold,
            unhealthy_threshold: hc.unhealthy_threshold,
            matcher: hc.matcher.clone(),
        },
        algorithm,
        slow_start_seconds: seconds_attribute(&tg.attributes, attributes::TARGET_GROUP, SLOW_START),
        stickiness: stickiness(&tg.attributes),
        deregistration_delay_seconds: tg.deregistration_delay_seconds(),
        arn: tg.arn,
        name: tg.name,
        protocol: tg.protocol,
        targets,
    }
}

/// Writes each reported health into its target's record, unless the target is gone, draining,
/// or already holds that health. Returns how many records changed.
pub async fn apply_health(
    app: &App,
    ctx: &Ctx,
    reports: &HealthReports,
) -> Result<usize, ApiError> {
    app.db
        .transact(|db| {
            let in_use = usage(db, ctx);
            let mut writes = Writes::new();
            let mut applied = 0;
            let mut seen = BTreeSet::new();
            for r in &reports.reports {
                let Some(Resource::TargetGroup { name, .. }) =
                    arn::parse(&r.target_group_arn).map(|a| a.resource)
                else {
                    continue;
                };
                let Some(tg) = db
                    .get::<TargetGroup>(&keys::target_group(&ctx.region, &name))
                    .filter(|tg| tg.value.arn == r.target_group_arn)
                else {
                    continue;
                };
                if !in_use.contains_key(&tg.value.arn) {
                    continue;
                }
                let key = keys::target(&ctx.region, &tg.value.id, &r.id, r.port);
                let Some(current) = db.get::<RegisteredTarget>(&key) else {
                    continue;
                };
                if current.value.health.state == TargetState::Draining || !seen.insert(key.clone())
                {
                    continue;
                }
                let failure = (!r.healthy).then(|| {
                    (
                        r.reason.as_deref().unwrap_or("Target.FailedHealthChecks"),
                        r.description.as_deref().unwrap_or("Health checks failed"),
                    )
                });
                let health = TargetHealth::checked(ctx.now, failure);
                let h = &current.value.health;
                if h.state == health.state
                    && h.reason == health.reason
                    && h.description == health.description
                {
                    continue;
                }
                let mut record = current.value.clone();
                record.health = health;
                writes = writes.expect_unchanged(&current).put(&key, record);
                applied += 1;
            }
            Ok((writes, applied))
        })
        .await
}
