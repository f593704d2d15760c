//! Counts the view keeps current as records change, so that describe calls report
//! `runningTasksCount`, `pendingTasksCount`, `registeredContainerInstancesCount` and
//! `activeServicesCount` without scanning the tasks of a cluster.
//!
//! Every record contributes to a few named counters; the view subtracts a record's old
//! contribution and adds its new one on every change. Counter names:
//! - a collection's prefix (the key up to its last `/`), e.g. `/ecs/{region}/tasks/{cluster}/`:
//!   running and pending tasks, active and draining instances or services of the cluster;
//! - a container instance's ARN: the running and pending tasks placed on it;
//! - `{instance ARN}#group:{group}`: those of them in a task group (`service:web`,
//!   `family:web`, …), which placement's spread and `task:group` constraints read;
//! - `{tasks prefix}#started-by:{startedBy}`: a cluster's tasks started by one service
//!   deployment (or any `startedBy`) that are meant to run (not asked to stop);
//!   `…#stopping:{startedBy}` those asked to stop that have not stopped yet; and
//!   `…#failed:{startedBy}` those that stopped failing (failed to start, an essential
//!   container exited, or the service stopped them for failing health checks);
//!   `…#unhealthy:{startedBy}` those meant to run whose health is UNHEALTHY — the service
//!   controller's rollout, health replacement and circuit breaker read them.

use crate::records::Record;
use berth_model::container_instance::ContainerInstanceStatus;
use berth_model::service::ServiceStatus;
use berth_model::task::{DesiredStatus, HealthStatus, Task, TaskStatus, TaskStopCode};
use std::collections::BTreeMap;

const GROUP_MARK: &str = "#group:";
const STARTED_BY_MARK: &str = "#";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub running: i64,
    pub pending: i64,
    pub active: i64,
    pub draining: i64,
    pub failed: i64,
}

impl Tally {
    fn is_zero(&self) -> bool {
        *self == Tally::default()
    }

    pub fn add(&mut self, other: Tally, sign: i64) {
        self.running += sign * other.running;
        self.pending += sign * other.pending;
        self.active += sign * other.active;
        self.draining += sign * other.draining;
        self.failed += sign * other.failed;
    }

    /// The `i32` that the ECS shapes carry.
    pub fn count(n: i64) -> i32 {
        i32::try_from(n).unwrap_or(i32::MAX)
    }
}

