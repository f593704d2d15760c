//! What this host offers to tasks: CPU units, memory and reserved ports, in the shape of
//! RegisterContainerInstance's `totalResources`.

use serde_json::{Value, json};

/// The host's registered resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostResources {
    /// CPU units: cores × 1024.
    pub cpu: i64,
    /// MiB: the host's memory less the reserve.
    pub memory_mib: i64,
    /// Reserved TCP ports.
    pub ports: Vec<u16>,
    /// Reserved UDP ports.
    pub ports_udp: Vec<u16>,
}

/// `MemTotal` of `/proc/meminfo`, in MiB.
pub fn parse_meminfo_mib(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

impl HostResources {
    /// This host's resources, less `reserved_memory_mib`, with `reserved_ports` held back.
    pub fn detect(reserved_memory_mib: i64, reserved_ports: &[u16]) -> Result<Self, String> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let meminfo = std::fs::read_to_string("/proc/meminfo")
            .map_err(|e| format!("could not read /proc/meminfo to size this host: {e}"))?;
        let total = parse_meminfo_mib(&meminfo)
            .ok_or("could not find MemTotal in /proc/meminfo to size this host")?;
        Self::new(cores, total, reserved_memory_mib, reserved_ports)
    }

    fn new(
        cores: usize,
        total_mib: i64,
        reserved_memory_mib: i64,
        reserved_ports: &[u16],
    ) -> Result<Self, String> {
        let memory_mib = total_mib - reserved_memory_mib;
        if memory_mib <= 0 {
            return Err(format!(
                "the memory reserve ({reserved_memory_mib} MiB) is not less than this host's memory ({total_mib} MiB); lower --reserved-memory"
            ));
        }
        let mut ports = reserved_ports.to_vec();
        ports.sort_unstable();
        ports.dedup();
        Ok(HostResources {
            cpu: i64::try_from(cores).unwrap_or(i64::MAX / 1024) * 1024,
            memory_mib,
            ports,
            ports_udp: Vec::new(),
        })
    }

    /// `totalResources` as RegisterContainerInstance takes it.
    pub fn to_wire(&self) -> Value {
        let set = |ports: &[u16]| ports.iter().map(u16::to_string).collect::<Vec<_>>();
        json!([
            {"name": "CPU", "type": "INTEGER", "integerValue": self.cpu},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": self.memory_mib},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": set(&self.ports)},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": set(&self.ports_udp)},
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_the_host_as_ecs_does() {
        let meminfo = "MemTotal:        8041476 kB\nMemFree:  1000 kB\n";
        assert_eq!(parse_meminfo_mib(meminfo), Some(7853));
        let host = HostResources::new(2, 7852, 256, &[2376, 22, 2375, 22]).unwrap();
        assert_eq!(host.cpu, 2048);
        assert_eq!(host.memory_mib, 7596);
        assert_eq!(host.ports, vec![22, 2375, 2376]);
        let wire = host.to_wire();
        assert_eq!(wire[2]["stringSetValue"], json!(["22", "2375", "2376"]));
        assert!(HostResources::new(2, 512, 512, &[]).is_err());
        assert!(HostResources::detect(0, &[22]).unwrap().memory_mib > 0);
    }
}
