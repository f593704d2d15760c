//! The scheduler's view of a cluster's container instances: for each, a [`Candidate`] with what
//! it has left, its attributes and how many unstopped tasks of each group it runs.
//!
//! Placement asks for every instance of the cluster on every call, so a call must not cost what
//! the cluster holds. The view keeps each cluster's [`Fleet`] — every instance's record and
//! candidate, in key order — and notes which instances changed since it was last read (see
//! [`crate::fleets`]); a call builds the candidates of those again, and only when the record's
//! revision or the instance's task counts (the view's tallies) moved. The writes of plans not
//! yet committed are laid over the fleet: the instances they touch get candidates made for this
//! call alone, from the overlay's records and counts.

use super::instances::instance_subject;
use crate::db::{Db, Shared, Versioned};
use crate::fleets::instance_key;
use crate::records::keys;
use crate::tally::{Tallies, Tally};
use crate::view::Snapshot;
use berth_api::ApiError;
use berth_model::container_instance::ContainerInstance;
use berth_scheduler::Candidate;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// A container instance as placement reads it: its record, and its candidate with the task
/// counts that went into it.
pub struct Member {
    pub instance: Instance,
    load: Load,
    pub candidate: Candidate,
}

impl Member {
    fn build(instance: Instance, load: Load) -> Result<Member, ApiError> {
        let candidate = build(&instance.value, &load)?;
        Ok(Member {
            instance,
            load,
            candidate,
        })
    }
}

/// Every container instance of a cluster, in key order, as the view held them when last read.
#[derive(Clone, Default)]
struct Fleet {
    members: Vec<Arc<Member>>,
    /// Each member's place, by key.
    at: HashMap<String, usize>,
}

/// Instances to place on, in order, with their candidates.
pub struct Candidates(Vec<Arc<Member>>);

impl Candidates {
    /// The candidates, as the scheduler takes them.
    pub fn all(&self) -> Vec<&Candidate> {
        self.0.iter().map(|m| &m.candidate).collect()
    }

    pub fn get(&self, index: usize) -> &Candidate {
        &self.0[index].candidate
    }

    /// The record of the `index`th instance.
    pub fn instance(&self, index: usize) -> &Instance {
        &self.0[index].instance
    }

    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.0.iter().map(|m| &m.instance)
    }

    /// Keeps only the instances `keep` accepts, in their order.
    pub fn retain(&mut self, keep: impl Fn(&ContainerInstance) -> bool) {
        self.0.retain(|m| keep(&m.instance.value));
    }
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

/// The counts of one instance in `tallies`, with `overlay`'s changes added.
fn load_of(tallies: &Tallies, overlay: Option<&Tallies>, arn: &str) -> Load {
    let counters = tallies.instances(&[arn]);
    let changes = overlay.map(|o| o.instances(&[arn]));
    let mut load = Load::default();
    Load::read(counters.of(0), changes.as_ref().map(|c| c.of(0)), &mut load);
    load.owned()
}

/// Every container instance of the cluster, in key order, with its candidate, as a plan reading
/// `db` sees them (the writes of plans not yet committed included).
pub fn cluster_candidates(db: &Db, region: &str, cluster: &str) -> Result<Candidates, ApiError> {
    let prefix = keys::instances(region, cluster);
    let fleet = db.with_fleets(|view, fleets| {
        let fleet = match fleets.take::<Arc<Fleet>>(&prefix) {
            Some((mut fleet, changed)) => {
                update(view, &prefix, &mut fleet, &changed)?;
                fleet
            }
            None => Arc::new(derive(view, &prefix, None)?),
        };
        fleets.keep(&prefix, fleet.clone());
        Ok::<_, ApiError>(fleet)
    })?;
    let mut laid = overlaid(db, region, cluster)?.into_iter().peekable();
    if laid.peek().is_none() {
        return Ok(Candidates(fleet.members.clone()));
    }
    let mut out = Vec::with_capacity(fleet.members.len());
    for kept in &fleet.members {
        let key = &kept.instance.key;
        while let Some((_, before)) = laid.next_if(|(k, _)| k < key) {
            out.extend(before);
        }
        match laid.next_if(|(k, _)| k == key) {
            Some((_, replaced)) => out.extend(replaced),
            None => out.push(kept.clone()),
        }
    }
    out.extend(laid.filter_map(|(_, m)| m));
    Ok(Candidates(out))
}

