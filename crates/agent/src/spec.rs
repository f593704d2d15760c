//! A task definition's container, with the task's overrides, turned into a [`ContainerSpec`].
//!
//! Honoured: image, entryPoint, command, environment, workingDirectory, user, dockerLabels,
//! hostname, environmentFiles (read by [`crate::env_files`]), portMappings (tcp/udp; `hostPort`
//! 0 or absent asks for a dynamic port), cpu (→ CPU shares, at least 2 as in ECS), memory (→
//! hard limit), memoryReservation (→ soft limit), networkMode bridge/host/none, extraHosts,
//! dnsServers, dnsSearchDomains, ulimits, readonlyRootFilesystem, privileged (only on an agent
//! started with `--allow-privileged`), linuxParameters initProcessEnabled / capabilities /
//! sharedMemorySize / tmpfs / maxSwap / swappiness, links (bridge mode), volumes and
//! mountPoints (host `sourcePath` bind mounts; `dockerVolumeConfiguration` with scope `task` —
//! made for the task, removed at its cleanup — or `shared`, made when missing only with
//! `autoprovision`; a volume with neither is an empty task volume), volumesFrom, readOnly,
//! logConfiguration (Docker's own drivers; awslogs and awsfirelens are refused; the engine adds
//! `secretOptions` to the driver's options), healthCheck
//! (CMD / CMD-SHELL with ECS's defaults: interval 30 s, timeout 5 s, retries 3, startPeriod 0),
//! and the containerOverrides command, environment, environmentFiles, cpu, memory and
//! memoryReservation. The engine honours dependsOn (with startTimeout; links and volumesFrom
//! wait for START), restartPolicy and stopTimeout, and adds secrets and repositoryCredentials
//! (from Secrets Manager and Parameter Store, read by [`crate::secrets`]). Not yet:
//! linuxParameters devices, dockerSecurityOptions,
//! systemControls, disableNetworking, interactive, pseudoTerminal, EFS and FSx volumes
//! (refused), containerPortRange (refused).

use std::time::Duration;

use berth_model::common::TransportProtocol;
use berth_model::task::Task;
use berth_model::task_definition::{
    ContainerDefinition, HealthCheck, LogDriver, NetworkMode, Scope, TaskDefinition, Volume,
};

use crate::runtime::{
    ContainerSpec, HealthCheckSpec, LogSpec, PortBinding, UlimitSpec, VolumeSpec, labels,
};

/// Docker's smallest CPU weight; the ECS agent gives it to containers without `cpu`.
const MIN_CPU_SHARES: i64 = 2;
const MIB: i64 = 1024 * 1024;

/// Where the container will run, and what that host allows.
pub struct Placement<'a> {
    pub cluster: &'a str,
    pub container_instance_arn: &'a str,
    /// Whether containers may run privileged (the agent's `--allow-privileged`).
    pub allow_privileged: bool,
}

/// The runtime name of a task's container: `berth-FAMILY-REVISION-NAME-TASKID`.
pub fn runtime_name(definition: &TaskDefinition, container: &str, task_arn: &str) -> String {
    format!(
        "berth-{}-{}-{container}-{}",
        definition.family,
        definition.revision,
        task_id(task_arn)
    )
}

fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// Whether the container has a health check that runs (`["NONE"]` turns it off).
pub fn has_health_check(container: &ContainerDefinition) -> bool {
    container
        .health_check
        .as_ref()
        .is_some_and(|h| h.command.first().is_some_and(|c| c != "NONE"))
}

fn seconds(value: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(u64::try_from(value.unwrap_or(default)).unwrap_or(0))
}

fn health_check(h: &HealthCheck) -> HealthCheckSpec {
    HealthCheckSpec {
        test: h.command.clone(),
        interval: seconds(h.interval, HealthCheck::DEFAULT_INTERVAL),
        timeout: seconds(h.timeout, HealthCheck::DEFAULT_TIMEOUT),
        retries: u32::try_from(h.retries.unwrap_or(HealthCheck::DEFAULT_RETRIES)).unwrap_or(0),
        start_period: seconds(h.start_period, 0),
    }
}

/// How the agent provides a named volume of the task definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeScope {
    /// Made for the task and removed with its containers.
    Task,
    /// Outlives the task; made when missing only if `autoprovision`.
    Shared { autoprovision: bool },
}

