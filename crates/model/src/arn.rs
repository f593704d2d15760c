//! ECS resource ARNs in the long format:
//! `arn:aws:ecs:REGION:ACCOUNT:KIND/CLUSTER/ID` for tasks, services and container instances,
//! `arn:aws:ecs:REGION:ACCOUNT:cluster/NAME`, `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REV`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Cluster,
    ContainerInstance,
    Task,
    Service,
    TaskDefinition,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Cluster => "cluster",
            ResourceKind::ContainerInstance => "container-instance",
            ResourceKind::Task => "task",
            ResourceKind::Service => "service",
            ResourceKind::TaskDefinition => "task-definition",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cluster" => ResourceKind::Cluster,
            "container-instance" => ResourceKind::ContainerInstance,
            "task" => ResourceKind::Task,
            "service" => ResourceKind::Service,
            "task-definition" => ResourceKind::TaskDefinition,
            _ => return None,
        })
    }
}

/// A parsed ECS ARN. `resource` is everything after `KIND/`, e.g. `CLUSTER/ID` or `FAMILY:REV`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub region: String,
    pub account: String,
    pub kind: ResourceKind,
    pub resource: String,
}

impl Arn {
    pub fn new(
        region: &str,
        account: &str,
        kind: ResourceKind,
        resource: impl Into<String>,
    ) -> Self {
        Arn {
            region: region.to_string(),
            account: account.to_string(),
            kind,
            resource: resource.into(),
        }
    }

    /// Parses `arn:PARTITION:ecs:REGION:ACCOUNT:KIND/RESOURCE`; `None` if it is not one.
    pub fn parse(s: &str) -> Option<Arn> {
        let mut parts = s.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let _partition = parts.next()?;
        if parts.next()? != "ecs" {
            return None;
        }
        let region = parts.next()?;
        let account = parts.next()?;
        let rest = parts.next()?;
        let (kind, resource) = rest.split_once('/')?;
        if resource.is_empty() {
            return None;
        }
        Some(Arn::new(
            region,
            account,
            ResourceKind::parse(kind)?,
            resource,
        ))
    }

    /// The last path segment of the resource: a task or instance id, a service or cluster name.
    pub fn id(&self) -> &str {
        self.resource.rsplit('/').next().unwrap_or(&self.resource)
    }

    /// The cluster segment of a long-format task, service or container-instance ARN.
    pub fn cluster(&self) -> Option<&str> {
        match self.kind {
            ResourceKind::Cluster => Some(&self.resource),
            _ => self.resource.split_once('/').map(|(c, _)| c),
        }
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:aws:ecs:{}:{}:{}/{}",
            self.region,
            self.account,
            self.kind.as_str(),
            self.resource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_long_format() {
        let s = "arn:aws:ecs:us-east-1:123456789012:task/stage01/0b69d5c0d71f4b0e8a7fcd0d7a7e1f21";
        let arn = Arn::parse(s).unwrap();
        assert_eq!(arn.kind, ResourceKind::Task);
        assert_eq!(arn.cluster(), Some("stage01"));
        assert_eq!(arn.id(), "0b69d5c0d71f4b0e8a7fcd0d7a7e1f21");
        assert_eq!(arn.to_string(), s);
    }

    #[test]
    fn rejects_other_services_and_kinds() {
        assert!(Arn::parse("arn:aws:s3:::bucket").is_none());
        assert!(Arn::parse("arn:aws:ecs:us-east-1:1:widget/x").is_none());
        assert!(Arn::parse("cluster/x").is_none());
        assert!(Arn::parse("arn:aws:ecs:us-east-1:1:cluster/").is_none());
    }
}
