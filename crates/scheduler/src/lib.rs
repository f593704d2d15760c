//! Task placement as a pure function: a snapshot of candidate instances and a demand in, a
//! plan of placements and failures out.
//!
//! Contract: synchronous, no I/O, no clock, no thread RNG — the same input gives the same plan.
//! The server's applier commits a plan only if every instance it touches is unchanged since the
//! snapshot, so a plan can never over-commit a host. Depends only on `berth-model`.
//!
//! This is the first placement: it honours CPU, memory and static host ports, and prefers the
//! instance with the most memory left (so tasks spread). Strategies and constraints come next.

use berth_model::container_instance::{ResourceShortfall, Resources};
use berth_model::task::TaskOverride;
use berth_model::task_definition::TaskDefinition;

/// An instance that may take tasks, with what it has left.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The caller's handle for the instance (e.g. its ARN).
    pub id: String,
    pub remaining: Resources,
}

/// Why a task could not be placed, on the closest instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Unplaced {
    pub instance: Option<String>,
    pub shortfall: Option<ResourceShortfall>,
}

impl Unplaced {
    /// ECS's failure reason: `RESOURCE:CPU`, `RESOURCE:MEMORY`, `RESOURCE:PORTS`, ….
    pub fn reason(&self) -> String {
        self.shortfall
            .as_ref()
            .map(ResourceShortfall::reason)
            .unwrap_or_else(|| "RESOURCE:NONE".into())
    }
}

/// The outcome for `count` tasks: for each, the index of its candidate, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub placements: Vec<Result<usize, Unplaced>>,
    /// The candidates' remaining resources after the placements.
    pub remaining: Vec<Resources>,
}

/// Places `count` tasks that each need `demand` onto `candidates`.
pub fn place(candidates: &[Candidate], demand: &Resources, count: usize) -> Plan {
    let mut remaining: Vec<Resources> = candidates.iter().map(|c| c.remaining.clone()).collect();
    let mut placements = Vec::with_capacity(count);
    for _ in 0..count {
        let best = (0..remaining.len())
            .filter(|&i| remaining[i].fits(demand).is_ok())
            .max_by_key(|&i| {
                (
                    remaining[i].memory_mib,
                    remaining[i].cpu,
                    std::cmp::Reverse(i),
                )
            });
        match best {
            Some(i) => {
                remaining[i].subtract(demand);
                placements.push(Ok(i));
            }
            None => placements.push(Err(closest_miss(candidates, &remaining, demand))),
        }
    }
    Plan {
        placements,
        remaining,
    }
}

fn closest_miss(candidates: &[Candidate], remaining: &[Resources], demand: &Resources) -> Unplaced {
    let closest = (0..remaining.len()).max_by_key(|&i| (remaining[i].memory_mib, remaining[i].cpu));
    match closest {
        Some(i) => Unplaced {
            instance: Some(candidates[i].id.clone()),
            shortfall: remaining[i].fits(demand).err(),
        },
        None => Unplaced {
            instance: None,
            shortfall: None,
        },
    }
}

/// What one task of `definition` (with `overrides`) takes from an instance: CPU units, memory
/// (hard limit, or the reservation when only that is given) and its static host ports.
/// Dynamic host ports (`hostPort` 0) are chosen by the agent and not reserved here.
pub fn task_demand(definition: &TaskDefinition, overrides: Option<&TaskOverride>) -> Resources {
    let task_cpu = overrides
        .and_then(|o| o.cpu.as_deref())
        .and_then(|c| berth_model::task_definition::parse_cpu_units(c).ok())
        .or(definition.task_cpu_units());
    let task_memory = overrides
        .and_then(|o| o.memory.as_deref())
        .and_then(|m| berth_model::task_definition::parse_memory_mib(m).ok())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, cpu: i64, mem: i64) -> Candidate {
        Candidate {
            id: id.into(),
            remaining: Resources::new(cpu, mem).with_ports([22], []),
        }
    }

    #[test]
    fn never_over_commits_and_spreads_by_memory() {
        let hosts = [host("a", 1024, 1000), host("b", 1024, 2000)];
        let plan = place(&hosts, &Resources::new(256, 600), 5);
        let placed: Vec<_> = plan
            .placements
            .iter()
            .filter_map(|p| p.as_ref().ok().copied())
            .collect();
        assert_eq!(placed, vec![1, 1, 0, 1]);
        for r in &plan.remaining {
            assert!(r.cpu >= 0 && r.memory_mib >= 0);
        }
        let miss = plan.placements[4].clone().unwrap_err();
        assert_eq!(miss.reason(), "RESOURCE:MEMORY");
    }

    #[test]
    fn a_static_port_is_taken_once_per_host() {
        let hosts = [host("a", 4096, 4096)];
        let demand = Resources::new(0, 10).with_ports([80], []);
        let plan = place(&hosts, &demand, 2);
        assert!(plan.placements[0].is_ok());
        assert_eq!(
            plan.placements[1].clone().unwrap_err().reason(),
            "RESOURCE:PORTS"
        );
        let reserved = place(&hosts, &Resources::new(0, 10).with_ports([22], []), 1);
        assert!(reserved.placements[0].is_err());
    }

    #[test]
    fn no_candidates_means_no_instance_named() {
        let plan = place(&[], &Resources::new(1, 1), 1);
        assert_eq!(
            plan.placements[0],
            Err(Unplaced {
                instance: None,
                shortfall: None
            })
        );
    }
}
