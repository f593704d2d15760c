//! The Docker runtime, through `bollard` — the only module of Berth that speaks to Docker.
//!
//! Connects with the local defaults (`DOCKER_HOST`, else the unix socket) and negotiates the
//! API version down to what the engine speaks (Docker 20.10 speaks 1.41). Container events
//! come from Docker's `/events` stream, filtered by type, event and labels.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use berth_model::common::TransportProtocol;
use berth_model::task::HealthStatus;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, EventMessage, HealthConfig, HealthStatusEnum,
    HostConfig, HostConfigLogConfig, PortMap, ResourcesUlimits, VolumeCreateOptions,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::StreamExt;

use crate::runtime::{
    ContainerEvent, ContainerInfo, ContainerSpec, ContainerState, EventKind, EventStream,
    HealthCheckSpec, PortBinding, RegistryAuth, Runtime, RuntimeError, VolumeSpec,
};

/// A Docker Engine reached through its API.
pub struct Docker {
    client: bollard::Docker,
}

impl Docker {
    /// Connects to the local Docker Engine and checks that it answers.
    pub async fn connect() -> Result<Docker, RuntimeError> {
        let client = bollard::Docker::connect_with_local_defaults().map_err(|e| {
            RuntimeError::Failed(format!("could not set up a Docker connection: {e}"))
        })?;
        let client = client.negotiate_version().await.map_err(unreachable)?;
        Ok(Docker { client })
    }
}

fn unreachable(e: BollardError) -> RuntimeError {
    RuntimeError::Failed(format!(
        "could not reach the Docker Engine ({e}); is dockerd running, and may this user use its socket (DOCKER_HOST or /var/run/docker.sock)?"
    ))
}

fn failed(e: BollardError) -> RuntimeError {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => RuntimeError::NotFound(message),
        BollardError::DockerResponseServerError { message, .. } => RuntimeError::Failed(message),
        other => RuntimeError::Failed(other.to_string()),
    }
}

/// The container events the agent follows, in Docker's words (`health_status` stands for
/// `health_status: healthy` and the other verdicts).
const EVENTS: [&str; 5] = ["start", "die", "oom", "health_status", "destroy"];

/// How far before the subscription Docker's event stream starts: the stream connects only
/// when first read, and Docker replays what it buffered since then, so nothing falls in
/// between. Events seen twice only cost an inspection.
const EVENTS_LOOKBACK: Duration = Duration::from_secs(1);

fn event_kind(action: &str) -> Option<EventKind> {
    match action.split(':').next()?.trim() {
        "start" => Some(EventKind::Start),
        "die" => Some(EventKind::Die),
        "oom" => Some(EventKind::Oom),
        "health_status" => Some(EventKind::Health),
        "destroy" => Some(EventKind::Destroy),
        _ => None,
    }
}

/// A Docker event in the runtime's words; `None` for the events the agent does not follow.
fn container_event(message: EventMessage) -> Option<ContainerEvent> {
    let kind = event_kind(message.action.as_deref()?)?;
    let actor = message.actor?;
    Some(ContainerEvent {
        id: actor.id?,
        kind,
        attributes: actor.attributes.unwrap_or_default().into_iter().collect(),
    })
}

