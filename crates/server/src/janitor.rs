//! Forgets what ECS forgets: a stopped task stays visible to describe-tasks and list-tasks for
//! an hour after it stopped, then it is deleted. Without this the store and the view would
//! grow with every task ever run. It also removes secrets whose recovery window has passed
//! (`crate::secretsmanager::purge`).

use crate::App;
use crate::db::Writes;
use berth_api::ApiError;
use berth_model::task::{Task, TaskStatus};
use std::time::Duration;

/// How long a STOPPED task is kept after `stoppedAt` (ECS keeps them about an hour).
pub const STOPPED_TASK_RETENTION: Duration = Duration::from_secs(3600);
/// How often the janitor looks.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Deletes per transaction, so a large sweep never holds the write path for long.
const CHUNK: usize = 256;

/// Deletes every task that stopped longer than the retention ago; returns how many.
pub async fn sweep(app: &App) -> Result<usize, ApiError> {
    let retention_ms = i64::try_from(STOPPED_TASK_RETENTION.as_millis()).unwrap_or(i64::MAX);
    let cutoff = app.clock.now().millis().saturating_sub(retention_ms);
    let expired = |t: &Task| {
        t.last_status == TaskStatus::Stopped && t.stopped_at.is_some_and(|s| s.millis() < cutoff)
    };
    let mut keys = Vec::new();
    app.db.scan_every_region::<Task>("ecs", "tasks", |key, t| {
        if expired(t) {
            keys.push(key.to_string());
        }
        true
    });
    let mut deleted = 0;
    for chunk in keys.chunks(CHUNK) {
        deleted += app
            .db
            .transact(|db| {
                let mut writes = Writes::new();
                let mut n = 0;
                for key in chunk {
                    if let Some(task) = db.get::<Task>(key).filter(|t| expired(&t.value)) {
                        writes = writes.expect_unchanged(&task).delete(key);
                        n += 1;
                    }
                }
                Ok((writes, n))
            })
            .await?;
    }
    Ok(deleted)
}

/// Sweeps every [`SWEEP_INTERVAL`] until the task is dropped.
pub async fn run(app: App) {
    crate::background::every(SWEEP_INTERVAL, || async {
        match sweep(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tasks = n, "forgot tasks stopped over an hour ago"),
            Err(e) => tracing::warn!(error = %e, "could not delete expired stopped tasks"),
        }
        match crate::secretsmanager::purge(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(secrets = n, "deleted secrets past their recovery window"),
            Err(e) => {
                tracing::warn!(error = %e, "could not delete secrets past their recovery window")
            }
        }
    })
    .await;
}
