//! The `Task` record, its containers, overrides, and the task and container lifecycles.
//!
//! `lastStatus` and `desiredStatus` are strings on the wire; here they are typed
//! ([`TaskStatus`], [`DesiredStatus`], [`ContainerStatus`]) and serialize to the same strings.
//! Lifecycle guards are forward-only: a task never goes back to an earlier state, and STOPPED is
//! terminal.

use serde::{Deserialize, Serialize};

use crate::common::{
    Attachment, Attribute, EnvironmentFile, EphemeralStorage, InferenceAccelerator, KeyValuePair,
    LaunchType, ResourceRequirement, SharingStrategy, Tag, TransportProtocol,
};
use crate::error::ValidationError;
use crate::task_definition::{IsolationMode, parse_cpu_units, parse_memory_mib};
use crate::time::Timestamp;

/// A task's `lastStatus`, in lifecycle order (`Ord` follows it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    #[default]
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Provisioning,
        TaskStatus::Pending,
        TaskStatus::Activating,
        TaskStatus::Running,
        TaskStatus::Deactivating,
        TaskStatus::Stopping,
        TaskStatus::Deprovisioning,
        TaskStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        TaskStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Forward only: `next` must come strictly later in the lifecycle. STOPPED is terminal.
    /// States may be skipped (PENDING → STOPPED when a task fails to start).
    pub fn can_transition_to(self, next: TaskStatus) -> bool {
        next > self
    }

    pub fn is_terminal(self) -> bool {
        self == TaskStatus::Stopped
    }

    /// Whether the task counts as pending for cluster/service counts (before RUNNING).
    pub fn is_pending(self) -> bool {
        self < TaskStatus::Running
    }

    /// Whether the task is on its way down (after RUNNING, before STOPPED).
    pub fn is_stopping(self) -> bool {
        self > TaskStatus::Running && self < TaskStatus::Stopped
    }

    /// The desired status whose lifecycle band this status lies in (ListTasks'
    /// `desiredStatus` filter matches on the task's desired status, not this).
    pub fn band(self) -> DesiredStatus {
        match self {
            s if s < TaskStatus::Running => DesiredStatus::Pending,
            TaskStatus::Running => DesiredStatus::Running,
            _ => DesiredStatus::Stopped,
        }
    }
}

/// A task's `desiredStatus` (botocore `DesiredStatus`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    Pending,
    #[default]
    Running,
    Stopped,
}

impl DesiredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredStatus::Pending => "PENDING",
            DesiredStatus::Running => "RUNNING",
            DesiredStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DesiredStatus::Pending,
            DesiredStatus::Running,
            DesiredStatus::Stopped,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// PENDING → RUNNING → STOPPED, skipping allowed; STOPPED is terminal.
    pub fn can_transition_to(self, next: DesiredStatus) -> bool {
        next > self
    }

    /// The last status a task with this desired status is heading for.
    pub fn target(self) -> TaskStatus {
        match self {
            DesiredStatus::Pending => TaskStatus::Pending,
            DesiredStatus::Running => TaskStatus::Running,
            DesiredStatus::Stopped => TaskStatus::Stopped,
        }
    }
}

/// A container's `lastStatus`, in lifecycle order. ECS reports PENDING, RUNNING and STOPPED;
/// PULLED and CREATED are the agent's intermediate steps, which Berth may report too.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerStatus {
    #[default]
    Pending,
    Pulled,
    Created,
    Running,
    Stopped,
}

impl ContainerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Pending => "PENDING",
            ContainerStatus::Pulled => "PULLED",
            ContainerStatus::Created => "CREATED",
            ContainerStatus::Running => "RUNNING",
            ContainerStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        use ContainerStatus::*;
        [Pending, Pulled, Created, Running, Stopped]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// Forward only; STOPPED is terminal.
    pub fn can_transition_to(self, next: ContainerStatus) -> bool {
        next > self
    }
}

/// `HealthStatus` of a task or container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
    #[default]
    Unknown,
}

