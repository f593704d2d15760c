//! Keeps the target groups of services with `loadBalancers` in step with their tasks, as ECS
//! does: a task is registered (its instance's id and the host port bound to the container
//! port) once it is RUNNING; a task the scheduler stops is first deregistered, and stopped
//! only when its targets have drained for the target group's deregistration delay; a task
//! that stopped on its own is deregistered. Targets registered by hand are never touched.
//! A RUNNING task counts as healthy for the rollout only once its targets are healthy
//! ([`not_in_service`]), so the tasks it replaces keep serving until then.

use crate::Ctx;
use crate::db::{Db, Versioned, Writes};
use crate::ecs::services::group_of;
use crate::elbv2::{find_target_group, usage};
use crate::records::keys;
use crate::tally;
use berth_api::ApiError;
use berth_model::container_instance::ContainerInstance;
use berth_model::elbv2::{RegisteredTarget, TargetGroup, TargetHealth, TargetState};
use berth_model::service::Service;
use berth_model::task::{DesiredStatus, Task, TaskStatus, TaskStopCode};
use std::collections::BTreeSet;

/// One `loadBalancers` entry, resolved.
struct Binding {
    group: Versioned<TargetGroup>,
    container_name: String,
    container_port: i32,
}

/// What one pass decided: target and task writes (a task whose targets fail their health
/// checks past the grace period is marked leaving in them), the tasks whose draining is over
/// (to stop now), and the tasks that started leaving for failing health checks (task ARN and
/// reason).
pub struct Step {
    pub writes: Writes,
    pub drained: Vec<String>,
    pub unhealthy: Vec<(String, String)>,
}

fn bindings(db: &Db, ctx: &Ctx, service: &Service) -> Result<Vec<Binding>, ApiError> {
    let mut out = Vec::new();
    for lb in &service.load_balancers {
        let (Some(arn), Some(name), Some(port)) = (
            lb.target_group_arn.as_deref(),
            lb.container_name.clone(),
            lb.container_port,
        ) else {
            continue;
        };
        if let Some(group) = find_target_group(db, ctx, "targetGroupArn", arn)? {
            out.push(Binding {
                group,
                container_name: name,
                container_port: port,
            });
        }
    }
    Ok(out)
}

/// The target a task is for `binding`: its instance's id and the bound host port.
fn target_of(db: &Db, ctx: &Ctx, cluster: &str, task: &Task, b: &Binding) -> Option<(String, u16)> {
    let instance_arn = task.container_instance_arn.as_deref()?;
    let instance_id = instance_arn.rsplit('/').next()?;
    let instance =
        db.get::<ContainerInstance>(&keys::instance(&ctx.region, cluster, instance_id))?;
    let id = instance.value.ec2_instance_id.clone()?;
    let port = task
        .containers
        .iter()
        .find(|c| c.name == b.container_name)?
        .network_bindings
        .iter()
        .find(|n| n.container_port == Some(b.container_port))?
        .host_port?;
    Some((id, u16::try_from(port).ok()?))
}

/// Whether the scheduler asked `task` to go (it drains first, then stops).
pub fn leaving(task: &Task) -> bool {
    task.desired_status == DesiredStatus::Stopped
        || task.last_status == TaskStatus::Stopped
        || task.stopping_at.is_some()
}

/// The service's tasks (their keys) that run but are not in service behind its load balancers
/// yet: RUNNING and meant to run, with a target in a checked target group that a listener
/// forwards to which is not healthy — not registered yet, `initial` or `unhealthy`. ECS counts
/// such a task as healthy for a deployment only once its targets are, so the rollout keeps the
/// tasks it replaces (and their targets in service) until then, and a deployment completes only
/// when its tasks take traffic. A task whose target cannot be known (no instance id or no host
/// port for the container port) never joins the group and is not waited for.
pub fn not_in_service(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    service: &Service,
) -> Result<BTreeSet<String>, ApiError> {
    let mut waiting = BTreeSet::new();
    if service.load_balancers.is_empty() {
        return Ok(waiting);
    }
    let in_use = usage(db, ctx);
    let checked: Vec<Binding> = bindings(db, ctx, service)?
        .into_iter()
        .filter(|b| b.group.value.health_check.enabled && in_use.contains_key(&b.group.value.arn))
        .collect();
    if checked.is_empty() {
        return Ok(waiting);
    }
    let group = group_of(&service.service_name);
    db.scan::<Task>(&keys::tasks(&ctx.region, cluster), |key, task| {
        if task.group.as_deref() != Some(group.as_str())
            || task.last_status != TaskStatus::Running
            || leaving(task)
        {
            return true;
        }
        let healthy = checked.iter().all(|b| {
            target_of(db, ctx, cluster, task, b).is_none_or(|(id, port)| {
                let key = keys::target(&ctx.region, &b.group.value.id, &id, port);
                db.get::<RegisteredTarget>(&key)
                    .is_some_and(|t| t.value.health.state == TargetState::Healthy)
            })
        });
        if !healthy {
            waiting.insert(key.to_string());
        }
        true
    });
    Ok(waiting)
}

