//! The `ContainerInstance` record, its status lifecycle, and [`Resources`], the pure resource
//! vector the scheduler and plan applier do arithmetic on.
//!
//! ECS's resource convention, which [`Resources`] follows: CPU and MEMORY are amounts (what is
//! registered, or what remains), while PORTS and PORTS_UDP list ports that are *taken* (the
//! instance's reserved ports in `registeredResources`; reserved plus task host ports in
//! `remainingResources`).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::common::{Attachment, Attribute, Resource, Tag, TransportProtocol};
use crate::error::ValidationError;
use crate::time::Timestamp;

/// A container instance's `status`. botocore's `ContainerInstanceStatus` lists the first five;
/// ECS reports INACTIVE for an instance that has been deregistered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerInstanceStatus {
    #[default]
    Active,
    Draining,
    Registering,
    Deregistering,
    RegistrationFailed,
    Inactive,
}

impl ContainerInstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerInstanceStatus::Active => "ACTIVE",
            ContainerInstanceStatus::Draining => "DRAINING",
            ContainerInstanceStatus::Registering => "REGISTERING",
            ContainerInstanceStatus::Deregistering => "DEREGISTERING",
            ContainerInstanceStatus::RegistrationFailed => "REGISTRATION_FAILED",
            ContainerInstanceStatus::Inactive => "INACTIVE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        use ContainerInstanceStatus::*;
        [
            Active,
            Draining,
            Registering,
            Deregistering,
            RegistrationFailed,
            Inactive,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// REGISTERING → ACTIVE | REGISTRATION_FAILED; ACTIVE ⇄ DRAINING;
    /// ACTIVE | DRAINING → DEREGISTERING → INACTIVE (or straight to INACTIVE);
    /// REGISTRATION_FAILED → INACTIVE. INACTIVE is terminal. Staying put is allowed.
    pub fn can_transition_to(self, next: ContainerInstanceStatus) -> bool {
        use ContainerInstanceStatus::*;
        self == next
            || matches!(
                (self, next),
                (Registering, Active | RegistrationFailed)
                    | (Active, Draining | Deregistering | Inactive)
                    | (Draining, Active | Deregistering | Inactive)
                    | (Deregistering, Inactive)
                    | (RegistrationFailed, Inactive)
            )
    }

    /// Only ACTIVE instances receive new tasks (RunTask, services); DRAINING ones keep their
    /// running tasks but get no new ones.
    pub fn accepts_new_tasks(self) -> bool {
        self == ContainerInstanceStatus::Active
    }

    /// Whether UpdateContainerInstancesState may set this status (ACTIVE or DRAINING only).
    pub fn settable_by_user(self) -> bool {
        matches!(
            self,
            ContainerInstanceStatus::Active | ContainerInstanceStatus::Draining
        )
    }
}

/// `AgentUpdateStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentUpdateStatus {
    Pending,
    Staging,
    Staged,
    Updating,
    Updated,
    Failed,
}

/// `VersionInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub docker_version: Option<String>,
}

/// `InstanceHealthCheckState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceHealthCheckState {
    Ok,
    Impaired,
    InsufficientData,
    Initializing,
}

/// `InstanceHealthCheckType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceHealthCheckType {
    ContainerRuntime,
    AcceleratedCompute,
    Daemon,
    AgentConnectivity,
}

/// `InstanceHealthCheckResult`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceHealthCheckResult {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub r#type: Option<InstanceHealthCheckType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<InstanceHealthCheckState>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_updated: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_status_change: Option<Timestamp>,
}

/// `ContainerInstanceHealthStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceHealthStatus {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub overall_status: Option<InstanceHealthCheckState>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub details: Option<Vec<InstanceHealthCheckResult>>,
}

/// `GpuSharingMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GpuSharingMode {
    Idle,
    NvidiaMps,
    Dedicated,
}

/// `GpuDevice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GpuDevice {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gpu_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sharing_mode: Option<GpuSharingMode>,
    #[serde(
        rename = "totalMemoryInMiB",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub total_memory_in_mib: Option<i32>,
    #[serde(
        rename = "remainingMemoryInMiB",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub remaining_memory_in_mib: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_count: Option<i32>,
}

/// `PlatformDeviceType` (RegisterContainerInstance's `platformDevices`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlatformDeviceType {
    Gpu,
}

/// `PlatformDevice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformDevice {
    pub id: String,
    #[serde(rename = "type")]
    pub r#type: PlatformDeviceType,
}