impl HealthStatus {
    /// A task's health from its essential containers' health: UNHEALTHY if any is unhealthy,
    /// else UNKNOWN if any is unknown (a container without a health check is UNKNOWN) or there
    /// are none, else HEALTHY.
    pub fn aggregate(essential: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
        let mut any = false;
        let mut unknown = false;
        for h in essential {
            any = true;
            match h {
                HealthStatus::Unhealthy => return HealthStatus::Unhealthy,
                HealthStatus::Unknown => unknown = true,
                HealthStatus::Healthy => {}
            }
        }
        if !any || unknown {
            HealthStatus::Unknown
        } else {
            HealthStatus::Healthy
        }
    }
}

/// `TaskStopCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskStopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    SpotInterruption,
    TerminationNotice,
    InfrastructureHealth,
}

/// `Connectivity` of a task to the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Connectivity {
    Connected,
    Disconnected,
}

/// `NetworkBinding`: a container port bound on the host (`hostPort` is the port the agent
/// picked when the task definition said 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    #[serde(rename = "bindIP", skip_serializing_if = "Option::is_none", default)]
    pub bind_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub protocol: Option<TransportProtocol>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_port_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_port_range: Option<String>,
}

/// `NetworkInterface` of a container (awsvpc mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attachment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub private_ipv4_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ipv6_address: Option<String>,
}

/// `ManagedAgentName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ManagedAgentName {
    ExecuteCommandAgent,
}

/// `ManagedAgent` (ECS Exec's agent inside a container).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ManagedAgent {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<ManagedAgentName>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_status: Option<String>,
}

/// A `Container` of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub container_arn: String,
    pub task_arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub runtime_id: Option<String>,
    #[serde(default)]
    pub last_status: ContainerStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
    #[serde(default)]
    pub network_interfaces: Vec<NetworkInterface>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub health_status: Option<HealthStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub managed_agents: Option<Vec<ManagedAgent>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_reservation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gpu_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub neuron_device_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gpu_sharing_strategy: Option<SharingStrategy>,
}

impl Container {
    /// A PENDING container with no runtime state yet.
    pub fn new(
        container_arn: impl Into<String>,
        task_arn: impl Into<String>,
        name: impl Into<String>,
        image: impl Into<String>,
    ) -> Self {
        Container {
            container_arn: container_arn.into(),
            task_arn: task_arn.into(),
            name: name.into(),
            image: Some(image.into()),
            image_digest: None,
            runtime_id: None,
            last_status: ContainerStatus::Pending,
            exit_code: None,
            reason: None,
            network_bindings: Vec::new(),
            network_interfaces: Vec::new(),
            health_status: None,
            managed_agents: None,
            cpu: None,
            memory: None,
            memory_reservation: None,
            gpu_ids: None,
            neuron_device_ids: None,
            gpu_sharing_strategy: None,
        }
    }
}

/// `ContainerOverride`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub environment: Option<Vec<KeyValuePair>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub environment_files: Option<Vec<EnvironmentFile>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_reservation: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
}

/// `InferenceAcceleratorOverride`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct InferenceAcceleratorOverride {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device_type: Option<String>,
}

/// `TaskOverride`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_overrides: Option<Vec<ContainerOverride>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub inference_accelerator_overrides: Option<Vec<InferenceAcceleratorOverride>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub execution_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ephemeral_storage: Option<EphemeralStorage>,
}

impl TaskOverride {
    /// The override for container `name`, if any.
    pub fn container(&self, name: &str) -> Option<&ContainerOverride> {
        self.container_overrides
            .iter()
            .flatten()
            .find(|o| o.name.as_deref() == Some(name))
    }
}

/// `TaskEphemeralStorage` (Fargate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskEphemeralStorage {
    #[serde(rename = "sizeInGiB", skip_serializing_if = "Option::is_none", default)]
    pub size_in_gib: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kms_key_id: Option<String>,
}

/// `AttestationPolicyStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttestationPolicyStatus {
    Configured,
}

/// `TrustedExecutionSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedExecutionSummary {
    pub isolation_mode: IsolationMode,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attestation_policy_status: Option<AttestationPolicyStatus>,
}

