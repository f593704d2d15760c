//! What one task takes from an instance.

use berth_model::container_instance::Resources;
use berth_model::task::TaskOverride;
use berth_model::task_definition::{TaskDefinition, parse_cpu_units, parse_memory_mib};

/// What one task of `definition` (with `overrides`) takes from an instance: CPU units, memory
/// (hard limit, or the reservation when only that is given) and its static host ports.
/// Dynamic host ports (`hostPort` 0) are chosen by the agent and not reserved here.
pub fn task_demand(definition: &TaskDefinition, overrides: Option<&TaskOverride>) -> Resources {
    let task_cpu = overrides
        .and_then(|o| o.cpu.as_deref())
        .and_then(|c| parse_cpu_units(c).ok())
        .or(definition.task_cpu_units());
    let task_memory = overrides
        .and_then(|o| o.memory.as_deref())
        .and_then(|m| parse_memory_mib(m).ok())
        .or(definition.task_memory_mib());
    let mut cpu: i64 = 0;
    let mut memory: i64 = 0;
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for c in &definition.container_definitions {
        let o = c
            .name
            .as_deref()
            .and_then(|n| overrides.and_then(|o| o.container(n)));
        cpu += i64::from(o.and_then(|o| o.cpu).or(c.cpu).unwrap_or(0).max(0));
        let reservation = o
            .and_then(|o| o.memory_reservation)
            .or(c.memory_reservation);
        let hard = o.and_then(|o| o.memory).or(c.memory);
        memory += i64::from(reservation.or(hard).unwrap_or(0).max(0));
        for p in c.port_mappings.iter().flatten() {
            let Some(port) = p
                .host_port
                .filter(|p| *p > 0)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            match p.protocol.map(|p| p.as_str()) {
                Some("udp") => udp.push(port),
                _ => tcp.push(port),
            }
        }
    }
    let cpu = task_cpu.map_or(cpu, i64::from);
    let memory = task_memory.map_or(memory, i64::from);
    Resources::new(cpu, memory).with_ports(tcp, udp)
}