/// A volume the runtime must provide before the task's containers are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskVolume {
    pub spec: VolumeSpec,
    pub scope: VolumeScope,
}

/// The runtime name of a task's volume: shared volumes keep their own name, task volumes get
/// `berth-FAMILY-REVISION-NAME-TASKID`; `None` for a host path bind mount.
fn volume_source(definition: &TaskDefinition, volume: &Volume, task_arn: &str) -> String {
    let name = volume.name.as_deref().unwrap_or_default();
    if let Some(path) = volume.host.as_ref().and_then(|h| h.source_path.as_ref()) {
        return path.clone();
    }
    match volume
        .docker_volume_configuration
        .as_ref()
        .and_then(|d| d.scope)
    {
        Some(Scope::Shared) => name.to_owned(),
        _ => format!(
            "berth-{}-{}-{name}-{}",
            definition.family,
            definition.revision,
            task_id(task_arn)
        ),
    }
}

/// The named volumes `task` needs: those with a `dockerVolumeConfiguration`, and those with
/// neither a host path nor one (ECS gives these an empty volume for the task's life). Fails
/// for volume types this agent cannot provide.
pub fn task_volumes(
    task: &Task,
    definition: &TaskDefinition,
    placement: &Placement<'_>,
) -> Result<Vec<TaskVolume>, String> {
    let mut out = Vec::new();
    for volume in &definition.volumes {
        let name = volume.name.as_deref().unwrap_or_default();
        if volume.efs_volume_configuration.is_some()
            || volume
                .fsx_windows_file_server_volume_configuration
                .is_some()
        {
            return Err(format!(
                "volume '{name}': EFS and FSx volumes are not supported by the Berth agent; use host or dockerVolumeConfiguration"
            ));
        }
        if volume
            .host
            .as_ref()
            .is_some_and(|h| h.source_path.is_some())
        {
            continue;
        }
        let source = volume_source(definition, volume, &task.task_arn);
        let config = volume.docker_volume_configuration.as_ref();
        let scope = match config.and_then(|c| c.scope) {
            Some(Scope::Shared) => VolumeScope::Shared {
                autoprovision: config.and_then(|c| c.autoprovision).unwrap_or(false),
            },
            _ => VolumeScope::Task,
        };
        let mut labels = config.and_then(|c| c.labels.clone()).unwrap_or_default();
        if scope == VolumeScope::Task {
            labels.extend([
                (labels::CLUSTER.to_owned(), placement.cluster.to_owned()),
                (
                    labels::CONTAINER_INSTANCE.to_owned(),
                    placement.container_instance_arn.to_owned(),
                ),
                (labels::TASK_ARN.to_owned(), task.task_arn.clone()),
            ]);
        }
        out.push(TaskVolume {
            spec: VolumeSpec {
                name: source,
                driver: config.and_then(|c| c.driver.clone()),
                driver_options: config
                    .and_then(|c| c.driver_opts.clone())
                    .unwrap_or_default(),
                labels,
            },
            scope,
        });
    }
    Ok(out)
}

/// `logConfiguration` → the runtime's log driver, without its `secretOptions` (the engine
/// adds them once read). Drivers that need AWS (awslogs, awsfirelens) are refused.
fn log_config(container: &ContainerDefinition) -> Result<Option<LogSpec>, String> {
    let Some(log) = &container.log_configuration else {
        return Ok(None);
    };
    match log.log_driver {
        LogDriver::Awslogs | LogDriver::Awsfirelens => Err(format!(
            "log driver {} is not available on a Berth agent; use json-file, syslog, journald, gelf, fluentd or splunk",
            log.log_driver
        )),
        driver => Ok(Some(LogSpec {
            driver: driver.as_str().to_owned(),
            options: log.options.clone().unwrap_or_default(),
        })),
    }
}

