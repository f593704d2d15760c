//! The service controller: keeps every service at its desired count and carries its
//! deployments through, inside the deployment bounds, with the circuit breaker. A DAEMON
//! service is the same machine with its desired count set, each tick, to the instances that
//! may run it, and a distinctInstance constraint on its placements.
//!
//! Each tick reconciles every ACTIVE or DRAINING service in two kinds of transaction:
//! 1. one plan that reads the service's task counters (per deployment: meant to run, still
//!    stopping, failed), takes one [`rollout::step`], places the tasks the primary starts
//!    (through [`berth_scheduler`]), and updates the deployments, rollout states and events;
//! 2. one transaction per task it stops, because each stop gives resources back to an
//!    instance and two releases must not be computed from one read.
//!
//! Behind a load balancer a RUNNING task counts as running (healthy) only once its targets are
//! healthy ([`service_targets::not_in_service`]); until then it counts as pending.
//!
//! A task that stops on its own leaves the counters, so the next tick replaces it. When the
//! primary runs the desired count and the older deployments have no task left, they are
//! removed and the primary's rollout is COMPLETED. Runs on the server that leads (today: the
//! only one).

use crate::clock::new_id;
use crate::db::{Db, Versioned, Writes};
use crate::ecs::candidates::cluster_candidates;
use crate::ecs::services::group_of;
use crate::ecs::task_definitions::parse_reference;
use crate::ecs::tasks::{Targets, TaskParams, plan_tasks, request_stop};
use crate::records::{StoredTaskDefinition, keys};
use crate::service_targets;
use crate::tally::{self, Tally};
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_model::container_instance::{ContainerInstance, ContainerInstanceStatus, Resources};
use berth_model::placement::{Constraint, check_constraints, check_strategies};
use berth_model::service::{
    Deployment, DeploymentRolloutState, DeploymentStatus, SchedulingStrategy, Service,
    ServiceEvent, ServiceStatus,
};
use berth_model::task::{DesiredStatus, HealthStatus, Task, TaskStatus, TaskStopCode};
use berth_scheduler::rollout::{self, Bounds, DeploymentTasks};
use berth_scheduler::{Request, place_on};
use std::collections::BTreeSet;
use std::time::Duration;

/// How often every service is looked at.
pub const TICK: Duration = Duration::from_millis(250);
/// The most events a service keeps (newest first), as ECS shows.
const MAX_EVENTS: usize = 100;

/// Reconciles every service every [`TICK`] until dropped.
pub async fn run(app: App) {
    crate::background::every(TICK, || tick_once(&app)).await;
}

/// One pass over every ACTIVE or DRAINING service.
pub async fn tick_once(app: &App) {
    let mut services = Vec::new();
    app.db
        .scan_every_region::<Service>("ecs", "services", |key, s| {
            if matches!(s.status, ServiceStatus::Active | ServiceStatus::Draining) {
                services.push(key.to_string());
            }
            true
        });
    for key in services {
        if let Err(e) = reconcile(app, &key).await {
            tracing::warn!(service = %key, error = %e, "could not reconcile the service");
        }
    }
}

/// Where a service lives: `/ecs/{region}/services/{cluster}/{name}`.
fn locate(key: &str) -> Option<(String, String)> {
    let mut parts = key.trim_start_matches('/').split('/');
    let (_, region, _, cluster) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((region.to_string(), cluster.to_string()))
}

