//! RegisterTargets, DeregisterTargets, DescribeTargetHealth, and the sweeper that removes
//! targets once their deregistration delay has passed.
//!
//! Target health lives in each target's record (`RegisteredTarget::health`): registration
//! writes `initial`, the data plane's checks will write `healthy`/`unhealthy` with ELBv2's
//! reason, deregistration writes `draining` until `drain_until`.

use super::{target_group, usage};
use crate::db::{Versioned, Writes};
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::elbv2::targets::{self as wt, TargetDescription};
use berth_api::elbv2::{self as wire};
use berth_api::query::Params;
use berth_api::xml::Xml;
use berth_model::elbv2::target::Reported;
use berth_model::elbv2::{RegisteredTarget, TargetGroup, TargetHealth, TargetState, TargetType};
use std::time::Duration;

const MAX_TARGETS: usize = 1000;
/// How often drained targets are looked for.
pub const DRAIN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

fn port_of(t: &TargetDescription, tg: &TargetGroup) -> u16 {
    t.port.unwrap_or(tg.port)
}

fn check_target(t: &TargetDescription, tg: &TargetGroup) -> Result<(), ApiError> {
    if tg.target_type == TargetType::Ip && t.id.parse::<std::net::IpAddr>().is_err() {
        return Err(wire::invalid_target(format!(
            "The IP address '{}' is not a valid IP address for a target group of type ip",
            t.id
        )));
    }
    Ok(())
}

pub async fn register(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arn = p.required("TargetGroupArn")?;
    let targets = wt::parse(p, true)?;
    app.db
        .transact(|db| {
            let tg = target_group(db, ctx, "TargetGroupArn", arn)?;
            let existing =
                db.list::<RegisteredTarget>(&keys::targets_of(&ctx.region, &tg.value.id));
            let mut live = existing
                .iter()
                .filter(|t| !t.value.health.drained(ctx.now))
                .count();
            let mut writes = Writes::new().expect_unchanged(&tg);
            for t in &targets {
                check_target(t, &tg.value)?;
                let port = port_of(t, &tg.value);
                let key = keys::target(&ctx.region, &tg.value.id, &t.id, port);
                let current = existing.iter().find(|e| e.key == key);
                let active = current.is_some_and(|c| c.value.health.state != TargetState::Draining);
                if active {
                    continue;
                }
                if current.is_none_or(|c| c.value.health.drained(ctx.now)) {
                    live += 1;
                }
                if live > MAX_TARGETS {
                    return Err(wire::too_many_targets(format!(
                        "a target group can have at most {MAX_TARGETS} targets"
                    )));
                }
                let record = RegisteredTarget {
                    target_group_arn: tg.value.arn.clone(),
                    id: t.id.clone(),
                    port,
                    availability_zone: t.availability_zone.clone(),
                    registered_at: ctx.now,
                    health: TargetHealth::registered(ctx.now),
                };
                writes = writes
                    .expect(&key, current.map_or(0, |c| c.revision))
                    .put(&key, record);
            }
            Ok((writes, ()))
        })
        .await?;
    Ok(String::new())
}

pub async fn deregister(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let arn = p.required("TargetGroupArn")?;
    let targets = wt::parse(p, true)?;
    app.db
        .transact(|db| {
            let tg = target_group(db, ctx, "TargetGroupArn", arn)?;
            let in_use = usage(db, ctx).contains_key(&tg.value.arn);
            let delay = if in_use {
                tg.value.deregistration_delay_seconds()
            } else {
                0
            };
            let mut writes = Writes::new().expect_unchanged(&tg);
            let mut missing = Vec::new();
            for t in &targets {
                let port = port_of(t, &tg.value);
                let key = keys::target(&ctx.region, &tg.value.id, &t.id, port);
                let Some(current) = db
                    .get::<RegisteredTarget>(&key)
                    .filter(|c| !c.value.health.drained(ctx.now))
                else {
                    missing.push(format!("Id={},Port={port}", t.id));
                    continue;
                };
                if current.value.health.state == TargetState::Draining {
                    continue;
                }
                writes = writes.expect_unchanged(&current);
                writes = if delay == 0 {
                    writes.delete(&key)
                } else {
                    let mut draining = current.value.clone();
                    draining.health = TargetHealth::draining(ctx.now, delay);
                    writes.put(&key, draining)
                };
            }
            if !missing.is_empty() {
                return Err(wire::invalid_target(format!(
                    "The following targets are not registered in target group '{arn}': {}",
                    missing.join(", ")
                )));
            }
            Ok((writes, ()))
        })
        .await?;
    Ok(String::new())
}

pub fn describe_health(app: &App, ctx: &Ctx, p: &Params<'_>) -> Result<String, ApiError> {
    let tg = target_group(
        &app.db,
        ctx,
        "TargetGroupArn",
        p.required("TargetGroupArn")?,
    )?
    .value;
    let asked = wt::parse(p, false)?;
    let in_use = usage(&app.db, ctx).contains_key(&tg.arn);
    let registered: Vec<Versioned<RegisteredTarget>> = app
        .db
        .list::<RegisteredTarget>(&keys::targets_of(&ctx.region, &tg.id))
        .into_iter()
        .filter(|t| !t.value.health.drained(ctx.now))
        .collect();
    let mut rows: Vec<(String, u16, Reported)> = Vec::new();
    if asked.is_empty() {
        for t in &registered {
            rows.push((
                t.value.id.clone(),
                t.value.port,
                t.value.report(ctx.now, in_use),
            ));
        }
    } else {
        for a in &asked {
            let matching: Vec<&RegisteredTarget> = registered
                .iter()
                .map(|t| &t.value)
                .filter(|t| t.id == a.id && a.port.is_none_or(|p| p == t.port))
                .collect();
            if matching.is_empty() {
                rows.push((a.id.clone(), port_of(a, &tg), Reported::not_registered()));
            }
            for t in matching {
                rows.push((t.id.clone(), t.port, t.report(ctx.now, in_use)));
            }
        }
    }
    let mut x = Xml::new();
    x.members(
        "TargetHealthDescriptions",
        &rows,
        |x, (id, port, health)| wt::write(x, id, *port, tg.health_check.port_for(*port), health),
    );
    Ok(x.finish())
}

/// Deletes the targets whose deregistration delay has passed; returns how many.
pub async fn sweep_drained(app: &App) -> Result<usize, ApiError> {
    let now = app.clock.now();
    let mut keys = Vec::new();
    app.db
        .scan_every_region::<RegisteredTarget>("elbv2", "targets", |key, t| {
            if t.health.drained(now) {
                keys.push(key.to_string());
            }
            true
        });
    if keys.is_empty() {
        return Ok(0);
    }
    app.db
        .transact(|db| {
            let mut writes = Writes::new();
            let mut n = 0;
            for key in &keys {
                if let Some(t) = db
                    .get::<RegisteredTarget>(key)
                    .filter(|t| t.value.health.drained(now))
                {
                    writes = writes.expect_unchanged(&t).delete(key);
                    n += 1;
                }
            }
            Ok((writes, n))
        })
        .await
}

/// Removes drained targets every [`DRAIN_SWEEP_INTERVAL`] until the task is dropped.
pub async fn run_drain_sweeper(app: App) {
    crate::background::every(DRAIN_SWEEP_INTERVAL, || async {
        match sweep_drained(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(targets = n, "removed drained targets"),
            Err(e) => tracing::warn!(error = %e, "could not remove drained targets"),
        }
    })
    .await;
}