/// The spec of `container` of `task`; a port mapping asking for a dynamic port keeps
/// `host_port` 0 for the engine to fill in. Fails when the task asks for what this agent
/// cannot do yet, or for privileged mode on an agent that does not allow it.
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
    if container.privileged == Some(true) && !placement.allow_privileged {
        return Err(format!(
            "container '{name}' asks for privileged mode, which this agent does not allow (start it with --allow-privileged)"
        ));
    }
    let mut binds = Vec::new();
    for (i, m) in container.mount_points.iter().flatten().enumerate() {
        let bad = |what: &str| format!("container '{name}' mountPoints[{i}]: {what}");
        let source = m
            .source_volume
            .as_deref()
            .ok_or_else(|| bad("sourceVolume is required"))?;
        let path = m
            .container_path
            .as_deref()
            .ok_or_else(|| bad("containerPath is required"))?;
        let volume = definition
            .volumes
            .iter()
            .find(|v| v.name.as_deref() == Some(source))
            .ok_or_else(|| bad(&format!("the task definition has no volume '{source}'")))?;
        let ro = if m.read_only == Some(true) { ":ro" } else { "" };
        binds.push(format!(
            "{}:{path}{ro}",
            volume_source(definition, volume, &task.task_arn)
        ));
    }
    let in_task = |other: &str| runtime_name(definition, other, &task.task_arn);
    let volumes_from = container
        .volumes_from
        .iter()
        .flatten()
        .filter_map(|v| {
            let source = in_task(v.source_container.as_deref()?);
            Some(if v.read_only == Some(true) {
                format!("{source}:ro")
            } else {
                source
            })
        })
        .collect();
    let links = container
        .links
        .iter()
        .flatten()
        .map(|l| {
            let (target, alias) = l.split_once(':').unwrap_or((l, l));
            format!("{}:{alias}", in_task(target))
        })
        .collect::<Vec<_>>();
    if !links.is_empty() && network_mode != "bridge" {
        return Err(format!(
            "container '{name}': links need networkMode bridge, not {network_mode}"
        ));
    }
    let linux = container.linux_parameters.as_ref();
    let capabilities = linux.and_then(|l| l.capabilities.as_ref());
    let tmpfs = linux
        .and_then(|l| l.tmpfs.as_ref())
        .into_iter()
        .flatten()
        .map(|t| {
            let mut options = vec![format!("size={}m", t.size)];
            options.extend(t.mount_options.iter().flatten().cloned());
            (t.container_path.clone(), options.join(","))
        })
        .collect();
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
        // ECS: maxSwap MiB of swap on top of the hard limit (0: none); omitted, the host's.
        memory_swap_bytes: linux
            .and_then(|l| l.max_swap)
            .zip(memory)
            .map(|(swap, m)| (i64::from(m) + i64::from(swap)) * MIB),
        swappiness: linux.and_then(|l| l.swappiness).map(i64::from),
        health_check: container
            .health_check
            .as_ref()
            .filter(|_| has_health_check(container))
            .map(health_check),
        binds,
        volumes_from,
        links,
        extra_hosts: container
            .extra_hosts
            .iter()
            .flatten()
            .map(|h| format!("{}:{}", h.hostname, h.ip_address))
            .collect(),
        dns_servers: container.dns_servers.clone().unwrap_or_default(),
        dns_search_domains: container.dns_search_domains.clone().unwrap_or_default(),
        ulimits: container
            .ulimits
            .iter()
            .flatten()
            .map(|u| UlimitSpec {
                name: u.name.as_str().to_owned(),
                soft: i64::from(u.soft_limit),
                hard: i64::from(u.hard_limit),
            })
            .collect(),
        readonly_root_filesystem: container.readonly_root_filesystem == Some(true),
        privileged: container.privileged == Some(true),
        init: linux.and_then(|l| l.init_process_enabled) == Some(true),
        cap_add: capabilities.and_then(|c| c.add.clone()).unwrap_or_default(),
        cap_drop: capabilities
            .and_then(|c| c.drop.clone())
            .unwrap_or_default(),
        shm_size_bytes: linux
            .and_then(|l| l.shared_memory_size)
            .map(|m| i64::from(m) * MIB),
        tmpfs,
        log: log_config(container).map_err(|e| format!("container '{name}': {e}"))?,
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
                allow_privileged: false,
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
            allow_privileged: false,
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

    #[test]
    fn maps_host_and_linux_settings_mounts_links_logs_and_health_checks() {
        let mut definition = definition(json!([
            {"name": "data", "image": "x", "essential": false},
            {"name": "app", "image": "x", "memory": 128,
             "links": ["data:db", "data"],
             "volumesFrom": [{"sourceContainer": "data", "readOnly": true}],
             "mountPoints": [{"sourceVolume": "logs", "containerPath": "/logs"},
                             {"sourceVolume": "conf", "containerPath": "/etc/app", "readOnly": true}],
             "extraHosts": [{"hostname": "db.local", "ipAddress": "10.0.0.9"}],
             "dnsServers": ["10.0.0.2"], "dnsSearchDomains": ["corp.local"],
             "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
             "readonlyRootFilesystem": true,
             "linuxParameters": {"initProcessEnabled": true,
                                 "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                                 "sharedMemorySize": 128, "maxSwap": 64, "swappiness": 10,
                                 "tmpfs": [{"containerPath": "/run", "size": 64, "mountOptions": ["noexec"]}]},
             "logConfiguration": {"logDriver": "syslog", "options": {"tag": "app"}},
             "healthCheck": {"command": ["CMD-SHELL", "test -f /ok"], "interval": 5,
                             "timeout": 2, "retries": 1, "startPeriod": 10}},
        ]));
        definition.volumes = serde_json::from_value(json!([
            {"name": "logs"},
            {"name": "conf", "host": {"sourcePath": "/etc/app-conf"}},
        ]))
        .unwrap();
        let task = Task::new("arn:t/abc", "arn:c", "arn:td", Timestamp(0));
        let placement = Placement {
            cluster: "c",
            container_instance_arn: "i",
            allow_privileged: false,
        };
        let spec = container_spec(
            &task,
            &definition,
            &definition.container_definitions[1],
            &placement,
        )
        .unwrap();
        assert_eq!(
            spec.links,
            ["berth-web-3-data-abc:db", "berth-web-3-data-abc:data"]
        );
        assert_eq!(spec.volumes_from, ["berth-web-3-data-abc:ro"]);
        assert_eq!(
            spec.binds,
            ["berth-web-3-logs-abc:/logs", "/etc/app-conf:/etc/app:ro"]
        );
        assert_eq!(spec.extra_hosts, ["db.local:10.0.0.9"]);
        assert_eq!(
            (
                spec.dns_servers.as_slice(),
                spec.dns_search_domains.as_slice()
            ),
            (&["10.0.0.2".to_owned()][..], &["corp.local".to_owned()][..])
        );
        assert_eq!(
            spec.ulimits,
            [UlimitSpec {
                name: "nofile".into(),
                soft: 1024,
                hard: 4096
            }]
        );
        assert!(spec.readonly_root_filesystem && spec.init && !spec.privileged);
        assert_eq!(
            (spec.memory_swap_bytes, spec.swappiness),
            (Some(192 * MIB), Some(10))
        );
        assert_eq!(
            (spec.cap_add.as_slice(), spec.cap_drop.as_slice()),
            (&["NET_ADMIN".to_owned()][..], &["MKNOD".to_owned()][..])
        );
        assert_eq!(spec.shm_size_bytes, Some(128 * MIB));
        assert_eq!(spec.tmpfs["/run"], "size=64m,noexec");
        assert_eq!(
            spec.log,
            Some(LogSpec {
                driver: "syslog".into(),
                options: std::collections::BTreeMap::from([("tag".to_owned(), "app".to_owned())]),
            })
        );
        assert_eq!(
            spec.health_check,
            Some(HealthCheckSpec {
                test: vec!["CMD-SHELL".into(), "test -f /ok".into()],
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(2),
                retries: 1,
                start_period: Duration::from_secs(10),
            })
        );
        // Only the volume without a host path needs the runtime, for the task's life.
        let volumes = task_volumes(&task, &definition, &placement).unwrap();
        assert_eq!(volumes.len(), 1);
        assert_eq!(
            (volumes[0].spec.name.as_str(), &volumes[0].scope),
            ("berth-web-3-logs-abc", &VolumeScope::Task)
        );
        // Drivers that need AWS, and privileged mode on an agent that does not allow it, are refused.
        definition.container_definitions[1].log_configuration =
            serde_json::from_value(json!({"logDriver": "awslogs"})).unwrap();
        let err = container_spec(
            &task,
            &definition,
            &definition.container_definitions[1],
            &placement,
        )
        .unwrap_err();
        assert!(err.contains("awslogs"), "{err}");
        definition.container_definitions[0].privileged = Some(true);
        let err = container_spec(
            &task,
            &definition,
            &definition.container_definitions[0],
            &placement,
        )
        .unwrap_err();
        assert!(err.contains("--allow-privileged"), "{err}");
        // ["NONE"] turns a health check off.
        definition.container_definitions[0].health_check =
            serde_json::from_value(json!({"command": ["NONE"]})).unwrap();
        assert!(!has_health_check(&definition.container_definitions[0]));
    }
}