async fn reconcile(app: &App, key: &str) -> Result<(), ApiError> {
    let (region, cluster) =
        locate(key).ok_or_else(|| ApiError::server(format!("bad service key {key}")))?;
    let ctx = Ctx::internal(app, region);
    let stops = app.db.transact(|db| plan(db, &ctx, &cluster, key)).await?;
    let balanced = app
        .db
        .get::<Service>(key)
        .is_some_and(|s| !s.value.load_balancers.is_empty());
    for (task_key, reason) in stops {
        stop_task(app, &ctx, &cluster, &task_key, &reason, balanced).await?;
    }
    if balanced {
        // Targets follow the tasks; tasks whose targets have drained stop now.
        let drained = app
            .db
            .transact(|db| match db.get::<Service>(key) {
                Some(service) => {
                    let step = service_targets::step(db, &ctx, &cluster, &service.value)?;
                    Ok((step.writes, (step.drained, step.unhealthy)))
                }
                None => Ok((Writes::new(), (Vec::new(), Vec::new()))),
            })
            .await?;
        let (drained, failing) = drained;
        if !failing.is_empty() {
            // ECS's event for each: "(service web) (task …) failed ELB health checks in …".
            app.db
                .transact(|db| {
                    let Some(current) = db.get::<Service>(key) else {
                        return Ok((Writes::new(), ()));
                    };
                    let mut service = current.value.clone();
                    let name = service.service_name.clone();
                    for (arn, reason) in &failing {
                        let detail = reason
                            .strip_prefix("Task failed ")
                            .unwrap_or(reason.as_str());
                        event(
                            &mut service,
                            &ctx,
                            format!("(service {name}) (task {}) failed {detail}.", short_id(arn)),
                        );
                    }
                    Ok((
                        Writes::new().expect_unchanged(&current).put(key, service),
                        (),
                    ))
                })
                .await?;
        }
        for task_key in drained {
            let reason = app
                .db
                .get::<Task>(&task_key)
                .and_then(|t| t.value.stopped_reason)
                .unwrap_or_else(|| "Task stopped by the service scheduler.".into());
            stop_task(app, &ctx, &cluster, &task_key, &reason, false).await?;
        }
    }
    Ok(())
}

/// Stops one task for the scheduler, in its own transaction (it gives resources back). A
/// RUNNING task of a service behind a load balancer (`drain_first`) is only marked as leaving:
/// its targets drain first, and [`service_targets::step`] says when it may stop.
async fn stop_task(
    app: &App,
    ctx: &Ctx,
    cluster: &str,
    task_key: &str,
    reason: &str,
    drain_first: bool,
) -> Result<(), ApiError> {
    app.db
        .transact(|db| match db.get::<Task>(task_key) {
            Some(task) if task.value.desired_status != DesiredStatus::Stopped => {
                if drain_first
                    && task.value.last_status == TaskStatus::Running
                    && task.value.stopping_at.is_none()
                {
                    let mut leaving = task.value.clone();
                    leaving.stopping_at = Some(ctx.now);
                    leaving.stop_code = Some(TaskStopCode::ServiceSchedulerInitiated);
                    leaving.stopped_reason = Some(reason.to_string());
                    leaving.version += 1;
                    return Ok((
                        Writes::new().expect_unchanged(&task).put(task_key, leaving),
                        (),
                    ));
                }
                let (writes, _) = request_stop(
                    db,
                    ctx,
                    cluster,
                    &task,
                    TaskStopCode::ServiceSchedulerInitiated,
                    reason,
                );
                Ok((writes, ()))
            }
            _ => Ok((Writes::new(), ())),
        })
        .await
}

/// The counters of one deployment's tasks.
struct Counts {
    meant_to_run: DeploymentTasks,
    stopping: i32,
    failed: i32,
}

fn counts(db: &Db, tasks_prefix: &str, deployment: &str) -> Counts {
    let count = |t: Tally| i32::try_from(t.running + t.pending).unwrap_or(i32::MAX);
    let run = db.tally(&tally::started_by(tasks_prefix, "started-by", deployment));
    Counts {
        meant_to_run: DeploymentTasks {
            running: Tally::count(run.running),
            pending: Tally::count(run.pending),
        },
        stopping: count(db.tally(&tally::started_by(tasks_prefix, "stopping", deployment))),
        failed: Tally::count(
            db.tally(&tally::started_by(tasks_prefix, "failed", deployment))
                .failed,
        ),
    }
}

fn event(service: &mut Service, ctx: &Ctx, message: String) {
    service.events.insert(
        0,
        ServiceEvent {
            id: new_id(),
            created_at: ctx.now,
            message,
        },
    );
    service.events.truncate(MAX_EVENTS);
}

