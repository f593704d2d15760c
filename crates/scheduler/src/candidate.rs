//! What the scheduler knows about one container instance, and how the cluster query language's
//! subjects read it.

use std::collections::BTreeMap;

use berth_model::container_instance::Resources;

/// A container instance that may take tasks, as the caller saw it in one snapshot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Candidate {
    /// The caller's handle for the instance: its container instance ARN. Expressions read it as
    /// `instanceId` or `containerInstanceArn`.
    pub id: String,
    /// `ec2InstanceId` (Berth makes one up for instances outside EC2).
    pub ec2_instance_id: Option<String>,
    /// What the instance has left.
    pub remaining: Resources,
    /// Its attributes, name to value (`None`: set without a value), among them
    /// `ecs.availability-zone`, `ecs.instance-type`, `ecs.os-type`, `ecs.cpu-architecture`.
    pub attributes: BTreeMap<String, Option<String>>,
    /// Whether its agent is connected: a disconnected instance takes no task (`AGENT`).
    pub agent_connected: bool,
    /// How many tasks of each group (`service:web`, `family:batch`, a RunTask `group`) the
    /// instance runs that have not stopped. `task:group` expressions, spread and
    /// distinctInstance read them.
    pub task_groups: BTreeMap<String, usize>,
    /// Other query-language subjects the caller knows, looked up by exact name:
    /// `registeredAt`, `agentVersion`, `runningTasksCount`, ….
    pub properties: BTreeMap<String, String>,
}

impl Candidate {
    /// A connected instance with `remaining` resources and nothing else known.
    pub fn new(id: impl Into<String>, remaining: Resources) -> Self {
        Candidate {
            id: id.into(),
            remaining,
            agent_connected: true,
            ..Candidate::default()
        }
    }

    /// Sets attribute `name` (`value` `None`: present without a value).
    pub fn with_attribute(mut self, name: &str, value: Option<&str>) -> Self {
        self.attributes
            .insert(name.to_string(), value.map(str::to_string));
        self
    }

    /// Adds `count` running tasks of `group`.
    pub fn with_tasks(mut self, group: &str, count: usize) -> Self {
        *self.task_groups.entry(group.to_string()).or_default() += count;
        self
    }

    /// How many of the instance's tasks are in `group`.
    pub fn tasks_in(&self, group: &str) -> usize {
        self.task_groups.get(group).copied().unwrap_or(0)
    }

    /// The value of attribute `name` as spread sees it: `Some("")` when set without a value,
    /// `None` when absent.
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .get(name)
            .map(|v| v.as_deref().unwrap_or_default())
    }

    /// The values of a cluster-query-language subject on this instance. `planned` is the group
    /// of tasks the plan has already put here, if any: they count for `task:group`.
    pub(crate) fn subject(&self, subject: &str, planned: Option<&str>) -> Vec<String> {
        if let Some(name) = subject.strip_prefix("attribute:") {
            return self
                .attribute(name)
                .map(str::to_string)
                .into_iter()
                .collect();
        }
        match subject {
            "task:group" => {
                let mut groups: Vec<String> = self.task_groups.keys().cloned().collect();
                if let Some(planned) = planned.filter(|p| !self.task_groups.contains_key(*p)) {
                    groups.push(planned.to_string());
                }
                groups
            }
            "ec2InstanceId" => self.ec2_instance_id.iter().cloned().collect(),
            "instanceId" | "containerInstanceArn" => vec![self.id.clone()],
            "agentConnected" => vec![self.agent_connected.to_string()],
            other => self.properties.get(other).cloned().into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_read_the_instance() {
        let mut c = Candidate::new("arn:ci/1", Resources::new(1, 1))
            .with_attribute("ecs.availability-zone", Some("us-east-1a"))
            .with_attribute("flag", None)
            .with_tasks("service:web", 2);
        c.ec2_instance_id = Some("i-1".into());
        c.properties.insert("runningTasksCount".into(), "2".into());
        let s = |subject: &str| c.subject(subject, None);
        assert_eq!(s("attribute:ecs.availability-zone"), vec!["us-east-1a"]);
        assert_eq!(s("attribute:flag"), vec![""]);
        assert!(s("attribute:missing").is_empty());
        assert_eq!(s("ec2InstanceId"), vec!["i-1"]);
        assert_eq!(s("instanceId"), vec!["arn:ci/1"]);
        assert_eq!(s("containerInstanceArn"), vec!["arn:ci/1"]);
        assert_eq!(s("agentConnected"), vec!["true"]);
        assert_eq!(s("runningTasksCount"), vec!["2"]);
        assert!(s("registeredAt").is_empty());
        assert_eq!(s("task:group"), vec!["service:web"]);
        assert_eq!(
            c.subject("task:group", Some("family:db")),
            vec!["service:web", "family:db"]
        );
        assert_eq!(
            c.subject("task:group", Some("service:web")),
            vec!["service:web"]
        );
        assert_eq!(c.tasks_in("service:web"), 2);
        assert_eq!(c.tasks_in("family:db"), 0);
    }
}