/// The Unix time `ago` before now, as Docker's `since` takes it (`SECONDS.NANOSECONDS`).
fn unix_time_ago(ago: Duration) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(ago);
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// `image` with an explicit tag: the pull API pulls every tag of a repository otherwise.
fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// Nanoseconds, as Docker's health check durations are given.
fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn health_config(h: &HealthCheckSpec) -> HealthConfig {
    HealthConfig {
        test: Some(h.test.clone()),
        interval: Some(nanos(h.interval)),
        timeout: Some(nanos(h.timeout)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(nanos(h.start_period)),
        start_interval: None,
    }
}

/// Docker's health verdict in ECS's words; `None` when the container has no health check.
fn health_of(status: Option<HealthStatusEnum>) -> Option<HealthStatus> {
    match status? {
        HealthStatusEnum::HEALTHY => Some(HealthStatus::Healthy),
        HealthStatusEnum::UNHEALTHY => Some(HealthStatus::Unhealthy),
        HealthStatusEnum::STARTING => Some(HealthStatus::Unknown),
        HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
    }
}

/// `Some(items)` unless there are none, so Docker keeps its defaults.
fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn port_key(p: &PortBinding) -> String {
    format!("{}/{}", p.container_port, p.protocol.as_str())
}

fn ports_of(map: Option<&PortMap>) -> Vec<PortBinding> {
    let mut out = Vec::new();
    for (key, bindings) in map.into_iter().flatten() {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let (Ok(container_port), protocol) = (
            port.parse::<u16>(),
            if proto == "udp" {
                TransportProtocol::Udp
            } else {
                TransportProtocol::Tcp
            },
        ) else {
            continue;
        };
        // Docker lists one binding per address family; the agent binds each port once.
        if let Some(host_port) = bindings
            .iter()
            .flatten()
            .filter_map(|b| b.host_port.as_deref()?.parse::<u16>().ok())
            .next()
        {
            out.push(PortBinding {
                container_port,
                host_port,
                protocol,
            });
        }
    }
    out.sort_by_key(|p| (p.container_port, p.protocol));
    out
}

#[async_trait]
impl Runtime for Docker {
    async fn version(&self) -> Result<String, RuntimeError> {
        let v = self.client.version().await.map_err(unreachable)?;
        Ok(format!(
            "DockerVersion: {}",
            v.version.unwrap_or_else(|| "unknown".into())
        ))
    }

    async fn pull_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        let image = with_tag(image);
        let options = CreateImageOptionsBuilder::new().from_image(&image).build();
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(a.server.clone()),
            ..Default::default()
        });
        let mut progress = self.client.create_image(Some(options), None, credentials);
        while let Some(step) = progress.next().await {
            step.map_err(failed)?;
        }
        Ok(())
    }

    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.client.inspect_image(&with_tag(image)).await {
            Ok(_) => Ok(true),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn remove_image(&self, image: &str) -> Result<(), RuntimeError> {
        // Without force Docker refuses (409) while any container uses the image.
        match self
            .client
            .remove_image(
                &with_tag(image),
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_)
            | Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let bridge = spec.network_mode == "bridge";
        let exposed: HashMap<String, HashMap<(), ()>> = spec
            .ports
            .iter()
            .map(|p| (port_key(p), HashMap::new()))
            .collect();
        let bindings: PortMap = spec
            .ports
            .iter()
            .map(|p| {
                (
                    port_key(p),
                    Some(vec![bollard::models::PortBinding {
                        host_ip: None,
                        host_port: Some(p.host_port.to_string()),
                    }]),
                )
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entry_point.clone(),
            cmd: spec.command.clone(),
            env: Some(spec.environment.clone()),
            working_dir: spec.working_directory.clone(),
            user: spec.user.clone(),
            hostname: spec.hostname.clone(),
            labels: Some(spec.labels.clone().into_iter().collect()),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck: spec.health_check.as_ref().map(health_config),
            host_config: Some(HostConfig {
                network_mode: Some(spec.network_mode.clone()),
                port_bindings: (bridge && !bindings.is_empty()).then_some(bindings),
                cpu_shares: spec.cpu_shares,
                memory: spec.memory_bytes,
                memory_reservation: spec.memory_reservation_bytes,
                memory_swap: spec.memory_swap_bytes,
                memory_swappiness: spec.swappiness,
                binds: non_empty(spec.binds.clone()),
                volumes_from: non_empty(spec.volumes_from.clone()),
                links: non_empty(spec.links.clone()),
                extra_hosts: non_empty(spec.extra_hosts.clone()),
                dns: non_empty(spec.dns_servers.clone()),
                dns_search: non_empty(spec.dns_search_domains.clone()),
                ulimits: non_empty(
                    spec.ulimits
                        .iter()
                        .map(|u| ResourcesUlimits {
                            name: Some(u.name.clone()),
                            soft: Some(u.soft),
                            hard: Some(u.hard),
                        })
                        .collect(),
                ),
                readonly_rootfs: spec.readonly_root_filesystem.then_some(true),
                privileged: spec.privileged.then_some(true),
                init: spec.init.then_some(true),
                cap_add: non_empty(spec.cap_add.clone()),
                cap_drop: non_empty(spec.cap_drop.clone()),
                shm_size: spec.shm_size_bytes,
                tmpfs: (!spec.tmpfs.is_empty()).then(|| spec.tmpfs.clone().into_iter().collect()),
                log_config: spec.log.as_ref().map(|log| HostConfigLogConfig {
                    typ: Some(log.driver.clone()),
                    config: Some(log.options.clone().into_iter().collect()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        let created = self
            .client
            .create_container(Some(options), body)
            .await
            .map_err(failed)?;
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.client
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(failed)
    }

    async fn stop(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        match self.client.stop_container(id, Some(options)).await {
            // 304: the container was not running.
            Ok(())
            | Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        let c = self
            .client
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(failed)?;
        let state = c.state.unwrap_or_default();
        let health = health_of(state.health.as_ref().and_then(|h| h.status));
        let state = match state.status {
            Some(ContainerStateStatusEnum::RUNNING)
            | Some(ContainerStateStatusEnum::PAUSED)
            | Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Running,
            Some(ContainerStateStatusEnum::CREATED)
            | Some(ContainerStateStatusEnum::EMPTY)
            | None => ContainerState::Created,
            Some(ContainerStateStatusEnum::EXITED)
            | Some(ContainerStateStatusEnum::DEAD)
            | Some(ContainerStateStatusEnum::REMOVING) => ContainerState::Exited {
                exit_code: state.exit_code.unwrap_or_default(),
                oom_killed: state.oom_killed.unwrap_or_default(),
            },
        };
        let labels: BTreeMap<String, String> = c
            .config
            .and_then(|config| config.labels)
            .unwrap_or_default()
            .into_iter()
            .collect();
        // A stopped container has no live port map; its configured bindings still tell.
        let ports = match c.network_settings.as_ref().and_then(|n| n.ports.as_ref()) {
            Some(map) if !map.is_empty() => ports_of(Some(map)),
            _ => ports_of(
                c.host_config
                    .as_ref()
                    .and_then(|h| h.port_bindings.as_ref()),
            ),
        };
        Ok(ContainerInfo {
            id: c.id.unwrap_or_else(|| id.to_owned()),
            labels,
            state,
            ports,
            health,
        })
    }

    async fn list(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let filters: HashMap<String, Vec<String>> = HashMap::from([(
            "label".to_owned(),
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .client
            .list_containers(Some(options))
            .await
            .map_err(failed)?;
        let mut out = Vec::new();
        for id in summaries.into_iter().filter_map(|s| s.id) {
            match self.inspect(&id).await {
                Ok(info) => out.push(info),
                // Removed between the listing and the inspection.
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn events(&self, labels: &[(&str, &str)]) -> Result<EventStream, RuntimeError> {
        // The stream connects only when first read: the ping finds an unreachable Docker now.
        self.client.ping().await.map_err(unreachable)?;
        let filters: HashMap<&str, Vec<String>> = HashMap::from([
            ("type", vec!["container".to_owned()]),
            ("event", EVENTS.map(str::to_owned).to_vec()),
            (
                "label",
                labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ),
        ]);
        let options = EventsOptionsBuilder::new()
            .since(&unix_time_ago(EVENTS_LOOKBACK))
            .filters(&filters)
            .build();
        let events = self.client.events(Some(options)).filter_map(|item| {
            futures::future::ready(match item {
                Ok(message) => container_event(message).map(Ok),
                Err(e) => Some(Err(failed(e))),
            })
        });
        Ok(events.boxed())
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptionsBuilder::new().v(true).build();
        match self.client.remove_container(id, Some(options)).await {
            Ok(())
            | Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn has_volume(&self, name: &str) -> Result<bool, RuntimeError> {
        match self.client.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), RuntimeError> {
        let options = VolumeCreateOptions {
            name: Some(spec.name.clone()),
            driver: spec.driver.clone(),
            driver_opts: Some(spec.driver_options.clone().into_iter().collect()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            cluster_volume_spec: None,
        };
        self.client
            .create_volume(options)
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        match self
            .client
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(())
            | Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_name_a_tag() {
        assert_eq!(with_tag("busybox"), "busybox:latest");
        assert_eq!(with_tag("berth-test/busybox:1"), "berth-test/busybox:1");
        assert_eq!(with_tag("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(with_tag("app@sha256:abc"), "app@sha256:abc");
    }

    #[test]
    fn reads_the_container_events_the_agent_follows() {
        let message = |action: &str| EventMessage {
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                id: Some("c1".into()),
                attributes: Some(HashMap::from([
                    ("com.berth.task-arn".to_owned(), "arn:task".to_owned()),
                    ("exitCode".to_owned(), "3".to_owned()),
                ])),
            }),
            ..Default::default()
        };
        let event = container_event(message("die")).expect("a die event");
        assert_eq!((event.id.as_str(), event.kind), ("c1", EventKind::Die));
        assert_eq!(event.attribute("com.berth.task-arn"), Some("arn:task"));
        let kind = |action: &str| container_event(message(action)).map(|e| e.kind);
        assert_eq!(kind("health_status: unhealthy"), Some(EventKind::Health));
        assert_eq!(kind("oom"), Some(EventKind::Oom));
        assert_eq!(kind("destroy"), Some(EventKind::Destroy));
        assert_eq!(kind("exec_start: sh -c true"), None);
        let since = unix_time_ago(Duration::from_secs(1));
        let (seconds, nanos) = since.split_once('.').expect("SECONDS.NANOSECONDS");
        assert!(
            seconds.parse::<u64>().is_ok() && nanos.len() == 9,
            "{since}"
        );
    }

    #[test]
    fn reads_port_maps() {
        let map: PortMap = HashMap::from([
            (
                "8080/tcp".to_owned(),
                Some(vec![
                    bollard::models::PortBinding {
                        host_ip: Some("0.0.0.0".into()),
                        host_port: Some("49200".into()),
                    },
                    bollard::models::PortBinding {
                        host_ip: Some("::".into()),
                        host_port: Some("49200".into()),
                    },
                ]),
            ),
            ("53/udp".to_owned(), None),
        ]);
        assert_eq!(
            ports_of(Some(&map)),
            vec![PortBinding {
                container_port: 8080,
                host_port: 49200,
                protocol: TransportProtocol::Tcp
            }]
        );
    }
}