/// Adds an event unless the newest one already says the same.
fn event_once(service: &mut Service, ctx: &Ctx, message: String) {
    if service.events.first().map(|e| &e.message) != Some(&message) {
        event(service, ctx, message);
    }
}

fn short_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

type Stops = Vec<(String, String)>;

/// The service's next step: writes for the service and the tasks it starts; the tasks to stop.
fn plan(db: &Db, ctx: &Ctx, cluster: &str, key: &str) -> Result<(Writes, Stops), ApiError> {
    let Some(current) = db.get::<Service>(key) else {
        return Ok((Writes::new(), Vec::new()));
    };
    let mut service = current.value.clone();
    let name = service.service_name.clone();
    let tasks_prefix = keys::tasks(&ctx.region, cluster);
    let daemon = service.scheduling_strategy == SchedulingStrategy::Daemon;
    let desired = if service.status == ServiceStatus::Draining {
        0
    } else if daemon {
        // One task on every instance that may take one, including instances that just joined.
        let eligible = eligible_instances(db, ctx, cluster, &service)?;
        service.desired_count = eligible;
        if let Some(primary) = service.deployments.first_mut() {
            primary.desired_count = eligible;
        }
        eligible
    } else {
        service.desired_count
    };
    let config = service
        .deployment_configuration
        .clone()
        .unwrap_or_default()
        .resolved(service.scheduling_strategy);
    let (min_healthy, max_total) = config.task_bounds(desired);
    let mut writes = Writes::new();
    let mut stops = Vec::new();

    // Behind a load balancer a RUNNING task counts as running (healthy) only once its targets
    // are healthy; until then it counts as pending.
    let waiting = service_targets::not_in_service(db, ctx, cluster, &service)?;
    let failing = stop_unhealthy(db, ctx, &tasks_prefix, &mut service, &mut stops, &waiting);
    trip_circuit_breaker(db, ctx, &tasks_prefix, &mut service, desired, &config);
    // Counted after the breaker, which may have put a rollback deployment first.
    let mut all: Vec<Counts> = service
        .deployments
        .iter()
        .map(|d| counts(db, &tasks_prefix, &d.id))
        .collect();
    for key in &waiting {
        let Some(task) = db.get::<Task>(key) else {
            continue;
        };
        let deployment = service
            .deployments
            .iter()
            .position(|d| task.value.started_by.as_deref() == Some(d.id.as_str()));
        if let Some(c) = deployment.and_then(|i| all.get_mut(i)) {
            c.meant_to_run.running -= 1;
            c.meant_to_run.pending += 1;
        }
    }
    // The tasks stopped for failing health checks are stopping from now on.
    for (deployment, running) in failing {
        if let Some(i) = service.deployments.iter().position(|d| d.id == deployment) {
            let c = &mut all[i];
            if running {
                c.meant_to_run.running -= 1;
            } else {
                c.meant_to_run.pending -= 1;
            }
            c.stopping += 1;
        }
    }
    let stopping: i32 = all.iter().map(|c| c.stopping).sum();
    let mut tasks: Vec<DeploymentTasks> = all.iter().map(|c| c.meant_to_run).collect();
    // Tasks on DRAINING instances move: they drain like an older deployment, and the primary
    // replaces them elsewhere.
    let draining = draining_instances(db, ctx, cluster, &group_of(&name));
    let live = if draining.is_empty() {
        Vec::new()
    } else {
        live_tasks(db, &tasks_prefix, &service, &draining, &waiting)
    };
    let mut moving = DeploymentTasks::default();
    for t in live.iter().filter(|t| t.on_draining) {
        let slot = if t.running {
            &mut moving.running
        } else {
            &mut moving.pending
        };
        *slot += 1;
        if let Some(d) = tasks.get_mut(t.deployment) {
            if t.running {
                d.running -= 1;
            } else {
                d.pending -= 1;
            }
        }
    }
    tasks.push(moving);
    let may_start = service.status == ServiceStatus::Active
        && service
            .deployments
            .first()
            .is_some_and(|d| d.rollout_state != Some(DeploymentRolloutState::Failed));
    let step = rollout::step(
        Bounds {
            desired,
            min_healthy,
            max_total,
        },
        &tasks,
        stopping,
        may_start,
    );

    // Stops: pending tasks first, then those on the instances that run the most of this
    // service, so that spread stays balanced.
    let mut stopped_arns = Vec::new();
    if step.stop.iter().any(|s| s.total() > 0) {
        let live = if live.is_empty() {
            live_tasks(db, &tasks_prefix, &service, &draining, &waiting)
        } else {
            live
        };
        let moving_slot = service.deployments.len();
        for (slot, stop) in step.stop.iter().enumerate() {
            let candidates = live.iter().filter(|t| {
                if slot == moving_slot {
                    t.on_draining
                } else {
                    !t.on_draining && t.deployment == slot
                }
            });
            for t in choose(candidates, *stop) {
                stopped_arns.push(t.arn.clone());
                stops.push((
                    t.key.clone(),
                    format!("Task stopped by the service scheduler of service {name}."),
                ));
            }
        }
    }
    if !stopped_arns.is_empty() {
        let ids: Vec<String> = stopped_arns
            .iter()
            .map(|a| format!("(task {})", short_id(a)))
            .collect();
        event(
            &mut service,
            ctx,
            format!(
                "(service {name}) has stopped {} running tasks: {}.",
                ids.len(),
                ids.join(" ")
            ),
        );
    }

    // Starts: placed now, in this transaction.
    if step.start > 0 {
        let started = start_tasks(db, ctx, cluster, &service, step.start)?;
        writes = started.writes;
        if let Some(message) = started.unplaced {
            event_once(&mut service, ctx, message);
        }
        if !started.arns.is_empty() {
            let ids: Vec<String> = started
                .arns
                .iter()
                .map(|a| format!("(task {})", short_id(a)))
                .collect();
            event(
                &mut service,
                ctx,
                format!(
                    "(service {name}) has started {} tasks: {}.",
                    ids.len(),
                    ids.join(" ")
                ),
            );
        }
    }

    settle_deployments(ctx, &mut service, &all, &step, desired);
    if service == current.value {
        return Ok((writes, stops));
    }
    service.deployments.iter_mut().for_each(|d| {
        d.updated_at = ctx.now;
    });
    Ok((writes.expect_unchanged(&current).put(key, service), stops))
}

