//! The scheduler's view of a cluster's container instances: for each, a [`Candidate`] with what
//! it has left, its attributes and how many unstopped tasks of each group it runs.
//!
//! Placement asks for every instance of the cluster on every call, so building them must not
//! cost what the instances hold: a candidate is derived once per revision of its instance record
//! and kept in the view's [`crate::memo`], and used again for as long as the instance's task
//! counts (the view's tallies plus the writes of plans not yet committed, never a scan of the
//! tasks) are still the ones it was built with. A call then costs a pointer, a map lookup and
//! a comparison of a few counters per instance.

use super::instances::instance_subject;
use crate::db::{Db, Shared, Versioned};
use crate::tally::Tally;
use berth_api::ApiError;
use berth_model::container_instance::ContainerInstance;
use berth_scheduler::Candidate;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Query-language subjects the scheduler reads from the instance as ListContainerInstances'
/// `--filter` does (attributes, `ec2InstanceId`, `agentConnected` and `task:group` it knows
/// itself).
const INSTANCE_SUBJECTS: [&str; 5] = [
    "registeredAt",
    "agentVersion",
    "runningTasksCount",
    "pendingTasksCount",
    "status",
];

/// An instance read for placement: its record as the view holds it.
pub type Instance = Versioned<Shared<ContainerInstance>>;

/// The candidates of some instances, in their order.
pub struct Candidates(Vec<Arc<Built>>);

impl Candidates {
    /// The candidates, as the scheduler takes them.
    pub fn all(&self) -> Vec<&Candidate> {
        self.0.iter().map(|b| &b.candidate).collect()
    }

    pub fn get(&self, index: usize) -> &Candidate {
        &self.0[index].candidate
    }
}

/// A candidate and the task counts it was built with.
struct Built {
    load: Load,
    candidate: Candidate,
}

/// What an instance runs: its running and pending tasks, and the unstopped ones per group (in
/// name order, only groups with some).
#[derive(Debug, Default, PartialEq)]
struct Load<S = String> {
    running: i64,
    pending: i64,
    groups: Vec<(S, i64)>,
}