/// The `ContainerInstance` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstance {
    pub container_instance_arn: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ec2_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_provider_name: Option<String>,
    /// Incremented on every change ECS makes to the record (EventBridge `version`).
    #[serde(default)]
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version_info: Option<VersionInfo>,
    #[serde(default)]
    pub remaining_resources: Vec<Resource>,
    #[serde(default)]
    pub registered_resources: Vec<Resource>,
    #[serde(default)]
    pub status: ContainerInstanceStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub agent_connected: bool,
    #[serde(default)]
    pub running_tasks_count: i32,
    #[serde(default)]
    pub pending_tasks_count: i32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent_update_status: Option<AgentUpdateStatus>,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub registered_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attachments: Option<Vec<Attachment>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub health_status: Option<ContainerInstanceHealthStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gpu_devices: Option<Vec<GpuDevice>>,
}

impl ContainerInstance {
    /// A new ACTIVE, connected instance whose remaining resources equal its registered ones.
    pub fn new(
        container_instance_arn: impl Into<String>,
        registered: &Resources,
        registered_at: Timestamp,
    ) -> Self {
        ContainerInstance {
            container_instance_arn: container_instance_arn.into(),
            ec2_instance_id: None,
            capacity_provider_name: None,
            version: 1,
            version_info: None,
            remaining_resources: registered.to_wire(),
            registered_resources: registered.to_wire(),
            status: ContainerInstanceStatus::Active,
            status_reason: None,
            agent_connected: true,
            running_tasks_count: 0,
            pending_tasks_count: 0,
            agent_update_status: None,
            attributes: Vec::new(),
            registered_at: Some(registered_at),
            attachments: None,
            tags: None,
            health_status: None,
            gpu_devices: None,
        }
    }

    /// The value of attribute `name` (`Some(None)` when present without a value).
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_deref())
    }

    /// The registered resources as a vector.
    pub fn registered(&self) -> Result<Resources, ValidationError> {
        Resources::from_wire("registeredResources", &self.registered_resources)
    }

    /// The remaining resources as a vector.
    pub fn remaining(&self) -> Result<Resources, ValidationError> {
        Resources::from_wire("remainingResources", &self.remaining_resources)
    }
}

/// Resource names as ECS spells them in `Resource.name`.
pub const CPU: &str = "CPU";
pub const MEMORY: &str = "MEMORY";
pub const PORTS: &str = "PORTS";
pub const PORTS_UDP: &str = "PORTS_UDP";

/// A container instance's resources, or a task's needs: CPU units and MiB of memory (amounts),
/// and the TCP/UDP host ports that are taken (or, for a need, that the task binds statically).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resources {
    pub cpu: i64,
    pub memory_mib: i64,
    pub ports_tcp: BTreeSet<u16>,
    pub ports_udp: BTreeSet<u16>,
}

/// The first resource a [`Resources`] cannot supply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceShortfall {
    Cpu { needed: i64, available: i64 },
    Memory { needed: i64, available: i64 },
    Ports { port: u16 },
    PortsUdp { port: u16 },
}

impl ResourceShortfall {
    /// The resource's name: `CPU`, `MEMORY`, `PORTS` or `PORTS_UDP`.
    pub fn resource(&self) -> &'static str {
        match self {
            ResourceShortfall::Cpu { .. } => CPU,
            ResourceShortfall::Memory { .. } => MEMORY,
            ResourceShortfall::Ports { .. } => PORTS,
            ResourceShortfall::PortsUdp { .. } => PORTS_UDP,
        }
    }

    /// ECS's failure reason, e.g. `RESOURCE:CPU`.
    pub fn reason(&self) -> String {
        format!("RESOURCE:{}", self.resource())
    }
}

impl fmt::Display for ResourceShortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceShortfall::Cpu { needed, available } => {
                write!(f, "needs {needed} cpu units, {available} available")
            }
            ResourceShortfall::Memory { needed, available } => {
                write!(f, "needs {needed} MiB of memory, {available} available")
            }
            ResourceShortfall::Ports { port } => write!(f, "tcp port {port} is already in use"),
            ResourceShortfall::PortsUdp { port } => write!(f, "udp port {port} is already in use"),
        }
    }
}

impl Resources {
    pub fn new(cpu: i64, memory_mib: i64) -> Self {
        Resources {
            cpu,
            memory_mib,
            ..Resources::default()
        }
    }