/// The task definition of the service's primary deployment, if it still exists.
fn primary_definition(
    db: &Db,
    ctx: &Ctx,
    service: &Service,
) -> Result<Option<Versioned<StoredTaskDefinition>>, ApiError> {
    let Some(primary) = service.deployments.first() else {
        return Ok(None);
    };
    let (family, revision) = parse_reference(ctx, "taskDefinition", &primary.task_definition)?;
    Ok(revision.and_then(|r| {
        db.get::<StoredTaskDefinition>(&keys::task_definition(&ctx.region, &family, r))
    }))
}

/// How many instances a DAEMON service runs on: ACTIVE, connected, with the attributes its task
/// definition requires, and meeting its placement constraints — placement's own checks.
fn eligible_instances(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    service: &Service,
) -> Result<i32, ApiError> {
    let mut candidates = cluster_candidates(db, &ctx.region, cluster)?;
    candidates.retain(|i| i.status == ContainerInstanceStatus::Active);
    let candidates = candidates.all();
    // Without its task definition no task can start (the service says so); the instances count
    // as they did, so that the tasks already running stay.
    let required_attributes = primary_definition(db, ctx, service)?
        .map(|d| d.value.definition.requires_attributes)
        .unwrap_or_default();
    let request = Request {
        demand: Resources::new(0, 0),
        group: group_of(&service.service_name),
        strategies: Vec::new(),
        constraints: check_constraints("placementConstraints", &service.placement_constraints)?,
        required_attributes,
        seed: 0,
    };
    let targets: Vec<usize> = (0..candidates.len()).collect();
    let plan = place_on(&candidates, &request, &targets);
    Ok(plan.placements.iter().filter(|p| p.is_ok()).count() as i32)
}