/// The `Task` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attachments: Option<Vec<Attachment>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attributes: Option<Vec<Attribute>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_provider_name: Option<String>,
    pub cluster_arn: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub connectivity: Option<Connectivity>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub connectivity_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_instance_arn: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<String>,
    pub created_at: Timestamp,
    #[serde(default)]
    pub desired_status: DesiredStatus,
    #[serde(default)]
    pub enable_execute_command: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub execution_stopped_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub health_status: Option<HealthStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
    #[serde(default)]
    pub last_status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub launch_type: Option<LaunchType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub overrides: Option<TaskOverride>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pull_started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pull_stopped_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_code: Option<TaskStopCode>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stopped_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stopped_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stopping_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tags: Option<Vec<Tag>>,
    pub task_arn: String,
    pub task_definition_arn: String,
    /// Incremented on every change (EventBridge `version`).
    #[serde(default)]
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fargate_ephemeral_storage: Option<TaskEphemeralStorage>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trusted_execution_summary: Option<TrustedExecutionSummary>,
}

impl Task {
    /// A new PROVISIONING task that should be RUNNING, version 1, with no containers.
    pub fn new(
        task_arn: impl Into<String>,
        cluster_arn: impl Into<String>,
        task_definition_arn: impl Into<String>,
        created_at: Timestamp,
    ) -> Self {
        Task {
            attachments: None,
            attributes: None,
            availability_zone: None,
            capacity_provider_name: None,
            cluster_arn: cluster_arn.into(),
            connectivity: None,
            connectivity_at: None,
            container_instance_arn: None,
            containers: Vec::new(),
            cpu: None,
            created_at,
            desired_status: DesiredStatus::Running,
            enable_execute_command: false,
            execution_stopped_at: None,
            group: None,
            health_status: None,
            inference_accelerators: None,
            last_status: TaskStatus::Provisioning,
            launch_type: None,
            memory: None,
            overrides: None,
            platform_version: None,
            platform_family: None,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            started_by: None,
            stop_code: None,
            stopped_at: None,
            stopped_reason: None,
            stopping_at: None,
            tags: None,
            task_arn: task_arn.into(),
            task_definition_arn: task_definition_arn.into(),
            version: 1,
            ephemeral_storage: None,
            fargate_ephemeral_storage: None,
            trusted_execution_summary: None,
        }
    }

    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }

    pub fn container_mut(&mut self, name: &str) -> Option<&mut Container> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    /// Moves `lastStatus` forward to `next` and stamps the lifecycle times ECS reports:
    /// `startedAt` on RUNNING, `stoppingAt` on leaving RUNNING (if not already set),
    /// `executionStoppedAt` and `stoppedAt` on STOPPED. Bumps `version`. Returns `false` (and
    /// changes nothing) when the transition is not forward.
    pub fn advance_to(&mut self, next: TaskStatus, now: Timestamp) -> bool {
        if !self.last_status.can_transition_to(next) {
            return false;
        }
        if next >= TaskStatus::Running && self.started_at.is_none() && next < TaskStatus::Stopped {
            self.started_at = Some(now);
        }
        if next > TaskStatus::Running && self.stopping_at.is_none() {
            self.stopping_at = Some(now);
        }
        if next == TaskStatus::Stopped {
            self.execution_stopped_at.get_or_insert(now);
            self.stopped_at = Some(now);
            if self.desired_status != DesiredStatus::Stopped {
                self.desired_status = DesiredStatus::Stopped;
            }
        }
        self.last_status = next;
        self.version += 1;
        true
    }

    /// Asks the task to stop: desiredStatus STOPPED with the stop code and reason (the first
    /// ones given win, as in ECS) and `stoppingAt`. Bumps `version`. Returns `false` when the
    /// task was already told to stop.
    pub fn request_stop(
        &mut self,
        code: TaskStopCode,
        reason: impl Into<String>,
        now: Timestamp,
    ) -> bool {
        if self.desired_status == DesiredStatus::Stopped {
            return false;
        }
        self.desired_status = DesiredStatus::Stopped;
        self.stop_code.get_or_insert(code);
        if self.stopped_reason.is_none() {
            self.stopped_reason = Some(reason.into());
        }
        self.stopping_at.get_or_insert(now);
        self.version += 1;
        true
    }

    /// Task-level `cpu` (units) and `memory` (MiB) when set and readable (they are strings on
    /// the wire, e.g. `"256"`; `"1 vCPU"` and `"2 GB"` forms are also understood).
    pub fn task_level_cpu_memory(&self) -> (Option<i64>, Option<i64>) {
        (
            self.cpu
                .as_deref()
                .and_then(|s| parse_cpu_units(s).ok())
                .map(i64::from),
            self.memory
                .as_deref()
                .and_then(|s| parse_memory_mib(s).ok())
                .map(i64::from),
        )
    }
}