    pub fn with_ports(
        mut self,
        tcp: impl IntoIterator<Item = u16>,
        udp: impl IntoIterator<Item = u16>,
    ) -> Self {
        self.ports_tcp.extend(tcp);
        self.ports_udp.extend(udp);
        self
    }

    /// The taken ports of one protocol.
    pub fn ports(&self, protocol: TransportProtocol) -> &BTreeSet<u16> {
        match protocol {
            TransportProtocol::Tcp => &self.ports_tcp,
            TransportProtocol::Udp => &self.ports_udp,
        }
    }

    /// Whether `need` fits into these (remaining) resources: enough CPU, enough memory, and none
    /// of the needed ports taken. Reports the first shortfall in the order CPU, MEMORY, PORTS,
    /// PORTS_UDP.
    pub fn fits(&self, need: &Resources) -> Result<(), ResourceShortfall> {
        if need.cpu > self.cpu {
            return Err(ResourceShortfall::Cpu {
                needed: need.cpu,
                available: self.cpu,
            });
        }
        if need.memory_mib > self.memory_mib {
            return Err(ResourceShortfall::Memory {
                needed: need.memory_mib,
                available: self.memory_mib,
            });
        }
        if let Some(&port) = need.ports_tcp.intersection(&self.ports_tcp).next() {
            return Err(ResourceShortfall::Ports { port });
        }
        if let Some(&port) = need.ports_udp.intersection(&self.ports_udp).next() {
            return Err(ResourceShortfall::PortsUdp { port });
        }
        Ok(())
    }

    /// Takes `need` out of these resources: CPU and memory go down, its ports become taken.
    /// Does not check [`fits`](Self::fits) first; amounts may go negative.
    pub fn subtract(&mut self, need: &Resources) {
        self.cpu -= need.cpu;
        self.memory_mib -= need.memory_mib;
        self.ports_tcp.extend(need.ports_tcp.iter().copied());
        self.ports_udp.extend(need.ports_udp.iter().copied());
    }

    /// Gives `need` back (a task stopped): CPU and memory go up, its ports are released.
    /// Callers must not release ports the instance reserves itself; see
    /// [`release_to`](Self::release_to).
    pub fn add(&mut self, need: &Resources) {
        self.cpu += need.cpu;
        self.memory_mib += need.memory_mib;
        for p in &need.ports_tcp {
            self.ports_tcp.remove(p);
        }
        for p in &need.ports_udp {
            self.ports_udp.remove(p);
        }
    }

    /// Like [`add`](Self::add), but keeps the ports `registered` reserves taken and caps CPU
    /// and memory at the registered amounts.
    pub fn release_to(&mut self, need: &Resources, registered: &Resources) {
        self.add(need);
        self.cpu = self.cpu.min(registered.cpu);
        self.memory_mib = self.memory_mib.min(registered.memory_mib);
        self.ports_tcp.extend(registered.ports_tcp.iter().copied());
        self.ports_udp.extend(registered.ports_udp.iter().copied());
    }