/// A task of the service that is meant to run, as the stop choice sees it.
struct Live {
    key: String,
    arn: String,
    /// Index of its deployment in the service's list (past the end: none of them).
    deployment: usize,
    /// RUNNING, and in service behind the service's load balancers if it has any.
    running: bool,
    on_draining: bool,
    instance: String,
}

/// The DRAINING instances of the cluster that still run tasks of `group`.
fn draining_instances(db: &Db, ctx: &Ctx, cluster: &str, group: &str) -> Vec<String> {
    db.list::<ContainerInstance>(&keys::instances(&ctx.region, cluster))
        .into_iter()
        .filter(|i| i.value.status == ContainerInstanceStatus::Draining)
        .map(|i| i.value.container_instance_arn)
        .filter(|arn| db.task_groups_on(arn).get(group).is_some_and(|n| *n > 0))
        .collect()
}

/// The service's tasks that are meant to run (one scan of the cluster's tasks); those in
/// `waiting` (RUNNING, not in service behind the load balancer yet) count as pending.
fn live_tasks(
    db: &Db,
    tasks_prefix: &str,
    service: &Service,
    draining: &[String],
    waiting: &BTreeSet<String>,
) -> Vec<Live> {
    let group = group_of(&service.service_name);
    let mut out = Vec::new();
    db.scan::<Task>(tasks_prefix, |key, t| {
        if t.group.as_deref() == Some(group.as_str())
            && t.desired_status != DesiredStatus::Stopped
            && t.last_status != TaskStatus::Stopped
            && t.stopping_at.is_none()
        {
            let instance = t.container_instance_arn.clone().unwrap_or_default();
            out.push(Live {
                key: key.to_string(),
                arn: t.task_arn.clone(),
                deployment: service
                    .deployments
                    .iter()
                    .position(|d| t.started_by.as_deref() == Some(d.id.as_str()))
                    .unwrap_or(usize::MAX),
                running: t.last_status == TaskStatus::Running && !waiting.contains(key),
                on_draining: draining.contains(&instance),
                instance,
            });
        }
        true
    });
    out
}

/// Picks `stop.pending` pending and `stop.running` running tasks, each time from the instance
/// that runs the most of them, so what stays is spread as evenly as it can be.
fn choose<'a>(candidates: impl Iterator<Item = &'a Live>, stop: DeploymentTasks) -> Vec<&'a Live> {
    let mut left: Vec<&Live> = candidates.collect();
    left.sort_by(|a, b| a.key.cmp(&b.key));
    let mut per_instance: std::collections::HashMap<&str, usize> = Default::default();
    for t in &left {
        *per_instance.entry(t.instance.as_str()).or_default() += 1;
    }
    let mut chosen = Vec::new();
    for (running, n) in [(false, stop.pending), (true, stop.running)] {
        for _ in 0..n {
            let best = left
                .iter()
                .enumerate()
                .filter(|(_, t)| t.running == running)
                .max_by_key(|(i, t)| (per_instance[t.instance.as_str()], std::cmp::Reverse(*i)))
                .map(|(i, _)| i);
            let Some(i) = best else { break };
            let t = left.remove(i);
            if let Some(n) = per_instance.get_mut(t.instance.as_str()) {
                *n -= 1;
            }
            chosen.push(t);
        }
    }
    chosen
}

