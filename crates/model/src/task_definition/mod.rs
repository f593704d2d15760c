//! Task definitions: what `RegisterTaskDefinition` accepts ([`TaskDefinitionSpec`]) and what
//! `RegisterTaskDefinition` / `DescribeTaskDefinition` return ([`TaskDefinition`]), member for
//! member as botocore's ECS model (`service-2.json`, 2014-11-13) spells them.
//!
//! - Every optional member is an `Option` that is omitted when `None`, and every list the caller may
//!   leave out is an `Option<Vec<_>>`, so a spec serializes back to exactly what was sent.
//! - Members botocore marks required inside nested shapes (`Secret.name`, `Ulimit.softLimit`, …)
//!   are plain values; a request without them fails to deserialize.
//! - Enums are Rust enums whose serde names are botocore's enum strings. Because botocore clients
//!   do not check enum values, [`TaskDefinitionSpec::from_json`] checks them first so that a bad
//!   value gets a message naming the member (`containerDefinitions[0].ulimits[1].name: …`).
//! - [`validate`] applies ECS's register-time rules; [`TaskDefinition::from_spec`] turns a valid
//!   spec into the stored/returned record, filling in what ECS fills in (see its docs).
//! - Shapes shared with tasks and container instances (`KeyValuePair`, `Attribute`,
//!   `TransportProtocol`, `ResourceRequirement`, …) are [`crate::common`]'s, re-exported here.

mod normalize;
mod units;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Timestamp, ValidationError};

pub use crate::common::{
    Attribute, EnvironmentFile, EnvironmentFileType, EphemeralStorage, InferenceAccelerator,
    KeyValuePair, NvidiaMpsAllocation, ResourceRequirement, ResourceType, SharingStrategy,
    TargetType, TransportProtocol,
};

pub use normalize::{berth_capabilities, compatibilities, requires_attributes};
pub use units::{parse_cpu_units, parse_memory_mib};
pub use validate::{MAX_CONTAINERS, validate};

/// Defines a wire enum: serde names are the botocore strings; `as_str`, `parse`, `WIRE` and
/// `Display` give the same strings back.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// The botocore enum strings, in the model's order.
            pub const WIRE: &'static [&'static str] = &[$($wire),+];

            /// The botocore enum string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// The variant whose botocore string is `s` (exact, case-sensitive, as ECS is).
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// `NetworkMode`. Absent means `bridge` (see [`TaskDefinitionSpec::effective_network_mode`]).
    NetworkMode { Bridge = "bridge", Host = "host", Awsvpc = "awsvpc", None = "none" }
}

wire_enum! {
    /// `Compatibility`: the launch types a task definition can be used with.
    Compatibility { Ec2 = "EC2", Fargate = "FARGATE", External = "EXTERNAL", ManagedInstances = "MANAGED_INSTANCES" }
}

wire_enum! {
    /// `PidMode`.
    PidMode { Host = "host", Task = "task" }
}

wire_enum! {
    /// `IpcMode`.
    IpcMode { Host = "host", Task = "task", None = "none" }
}

wire_enum! {
    /// `TaskDefinitionStatus`.
    TaskDefinitionStatus { Active = "ACTIVE", Inactive = "INACTIVE", DeleteInProgress = "DELETE_IN_PROGRESS" }
}

wire_enum! {
    /// `ApplicationProtocol`.
    ApplicationProtocol { Http = "http", Http2 = "http2", Grpc = "grpc" }
}

wire_enum! {
    /// `DeviceCgroupPermission`.
    DeviceCgroupPermission { Read = "read", Write = "write", Mknod = "mknod" }
}

wire_enum! {
    /// `ContainerCondition`: what a `dependsOn` entry waits for.
    ContainerCondition { Start = "START", Complete = "COMPLETE", Success = "SUCCESS", Healthy = "HEALTHY" }
}

wire_enum! {
    /// `VersionConsistency`.
    VersionConsistency { Enabled = "enabled", Disabled = "disabled" }
}

wire_enum! {
    /// `UlimitName`.
    UlimitName {
        Core = "core", Cpu = "cpu", Data = "data", Fsize = "fsize", Locks = "locks",
        Memlock = "memlock", Msgqueue = "msgqueue", Nice = "nice", Nofile = "nofile",
        Nproc = "nproc", Rss = "rss", Rtprio = "rtprio", Rttime = "rttime",
        Sigpending = "sigpending", Stack = "stack",
    }
}

wire_enum! {
    /// `LogDriver`.
    LogDriver {
        JsonFile = "json-file", Syslog = "syslog", Journald = "journald", Gelf = "gelf",
        Fluentd = "fluentd", Awslogs = "awslogs", Splunk = "splunk", Awsfirelens = "awsfirelens",
    }
}