/// The pass for one service with load balancers.
pub fn step(db: &Db, ctx: &Ctx, cluster: &str, service: &Service) -> Result<Step, ApiError> {
    let bindings = bindings(db, ctx, service)?;
    let mut writes = Writes::new();
    let mut drained = Vec::new();
    let mut unhealthy = Vec::new();
    if bindings.is_empty() {
        return Ok(Step {
            writes,
            drained,
            unhealthy,
        });
    }
    let grace_ms = i64::from(
        service
            .health_check_grace_period_seconds
            .unwrap_or(0)
            .max(0),
    ) * 1000;
    // ALB drains only target groups that a listener or rule forwards to.
    let in_use = usage(db, ctx);
    let group = group_of(&service.service_name);
    let mut tasks = Vec::new();
    db.scan::<Task>(&keys::tasks(&ctx.region, cluster), |key, t| {
        if t.group.as_deref() == Some(group.as_str()) {
            tasks.push((key.to_string(), t.clone()));
        }
        true
    });
    for (key, task) in &tasks {
        let targets: Vec<(&Binding, String, String, u16)> = bindings
            .iter()
            .filter_map(|b| {
                let (id, port) = target_of(db, ctx, cluster, task, b)?;
                let target_key = keys::target(&ctx.region, &b.group.value.id, &id, port);
                Some((b, target_key, id, port))
            })
            .collect();
        // Failing the load balancer's checks past the grace period: it leaves now, and the
        // rollout replaces it.
        let failing = if leaving(task) || task.last_status != TaskStatus::Running {
            None
        } else {
            let past_grace = task
                .started_at
                .is_none_or(|s| s.millis().saturating_add(grace_ms) <= ctx.now.millis());
            targets
                .iter()
                .filter_map(|(_, k, _, _)| db.get::<RegisteredTarget>(k))
                .find(|t| t.value.health.state == TargetState::Unhealthy && past_grace)
                .map(|t| {
                    format!(
                        "{} in (target-group {})",
                        tally::FAILED_ELB_HEALTH_CHECKS,
                        t.value.target_group_arn
                    )
                })
        };
        if let (Some(reason), Some(current)) = (&failing, db.get::<Task>(key)) {
            let mut gone = current.value.clone();
            gone.stopping_at = Some(ctx.now);
            gone.stop_code = Some(TaskStopCode::ServiceSchedulerInitiated);
            gone.stopped_reason = Some(reason.clone());
            gone.version += 1;
            writes = writes.expect_unchanged(&current).put(key, gone);
            unhealthy.push((task.task_arn.clone(), reason.clone()));
        }
        let is_leaving = leaving(task) || failing.is_some();
        let mut longest_drain = 0;
        for (b, target_key, id, port) in targets {
            let current = db.get::<RegisteredTarget>(&target_key);
            let live = current
                .as_ref()
                .filter(|c| !c.value.health.drained(ctx.now));
            if is_leaving {
                let delay = if in_use.contains_key(&b.group.value.arn) {
                    b.group.value.deregistration_delay_seconds()
                } else {
                    0
                };
                match live {
                    Some(c) if c.value.health.state != TargetState::Draining => {
                        let mut draining = c.value.clone();
                        draining.health = TargetHealth::draining(ctx.now, delay);
                        writes = writes.expect_unchanged(c).put(&target_key, draining);
                        longest_drain = longest_drain.max(delay);
                    }
                    Some(c) => {
                        let left = c
                            .value
                            .health
                            .drain_until
                            .map_or(0, |t| t.millis() - ctx.now.millis());
                        let left = u32::try_from(left.max(0) / 1000 + 1).unwrap_or(u32::MAX);
                        longest_drain = longest_drain.max(left);
                    }
                    None => {}
                }
            } else if task.last_status == TaskStatus::Running && live.is_none() {
                let record = RegisteredTarget {
                    target_group_arn: b.group.value.arn.clone(),
                    id,
                    port,
                    availability_zone: None,
                    registered_at: ctx.now,
                    health: TargetHealth::registered(ctx.now),
                };
                writes = writes
                    .expect(&target_key, current.as_ref().map_or(0, |c| c.revision))
                    .put(&target_key, record);
            }
        }
        // Asked to go and nothing left draining: it may stop now.
        if task.desired_status == DesiredStatus::Running
            && task.last_status != TaskStatus::Stopped
            && (task.stopping_at.is_some() || failing.is_some())
            && longest_drain == 0
        {
            drained.push(key.clone());
        }
    }
    Ok(Step {
        writes,
        drained,
        unhealthy,
    })
}