/// Stops the tasks whose health checks fail, once past the service's
/// `healthCheckGracePeriodSeconds` from their start; the step replaces them, and they count
/// as failed for the circuit breaker. Returns each one's deployment and whether it counted as
/// running (RUNNING and not in `waiting`, see [`live_tasks`]).
fn stop_unhealthy(
    db: &Db,
    ctx: &Ctx,
    tasks_prefix: &str,
    service: &mut Service,
    stops: &mut Stops,
    waiting: &BTreeSet<String>,
) -> Vec<(String, bool)> {
    let grace_ms = i64::from(
        service
            .health_check_grace_period_seconds
            .unwrap_or(0)
            .max(0),
    ) * 1000;
    let name = service.service_name.clone();
    let mut failing = Vec::new();
    for d in &service.deployments {
        let unhealthy = db.tally(&tally::started_by(tasks_prefix, "unhealthy", &d.id));
        if unhealthy.running + unhealthy.pending == 0 {
            continue;
        }
        db.scan::<Task>(tasks_prefix, |key, t| {
            let past_grace = t
                .started_at
                .is_none_or(|s| s.millis().saturating_add(grace_ms) <= ctx.now.millis());
            if t.started_by.as_deref() == Some(d.id.as_str())
                && t.desired_status != DesiredStatus::Stopped
                && t.stopping_at.is_none()
                && t.health_status == Some(HealthStatus::Unhealthy)
                && past_grace
            {
                failing.push((
                    key.to_string(),
                    t.task_arn.clone(),
                    d.id.clone(),
                    t.last_status == TaskStatus::Running && !waiting.contains(key),
                ));
            }
            true
        });
    }
    let mut out = Vec::new();
    for (key, arn, deployment, running) in failing {
        event(
            service,
            ctx,
            format!(
                "(service {name}) (task {}) failed container health checks.",
                short_id(&arn)
            ),
        );
        stops.push((key, tally::FAILED_HEALTH_CHECKS.to_string()));
        out.push((deployment, running));
    }
    out
}

/// Marks the primary FAILED when its failed tasks reach the threshold, and rolls back to the
/// last completed deployment when the breaker says so.
fn trip_circuit_breaker(
    db: &Db,
    ctx: &Ctx,
    tasks_prefix: &str,
    service: &mut Service,
    desired: i32,
    config: &berth_model::service::DeploymentConfiguration,
) {
    if !config.circuit_breaker_enabled() {
        return;
    }
    let Some(primary) = service.deployments.first() else {
        return;
    };
    if primary.rollout_state != Some(DeploymentRolloutState::InProgress) {
        return;
    }
    let failed = counts(db, tasks_prefix, &primary.id).failed;
    let threshold = config
        .deployment_circuit_breaker
        .as_ref()
        .map_or(3, |b| b.failed_task_threshold(desired));
    if failed < threshold {
        return;
    }
    let name = service.service_name.clone();
    let failed_id = primary.id.clone();
    let reason = format!(
        "ECS deployment circuit breaker: tasks failed to start. {failed} tasks failed, the threshold is {threshold}."
    );
    service.deployments[0].rollout_state = Some(DeploymentRolloutState::Failed);
    service.deployments[0].rollout_state_reason = Some(reason.clone());
    event(
        service,
        ctx,
        format!("(service {name}) (deployment {failed_id}) deployment failed: {reason}"),
    );
    let target = service.deployments[1..]
        .iter()
        .find(|d| d.rollout_state == Some(DeploymentRolloutState::Completed))
        .cloned();
    if let (true, Some(target)) = (config.rollback_enabled(), target) {
        let mut rollback = Deployment::new(
            crate::ecs::services::new_deployment_id(),
            target.task_definition.clone(),
            desired,
            ctx.now,
        );
        rollback.launch_type = target.launch_type;
        rollback.network_configuration = target.network_configuration.clone();
        rollback.rollout_state_reason = Some(format!(
            "ECS deployment circuit breaker: rolling back to deploymentId {}.",
            target.id
        ));
        service.deployments[0].status = DeploymentStatus::Active;
        service.task_definition = Some(target.task_definition.clone());
        event(
            service,
            ctx,
            format!(
                "(service {name}) (deployment {failed_id}) deployment failed: rolling back to deployment {}.",
                target.id
            ),
        );
        service.deployments.insert(0, rollback);
    }
}

/// What starting tasks did: their writes, the ARNs placed, and why the rest could not be.
struct Started {
    writes: Writes,
    arns: Vec<String>,
    unplaced: Option<String>,
}