wire_enum! {
    /// `FirelensConfigurationType`.
    FirelensConfigurationType { Fluentd = "fluentd", Fluentbit = "fluentbit" }
}

wire_enum! {
    /// `Scope` of a Docker volume.
    Scope { Task = "task", Shared = "shared" }
}

wire_enum! {
    /// `EFSTransitEncryption`.
    EfsTransitEncryption { Enabled = "ENABLED", Disabled = "DISABLED" }
}

wire_enum! {
    /// `EFSAuthorizationConfigIAM`.
    EfsAuthorizationConfigIam { Enabled = "ENABLED", Disabled = "DISABLED" }
}

wire_enum! {
    /// `TaskDefinitionPlacementConstraintType`: task definitions only allow `memberOf`.
    TaskDefinitionPlacementConstraintType { MemberOf = "memberOf" }
}

wire_enum! {
    /// `ProxyConfigurationType`.
    ProxyConfigurationType { Appmesh = "APPMESH" }
}

wire_enum! {
    /// `CPUArchitecture`.
    CpuArchitecture { X86_64 = "X86_64", Arm64 = "ARM64" }
}

wire_enum! {
    /// `OSFamily`.
    OsFamily {
        WindowsServer2019Full = "WINDOWS_SERVER_2019_FULL",
        WindowsServer2019Core = "WINDOWS_SERVER_2019_CORE",
        WindowsServer2016Full = "WINDOWS_SERVER_2016_FULL",
        WindowsServer2004Core = "WINDOWS_SERVER_2004_CORE",
        WindowsServer2022Core = "WINDOWS_SERVER_2022_CORE",
        WindowsServer2022Full = "WINDOWS_SERVER_2022_FULL",
        WindowsServer2025Core = "WINDOWS_SERVER_2025_CORE",
        WindowsServer2025Full = "WINDOWS_SERVER_2025_FULL",
        WindowsServer20H2Core = "WINDOWS_SERVER_20H2_CORE",
        Linux = "LINUX",
    }
}

wire_enum! {
    /// `IsolationMode` of a `TrustedExecutionConfiguration`.
    IsolationMode { Shared = "SHARED", IsolatedSandbox = "ISOLATED_SANDBOX", ConfidentialSandbox = "CONFIDENTIAL_SANDBOX" }
}

// ---------------------------------------------------------------------------------------------
// Request and record
// ---------------------------------------------------------------------------------------------

/// `RegisterTaskDefinitionRequest` without `tags` (tags are kept beside the record, not in it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionSpec {
    pub family: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub execution_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub network_mode: Option<NetworkMode>,
    pub container_definitions: Vec<ContainerDefinition>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volumes: Option<Vec<Volume>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub placement_constraints: Option<Vec<TaskDefinitionPlacementConstraint>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub requires_compatibilities: Option<Vec<Compatibility>>,
    /// Task-level CPU as sent: `"1024"`, `"1 vCPU"`, … ([`parse_cpu_units`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<String>,
    /// Task-level memory as sent: `"512"`, `"1GB"`, … ([`parse_memory_mib`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pid_mode: Option<PidMode>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ipc_mode: Option<IpcMode>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proxy_configuration: Option<ProxyConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub runtime_platform: Option<RuntimePlatform>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub enable_fault_injection: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trusted_execution_configuration: Option<TrustedExecutionConfiguration>,
}

impl TaskDefinitionSpec {
    /// Reads a `RegisterTaskDefinition` request body (members other than the spec's, such as
    /// `tags`, are ignored). Enum members are checked first so that an unknown value is reported
    /// as `InvalidParameterException` naming its member path; any other shape problem (a missing
    /// required member, a string where a number belongs) is reported with serde's message.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ValidationError> {
        check_wire_enums(value)?;
        serde_json::from_value(value.clone())
            .map_err(|e| ValidationError::invalid("", format!("invalid task definition: {e}")))
    }

    /// `networkMode`, or `bridge` when it is absent (ECS's default on Linux).
    pub fn effective_network_mode(&self) -> NetworkMode {
        self.network_mode.unwrap_or(NetworkMode::Bridge)
    }
}