/// The candidates of `instances`, in their order, as a plan reading `db` sees them.
pub fn candidates_of(db: &Db, instances: Vec<Instance>) -> Result<Candidates, ApiError> {
    let members = instances
        .into_iter()
        .map(|instance| member(db, instance))
        .collect::<Result<_, _>>()?;
    Ok(Candidates(members))
}

/// `instance` with its candidate, as a plan reading `db` sees it (made for this call alone).
fn member(db: &Db, instance: Instance) -> Result<Arc<Member>, ApiError> {
    let arn = &instance.value.container_instance_arn;
    let load = db.read_tallies(|view, overlay| load_of(view, overlay, arn));
    Member::build(instance, load).map(Arc::new)
}

/// The instances of the cluster that the overlay's writes change — their records, or tasks on
/// them — by key, each as the plan sees it (None: deleted).
fn overlaid(
    db: &Db,
    region: &str,
    cluster: &str,
) -> Result<BTreeMap<String, Option<Arc<Member>>>, ApiError> {
    let mut touched = BTreeSet::new();
    for prefix in [
        keys::instances(region, cluster),
        keys::tasks(region, cluster),
    ] {
        db.visit_pending(&prefix, |key, old, new| {
            for record in [old, new].into_iter().flatten() {
                touched.extend(instance_key(key, record));
            }
        });
    }
    touched
        .into_iter()
        .map(|key| {
            let member = match db.get_shared::<ContainerInstance>(&key) {
                Some(instance) => Some(member(db, instance)?),
                None => None,
            };
            Ok((key, member))
        })
        .collect()
}

/// Brings `fleet` up to date with the view: builds again the members whose keys `changed` when
/// their record or counts moved, or the whole fleet when an instance came or went.
fn update(
    view: Snapshot<'_>,
    prefix: &str,
    fleet: &mut Arc<Fleet>,
    changed: &BTreeSet<String>,
) -> Result<(), ApiError> {
    let mut built = Vec::new();
    for key in changed {
        let read = view
            .get(key)
            .and_then(|e| Some((e.mod_revision, Shared::<ContainerInstance>::new(&e.record)?)));
        let (Some(&at), Some((revision, value))) = (fleet.at.get(key), read) else {
            *fleet = Arc::new(derive(view, prefix, Some(fleet))?);
            return Ok(());
        };
        let load = load_of(view.tallies(), None, &value.container_instance_arn);
        let kept = &fleet.members[at];
        if kept.instance.revision == revision && kept.load == load {
            continue;
        }
        let instance = Versioned {
            key: key.clone(),
            revision,
            value,
        };
        built.push((at, Member::build(instance, load)?));
    }
    if !built.is_empty() {
        let fleet = Arc::make_mut(fleet);
        for (at, member) in built {
            fleet.members[at] = Arc::new(member);
        }
    }
    Ok(())
}