/// Places `count` tasks of the primary deployment.
fn start_tasks(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    service: &Service,
    count: i32,
) -> Result<Started, ApiError> {
    let primary = &service.deployments[0];
    let name = &service.service_name;
    let unplaceable = |why: String| Started {
        writes: Writes::new(),
        arns: Vec::new(),
        unplaced: Some(format!(
            "(service {name}) was unable to place a task because no container instance met all of its requirements. {why}"
        )),
    };
    let Some(definition) = primary_definition(db, ctx, service)? else {
        return Ok(unplaceable(format!(
            "Reason: the task definition {} no longer exists.",
            primary.task_definition
        )));
    };
    let mut strategies = check_strategies("placementStrategy", &service.placement_strategy)?;
    if strategies.is_empty() {
        strategies = berth_scheduler::service_default();
    }
    let mut constraints =
        check_constraints("placementConstraints", &service.placement_constraints)?;
    if service.scheduling_strategy == SchedulingStrategy::Daemon {
        // A daemon runs once per instance: an instance still running the old revision's task
        // takes the new one only once that has stopped (maximumPercent 100).
        constraints.push(Constraint::DistinctInstance);
    }
    let params = TaskParams {
        group: Some(group_of(name)),
        started_by: Some(primary.id.clone()),
        overrides: None,
        tags: Vec::new(),
        enable_execute_command: service.enable_execute_command,
        strategies,
        constraints,
    };
    let planned = plan_tasks(
        db,
        ctx,
        cluster,
        &definition.value,
        &params,
        usize::try_from(count).unwrap_or(0),
        &Targets::Anywhere,
    );
    let (writes, tasks, failures) = match planned {
        Ok(planned) => planned,
        // No instance at all is not an error for a service: it waits for one.
        Err(e) if e.code == "InvalidParameterException" => {
            return Ok(unplaceable(format!("Reason: {}", e.message)));
        }
        Err(e) => return Err(e),
    };
    let unplaced = failures.first().filter(|_| tasks.len() < count as usize).map(|f| {
        let instance = f.arn.as_deref().map_or("", short_id);
        let reason = f.reason.as_deref().unwrap_or_default();
        format!(
            "(service {name}) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance {instance}) {}.",
            shortfall(reason)
        )
    });
    Ok(Started {
        writes,
        arns: tasks.into_iter().map(|t| t.task_arn).collect(),
        unplaced,
    })
}

/// Deployment bookkeeping after a step: older deployments with no task left go; a primary
/// that runs the desired count with nothing else left is COMPLETED; steady state is told once.
fn settle_deployments(
    ctx: &Ctx,
    service: &mut Service,
    all: &[Counts],
    step: &rollout::Step,
    desired: i32,
) {
    let name = service.service_name.clone();
    let mut index = 0;
    service.deployments.retain(|_| {
        let i = index;
        index += 1;
        i == 0
            || all
                .get(i)
                .is_none_or(|c| c.meant_to_run.total() > 0 || c.stopping > 0)
    });
    let nothing_stopping = all.iter().all(|c| c.stopping == 0);
    let Some(primary) = all.first().map(|c| c.meant_to_run) else {
        return;
    };
    if service.status == ServiceStatus::Draining {
        if service.deployments.len() == 1 && primary.total() == 0 && nothing_stopping {
            service.status = ServiceStatus::Inactive;
        }
        return;
    }
    let settled = service.deployments.len() == 1
        && step.is_idle()
        && primary.running == desired
        && primary.pending == 0
        && nothing_stopping;
    if !settled {
        return;
    }
    let deployment = &mut service.deployments[0];
    if deployment.rollout_state == Some(DeploymentRolloutState::InProgress) {
        let id = deployment.id.clone();
        deployment.rollout_state = Some(DeploymentRolloutState::Completed);
        deployment.rollout_state_reason = Some(format!("ECS deployment {id} completed."));
        event(
            service,
            ctx,
            format!("(service {name}) (deployment {id}) deployment completed."),
        );
    }
    event_once(
        service,
        ctx,
        format!("(service {name}) has reached a steady state."),
    );
}

/// ECS's words for why the closest instance could not take a task.
fn shortfall(reason: &str) -> &'static str {
    match reason {
        "RESOURCE:MEMORY" => "has insufficient memory available",
        "RESOURCE:CPU" => "has insufficient CPU units available",
        "RESOURCE:PORTS" | "RESOURCE:PORTS_UDP" => "is already using a port required by your task",
        "AGENT" => "has an agent that is not connected",
        _ => "does not match a placement constraint or required attribute",
    }
}