/// The `TaskDefinition` record returned by Register/Describe/DeregisterTaskDefinition.
///
/// Members ECS always returns are plain values; the rest are echoed from the spec as sent
/// (after [`TaskDefinition::from_spec`]'s normalisation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    pub task_definition_arn: String,
    pub container_definitions: Vec<ContainerDefinition>,
    pub family: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub execution_role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub network_mode: Option<NetworkMode>,
    pub revision: i32,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    pub status: TaskDefinitionStatus,
    #[serde(default)]
    pub requires_attributes: Vec<Attribute>,
    #[serde(default)]
    pub placement_constraints: Vec<TaskDefinitionPlacementConstraint>,
    #[serde(default)]
    pub compatibilities: Vec<Compatibility>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub runtime_platform: Option<RuntimePlatform>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub requires_compatibilities: Option<Vec<Compatibility>>,
    /// Task-level CPU in units, as a decimal string (`"1 vCPU"` is stored as `"1024"`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<String>,
    /// Task-level memory in MiB, as a decimal string (`"1GB"` is stored as `"1024"`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pid_mode: Option<PidMode>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ipc_mode: Option<IpcMode>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proxy_configuration: Option<ProxyConfiguration>,
    pub registered_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deregistered_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delete_requested_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub registered_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub enable_fault_injection: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trusted_execution_configuration: Option<TrustedExecutionConfiguration>,
}

impl TaskDefinition {
    /// `networkMode`, or `bridge` when it is absent.
    pub fn effective_network_mode(&self) -> NetworkMode {
        self.network_mode.unwrap_or(NetworkMode::Bridge)
    }

    /// `family:revision`, the short name ECS accepts wherever a task definition is named.
    pub fn family_revision(&self) -> String {
        format!("{}:{}", self.family, self.revision)
    }

    /// The container definition called `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerDefinition> {
        self.container_definitions
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
    }

    /// Task-level CPU units, if the definition sets them.
    pub fn task_cpu_units(&self) -> Option<u32> {
        self.cpu.as_deref().and_then(|s| parse_cpu_units(s).ok())
    }

    /// Task-level memory in MiB, if the definition sets it.
    pub fn task_memory_mib(&self) -> Option<u32> {
        self.memory
            .as_deref()
            .and_then(|s| parse_memory_mib(s).ok())
    }

    /// The CPU units a task of this definition reserves on a container instance: the task-level
    /// `cpu` when set, otherwise the sum of the containers' `cpu`.
    pub fn reserved_cpu_units(&self) -> u32 {
        self.task_cpu_units().unwrap_or_else(|| {
            self.container_definitions
                .iter()
                .map(|c| c.cpu.unwrap_or(0).max(0) as u32)
                .sum()
        })
    }

    /// The memory (MiB) a task of this definition reserves on a container instance: the
    /// task-level `memory` when set, otherwise the sum of each container's `memoryReservation`
    /// (or `memory` when it has no reservation), as ECS subtracts from `remainingResources`.
    pub fn reserved_memory_mib(&self) -> u32 {
        self.task_memory_mib().unwrap_or_else(|| {
            self.container_definitions
                .iter()
                .map(|c| c.reserved_memory_mib().unwrap_or(0))
                .sum()
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Container definition
// ---------------------------------------------------------------------------------------------

/// `ContainerDefinition`, with every member botocore lists.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub repository_credentials: Option<RepositoryCredentials>,
    /// CPU units (botocore `Integer`: ECS returns `0` when it was not sent).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<i32>,
    /// Hard memory limit in MiB.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<i32>,
    /// Soft memory limit (the reservation) in MiB.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory_reservation: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub links: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub port_mappings: Option<Vec<PortMapping>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub essential: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub restart_policy: Option<ContainerRestartPolicy>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entry_point: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub environment: Option<Vec<KeyValuePair>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub environment_files: Option<Vec<EnvironmentFile>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mount_points: Option<Vec<MountPoint>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volumes_from: Option<Vec<VolumeFrom>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub linux_parameters: Option<LinuxParameters>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secrets: Option<Vec<Secret>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub depends_on: Option<Vec<ContainerDependency>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_timeout: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stop_timeout: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version_consistency: Option<VersionConsistency>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub working_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub disable_networking: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dns_servers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dns_search_domains: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extra_hosts: Option<Vec<HostEntry>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub docker_security_options: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interactive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pseudo_terminal: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub docker_labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ulimits: Option<Vec<Ulimit>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_configuration: Option<LogConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub health_check: Option<HealthCheck>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub system_controls: Option<Vec<SystemControl>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub firelens_configuration: Option<FirelensConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub credential_specs: Option<Vec<String>>,
}

impl ContainerDefinition {
    /// `essential`, which ECS takes as `true` when absent.
    pub fn is_essential(&self) -> bool {
        self.essential.unwrap_or(true)
    }

    /// The memory ECS reserves for this container: `memoryReservation`, else `memory`.
    pub fn reserved_memory_mib(&self) -> Option<u32> {
        self.memory_reservation
            .or(self.memory)
            .map(|m| m.max(0) as u32)
    }
}

/// `RepositoryCredentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryCredentials {
    pub credentials_parameter: String,
}

/// `PortMapping`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_port: Option<i32>,
    /// `0` (or absent in bridge mode) asks for a dynamic host port.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub protocol: Option<TransportProtocol>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub app_protocol: Option<ApplicationProtocol>,
    /// `"START-END"`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_port_range: Option<String>,
}