/// RunTask's `count`: 1 to 10.
pub fn validate_run_task_count(count: i32) -> Result<(), ValidationError> {
    if (1..=10).contains(&count) {
        Ok(())
    } else {
        Err(ValidationError::invalid(
            "count",
            format!("count must be between 1 and 10, got {count}"),
        ))
    }
}

/// `startedBy`: at most 128 letters, digits, hyphens, forward slashes and underscores
/// (RunTask, StartTask, CreateTaskSet).
pub fn validate_started_by(started_by: &str) -> Result<(), ValidationError> {
    let ok = started_by.len() <= 128
        && started_by
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::invalid(
            "startedBy",
            "startedBy must be up to 128 letters (uppercase and lowercase), numbers, hyphens, \
             forward slashes and underscores",
        ))
    }
}

/// `reason` of StopTask: at most 1024 characters.
pub fn validate_stop_reason(reason: &str) -> Result<(), ValidationError> {
    if reason.chars().count() <= 1024 {
        Ok(())
    } else {
        Err(ValidationError::invalid(
            "reason",
            "reason must be at most 1024 characters",
        ))
    }
}

/// Checks `overrides.containerOverrides`: every override names a container of the task
/// definition (given as `container_names`), no container is overridden twice, and cpu/memory
/// values are not negative; memoryReservation must not exceed memory.
pub fn validate_task_override(
    overrides: &TaskOverride,
    container_names: &[&str],
) -> Result<(), ValidationError> {
    let mut seen = Vec::new();
    for (i, o) in overrides.container_overrides.iter().flatten().enumerate() {
        let field = format!("overrides.containerOverrides[{i}]");
        let Some(name) = o.name.as_deref() else {
            return Err(ValidationError::invalid(
                format!("{field}.name"),
                "container override must name a container",
            ));
        };
        if !container_names.contains(&name) {
            return Err(ValidationError::invalid(
                format!("{field}.name"),
                format!("container '{name}' is not in the task definition"),
            ));
        }
        if seen.contains(&name) {
            return Err(ValidationError::invalid(
                format!("{field}.name"),
                format!("container '{name}' is overridden more than once"),
            ));
        }
        seen.push(name);
        for (member, v) in [
            ("cpu", o.cpu),
            ("memory", o.memory),
            ("memoryReservation", o.memory_reservation),
        ] {
            if let Some(v) = v
                && v < 0
            {
                return Err(ValidationError::invalid(
                    format!("{field}.{member}"),
                    format!("{member} must not be negative, got {v}"),
                ));
            }
        }
        if let (Some(m), Some(r)) = (o.memory, o.memory_reservation)
            && r > m
        {
            return Err(ValidationError::invalid(
                format!("{field}.memoryReservation"),
                format!("memoryReservation {r} must not exceed memory {m}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:ecs:us-east-1:1:task/default/0b69d5c0d71f4b0e8a7fcd0d7a7e1f21";

    fn task() -> Task {
        Task::new(
            ARN,
            "arn:aws:ecs:us-east-1:1:cluster/default",
            "arn:aws:ecs:us-east-1:1:task-definition/web:3",
            Timestamp(1_000),
        )
    }

    #[test]
    fn status_order_and_guards() {
        use TaskStatus::*;
        for w in TaskStatus::ALL.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].can_transition_to(w[1]));
            assert!(!w[1].can_transition_to(w[0]));
        }
        assert!(Pending.can_transition_to(Stopped));
        assert!(!Stopped.can_transition_to(Stopped));
        assert!(!Running.can_transition_to(Running));
        assert!(Stopped.is_terminal());
        assert!(Pending.is_pending() && !Running.is_pending());
        assert!(Stopping.is_stopping() && !Stopped.is_stopping());
        assert_eq!(Activating.band(), DesiredStatus::Pending);
        assert_eq!(Deprovisioning.band(), DesiredStatus::Stopped);
        for s in TaskStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TaskStatus::parse("running"), None);
    }

    #[test]
    fn desired_and_container_status() {
        assert!(DesiredStatus::Running.can_transition_to(DesiredStatus::Stopped));
        assert!(!DesiredStatus::Stopped.can_transition_to(DesiredStatus::Running));
        assert_eq!(
            DesiredStatus::parse("PENDING"),
            Some(DesiredStatus::Pending)
        );
        assert_eq!(DesiredStatus::Stopped.target(), TaskStatus::Stopped);
        assert!(ContainerStatus::Pulled.can_transition_to(ContainerStatus::Running));
        assert!(!ContainerStatus::Stopped.can_transition_to(ContainerStatus::Running));
        assert_eq!(
            ContainerStatus::parse("CREATED"),
            Some(ContainerStatus::Created)
        );
    }

    #[test]
    fn health_aggregation() {
        use HealthStatus::*;
        assert_eq!(HealthStatus::aggregate([]), Unknown);
        assert_eq!(HealthStatus::aggregate([Healthy, Healthy]), Healthy);
        assert_eq!(HealthStatus::aggregate([Healthy, Unknown]), Unknown);
        assert_eq!(HealthStatus::aggregate([Unknown, Unhealthy]), Unhealthy);
    }

    #[test]
    fn lifecycle_stamps_times() {
        let mut t = task();
        assert!(t.advance_to(TaskStatus::Pending, Timestamp(2_000)));
        assert!(t.advance_to(TaskStatus::Running, Timestamp(3_000)));
        assert_eq!(t.started_at, Some(Timestamp(3_000)));
        assert!(!t.advance_to(TaskStatus::Pending, Timestamp(3_500)));
        assert!(t.request_stop(
            TaskStopCode::UserInitiated,
            "Task stopped by user",
            Timestamp(4_000)
        ));
        assert!(!t.request_stop(
            TaskStopCode::ServiceSchedulerInitiated,
            "x",
            Timestamp(4_100)
        ));
        assert_eq!(t.stop_code, Some(TaskStopCode::UserInitiated));
        assert_eq!(t.stopping_at, Some(Timestamp(4_000)));
        assert!(t.advance_to(TaskStatus::Stopped, Timestamp(5_000)));
        assert_eq!(t.stopped_at, Some(Timestamp(5_000)));
        assert_eq!(t.execution_stopped_at, Some(Timestamp(5_000)));
        assert_eq!(t.version, 5);
        assert!(!t.advance_to(TaskStatus::Stopped, Timestamp(6_000)));

        let mut failed = task();
        assert!(failed.advance_to(TaskStatus::Stopped, Timestamp(2_000)));
        assert_eq!(failed.started_at, None);
        assert_eq!(failed.desired_status, DesiredStatus::Stopped);
    }

    #[test]
    fn task_wire_shape() {
        let mut t = task();
        t.last_status = TaskStatus::Running;
        t.launch_type = Some(LaunchType::Ec2);
        t.stop_code = Some(TaskStopCode::EssentialContainerExited);
        t.health_status = Some(HealthStatus::Unknown);
        let mut c = Container::new(format!("{ARN}/web"), ARN, "web", "nginx:1");
        c.last_status = ContainerStatus::Running;
        c.network_bindings.push(NetworkBinding {
            bind_ip: Some("0.0.0.0".into()),
            container_port: Some(80),
            host_port: Some(49153),
            protocol: Some(TransportProtocol::Tcp),
            ..NetworkBinding::default()
        });
        t.containers.push(c);
        t.overrides = Some(TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                name: Some("web".into()),
                command: Some(vec!["sleep".into(), "1".into()]),
                ..ContainerOverride::default()
            }]),
            ephemeral_storage: Some(EphemeralStorage { size_in_gib: 30 }),
            ..TaskOverride::default()
        });
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["lastStatus"], "RUNNING");
        assert_eq!(v["desiredStatus"], "RUNNING");
        assert_eq!(v["createdAt"], json!(1.0));
        assert_eq!(v["stopCode"], "EssentialContainerExited");
        assert_eq!(v["launchType"], "EC2");
        assert_eq!(v["enableExecuteCommand"], false);
        assert_eq!(v["version"], 1);
        assert_eq!(
            v["containers"][0]["networkBindings"][0],
            json!({"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 49153, "protocol": "tcp"})
        );
        assert_eq!(v["overrides"]["ephemeralStorage"], json!({"sizeInGiB": 30}));
        assert!(v.get("stoppedAt").is_none());
        let back: Task = serde_json::from_value(v).unwrap();
        assert_eq!(back, t);
        assert_eq!(
            t.overrides
                .as_ref()
                .unwrap()
                .container("web")
                .unwrap()
                .command
                .as_ref()
                .unwrap()[0],
            "sleep"
        );
    }

    #[test]
    fn reads_an_ecs_describe_tasks_entry() {
        let v = json!({
            "attachments": [], "availabilityZone": "us-east-1a",
            "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/default",
            "connectivity": "CONNECTED", "connectivityAt": 1700000000.5,
            "containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/default/x",
            "containers": [{
                "containerArn": "c", "taskArn": ARN, "name": "web", "image": "nginx",
                "lastStatus": "STOPPED", "exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage",
                "networkBindings": [], "networkInterfaces": [], "healthStatus": "UNHEALTHY",
                "managedAgents": [{"name": "ExecuteCommandAgent", "lastStatus": "STOPPED"}],
                "cpu": "0", "memory": "128", "gpuSharingStrategy": {"nvidiaMps": {"memory": 1}}
            }],
            "cpu": "256", "createdAt": 1700000000.0, "desiredStatus": "STOPPED",
            "enableExecuteCommand": false, "group": "service:web", "healthStatus": "UNKNOWN",
            "lastStatus": "STOPPED", "launchType": "EC2", "memory": "512",
            "overrides": {"containerOverrides": [{"name": "web"}], "inferenceAcceleratorOverrides": []},
            "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
            "tags": [], "taskArn": ARN, "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3",
            "version": 4, "ephemeralStorage": {"sizeInGiB": 20},
            "fargateEphemeralStorage": {"sizeInGiB": 20, "kmsKeyId": "k"},
            "trustedExecutionSummary": {"isolationMode": "SHARED", "attestationPolicyStatus": "CONFIGURED"}
        });
        let t: Task = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(t.containers[0].exit_code, Some(137));
        assert_eq!(t.group.as_deref(), Some("service:web"));
        assert_eq!(t.task_level_cpu_memory(), (Some(256), Some(512)));
        assert_eq!(serde_json::to_value(&t).unwrap(), v);
    }

    #[test]
    fn request_validation() {
        assert!(validate_run_task_count(1).is_ok());
        assert_eq!(validate_run_task_count(11).unwrap_err().field, "count");
        assert!(validate_started_by("ecs-svc/123").is_ok());
        assert!(validate_started_by("bad by").is_err());
        assert!(validate_stop_reason(&"x".repeat(1025)).is_err());
        let o = TaskOverride {
            container_overrides: Some(vec![
                ContainerOverride {
                    name: Some("web".into()),
                    ..Default::default()
                },
                ContainerOverride {
                    name: Some("side".into()),
                    memory: Some(64),
                    memory_reservation: Some(128),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let e = validate_task_override(&o, &["web"]).unwrap_err();
        assert_eq!(e.field, "overrides.containerOverrides[1].name");
        let e = validate_task_override(&o, &["web", "side"]).unwrap_err();
        assert_eq!(e.field, "overrides.containerOverrides[1].memoryReservation");
    }
}