    /// Reads the wire form. CPU and MEMORY take whichever numeric member is set; PORTS and
    /// PORTS_UDP are string sets of port numbers; other resources (GPU, NEURON_CORES…) are
    /// ignored. A missing CPU or MEMORY counts as 0.
    pub fn from_wire(field: &str, resources: &[Resource]) -> Result<Resources, ValidationError> {
        let mut out = Resources::default();
        for (i, r) in resources.iter().enumerate() {
            let Some(name) = r.name.as_deref() else {
                continue;
            };
            match name {
                CPU | MEMORY => {
                    let v = r.number().unwrap_or(0);
                    if v < 0 {
                        return Err(ValidationError::invalid(
                            format!("{field}[{i}]"),
                            format!("{name} must not be negative, got {v}"),
                        ));
                    }
                    if name == CPU {
                        out.cpu = v;
                    } else {
                        out.memory_mib = v;
                    }
                }
                PORTS | PORTS_UDP => {
                    let set = if name == PORTS {
                        &mut out.ports_tcp
                    } else {
                        &mut out.ports_udp
                    };
                    for s in r.string_set_value.iter().flatten() {
                        let port = s.trim().parse::<u16>().map_err(|_| {
                            ValidationError::invalid(
                                format!("{field}[{i}].stringSetValue"),
                                format!("'{s}' is not a port number (0-65535)"),
                            )
                        })?;
                        set.insert(port);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The wire form, as ECS returns it: CPU and MEMORY as `INTEGER`, PORTS and PORTS_UDP as
    /// `STRINGSET`, each with ECS's zero-valued `doubleValue`/`longValue`/`integerValue`.
    pub fn to_wire(&self) -> Vec<Resource> {
        let int = |name: &str, v: i64| Resource {
            name: Some(name.to_string()),
            r#type: Some("INTEGER".to_string()),
            double_value: Some(0.0),
            long_value: Some(0),
            integer_value: Some(v.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
            string_set_value: None,
        };
        let set = |name: &str, ports: &BTreeSet<u16>| Resource {
            name: Some(name.to_string()),
            r#type: Some("STRINGSET".to_string()),
            double_value: Some(0.0),
            long_value: Some(0),
            integer_value: Some(0),
            string_set_value: Some(ports.iter().map(u16::to_string).collect()),
        };
        vec![
            int(CPU, self.cpu),
            int(MEMORY, self.memory_mib),
            set(PORTS, &self.ports_tcp),
            set(PORTS_UDP, &self.ports_udp),
        ]
    }
}

impl From<&Resources> for Vec<Resource> {
    fn from(r: &Resources) -> Self {
        r.to_wire()
    }
}

impl TryFrom<&[Resource]> for Resources {
    type Error = ValidationError;
    fn try_from(resources: &[Resource]) -> Result<Self, Self::Error> {
        Resources::from_wire("resources", resources)
    }
}

/// Checks RegisterContainerInstance's `totalResources`: CPU and MEMORY present and positive.
pub fn validate_total_resources(resources: &[Resource]) -> Result<Resources, ValidationError> {
    let r = Resources::from_wire("totalResources", resources)?;
    for name in [CPU, MEMORY] {
        if !resources.iter().any(|x| x.name.as_deref() == Some(name)) {
            return Err(ValidationError::invalid(
                "totalResources",
                format!("totalResources must include {name}"),
            ));
        }
    }
    if r.cpu <= 0 || r.memory_mib <= 0 {
        return Err(ValidationError::invalid(
            "totalResources",
            "totalResources CPU and MEMORY must be greater than 0",
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host() -> Resources {
        Resources::new(2048, 3768).with_ports([22, 2375, 2376, 51678, 51679], [])
    }

    #[test]
    fn fits_names_the_first_short_resource() {
        let h = host();
        assert_eq!(h.fits(&Resources::new(1024, 512)), Ok(()));
        assert_eq!(h.fits(&Resources::new(2048, 3768)), Ok(()));
        let e = h.fits(&Resources::new(4096, 99_999)).unwrap_err();
        assert_eq!(
            e,
            ResourceShortfall::Cpu {
                needed: 4096,
                available: 2048
            }
        );
        assert_eq!(e.reason(), "RESOURCE:CPU");
        let e = h.fits(&Resources::new(0, 4000)).unwrap_err();
        assert_eq!(e.reason(), "RESOURCE:MEMORY");
        let e = h
            .fits(&Resources::new(0, 0).with_ports([80, 22], []))
            .unwrap_err();
        assert_eq!(e, ResourceShortfall::Ports { port: 22 });
        assert_eq!(e.reason(), "RESOURCE:PORTS");
        assert_eq!(h.fits(&Resources::new(0, 0).with_ports([], [22])), Ok(()));
        let h2 = h.clone().with_ports([], [53]);
        assert_eq!(
            h2.fits(&Resources::new(0, 0).with_ports([], [53]))
                .unwrap_err()
                .reason(),
            "RESOURCE:PORTS_UDP"
        );
    }

    #[test]
    fn subtract_and_add_are_inverse() {
        let registered = host();
        let mut r = registered.clone();
        let task = Resources::new(512, 1024).with_ports([8080], [5353]);
        r.subtract(&task);
        assert_eq!(r.cpu, 1536);
        assert_eq!(r.memory_mib, 2744);
        assert!(r.ports_tcp.contains(&8080) && r.ports_udp.contains(&5353));
        assert!(
            r.fits(&Resources::new(0, 0).with_ports([8080], []))
                .is_err()
        );
        r.add(&task);
        assert_eq!(r, registered);
    }

    #[test]
    fn release_keeps_reserved_ports() {
        let registered = host();
        let mut r = registered.clone();
        // A task that (wrongly) claims a reserved port must not free it when it stops.
        let task = Resources::new(100, 100).with_ports([22], []);
        r.cpu -= 100;
        r.memory_mib -= 100;
        r.release_to(&task, &registered);
        assert_eq!(r, registered);
    }

    #[test]
    fn wire_round_trip_matches_ecs_shape() {
        let wire = host().to_wire();
        let v = serde_json::to_value(&wire).unwrap();
        assert_eq!(
            v[0],
            json!({"name": "CPU", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": 2048})
        );
        assert_eq!(v[2]["name"], "PORTS");
        assert_eq!(
            v[2]["stringSetValue"],
            json!(["22", "2375", "2376", "51678", "51679"])
        );
        assert_eq!(Resources::try_from(wire.as_slice()).unwrap(), host());
    }

    #[test]
    fn reads_what_the_agent_registers() {
        let agent: Vec<Resource> = serde_json::from_value(json!([
            {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 7680},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375"]},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []},
            {"name": "NEURON_CORES", "type": "INTEGER", "integerValue": 2}
        ]))
        .unwrap();
        let r = validate_total_resources(&agent).unwrap();
        assert_eq!(r, Resources::new(4096, 7680).with_ports([22, 2375], []));
        let bad = vec![Resource::string_set(PORTS, vec!["http".into()])];
        let e = Resources::from_wire("totalResources", &bad).unwrap_err();
        assert_eq!(e.field, "totalResources[0].stringSetValue");
        let e = validate_total_resources(&[Resource::integer(CPU, 1024)]).unwrap_err();
        assert_eq!(e.field, "totalResources");
    }

    #[test]
    fn status_lifecycle() {
        use ContainerInstanceStatus::*;
        assert!(Registering.can_transition_to(Active));
        assert!(Active.can_transition_to(Draining));
        assert!(Draining.can_transition_to(Active));
        assert!(Draining.can_transition_to(Inactive));
        assert!(!Inactive.can_transition_to(Active));
        assert!(!RegistrationFailed.can_transition_to(Active));
        assert!(Active.accepts_new_tasks() && !Draining.accepts_new_tasks());
        assert!(Draining.settable_by_user() && !Inactive.settable_by_user());
        assert_eq!(
            serde_json::to_value(RegistrationFailed).unwrap(),
            "REGISTRATION_FAILED"
        );
        assert_eq!(ContainerInstanceStatus::parse("DRAINING"), Some(Draining));
        assert_eq!(ContainerInstanceStatus::parse("nope"), None);
    }

    #[test]
    fn container_instance_wire_shape() {
        let mut ci = ContainerInstance::new(
            "arn:aws:ecs:us-east-1:1:container-instance/default/abc",
            &Resources::new(1024, 512),
            Timestamp(1_700_000_000_000),
        );
        ci.ec2_instance_id = Some("i-0abc".into());
        ci.version_info = Some(VersionInfo {
            agent_version: Some("1.105.1".into()),
            agent_hash: Some("8dfceca6".into()),
            docker_version: Some("DockerVersion: 27.0.3".into()),
        });
        ci.attributes
            .push(Attribute::new("ecs.os-type", Some("linux".into())));
        ci.health_status = Some(ContainerInstanceHealthStatus {
            overall_status: Some(InstanceHealthCheckState::Ok),
            details: Some(vec![InstanceHealthCheckResult {
                r#type: Some(InstanceHealthCheckType::ContainerRuntime),
                status: Some(InstanceHealthCheckState::Ok),
                status_reason: None,
                last_updated: Some(Timestamp(1_700_000_000_000)),
                last_status_change: None,
            }]),
        });
        let v = serde_json::to_value(&ci).unwrap();
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["agentConnected"], true);
        assert_eq!(v["registeredAt"], json!(1_700_000_000.0));
        assert_eq!(v["versionInfo"]["agentHash"], "8dfceca6");
        assert_eq!(v["healthStatus"]["details"][0]["type"], "CONTAINER_RUNTIME");
        assert_eq!(ci.attribute("ecs.os-type"), Some(Some("linux")));
        assert_eq!(ci.remaining().unwrap(), Resources::new(1024, 512));
        let back: ContainerInstance = serde_json::from_value(v).unwrap();
        assert_eq!(back, ci);
        let gpu: GpuDevice = serde_json::from_value(
            json!({"gpuId": "g", "sharingMode": "NVIDIA_MPS", "totalMemoryInMiB": 1, "remainingMemoryInMiB": 1, "containerCount": 0}),
        )
        .unwrap();
        assert_eq!(gpu.sharing_mode, Some(GpuSharingMode::NvidiaMps));
    }
}
