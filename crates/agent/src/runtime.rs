//! The container runtime seam: what the engine needs from Docker (or from the in-memory mock
//! in tests), in the engine's own vocabulary rather than Docker's.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use berth_model::common::TransportProtocol;
use berth_model::task::HealthStatus;
use futures::stream::BoxStream;

/// Labels every container the agent starts carries, so that a restarted agent finds its own.
pub mod labels {
    pub const CLUSTER: &str = "com.berth.cluster";
    pub const CONTAINER_INSTANCE: &str = "com.berth.container-instance";
    pub const TASK_ARN: &str = "com.berth.task-arn";
    pub const CONTAINER_NAME: &str = "com.berth.container-name";
    pub const TASK_DEFINITION: &str = "com.berth.task-definition";
}

/// One port mapping of a container: `host_port` 0 until the engine picks a dynamic port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortBinding {
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: TransportProtocol,
}

/// What to create: a container definition resolved against the task and the host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    /// The runtime's container name (unique per task and container).
    pub name: String,
    pub image: String,
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// `NAME=VALUE` pairs, in definition order.
    pub environment: Vec<String>,
    pub working_directory: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `bridge` (the default), `host` or `none`.
    pub network_mode: String,
    pub ports: Vec<PortBinding>,
    /// Relative CPU weight (task definition `cpu` units; Docker's minimum is 2).
    pub cpu_shares: Option<i64>,
    /// Hard limit: the kernel OOM-kills the container past it.
    pub memory_bytes: Option<i64>,
    /// Soft limit.
    pub memory_reservation_bytes: Option<i64>,
    /// Memory plus swap the container may use (Docker's `--memory-swap`); `None` leaves the
    /// host's default.
    pub memory_swap_bytes: Option<i64>,
    /// The kernel's swappiness for the container, 0–100.
    pub swappiness: Option<i64>,
    pub health_check: Option<HealthCheckSpec>,
    /// Mounts, `SOURCE:CONTAINER_PATH[:ro]`: a host path or a volume name as the source.
    pub binds: Vec<String>,
    /// Containers whose volumes this one mounts, `RUNTIME_NAME[:ro]`.
    pub volumes_from: Vec<String>,
    /// `RUNTIME_NAME:ALIAS` (bridge mode only).
    pub links: Vec<String>,
    /// `HOSTNAME:IP` lines added to the container's /etc/hosts.
    pub extra_hosts: Vec<String>,
    pub dns_servers: Vec<String>,
    pub dns_search_domains: Vec<String>,
    pub ulimits: Vec<UlimitSpec>,
    pub readonly_root_filesystem: bool,
    pub privileged: bool,
    /// Runs an init process as PID 1 that forwards signals and reaps zombies.
    pub init: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Size of /dev/shm.
    pub shm_size_bytes: Option<i64>,
    /// tmpfs mounts: container path → mount options (`size=64m,noexec`).
    pub tmpfs: BTreeMap<String, String>,
    /// The log driver and its options; the runtime's default when absent.
    pub log: Option<LogSpec>,
}

/// A log driver (`json-file`, `syslog`, …) and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

/// A container health check as the runtime runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// `["CMD", …]` or `["CMD-SHELL", "…"]`, as in the task definition.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// One resource limit (`ulimit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UlimitSpec {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A named volume the runtime manages (a task definition's `dockerVolumeConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    pub name: String,
    /// The volume driver; the runtime's default (`local`) when absent.
    pub driver: Option<String>,
    pub driver_options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// Where a container is in its life, as the runtime sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited { exit_code: i64, oom_killed: bool },
}

/// A container as the runtime reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    /// The host ports bound to container ports.
    pub ports: Vec<PortBinding>,
    /// The health check's verdict (UNKNOWN while it starts); `None` without a health check.
    pub health: Option<HealthStatus>,
}

impl ContainerInfo {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// What happened to a container, as the runtime's event stream tells it: a hint to look at the
/// container again, whose inspection says what it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Start,
    /// Its process ended (exited, or was killed).
    Die,
    /// The kernel killed a process of it for its memory limit.
    Oom,
    /// Its health check's verdict changed.
    Health,
    /// It was removed.
    Destroy,
}

/// One event of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// The container's id.
    pub id: String,
    pub kind: EventKind,
    /// The container's labels, as the event carries them (Docker's also hold its `name` and
    /// `image`, among others).
    pub attributes: BTreeMap<String, String>,
}

impl ContainerEvent {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
}

/// The events of the containers a subscription asked for, until the stream ends or fails (the
/// runtime restarted, its connection broke); what happens after that is not in it.
pub type EventStream = BoxStream<'static, Result<ContainerEvent, RuntimeError>>;

/// Why a runtime call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The image, or the container, does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Any other failure, with the runtime's own words.
    #[error("{0}")]
    Failed(String),
}

/// A container runtime. Implementations: [`crate::docker::Docker`] and [`crate::mock::Mock`].
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// The runtime's version, e.g. `DockerVersion: 20.10.24`; fails when it is unreachable.
    async fn version(&self) -> Result<String, RuntimeError>;
    /// Pulls `image` from its registry, with `auth` when the registry needs it.
    async fn pull_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError>;
    /// Whether `image` is in the local image cache.
    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError>;
    /// Removes `image` from the local cache unless a container (running or not) uses it; a
    /// missing image is not an error.
    async fn remove_image(&self, image: &str) -> Result<(), RuntimeError>;
    /// Creates (does not start) a container; returns its id.
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// SIGTERM, then SIGKILL after `timeout`; returns once the container has stopped.
    async fn stop(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError>;
    async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError>;
    /// Every container (running or not) that carries all of `labels`.
    async fn list(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>, RuntimeError>;
    /// Subscribes to the events of every container that carries all of `labels`: those from
    /// the moment of the call on (the stream may also hold a few from just before); fails when
    /// the runtime is unreachable.
    async fn events(&self, labels: &[(&str, &str)]) -> Result<EventStream, RuntimeError>;
    /// Removes a stopped container (and its anonymous volumes); a missing one is not an error.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;
    /// Whether the named volume exists.
    async fn has_volume(&self, name: &str) -> Result<bool, RuntimeError>;
    /// Creates a named volume; creating one that exists is not an error.
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), RuntimeError>;
    /// Removes a named volume; a missing one is not an error.
    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError>;
}

/// Credentials for one registry, as `docker login` would send them.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// `HOST:PORT`, as images name the registry.
    pub server: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The registry an image reference names (`HOST[:PORT]/…`), if it names one: the first path
/// component when it has a `.` or `:`, or is `localhost` — Docker's rule.
pub fn registry_of(image: &str) -> Option<&str> {
    let (first, rest) = image.split_once('/')?;
    (!rest.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost"))
        .then_some(first)
}