/// Every instance under `prefix` in the view, each member taken from `kept` when its record and
/// counts are the ones it was built with.
fn derive(view: Snapshot<'_>, prefix: &str, kept: Option<&Fleet>) -> Result<Fleet, ApiError> {
    let mut instances = Vec::new();
    view.scan(prefix, |key, entry| {
        if let Some(value) = Shared::<ContainerInstance>::new(&entry.record) {
            instances.push(Versioned {
                key: key.to_string(),
                revision: entry.mod_revision,
                value,
            });
        }
    });
    let arns: Vec<&str> = instances
        .iter()
        .map(|i| i.value.container_instance_arn.as_str())
        .collect();
    let counters = view.tallies().instances(&arns);
    let mut load = Load::default();
    let mut fleet = Fleet::default();
    for (n, instance) in instances.iter().enumerate() {
        Load::read(counters.of(n), None, &mut load);
        let same = kept
            .and_then(|k| Some(&k.members[*k.at.get(&instance.key)?]))
            .filter(|m| m.instance.revision == instance.revision && load.matches(&m.load));
        let member = match same {
            Some(member) => member.clone(),
            None => Arc::new(Member::build(instance.clone(), load.owned())?),
        };
        fleet.at.insert(instance.key.clone(), n);
        fleet.members.push(member);
    }
    Ok(fleet)
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
    fn read(db: &Db) -> Arc<Member> {
        let mut c = cluster_candidates(db, "r", "c").unwrap();
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

        // A change to the task that moves no count builds nothing again.
        let mut unhealthy = task("t1", "service:web", TaskStatus::Pending);
        unhealthy.started_by = Some("someone".into());
        write(&db, Writes::new().put(&t1, unhealthy)).await;
        assert!(Arc::ptr_eq(&placed, &read(&db)), "same counts: kept");

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

        // Deleted, the instance is no candidate.
        write(&db, Writes::new().delete(&key)).await;
        assert!(cluster_candidates(&db, "r", "c").unwrap().0.is_empty());
    }

    /// A small deterministic generator for the walk below.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// Writes instances and tasks of two clusters at random, as placement, agents and
    /// deregistration would; after each write, the fleet kept and updated by what changed
    /// equals one derived afresh from the view.
    #[tokio::test]
    async fn the_kept_fleet_always_equals_one_derived_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let db = Db::open(store).await.unwrap();
        let mut rng = Lcg(7);
        let clusters = ["c", "d"];
        let statuses = [
            TaskStatus::Pending,
            TaskStatus::Running,
            TaskStatus::Stopped,
        ];
        let groups = ["service:web", "family:batch"];
        for step in 0..400 {
            let cluster = clusters[rng.below(2) as usize];
            let id = format!("i{}", rng.below(4));
            let arn = format!("arn:aws:ecs:r:000000000000:container-instance/{cluster}/{id}");
            let writes = match rng.below(10) {
                0 => Writes::new().delete(&keys::instance("r", cluster, &id)),
                1..=3 => {
                    let mut i = instance(256 * (1 + rng.below(8) as i64));
                    i.container_instance_arn = arn;
                    i.agent_connected = rng.below(4) > 0;
                    Writes::new().put(&keys::instance("r", cluster, &id), i)
                }
                4 => Writes::new().delete(&keys::task("r", cluster, &format!("t{}", rng.below(6)))),
                _ => {
                    let t = format!("t{}", rng.below(6));
                    let mut task = task(
                        &t,
                        groups[rng.below(2) as usize],
                        statuses[rng.below(3) as usize],
                    );
                    task.container_instance_arn = Some(arn);
                    Writes::new().put(&keys::task("r", cluster, &t), task)
                }
            };
            write(&db, writes).await;
            // Read one cluster or both, so that changes pile up between reads too.
            for cluster in clusters.iter().filter(|_| rng.below(3) > 0) {
                let kept = cluster_candidates(&db, "r", cluster).unwrap();
                let afresh = db
                    .with_fleets(|view, _| derive(view, &keys::instances("r", cluster), None))
                    .unwrap();
                let seen = |members: &[Arc<Member>]| -> Vec<(String, i64, Candidate)> {
                    members
                        .iter()
                        .map(|m| {
                            (
                                m.instance.key.clone(),
                                m.instance.revision,
                                m.candidate.clone(),
                            )
                        })
                        .collect()
                };
                assert_eq!(
                    seen(&kept.0),
                    seen(&afresh.members),
                    "step {step}, cluster {cluster}"
                );
            }
        }
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

        let load = load_of(&view, None, ARN);
        assert_eq!((load.running, load.pending), (1, 1));
        assert_eq!(load.groups, [("service:web".to_string(), 2)]);
        let load = load_of(&view, Some(&overlay), ARN);
        assert_eq!((load.running, load.pending), (0, 2));
        assert_eq!(
            load.groups,
            [
                ("family:batch".to_string(), 1),
                ("service:web".to_string(), 1)
            ]
        );
        assert_ne!(load, Load::default());
    }
}