/// What one record adds to which counters.
fn contributions(key: &str, record: &Record) -> Vec<(String, Tally)> {
    let collection = || key[..key.rfind('/').map_or(0, |i| i + 1)].to_string();
    match record {
        Record::Task(t) => task_contributions(&collection(), t),
        Record::Instance(i) => match i.status {
            ContainerInstanceStatus::Active => vec![(
                collection(),
                Tally {
                    active: 1,
                    ..Tally::default()
                },
            )],
            ContainerInstanceStatus::Draining => vec![(
                collection(),
                Tally {
                    draining: 1,
                    ..Tally::default()
                },
            )],
            _ => Vec::new(),
        },
        Record::Service(s) => match s.status {
            ServiceStatus::Active => vec![(
                collection(),
                Tally {
                    active: 1,
                    ..Tally::default()
                },
            )],
            ServiceStatus::Draining => vec![(
                collection(),
                Tally {
                    draining: 1,
                    ..Tally::default()
                },
            )],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn task_contributions(collection: &str, t: &Task) -> Vec<(String, Tally)> {
    let one = |f: fn(&mut Tally)| {
        let mut tally = Tally::default();
        f(&mut tally);
        tally
    };
    let started_by = |kind: &str| {
        t.started_by
            .as_ref()
            .map(|s| format!("{collection}{STARTED_BY_MARK}{kind}:{s}"))
    };
    let tally = match t.last_status {
        TaskStatus::Running => one(|t| t.running = 1),
        s if s.is_pending() => one(|t| t.pending = 1),
        _ => {
            let failed = matches!(
                t.stop_code,
                Some(TaskStopCode::TaskFailedToStart | TaskStopCode::EssentialContainerExited)
            ) || t.stopped_reason.as_deref().is_some_and(|r| {
                r.starts_with(FAILED_HEALTH_CHECKS) || r.starts_with(FAILED_ELB_HEALTH_CHECKS)
            });
            return match started_by("failed") {
                Some(name) if failed => vec![(name, one(|t| t.failed = 1))],
                _ => Vec::new(),
            };
        }
    };
    let mut out = vec![(collection.to_string(), tally)];
    if let Some(instance) = &t.container_instance_arn {
        out.push((instance.clone(), tally));
        if let Some(group) = &t.group {
            out.push((format!("{instance}{GROUP_MARK}{group}"), tally));
        }
    }
    // Asked to stop, or draining from a load balancer before it stops.
    let kind = if t.desired_status == DesiredStatus::Stopped || t.stopping_at.is_some() {
        "stopping"
    } else {
        "started-by"
    };
    out.extend(started_by(kind).map(|name| (name, tally)));
    if kind == "started-by" && t.health_status == Some(HealthStatus::Unhealthy) {
        out.extend(started_by("unhealthy").map(|name| (name, tally)));
    }
    out
}

/// The `stoppedReason` of a task the service scheduler stopped for failing its health checks.
pub const FAILED_HEALTH_CHECKS: &str = "Task failed container health checks";
/// … and for failing its load balancer's health checks (followed by the target group).
pub const FAILED_ELB_HEALTH_CHECKS: &str = "Task failed ELB health checks";

/// The counter of a cluster's tasks of `kind` (`started-by`, `stopping`, `failed`) for one
/// `startedBy` value; `tasks_prefix` is the cluster's tasks collection.
pub fn started_by(tasks_prefix: &str, kind: &str, started_by: &str) -> String {
    format!("{tasks_prefix}{STARTED_BY_MARK}{kind}:{started_by}")
}

/// Some instances' counters, as [`Tallies::instances`] reads them.
pub struct InstanceCounters<'a> {
    own: Vec<Tally>,
    /// Every instance's groups, one instance after the other.
    groups: Vec<(&'a str, Tally)>,
    /// Where each instance's groups end in `groups`.
    ends: Vec<usize>,
}

impl<'a> InstanceCounters<'a> {
    fn close(&mut self, own: Tally) {
        self.own.push(own);
        self.ends.push(self.groups.len());
    }

    /// The `n`th instance's own counter and its groups' counters, in name order.
    pub fn of(&self, n: usize) -> (Tally, &[(&'a str, Tally)]) {
        let start = if n == 0 { 0 } else { self.ends[n - 1] };
        (self.own[n], &self.groups[start..self.ends[n]])
    }
}

/// All counters.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tallies {
    counters: BTreeMap<String, Tally>,
}

impl Tallies {
    /// Accounts for `key` changing from `old` to `new` (None: absent).
    pub fn replace(&mut self, key: &str, old: Option<&Record>, new: Option<&Record>) {
        for (record, sign) in [(old, -1), (new, 1)] {
            let Some(record) = record else { continue };
            for (name, tally) in contributions(key, record) {
                let counter = self.counters.entry(name.clone()).or_default();
                counter.add(tally, sign);
                if counter.is_zero() {
                    self.counters.remove(&name);
                }
            }
        }
    }

    pub fn get(&self, name: &str) -> Tally {
        self.counters.get(name).copied().unwrap_or_default()
    }

    /// The task groups on an instance with their counts.
    pub fn groups_on(&self, instance_arn: &str) -> Vec<(String, Tally)> {
        let mut out = Vec::new();
        self.visit_instance(instance_arn, |group, t| out.push((group.to_string(), t)));
        out
    }

    /// An instance's own counter, visiting its task groups with their counts (in name order)
    /// on the way: one walk over the counters, which keep an instance's groups right after it.
    pub fn visit_instance<'a>(
        &'a self,
        instance_arn: &str,
        mut visit_group: impl FnMut(&'a str, Tally),
    ) -> Tally {
        use std::ops::Bound;
        let from = (Bound::Included(instance_arn), Bound::Unbounded);
        let mut own = Tally::default();
        for (name, t) in self
            .counters
            .range::<str, _>(from)
            .take_while(|(k, _)| k.starts_with(instance_arn))
        {
            let rest = &name[instance_arn.len()..];
            if rest.is_empty() {
                own = *t;
            } else if let Some(group) = rest.strip_prefix(GROUP_MARK) {
                visit_group(group, *t);
            }
        }
        own
    }

    /// The counters of the instances `arns`, in their order. When the ARNs ascend (as a
    /// cluster's instances are listed), one walk over the counters reads them all: an instance's
    /// counters sit together, and a cluster's instances side by side; otherwise each is looked
    /// up by itself.
    pub fn instances<'a>(&'a self, arns: &[&str]) -> InstanceCounters<'a> {
        let mut out = InstanceCounters {
            own: Vec::with_capacity(arns.len()),
            groups: Vec::new(),
            ends: Vec::with_capacity(arns.len()),
        };
        if !arns.windows(2).all(|w| w[0] < w[1]) {
            for arn in arns {
                let own = self.visit_instance(arn, |g, t| out.groups.push((g, t)));
                out.close(own);
            }
            return out;
        }
        use std::ops::Bound;
        let Some(first) = arns.first() else {
            return out;
        };
        let mut counters = self
            .counters
            .range::<str, _>((Bound::Included(*first), Bound::Unbounded))
            .peekable();
        for arn in arns {
            let mut own = Tally::default();
            while let Some((name, t)) = counters.peek() {
                if name.as_str() < *arn {
                    counters.next();
                    continue;
                }
                let Some(rest) = name.strip_prefix(*arn) else {
                    break;
                };
                if rest.is_empty() {
                    own = **t;
                } else if let Some(group) = rest.strip_prefix(GROUP_MARK) {
                    out.groups.push((group, **t));
                } else {
                    // Another instance whose ARN extends this one's.
                    break;
                }
                counters.next();
            }
            out.close(own);
        }
        out
    }

    /// Adds every counter of `other` (a delta) to these.
    pub fn merge(&mut self, other: &Tallies) {
        for (name, tally) in &other.counters {
            let counter = self.counters.entry(name.clone()).or_default();
            counter.add(*tally, 1);
            if counter.is_zero() {
                self.counters.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::task::Task;

    fn task(status: TaskStatus, instance: &str) -> Record {
        let mut t: Task = serde_json::from_value(serde_json::json!({
            "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/c/1",
            "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/c",
            "containerInstanceArn": instance,
            "containers": [],
            "createdAt": 0,
            "desiredStatus": "RUNNING",
            "enableExecuteCommand": false,
            "lastStatus": "PENDING",
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
            "version": 1,
        }))
        .unwrap();
        t.last_status = status;
        Record::Task(t)
    }

    #[test]
    fn follows_a_task_through_its_life() {
        let mut t = Tallies::default();
        let key = "/ecs/us-east-1/tasks/c/1";
        let (cluster, instance) = ("/ecs/us-east-1/tasks/c/", "arn:i/1");
        let pending = task(TaskStatus::Pending, instance);
        let running = task(TaskStatus::Running, instance);
        let stopped = task(TaskStatus::Stopped, instance);
        t.replace(key, None, Some(&pending));
        assert_eq!((t.get(cluster).pending, t.get(instance).pending), (1, 1));
        t.replace(key, Some(&pending), Some(&running));
        assert_eq!(
            t.get(cluster),
            Tally {
                running: 1,
                ..Tally::default()
            }
        );
        assert_eq!(t.get(instance).running, 1);
        t.replace(key, Some(&running), Some(&stopped));
        assert_eq!(t.get(cluster), Tally::default());
        t.replace(key, Some(&stopped), None);
        assert!(t.counters.is_empty(), "{:?}", t.counters);
    }

    #[test]
    fn counts_groups_per_instance() {
        let mut t = Tallies::default();
        let grouped = |id: &str, group: &str| {
            let Record::Task(mut task) = task(TaskStatus::Running, "arn:i/1") else {
                unreachable!()
            };
            task.group = Some(group.to_string());
            (format!("/ecs/r/tasks/c/{id}"), Record::Task(task))
        };
        for (key, record) in [
            grouped("1", "service:web"),
            grouped("2", "service:web"),
            grouped("3", "family:job"),
        ] {
            t.replace(&key, None, Some(&record));
        }
        let groups: Vec<(String, i64)> = t
            .groups_on("arn:i/1")
            .into_iter()
            .map(|(g, c)| (g, c.running))
            .collect();
        assert_eq!(
            groups,
            [
                ("family:job".to_string(), 1),
                ("service:web".to_string(), 2)
            ]
        );
        assert!(t.groups_on("arn:i/2").is_empty());
        // An instance whose ARN extends another's is not counted with it.
        let Record::Task(mut longer) = task(TaskStatus::Running, "arn:i/10") else {
            unreachable!()
        };
        longer.group = Some("service:web".to_string());
        t.replace("/ecs/r/tasks/c/4", None, Some(&Record::Task(longer)));
        let mut seen = Vec::new();
        let own = t.visit_instance("arn:i/1", |g, c| seen.push((g.to_string(), c.running)));
        assert_eq!(own.running, 3);
        assert_eq!(
            seen,
            [
                ("family:job".to_string(), 1),
                ("service:web".to_string(), 2)
            ]
        );
        assert_eq!(t.visit_instance("arn:i/10", |_, _| {}).running, 1);

        // Read together, in ascending order (one walk) or not (one lookup each), alike.
        let walked = t.instances(&["arn:i/0", "arn:i/1", "arn:i/10", "arn:i/2"]);
        let looked_up = t.instances(&["arn:i/2", "arn:i/10", "arn:i/1", "arn:i/0"]);
        fn running<'a>(c: &InstanceCounters<'a>, n: usize) -> (i64, Vec<(&'a str, i64)>) {
            let (own, groups) = c.of(n);
            (
                own.running,
                groups.iter().map(|(g, t)| (*g, t.running)).collect(),
            )
        }
        let one = (3, vec![("family:job", 1), ("service:web", 2)]);
        let ten = (1, vec![("service:web", 1)]);
        assert_eq!(running(&walked, 0), (0, vec![]));
        assert_eq!(running(&walked, 1), one);
        assert_eq!(running(&walked, 2), ten);
        assert_eq!(running(&walked, 3), (0, vec![]));
        assert_eq!(running(&looked_up, 2), one);
        assert_eq!(running(&looked_up, 1), ten);
        assert_eq!(t.instances(&[]).own.len(), 0);
        let mut total = Tallies::default();
        total.merge(&t);
        total.merge(&t);
        assert_eq!(total.get("arn:i/1").running, 6);
    }
}
