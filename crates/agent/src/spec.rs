//! A task definition's container, with the task's overrides, turned into a [`ContainerSpec`].
//!
//! Honoured so far: image, entryPoint, command, environment, workingDirectory, user,
//! dockerLabels, hostname, portMappings (tcp/udp; `hostPort` 0 or absent asks for a dynamic
//! port), cpu (→ CPU shares, at least 2 as in ECS), memory (→ hard limit), memoryReservation
//! (→ soft limit), networkMode bridge/host/none, and the containerOverrides command,
//! environment, cpu, memory and memoryReservation. Not yet: environmentFiles, secrets,
//! repositoryCredentials, extraHosts, dnsServers, dnsSearchDomains, ulimits,
//! readonlyRootFilesystem, privileged, linuxParameters, links, volumes/mountPoints,
//! volumesFrom, logConfiguration, healthCheck, dependsOn, restartPolicy; they are ignored.

use berth_model::common::TransportProtocol;
use berth_model::task::Task;
use berth_model::task_definition::{ContainerDefinition, NetworkMode, TaskDefinition};

use crate::runtime::{ContainerSpec, PortBinding, labels};

/// Docker's smallest CPU weight; the ECS agent gives it to containers without `cpu`.
const MIN_CPU_SHARES: i64 = 2;
const MIB: i64 = 1024 * 1024;

/// Where the container will run: its cluster and container instance.
pub struct Placement<'a> {
    pub cluster: &'a str,
    pub container_instance_arn: &'a str,
}

/// The runtime name of a task's container: `berth-FAMILY-REVISION-NAME-TASKID`.
pub fn runtime_name(definition: &TaskDefinition, container: &str, task_arn: &str) -> String {
    let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    format!(
        "berth-{}-{}-{container}-{task_id}",
        definition.family, definition.revision
    )
}

