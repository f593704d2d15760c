//! Watches the agents: an instance whose agent has called in (DiscoverPollEndpoint) and then
//! falls silent is marked disconnected after [`DISCONNECTED_AFTER`] (placement skips it), and
//! after [`LOST_AFTER`] its tasks are marked STOPPED, their resources given back, so that the
//! service controller places them elsewhere. If the agent comes back, it finds those tasks no
//! longer desired and stops the stale containers: a service never runs more than it should.
//! Instances registered through the API by hand, whose agent never called in, are not watched.

use crate::db::Writes;
use crate::ecs::tasks::finish;
use crate::records::{Heartbeat, keys};
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_model::container_instance::{ContainerInstance, ContainerInstanceStatus};
use berth_model::task::{DesiredStatus, Task, TaskStatus, TaskStopCode};
use std::time::Duration;

/// Silence after which an instance counts as disconnected.
pub const DISCONNECTED_AFTER: Duration = Duration::from_secs(30);
/// Silence after which its tasks are given up and placed elsewhere.
pub const LOST_AFTER: Duration = Duration::from_secs(90);
/// How often the agents are looked at.
pub const TICK: Duration = Duration::from_secs(2);

/// Checks every watched instance every [`TICK`] until dropped.
pub async fn run(app: App) {
    crate::background::every(TICK, || tick_once(&app)).await;
}

/// One pass over every instance whose agent has called in.
pub async fn tick_once(app: &App) {
    let mut watched = Vec::new();
    app.db
        .scan_every_region::<Heartbeat>("ecs", "heartbeats", |key, h| {
            watched.push((key.to_string(), h.last_seen));
            true
        });
    for (key, last_seen) in watched {
        if let Err(e) = check(app, &key, last_seen).await {
            tracing::warn!(heartbeat = %key, error = %e, "could not check the agent");
        }
    }
}

/// `/ecs/{region}/heartbeats/{cluster}/{id}` → (region, cluster, id).
fn locate(key: &str) -> Option<(String, String, String)> {
    let mut parts = key.trim_start_matches('/').split('/');
    let (_, region, _, cluster, id) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    Some((region.into(), cluster.into(), id.into()))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn check(app: &App, key: &str, last_seen: berth_model::Timestamp) -> Result<(), ApiError> {
    let Some((region, cluster, id)) = locate(key) else {
        return Ok(());
    };
    let ctx = Ctx::internal(app, region);
    let silent = ctx.now.millis().saturating_sub(last_seen.millis());
    if silent <= millis(DISCONNECTED_AFTER) {
        return Ok(());
    }
    let instance_key = keys::instance(&ctx.region, &cluster, &id);
    // Disconnected: compared against the heartbeat, so a call-in in between wins.
    let instance = app
        .db
        .transact(|db| {
            let Some(instance) = db.get::<ContainerInstance>(&instance_key) else {
                return Ok((Writes::new(), None));
            };
            let Some(heartbeat) = db.get::<Heartbeat>(key) else {
                return Ok((Writes::new(), None));
            };
            if heartbeat.value.last_seen != last_seen || !instance.value.agent_connected {
                return Ok((Writes::new(), Some(instance.value)));
            }
            let mut gone = instance.value.clone();
            gone.agent_connected = false;
            gone.version += 1;
            let writes = Writes::new()
                .expect_unchanged(&heartbeat)
                .expect_unchanged(&instance)
                .put(&instance_key, gone.clone());
            Ok((writes, Some(gone)))
        })
        .await?;
    let Some(instance) = instance else {
        return Ok(());
    };
    if silent <= millis(LOST_AFTER)
        || instance.agent_connected
        || instance.status == ContainerInstanceStatus::Inactive
    {
        return Ok(());
    }
    // Lost: give its tasks up, one transaction each (each gives resources back).
    let arn = instance.container_instance_arn.clone();
    let mut on_it = Vec::new();
    app.db
        .scan::<Task>(&keys::tasks(&ctx.region, &cluster), |task_key, t| {
            if t.container_instance_arn.as_deref() == Some(arn.as_str())
                && t.last_status != TaskStatus::Stopped
            {
                on_it.push(task_key.to_string());
            }
            true
        });
    let reason = format!(
        "Task stopped because the agent of its container instance {id} has not been heard from for over {} seconds.",
        LOST_AFTER.as_secs()
    );
    for task_key in on_it {
        app.db
            .transact(|db| {
                let Some(current) = db.get::<Task>(&task_key) else {
                    return Ok((Writes::new(), ()));
                };
                if current.value.last_status == TaskStatus::Stopped {
                    return Ok((Writes::new(), ()));
                }
                let mut task = current.value.clone();
                task.desired_status = DesiredStatus::Stopped;
                task.stop_code
                    .get_or_insert(TaskStopCode::InfrastructureHealth);
                task.stopped_reason.get_or_insert_with(|| reason.clone());
                task.stopping_at.get_or_insert(ctx.now);
                task.version += 1;
                let writes = finish(
                    db,
                    &ctx,
                    &cluster,
                    &mut task,
                    Writes::new().expect_unchanged(&current),
                );
                Ok((writes.put(&task_key, task), ()))
            })
            .await?;
    }
    Ok(())
}