impl Load<&str> {
    /// The instance's counts: the view's (its own counter and its groups', from the tallies)
    /// with the overlay's changes (the same, from the overlay's tallies) added.
    fn read<'t>(
        (own, groups): (Tally, &[(&'t str, Tally)]),
        overlay: Option<(Tally, &[(&'t str, Tally)])>,
        into: &mut Load<&'t str>,
    ) {
        into.groups.clear();
        let mut count =
            |group: &'t str, t: Tally| match into.groups.iter_mut().find(|g| g.0 == group) {
                Some(g) => g.1 += t.running + t.pending,
                None => into.groups.push((group, t.running + t.pending)),
            };
        for (group, t) in groups {
            count(group, *t);
        }
        let mut tally = own;
        if let Some((changed, groups)) = overlay {
            tally.add(changed, 1);
            for (group, t) in groups {
                count(group, *t);
            }
            into.groups.sort_unstable_by_key(|g| g.0);
        }
        into.groups.retain(|g| g.1 > 0);
        (into.running, into.pending) = (tally.running, tally.pending);
    }

    fn matches(&self, built: &Load) -> bool {
        self.running == built.running
            && self.pending == built.pending
            && self.groups.len() == built.groups.len()
            && self
                .groups
                .iter()
                .zip(&built.groups)
                .all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }

    fn owned(&self) -> Load {
        Load {
            running: self.running,
            pending: self.pending,
            groups: self
                .groups
                .iter()
                .map(|(g, n)| (g.to_string(), *n))
                .collect(),
        }
    }
}

/// The candidates of `instances`, in their order.
pub fn candidates(db: &Db, instances: &[Instance]) -> Result<Candidates, ApiError> {
    let memo = db.memo();
    db.read_tallies(|tallies, overlay| {
        let arns: Vec<&str> = instances
            .iter()
            .map(|i| i.value.container_instance_arn.as_str())
            .collect();
        let counters = tallies.instances(&arns);
        let changes = overlay.map(|o| o.instances(&arns));
        let mut load = Load::default();
        let mut out = Vec::with_capacity(instances.len());
        for (n, i) in instances.iter().enumerate() {
            Load::read(counters.of(n), changes.as_ref().map(|c| c.of(n)), &mut load);
            let built = memo.get_or_derive(
                &i.key,
                i.revision,
                |kept: &Built| load.matches(&kept.load),
                || {
                    let load = load.owned();
                    let candidate = build(&i.value, &load)?;
                    Ok::<_, ApiError>(Built { load, candidate })
                },
            )?;
            out.push(built);
        }
        Ok(Candidates(out))
    })
}

/// The candidate of `instance` running `load`.
fn build(instance: &ContainerInstance, load: &Load) -> Result<Candidate, ApiError> {
    let remaining = instance.remaining().map_err(|e| {
        ApiError::server(format!(
            "instance {} has unreadable resources: {e}",
            instance.container_instance_arn
        ))
    })?;
    Ok(Candidate {
        id: instance.container_instance_arn.clone(),
        ec2_instance_id: instance.ec2_instance_id.clone(),
        remaining,
        attributes: instance
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect(),
        agent_connected: instance.agent_connected,
        task_groups: load
            .groups
            .iter()
            .map(|(g, n)| (g.clone(), usize::try_from(*n).unwrap_or_default()))
            .collect::<BTreeMap<_, _>>(),
        properties: INSTANCE_SUBJECTS
            .iter()
            .filter_map(|&s| {
                let value = match s {
                    "runningTasksCount" => Some(Tally::count(load.running).to_string()),
                    "pendingTasksCount" => Some(Tally::count(load.pending).to_string()),
                    _ => instance_subject(instance, s),
                };
                value.map(|v| (s.to_string(), v))
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Writes;
    use crate::records::keys;
    use crate::tally::Tallies;
    use berth_model::task::{Task, TaskStatus};
    use berth_store::sqlite::SqliteStore;
    use serde_json::json;

    const ARN: &str = "arn:aws:ecs:r:000000000000:container-instance/c/i1";

    fn instance(memory: i64) -> ContainerInstance {
        serde_json::from_value(json!({
            "containerInstanceArn": ARN,
            "status": "ACTIVE",
            "agentConnected": true,
            "attributes": [{"name": "ecs.availability-zone", "value": "az-1"}],
            "remainingResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": memory}],
        }))
        .unwrap()
    }

    fn task(id: &str, group: &str, status: TaskStatus) -> Task {
        let mut t: Task = serde_json::from_value(json!({
            "taskArn": format!("arn:aws:ecs:r:000000000000:task/c/{id}"),
            "clusterArn": "arn:aws:ecs:r:000000000000:cluster/c",
            "containerInstanceArn": ARN,
            "group": group,
            "containers": [],
            "createdAt": 0,
            "desiredStatus": "RUNNING",
            "enableExecuteCommand": false,
            "lastStatus": "PENDING",
            "taskDefinitionArn": "arn:aws:ecs:r:000000000000:task-definition/web:1",
            "version": 1,
        }))
        .unwrap();
        t.last_status = status;
        t
    }

    async fn write(db: &Db, writes: Writes) {
        assert!(db.commit(writes).await.unwrap());
    }

    /// The candidate of the one instance, read as placement reads it.
    fn read(db: &Db) -> Arc<Built> {
        let instances = db.list_shared::<ContainerInstance>(&keys::instances("r", "c"));
        let mut c = candidates(db, &instances).unwrap();
        assert_eq!(c.0.len(), 1);
        c.0.remove(0)
    }

    fn property<'a>(c: &'a Candidate, name: &str) -> &'a str {
        c.properties.get(name).map_or("", String::as_str)
    }

    #[tokio::test]
    async fn a_candidate_is_built_again_only_when_its_instance_or_its_tasks_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let db = Db::open(store).await.unwrap();
        let key = keys::instance("r", "c", "i1");
        write(&db, Writes::new().put(&key, instance(2048))).await;

        let first = read(&db);
        assert_eq!(first.candidate.remaining.memory_mib, 2048);
        assert!(first.candidate.task_groups.is_empty());
        assert_eq!(property(&first.candidate, "pendingTasksCount"), "0");
        assert!(Arc::ptr_eq(&first, &read(&db)), "nothing changed: kept");

        // A task placed without touching the instance record still counts.
        let t1 = keys::task("r", "c", "t1");
        write(
            &db,
            Writes::new().put(&t1, task("t1", "service:web", TaskStatus::Pending)),
        )
        .await;
        let placed = read(&db);
        assert!(!Arc::ptr_eq(&first, &placed));
        assert_eq!(placed.candidate.task_groups.get("service:web"), Some(&1));
        assert_eq!(property(&placed.candidate, "pendingTasksCount"), "1");

        // PENDING → RUNNING: the group's count stays, the running count moves.
        write(
            &db,
            Writes::new().put(&t1, task("t1", "service:web", TaskStatus::Running)),
        )
        .await;
        let running = read(&db);
        assert_eq!(running.candidate.task_groups.get("service:web"), Some(&1));
        assert_eq!(property(&running.candidate, "runningTasksCount"), "1");
        assert_eq!(property(&running.candidate, "pendingTasksCount"), "0");

        // One task stops and another of another group starts in one write.
        let t2 = keys::task("r", "c", "t2");
        write(
            &db,
            Writes::new()
                .put(&t1, task("t1", "service:web", TaskStatus::Stopped))
                .put(&t2, task("t2", "family:batch", TaskStatus::Running)),
        )
        .await;
        let swapped = read(&db);
        let groups: Vec<_> = swapped.candidate.task_groups.iter().collect();
        assert_eq!(groups, [(&"family:batch".to_string(), &1)]);
        assert_eq!(property(&swapped.candidate, "runningTasksCount"), "1");

        // The instance record changes: its new resources are read.
        write(&db, Writes::new().put(&key, instance(512))).await;
        assert_eq!(read(&db).candidate.remaining.memory_mib, 512);

        // Deleted, the instance's candidate is forgotten.
        write(&db, Writes::new().delete(&key)).await;
        assert_eq!(
            db.memo()
                .get_or_derive(&key, 0, |_: &Built| true, || Err(()))
                .err(),
            Some(())
        );
    }

    #[test]
    fn the_counts_of_writes_not_yet_committed_are_added_to_the_views() {
        use crate::records::Record;
        let mut view = Tallies::default();
        let web = |id, status| Record::Task(task(id, "service:web", status));
        view.replace("/t/1", None, Some(&web("1", TaskStatus::Running)));
        view.replace("/t/2", None, Some(&web("2", TaskStatus::Pending)));
        // A plan not yet committed stops task 1 and places a task of another group.
        let mut overlay = Tallies::default();
        overlay.replace("/t/1", Some(&web("1", TaskStatus::Running)), None);
        let batch = Record::Task(task("3", "family:batch", TaskStatus::Pending));
        overlay.replace("/t/3", None, Some(&batch));

        let mut load = Load::default();
        let counters = view.instances(&[ARN]);
        Load::read(counters.of(0), None, &mut load);
        assert_eq!((load.running, load.pending), (1, 1));
        assert_eq!(load.groups, [("service:web", 2)]);
        let changes = overlay.instances(&[ARN]);
        Load::read(counters.of(0), Some(changes.of(0)), &mut load);
        assert_eq!((load.running, load.pending), (0, 2));
        assert_eq!(load.groups, [("family:batch", 1), ("service:web", 1)]);
        assert!(load.matches(&load.owned()));
        assert!(!load.matches(&Load::default()));
    }
}