/// The spec of `container` of `task`; a port mapping asking for a dynamic port keeps
/// `host_port` 0 for the engine to fill in. Fails when the task asks for what this agent
/// cannot do yet.
pub fn container_spec(
    task: &Task,
    definition: &TaskDefinition,
    container: &ContainerDefinition,
    placement: &Placement<'_>,
) -> Result<ContainerSpec, String> {
    let name = container.name.clone().unwrap_or_default();
    let network_mode = match definition.network_mode.unwrap_or(NetworkMode::Bridge) {
        NetworkMode::Awsvpc => {
            return Err(
                "networkMode awsvpc is not supported by the Berth agent yet; use bridge or host"
                    .into(),
            );
        }
        mode => mode.as_str().to_owned(),
    };
    let image = container
        .image
        .clone()
        .ok_or_else(|| format!("container '{name}' has no image"))?;
    let overrides = task.overrides.as_ref().and_then(|o| o.container(&name));
    let mut environment: Vec<(String, String)> = Vec::new();
    let overriding = overrides.and_then(|o| o.environment.as_ref());
    for kv in container
        .environment
        .iter()
        .flatten()
        .chain(overriding.into_iter().flatten())
    {
        let (Some(k), v) = (&kv.name, kv.value.clone().unwrap_or_default()) else {
            continue;
        };
        match environment.iter_mut().find(|(name, _)| name == k) {
            Some(existing) => existing.1 = v,
            None => environment.push((k.clone(), v)),
        }
    }
    let cpu = overrides.and_then(|o| o.cpu).or(container.cpu).unwrap_or(0);
    let memory = overrides.and_then(|o| o.memory).or(container.memory);
    let reservation = overrides
        .and_then(|o| o.memory_reservation)
        .or(container.memory_reservation);
    let mut ports = Vec::new();
    for (i, m) in container.port_mappings.iter().flatten().enumerate() {
        let bad = |what: &str| format!("container '{name}' portMappings[{i}]: {what}");
        if m.container_port_range.is_some() {
            return Err(bad(
                "containerPortRange is not supported by the Berth agent yet",
            ));
        }
        let container_port = m
            .container_port
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| bad("containerPort must be between 1 and 65535"))?;
        let host_port = match (network_mode.as_str(), m.host_port) {
            // In host mode the container binds the host's port itself.
            ("host", _) => container_port,
            (_, None) => 0,
            (_, Some(p)) => {
                u16::try_from(p).map_err(|_| bad("hostPort must be between 0 and 65535"))?
            }
        };
        ports.push(PortBinding {
            container_port,
            host_port,
            protocol: m.protocol.unwrap_or(TransportProtocol::Tcp),
        });
    }
    let mut labels = container.docker_labels.clone().unwrap_or_default();
    labels.extend([
        (labels::CLUSTER.to_owned(), placement.cluster.to_owned()),
        (
            labels::CONTAINER_INSTANCE.to_owned(),
            placement.container_instance_arn.to_owned(),
        ),
        (labels::TASK_ARN.to_owned(), task.task_arn.clone()),
        (labels::CONTAINER_NAME.to_owned(), name.clone()),
        (
            labels::TASK_DEFINITION.to_owned(),
            definition.task_definition_arn.clone(),
        ),
    ]);
    Ok(ContainerSpec {
        name: runtime_name(definition, &name, &task.task_arn),
        image,
        entry_point: container.entry_point.clone(),
        command: overrides
            .and_then(|o| o.command.clone())
            .or_else(|| container.command.clone()),
        environment: environment
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        working_directory: container.working_directory.clone(),
        user: container.user.clone(),
        hostname: container.hostname.clone(),
        labels,
        network_mode,
        ports,
        cpu_shares: Some(i64::from(cpu).max(MIN_CPU_SHARES)),
        memory_bytes: memory.map(|m| i64::from(m) * MIB),
        memory_reservation_bytes: reservation.map(|m| i64::from(m) * MIB),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::time::Timestamp;
    use serde_json::json;

    pub(crate) fn definition(containers: serde_json::Value) -> TaskDefinition {
        serde_json::from_value(json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3",
            "family": "web", "revision": 3, "status": "ACTIVE", "registeredAt": 0,
            "containerDefinitions": containers,
        }))
        .unwrap()
    }

    #[test]
    fn maps_a_container_definition_with_overrides() {
        let definition = definition(json!([{
            "name": "app", "image": "berth-test/busybox:1", "cpu": 256, "memory": 128,
            "memoryReservation": 64, "essential": true,
            "entryPoint": ["/bin/sh", "-c"], "command": ["httpd -f"],
            "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "workingDirectory": "/srv", "user": "1000", "hostname": "web",
            "dockerLabels": {"team": "blue"},
            "portMappings": [{"containerPort": 8080, "hostPort": 0},
                             {"containerPort": 53, "hostPort": 5353, "protocol": "udp"},
                             {"containerPort": 9000}],
        }]));
        let mut task = Task::new(
            "arn:aws:ecs:us-east-1:000000000000:task/default/abc123",
            "arn:aws:ecs:us-east-1:000000000000:cluster/default",
            &definition.task_definition_arn,
            Timestamp(0),
        );
        task.overrides = Some(
            serde_json::from_value(json!({"containerOverrides": [
                {"name": "app", "environment": [{"name": "B", "value": "3"}], "memory": 256}
            ]}))
            .unwrap(),
        );
        let spec = container_spec(
            &task,
            &definition,
            &definition.container_definitions[0],
            &Placement {
                cluster: "default",
                container_instance_arn: "arn:ci",
            },
        )
        .unwrap();
        assert_eq!(spec.name, "berth-web-3-app-abc123");
        assert_eq!(spec.environment, vec!["A=1", "B=3"]);
        assert_eq!(spec.cpu_shares, Some(256));
        assert_eq!(spec.memory_bytes, Some(256 * MIB));
        assert_eq!(spec.memory_reservation_bytes, Some(64 * MIB));
        assert_eq!(spec.command, Some(vec!["httpd -f".to_owned()]));
        assert_eq!(spec.network_mode, "bridge");
        let ports: Vec<_> = spec
            .ports
            .iter()
            .map(|p| (p.container_port, p.host_port, p.protocol))
            .collect();
        assert_eq!(
            ports,
            vec![
                (8080, 0, TransportProtocol::Tcp),
                (53, 5353, TransportProtocol::Udp),
                (9000, 0, TransportProtocol::Tcp)
            ]
        );
        assert_eq!(spec.labels["team"], "blue");
        assert_eq!(spec.labels[labels::TASK_ARN], task.task_arn);
        assert_eq!(spec.labels[labels::CONTAINER_NAME], "app");
        assert_eq!(spec.labels[labels::CLUSTER], "default");
        assert_eq!(
            spec.labels[labels::TASK_DEFINITION],
            definition.task_definition_arn
        );
    }

    #[test]
    fn gives_containers_without_cpu_the_minimum_weight_and_refuses_awsvpc() {
        let mut definition = definition(json!([{"name": "a", "image": "x"}]));
        let task = Task::new("arn:t/1", "arn:c", "arn:td", Timestamp(0));
        let placement = Placement {
            cluster: "c",
            container_instance_arn: "i",
        };
        let spec = container_spec(
            &task,
            &definition,
            &definition.container_definitions[0],
            &placement,
        )
        .unwrap();
        assert_eq!(spec.cpu_shares, Some(2));
        assert_eq!(spec.memory_bytes, None);
        definition.network_mode = Some(NetworkMode::Awsvpc);
        let err = container_spec(
            &task,
            &definition,
            &definition.container_definitions[0],
            &placement,
        )
        .unwrap_err();
        assert!(err.contains("awsvpc"), "{err}");
    }
}
