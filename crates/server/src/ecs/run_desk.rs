//! RunTask calls that wait to be planned at the same time, in one cluster and with the same
//! placement inputs (task definition, group, overrides, strategies, constraints), are planned
//! together: one placement of all their tasks, in the order the calls came, instead of one per
//! call.
//!
//! Placement reads every instance of the cluster, so under load this shares that reading among
//! the calls waiting for it. The outcome is what planning them one after the other gives: each
//! call's tasks are placed after those of the calls before it, with what those took, and a call
//! whose tasks find no room gets ECS's failures as it would alone. Each call keeps its own
//! answer and its own errors (a bad override, a clientToken used with other parameters), its
//! own `startedBy`, tags and creation time, and its own clientToken record. Two calls of one
//! batch with the same clientToken are answered as a retry is: the second gets the first's
//! tasks (or a ConflictException when its parameters differ), and only the first places any.
//!
//! A call queues its order under its key and, when no batch for that key is under way, starts
//! a worker for the key in a task of its own (so a caller that goes away cannot leave the others
//! waiting). The worker plans batches one after the other: each takes every order queued under
//! the key when its plan first runs, and the next starts once it is committed, with the orders
//! that came meanwhile; the worker ends when none are left. While a batch commits, the planning
//! lock is free for other writers (agents' reports among them), and the calls that come in the
//! meantime make the next batch bigger.

use super::resolve::existing_active_cluster;
use super::task_definitions::find_runnable;
use super::tasks::{Targets, TaskParams, place_tasks, task_writes};
use super::tokens;
use crate::db::{Db, Writes};
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::ecs::tasks::RunTaskRequest;
use berth_model::common::Failure;
use berth_model::task::Task;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// One RunTask call, checked, waiting to be planned.
pub struct Order {
    pub ctx: Ctx,
    pub cluster: String,
    pub input: RunTaskRequest,
    pub params: TaskParams,
    pub count: usize,
    /// The clientToken fingerprint of the call's parameters.
    pub fingerprint: String,
}

impl Order {
    /// Orders with equal keys can share a placement.
    fn key(&self) -> String {
        let i = &self.input;
        serde_json::json!([
            self.ctx.region,
            self.cluster,
            i.task_definition,
            i.group,
            format!("{:?}", i.overrides),
            format!("{:?}", self.params.strategies),
            format!("{:?}", self.params.constraints),
        ])
        .to_string()
    }
}

/// The answer to one call: its tasks and the failures of those that found no room.
pub type Outcome = Result<(Vec<Task>, Vec<Failure>), ApiError>;

/// The orders waiting, by key.
#[derive(Default)]
pub struct RunDesk {
    queues: Mutex<HashMap<String, Queue>>,
}

/// The orders of one key that no batch has taken yet; a queue exists while its worker runs.
#[derive(Default)]
struct Queue {
    waiting: Vec<(Order, oneshot::Sender<Outcome>)>,
}

impl RunDesk {
    /// Queues `order` with where to send its outcome; true when the key has no worker, so the
    /// caller must start one.
    fn queue(&self, key: String, order: Order, reply: oneshot::Sender<Outcome>) -> bool {
        let mut queues = self.lock();
        let new = !queues.contains_key(&key);
        queues.entry(key).or_default().waiting.push((order, reply));
        new
    }

    /// Takes every order waiting under `key`.
    fn take(&self, key: &str) -> Vec<(Order, oneshot::Sender<Outcome>)> {
        self.lock()
            .get_mut(key)
            .map(|q| std::mem::take(&mut q.waiting))
            .unwrap_or_default()
    }

    /// Whether orders came for `key` since its last batch took them; when none did, the key's
    /// worker ends and the next order starts another.
    fn more(&self, key: &str) -> bool {
        let mut queues = self.lock();
        let more = queues.get(key).is_some_and(|q| !q.waiting.is_empty());
        if !more {
            queues.remove(key);
        }
        more
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Queue>> {
        self.queues.lock().expect("run desk lock poisoned")
    }
}

/// A key's worker: should it panic, the key is freed, so that its waiting callers are told to
/// retry (their replies are dropped) and later calls start a new worker.
struct Worker<'a> {
    desk: &'a RunDesk,
    key: &'a str,
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.desk.lock().remove(self.key);
        }
    }
}

/// Plans `order` with the others waiting beside it and returns its outcome once its batch is
/// committed and visible.
pub async fn submit(app: &App, order: Order) -> Outcome {
    let key = order.key();
    let (reply, outcome) = oneshot::channel();
    if app.run_desk.queue(key.clone(), order, reply) {
        let app = app.clone();
        tokio::spawn(async move {
            let _worker = Worker {
                desk: &app.run_desk,
                key: &key,
            };
            run_batch(&app, &key).await;
            while app.run_desk.more(&key) {
                run_batch(&app, &key).await;
            }
        });
    }
    outcome.await.unwrap_or_else(|_| {
        Err(ApiError::server(
            "the placement of this call was interrupted; retry the request",
        ))
    })
}