/// `ContainerRestartPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRestartPolicy {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ignored_exit_codes: Option<Vec<i32>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub restart_attempt_period: Option<i32>,
}

/// `MountPoint`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_volume: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub read_only: Option<bool>,
}

/// `VolumeFrom`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeFrom {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub read_only: Option<bool>,
}

/// `LinuxParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxParameters {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capabilities: Option<KernelCapabilities>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub devices: Option<Vec<Device>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub init_process_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shared_memory_size: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tmpfs: Option<Vec<Tmpfs>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_swap: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub swappiness: Option<i32>,
}

/// `KernelCapabilities`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelCapabilities {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub add: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub drop: Option<Vec<String>>,
}

/// `Device`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub host_path: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub permissions: Option<Vec<DeviceCgroupPermission>>,
}

/// `Tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tmpfs {
    pub container_path: String,
    /// MiB.
    pub size: i32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mount_options: Option<Vec<String>>,
}

/// `Secret`: `valueFrom` is a Secrets Manager secret ARN (optionally with `:json-key:` etc.) or
/// an SSM parameter name/ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    pub name: String,
    pub value_from: String,
}

/// `ContainerDependency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    pub container_name: String,
    pub condition: ContainerCondition,
}

/// `HostEntry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    pub hostname: String,
    pub ip_address: String,
}

/// `Ulimit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ulimit {
    pub name: UlimitName,
    pub soft_limit: i32,
    pub hard_limit: i32,
}

/// `LogConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    pub log_driver: LogDriver,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret_options: Option<Vec<Secret>>,
}

/// `HealthCheck`. Defaults when absent: interval 30 s, timeout 5 s, retries 3, no start period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interval: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retries: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_period: Option<i32>,
}

impl HealthCheck {
    pub const DEFAULT_INTERVAL: i32 = 30;
    pub const DEFAULT_TIMEOUT: i32 = 5;
    pub const DEFAULT_RETRIES: i32 = 3;
}

/// `SystemControl`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemControl {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
}

/// `FirelensConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirelensConfiguration {
    pub r#type: FirelensConfigurationType,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub options: Option<BTreeMap<String, String>>,
}

// ---------------------------------------------------------------------------------------------
// Volumes and task-level members
// ---------------------------------------------------------------------------------------------

/// `Volume`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host: Option<HostVolumeProperties>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub docker_volume_configuration: Option<DockerVolumeConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub efs_volume_configuration: Option<EfsVolumeConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub s3files_volume_configuration: Option<S3FilesVolumeConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fsx_windows_file_server_volume_configuration:
        Option<FsxWindowsFileServerVolumeConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub configured_at_launch: Option<bool>,
}

/// `HostVolumeProperties`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostVolumeProperties {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_path: Option<String>,
}

/// `DockerVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerVolumeConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scope: Option<Scope>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub autoprovision: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `EFSVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EfsVolumeConfiguration {
    pub file_system_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub root_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transit_encryption: Option<EfsTransitEncryption>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transit_encryption_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub authorization_config: Option<EfsAuthorizationConfig>,
}

/// `EFSAuthorizationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EfsAuthorizationConfig {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub access_point_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iam: Option<EfsAuthorizationConfigIam>,
}

/// `S3FilesVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3FilesVolumeConfiguration {
    pub file_system_arn: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub root_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transit_encryption_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub access_point_arn: Option<String>,
}

/// `FSxWindowsFileServerVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsxWindowsFileServerVolumeConfiguration {
    pub file_system_id: String,
    pub root_directory: String,
    pub authorization_config: FsxWindowsFileServerAuthorizationConfig,
}

/// `FSxWindowsFileServerAuthorizationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsxWindowsFileServerAuthorizationConfig {
    pub credentials_parameter: String,
    pub domain: String,
}

/// `TaskDefinitionPlacementConstraint`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionPlacementConstraint {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub r#type: Option<TaskDefinitionPlacementConstraintType>,
    /// A cluster query language expression.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expression: Option<String>,
}

