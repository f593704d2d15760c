//! What the scheduler knows about one container instance, and how the cluster query language's
//! subjects read it.

use std::collections::{BTreeMap, HashMap};

use berth_model::container_instance::Resources;

/// An instance's attributes, name to value (`None`: set without a value). Placement looks a
/// few names up in every candidate on every call, and the names share long prefixes
/// (`com.amazonaws.ecs.capability.…`), so they are hashed rather than compared in order.
pub type Attributes = HashMap<String, Option<String>, rustc_hash::FxBuildHasher>;

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
    pub attributes: Attributes,
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
        let mut values = Vec::new();
        self.each_value(Subject::parse(subject), planned, |v| {
            values.push(v.to_string())
        });
        values
    }

    /// Calls `each` with every value of `subject` on this instance, in the order
    /// [`subject`](Self::subject) lists them, borrowing rather than copying them.
    pub(crate) fn each_value<'a>(
        &'a self,
        subject: Subject<'_>,
        planned: Option<&'a str>,
        mut each: impl FnMut(&'a str),
    ) {
        match subject {
            Subject::Attribute(name) => self.attribute(name).into_iter().for_each(each),
            Subject::TaskGroup => {
                self.task_groups.keys().for_each(|g| each(g));
                if let Some(planned) = planned.filter(|p| !self.task_groups.contains_key(*p)) {
                    each(planned);
                }
            }
            Subject::Ec2InstanceId => self.ec2_instance_id.as_deref().into_iter().for_each(each),
            Subject::InstanceId => each(&self.id),
            Subject::AgentConnected => each(if self.agent_connected {
                "true"
            } else {
                "false"
            }),
            Subject::Property(name) => self
                .properties
                .get(name)
                .map(String::as_str)
                .into_iter()
                .for_each(each),
        }
    }
}

/// A cluster-query-language subject, told apart once so that reading it on each instance
/// matches no strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject<'s> {
    /// `attribute:NAME`; holds `NAME`.
    Attribute(&'s str),
    /// `task:group`: one value per group of tasks on the instance, planned ones included.
    TaskGroup,
    Ec2InstanceId,
    /// `instanceId` or `containerInstanceArn`.
    InstanceId,
    AgentConnected,
    /// Any other subject, looked up in [`Candidate::properties`] by its exact name.
    Property(&'s str),
}

impl<'s> Subject<'s> {
    pub(crate) fn parse(subject: &'s str) -> Self {
        if let Some(name) = subject.strip_prefix("attribute:") {
            return Subject::Attribute(name);
        }
        match subject {
            "task:group" => Subject::TaskGroup,
            "ec2InstanceId" => Subject::Ec2InstanceId,
            "instanceId" | "containerInstanceArn" => Subject::InstanceId,
            "agentConnected" => Subject::AgentConnected,
            other => Subject::Property(other),
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