/// Takes the orders queued under `key` when its plan first runs, plans and commits them as one
/// transaction, and answers each.
async fn run_batch(app: &App, key: &str) {
    let mut orders: Option<Vec<Order>> = None;
    let mut replies = Vec::new();
    let planned = app
        .db
        .transact(|db| {
            let orders = orders.get_or_insert_with(|| {
                let (orders, senders): (Vec<_>, Vec<_>) =
                    app.run_desk.take(key).into_iter().unzip();
                replies = senders;
                orders
            });
            plan_batch(db, orders)
        })
        .await;
    match planned {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// The writes of all `orders` (same key) and each one's outcome.
fn plan_batch(db: &Db, orders: &[Order]) -> Result<(Writes, Vec<Outcome>), ApiError> {
    let Some(first) = orders.first() else {
        return Ok((Writes::new(), Vec::new()));
    };
    let (ctx, cluster) = (&first.ctx, first.cluster.as_str());
    // A cluster being deleted concurrently (on any server) makes this conflict.
    let cluster_record = existing_active_cluster(db, ctx, cluster)?;
    let definition = match find_runnable(db, ctx, "taskDefinition", &first.input.task_definition) {
        Ok(d) => d.value,
        Err(e) => return Ok((Writes::new(), vec![Err(e); orders.len()])),
    };
    let mut outcomes: Vec<Option<Outcome>> = vec![None; orders.len()];
    // The orders to place, with the revision their clientToken record is compared with.
    let mut live: Vec<(usize, Option<i64>)> = Vec::new();
    // Orders whose clientToken an earlier order of the batch carries: (order, earlier).
    let mut repeats = Vec::new();
    let mut token_of: HashMap<&str, usize> = HashMap::new();
    for (n, order) in orders.iter().enumerate() {
        let token = order.input.client_token.as_deref();
        if let Some(token) = token {
            if let Some(&earlier) = token_of.get(token) {
                repeats.push((n, earlier));
                continue;
            }
            token_of.insert(token, n);
        }
        let seen = token
            .map(|t| tokens::check(db, &order.ctx, cluster, t, &order.fingerprint))
            .transpose();
        let token_revision = match seen {
            Err(e) => {
                outcomes[n] = Some(Err(e));
                continue;
            }
            Ok(Some(tokens::Seen::Retry(arns))) => {
                let tasks = made_before(db, &order.ctx, cluster, &arns);
                outcomes[n] = Some(Ok((tasks, Vec::new())));
                continue;
            }
            Ok(Some(tokens::Seen::New { revision })) => Some(revision),
            Ok(None) => None,
        };
        match order.params.validate(&definition) {
            Err(e) => outcomes[n] = Some(Err(e)),
            Ok(()) => live.push((n, token_revision)),
        }
    }
    let mut writes = Writes::new();
    if !live.is_empty() {
        let total = live.iter().map(|&(n, _)| orders[n].count).sum();
        let mut none = Vec::new();
        let placed = place_tasks(
            db,
            ctx,
            cluster,
            &definition,
            &first.params,
            total,
            &Targets::Anywhere,
            &mut none,
        );
        match placed {
            Err(e) => {
                for &(n, _) in &live {
                    outcomes[n] = Some(Err(e.clone()));
                }
            }
            Ok(placement) => {
                writes = placement
                    .instance_writes(writes)
                    .expect_unchanged(&cluster_record);
                let mut at = 0;
                for &(n, token_revision) in &live {
                    let order = &orders[n];
                    let mut failures = Vec::new();
                    let tasks = placement.tasks(
                        at..at + order.count,
                        &order.ctx,
                        cluster,
                        &definition,
                        &order.params,
                        &mut failures,
                    );
                    at += order.count;
                    writes = task_writes(&order.ctx, cluster, &tasks, writes);
                    if let (Some(token), Some(revision)) =
                        (&order.input.client_token, token_revision)
                    {
                        writes = tokens::remember(
                            writes,
                            &order.ctx,
                            cluster,
                            token,
                            &order.fingerprint,
                            revision,
                            tasks.iter().map(|t| t.task_arn.clone()).collect(),
                        );
                    }
                    outcomes[n] = Some(Ok((tasks, failures)));
                }
            }
        }
    }
    for (n, earlier) in repeats {
        outcomes[n] = Some(repeat_of(
            &orders[n],
            &orders[earlier],
            outcomes[earlier].clone(),
        ));
    }
    let outcomes = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(ApiError::server("a RunTask call was left unplanned"))))
        .collect();
    Ok((writes, outcomes))
}

/// The tasks an earlier call with the same clientToken made, as they are now.
fn made_before(db: &Db, ctx: &Ctx, cluster: &str, arns: &[String]) -> Vec<Task> {
    arns.iter()
        .filter_map(|arn| {
            let id = arn.rsplit('/').next().unwrap_or_default();
            db.get::<Task>(&keys::task(&ctx.region, cluster, id))
        })
        .map(|t| t.value)
        .collect()
}

