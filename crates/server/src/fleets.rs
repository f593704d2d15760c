//! Values derived from all the container instances of a cluster (placement's candidates), which
//! the view keeps for their readers so that bringing one up to date costs what changed, not what
//! the cluster holds.
//!
//! A reader makes a cluster's value in full the first time and hands it to [`Fleets::keep`].
//! From then on the view notes, as it applies the store's changes, which of that cluster's
//! instances changed: an instance changes when its record is written or deleted, and when a
//! task on it is (its task counts move). The next reader [`Fleets::take`]s the value with the
//! keys of those instances, and updates only them. A view that loads the store again starts
//! with no values, so nothing is carried over a gap in the watch.
//!
//! The keys an instance's changes are noted under: `/ecs/{region}/instances/{cluster}/{id}`
//! (a task at `/ecs/{region}/tasks/{cluster}/{task}` is on the instance of its cluster whose id
//! ends its `containerInstanceArn`).

use crate::records::Record;
use std::any::Any;
use std::collections::{BTreeSet, HashMap};

/// The kept values, by their cluster's instances prefix (`/ecs/{region}/instances/{cluster}/`).
#[derive(Default)]
pub struct Fleets {
    followed: HashMap<String, Followed>,
}

struct Followed {
    /// Keys of the cluster's instances that changed since the value was kept.
    changed: BTreeSet<String>,
    value: Box<dyn Any + Send + Sync>,
}

impl Fleets {
    /// Notes the instances that a write of `key`, from `old` to `new` (None: absent), changes
    /// in a cluster whose value is kept.
    pub fn note(&mut self, key: &str, old: Option<&Record>, new: Option<&Record>) {
        if self.followed.is_empty() {
            return;
        }
        for record in [old, new].into_iter().flatten() {
            let Some(instance) = instance_key(key, record) else {
                continue;
            };
            let prefix = &instance[..=instance.rfind('/').unwrap_or(0)];
            if let Some(followed) = self.followed.get_mut(prefix) {
                followed.changed.insert(instance);
            }
        }
    }

    /// The value kept for the instances under `prefix`, with the keys of those that changed
    /// since; None when there is none of type `V` (the reader makes it in full). Nothing is
    /// noted for the prefix until the value is kept again.
    pub fn take<V: Any + Send + Sync>(&mut self, prefix: &str) -> Option<(V, BTreeSet<String>)> {
        let followed = self.followed.remove(prefix)?;
        let value = followed.value.downcast::<V>().ok()?;
        Some((*value, followed.changed))
    }

    /// Keeps `value` as what was derived from the instances under `prefix` as the view holds
    /// them now.
    pub fn keep<V: Any + Send + Sync>(&mut self, prefix: &str, value: V) {
        self.followed.insert(
            prefix.to_string(),
            Followed {
                changed: BTreeSet::new(),
                value: Box::new(value),
            },
        );
    }
}

/// The key of the container instance that the record at `key` is, or that it is a task on.
pub fn instance_key(key: &str, record: &Record) -> Option<String> {
    match record {
        Record::Instance(_) => Some(key.to_string()),
        Record::Task(task) => {
            let id = task.container_instance_arn.as_deref()?.rsplit('/').next()?;
            // `/ecs/{region}/tasks/{cluster}/{task}`
            let mut parts = key.strip_prefix("/ecs/")?.split('/');
            let (region, _, cluster) = (parts.next()?, parts.next()?, parts.next()?);
            Some(crate::records::keys::instance(region, cluster, id))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::container_instance::ContainerInstance;
    use berth_model::task::Task;
    use serde_json::json;

    const CLUSTER: &str = "/ecs/r/instances/c/";

    fn instance() -> Record {
        Record::Instance(
            serde_json::from_value::<ContainerInstance>(json!({
                "containerInstanceArn": "arn:aws:ecs:r:000000000000:container-instance/c/i1",
                "status": "ACTIVE",
                "agentConnected": true,
            }))
            .unwrap(),
        )
    }

    fn task_on(instance: &str) -> Record {
        Record::Task(
            serde_json::from_value::<Task>(json!({
                "taskArn": "arn:aws:ecs:r:000000000000:task/c/t1",
                "clusterArn": "arn:aws:ecs:r:000000000000:cluster/c",
                "containerInstanceArn": format!("arn:aws:ecs:r:000000000000:container-instance/c/{instance}"),
                "containers": [],
                "createdAt": 0,
                "desiredStatus": "RUNNING",
                "enableExecuteCommand": false,
                "lastStatus": "PENDING",
                "taskDefinitionArn": "arn:aws:ecs:r:000000000000:task-definition/web:1",
                "version": 1,
            }))
            .unwrap(),
        )
    }

    fn changed(fleets: &mut Fleets, prefix: &str) -> Vec<String> {
        let (value, changed) = fleets.take::<u32>(prefix).expect("kept");
        fleets.keep(prefix, value);
        changed.into_iter().collect()
    }

    #[test]
    fn notes_instances_of_kept_clusters_only_and_forgets_them_once_taken() {
        let mut fleets = Fleets::default();
        fleets.note("/ecs/r/instances/c/i1", None, Some(&instance()));
        assert!(fleets.take::<u32>(CLUSTER).is_none(), "nothing kept yet");

        fleets.keep(CLUSTER, 7_u32);
        fleets.note("/ecs/r/instances/c/i1", None, Some(&instance()));
        // A task moving on i2 changes i2; one of another cluster changes nothing here.
        fleets.note(
            "/ecs/r/tasks/c/t1",
            Some(&task_on("i2")),
            Some(&task_on("i2")),
        );
        fleets.note("/ecs/r/tasks/other/t1", None, Some(&task_on("i3")));
        fleets.note("/ecs/r/tasks/c/t2", Some(&task_on("i4")), None);
        assert_eq!(
            changed(&mut fleets, CLUSTER),
            [
                "/ecs/r/instances/c/i1",
                "/ecs/r/instances/c/i2",
                "/ecs/r/instances/c/i4"
            ]
        );
        assert!(changed(&mut fleets, CLUSTER).is_empty(), "taken once");
        assert!(fleets.take::<String>(CLUSTER).is_none(), "another type");
        assert!(
            fleets.take::<u32>(CLUSTER).is_none(),
            "a take of the wrong type drops it"
        );
    }
}