/// `RuntimePlatform`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimePlatform {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu_architecture: Option<CpuArchitecture>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub operating_system_family: Option<OsFamily>,
}

/// `ProxyConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub r#type: Option<ProxyConfigurationType>,
    pub container_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub properties: Option<Vec<KeyValuePair>>,
}

/// `TrustedExecutionConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedExecutionConfiguration {
    pub isolation_mode: IsolationMode,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attestation_policy: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Enum members of the request, checked before typed deserialization
// ---------------------------------------------------------------------------------------------

/// Where the request's enum members live (`[]` = every element of a list) and what they accept.
const ENUM_MEMBERS: &[(&str, &[&str])] = &[
    ("networkMode", NetworkMode::WIRE),
    ("requiresCompatibilities[]", Compatibility::WIRE),
    ("pidMode", PidMode::WIRE),
    ("ipcMode", IpcMode::WIRE),
    (
        "placementConstraints[].type",
        TaskDefinitionPlacementConstraintType::WIRE,
    ),
    ("proxyConfiguration.type", ProxyConfigurationType::WIRE),
    ("runtimePlatform.cpuArchitecture", CpuArchitecture::WIRE),
    ("runtimePlatform.operatingSystemFamily", OsFamily::WIRE),
    (
        "trustedExecutionConfiguration.isolationMode",
        IsolationMode::WIRE,
    ),
    ("volumes[].dockerVolumeConfiguration.scope", Scope::WIRE),
    (
        "volumes[].efsVolumeConfiguration.transitEncryption",
        EfsTransitEncryption::WIRE,
    ),
    (
        "volumes[].efsVolumeConfiguration.authorizationConfig.iam",
        EfsAuthorizationConfigIam::WIRE,
    ),
    (
        "containerDefinitions[].portMappings[].protocol",
        &["tcp", "udp"],
    ),
    (
        "containerDefinitions[].portMappings[].appProtocol",
        ApplicationProtocol::WIRE,
    ),
    ("containerDefinitions[].environmentFiles[].type", &["s3"]),
    (
        "containerDefinitions[].linuxParameters.devices[].permissions[]",
        DeviceCgroupPermission::WIRE,
    ),
    (
        "containerDefinitions[].dependsOn[].condition",
        ContainerCondition::WIRE,
    ),
    (
        "containerDefinitions[].versionConsistency",
        VersionConsistency::WIRE,
    ),
    ("containerDefinitions[].ulimits[].name", UlimitName::WIRE),
    (
        "containerDefinitions[].logConfiguration.logDriver",
        LogDriver::WIRE,
    ),
    (
        "containerDefinitions[].resourceRequirements[].type",
        &["GPU", "InferenceAccelerator", "NeuronDevice"],
    ),
    (
        "containerDefinitions[].firelensConfiguration.type",
        FirelensConfigurationType::WIRE,
    ),
];

/// Checks every enum member of a `RegisterTaskDefinition` body against botocore's values.
/// Members that are absent, or not strings, are left for deserialization to judge.
pub fn check_wire_enums(body: &serde_json::Value) -> Result<(), ValidationError> {
    for (pattern, allowed) in ENUM_MEMBERS {
        let segments: Vec<&str> = pattern.split('.').collect();
        check_enum_at(body, &segments, String::new(), allowed)?;
    }
    Ok(())
}

fn check_enum_at(
    value: &serde_json::Value,
    segments: &[&str],
    path: String,
    allowed: &[&str],
) -> Result<(), ValidationError> {
    let Some((segment, rest)) = segments.split_first() else {
        let Some(s) = value.as_str() else {
            return Ok(());
        };
        if allowed.contains(&s) {
            return Ok(());
        }
        return Err(ValidationError::invalid(
            path.clone(),
            format!(
                "{path}: '{s}' is not a valid value; valid values are {}",
                allowed.join(", ")
            ),
        ));
    };
    let (member, each) = match segment.strip_suffix("[]") {
        Some(m) => (m, true),
        None => (*segment, false),
    };
    let Some(child) = value.get(member) else {
        return Ok(());
    };
    let child_path = if path.is_empty() {
        member.to_string()
    } else {
        format!("{path}.{member}")
    };
    if each {
        if let Some(items) = child.as_array() {
            for (i, item) in items.iter().enumerate() {
                check_enum_at(item, rest, format!("{child_path}[{i}]"), allowed)?;
            }
        }
        Ok(())
    } else {
        check_enum_at(child, rest, child_path, allowed)
    }
}