/// The answer to `order`, which carries the clientToken of `earlier` in the same batch: the
/// earlier call's answer when the parameters are the same, as a retry gets; a conflict when not.
fn repeat_of(order: &Order, earlier: &Order, outcome: Option<Outcome>) -> Outcome {
    let outcome =
        outcome.unwrap_or_else(|| Err(ApiError::server("a RunTask call was left unplanned")));
    if order.fingerprint == earlier.fingerprint {
        return outcome.map(|(tasks, _)| (tasks, Vec::new()));
    }
    let arns = match &outcome {
        Ok((tasks, _)) => tasks.iter().map(|t| t.task_arn.clone()).collect(),
        Err(_) => Vec::new(),
    };
    Err(ApiError::conflict(
        format!(
            "clientToken '{}' was already used with different parameters",
            order.input.client_token.as_deref().unwrap_or_default()
        ),
        arns,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ecs::dispatch;
    use crate::ecs::tasks::checked_order;
    use serde_json::{Value, json};

    async fn call(app: &App, op: &str, body: Value) -> Value {
        let ctx = Ctx::new(app, "us-east-1".into(), "root".into());
        let out = dispatch(app.clone(), ctx, op, body.to_string().as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{op}: {e}"));
        serde_json::from_slice(&out).unwrap()
    }

    async fn order(app: &App, input: Value) -> Order {
        let ctx = Ctx::new(app, "us-east-1".into(), "root".into());
        checked_order(app, ctx, serde_json::from_value(input).unwrap())
            .await
            .unwrap()
    }

    fn started_by(tasks: &[Task]) -> Vec<&str> {
        tasks
            .iter()
            .map(|t| t.started_by.as_deref().unwrap_or_default())
            .collect()
    }

    /// One batch of calls on a cluster with room for five tasks: each call gets its own
    /// tasks, failures and errors, in order, and a clientToken repeated within the batch
    /// places once.
    #[tokio::test]
    async fn calls_planned_together_each_get_their_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
        let store = crate::open_sqlite(&config).unwrap();
        let (app, _) = App::open(config, store).await.unwrap();
        call(&app, "CreateCluster", json!({})).await;
        let resources = json!([
            {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 500}]);
        call(
            &app,
            "RegisterContainerInstance",
            json!({"totalResources": resources}),
        )
        .await;
        call(
            &app,
            "RegisterTaskDefinition",
            json!({"family": "job", "containerDefinitions": [{"name": "job", "image": "busybox", "memory": 100}]}),
        )
        .await;
        let run = |extra: Value| {
            let mut input = json!({"taskDefinition": "job"});
            input
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            input
        };
        let orders = vec![
            order(&app, run(json!({"startedBy": "a", "count": 2}))).await,
            order(&app, run(json!({"startedBy": "b", "clientToken": "t1"}))).await,
            // Bad input for this call alone.
            order(&app, run(json!({"startedBy": "c", "overrides": {"containerOverrides": [{"name": "nope"}]}}))).await,
            // The same call again, as a client retrying: the same task, placed once.
            order(&app, run(json!({"startedBy": "b", "clientToken": "t1"}))).await,
            // The token with other parameters.
            order(&app, run(json!({"startedBy": "d", "clientToken": "t1"}))).await,
            order(&app, run(json!({"startedBy": "e", "count": 3}))).await,
        ];
        let outcomes = app.db.transact(|db| plan_batch(db, &orders)).await.unwrap();

        let (a, _) = outcomes[0].as_ref().unwrap();
        assert_eq!(started_by(a), ["a", "a"]);
        let (b, _) = outcomes[1].as_ref().unwrap();
        assert_eq!(started_by(b), ["b"]);
        let bad = outcomes[2].as_ref().unwrap_err();
        assert!(bad.message.contains("containerOverrides[0].name"), "{bad}");
        let (again, _) = outcomes[3].as_ref().unwrap();
        assert_eq!(again[0].task_arn, b[0].task_arn);
        let conflict = outcomes[4].as_ref().unwrap_err();
        assert_eq!(conflict.code, "ConflictException");
        // Two of e's three tasks fit after a and b; the third is refused for memory.
        let (e, failures) = outcomes[5].as_ref().unwrap();
        assert_eq!(started_by(e), ["e", "e"]);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].reason.as_deref(), Some("RESOURCE:MEMORY"));

        let listed = call(&app, "ListTasks", json!({})).await;
        assert_eq!(listed["taskArns"].as_array().unwrap().len(), 5);
        let instances = call(&app, "ListContainerInstances", json!({})).await;
        let described = call(
            &app,
            "DescribeContainerInstances",
            json!({"containerInstances": instances["containerInstanceArns"]}),
        )
        .await;
        let memory = described["containerInstances"][0]["remainingResources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "MEMORY")
            .unwrap()["integerValue"]
            .clone();
        assert_eq!(memory, 0);
        // The token remembers the first call's task: a later retry gets it too.
        let retried = order(&app, run(json!({"startedBy": "b", "clientToken": "t1"}))).await;
        let (tasks, _) = submit(&app, retried).await.unwrap();
        assert_eq!(tasks[0].task_arn, b[0].task_arn);
    }
}
