//! Placement strategies: which of the instances that may take a task should take it.
//!
//! Each strategy keeps the instances it likes best among those still tied, so a later strategy
//! only breaks the ties of the earlier ones:
//!
//! - `binpack` on `cpu` or `memory`: the instances with the least of it left (that still fit);
//! - `spread` on `instanceId` (or `host`): the instances with the fewest tasks of the group;
//! - `spread` on `attribute:NAME`: the instances whose value of `NAME` has the fewest tasks of
//!   the group over every candidate with that value (instances without the attribute form a
//!   value of their own);
//! - `random`: one of them, chosen with the seeded generator.
//!
//! Whatever is still tied at the end is settled with the seeded generator.

use berth_model::container_instance::Resources;
use berth_model::placement::{BinpackField, SpreadField, Strategy};

use crate::rng::Rng;

/// ECS's placement for RunTask when the request gives no strategy: tasks are placed randomly.
pub fn run_task_default() -> Vec<Strategy> {
    vec![Strategy::Random]
}

/// ECS's placement for a service's tasks when it gives no strategy: spread over Availability
/// Zones, then over the instances within each zone.
pub fn service_default() -> Vec<Strategy> {
    vec![
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        Strategy::Spread(SpreadField::InstanceId),
    ]
}

/// The state strategies compare instances by.
pub(crate) struct Standing<'a> {
    pub remaining: &'a [Resources],
    /// Tasks of the request's group on each candidate, existing and planned.
    pub in_group: &'a [usize],
    /// Tasks of the group per value of each attribute a spread names, existing and planned.
    pub spread_counts: &'a crate::SpreadCounts,
}

/// The members of `tied` (not empty) with the smallest `key`.
fn keep_min<K: Ord>(tied: Vec<usize>, key: impl Fn(usize) -> K) -> Vec<usize> {
    let Some(best) = tied.iter().map(|&i| key(i)).min() else {
        return tied;
    };
    tied.into_iter().filter(|&i| key(i) == best).collect()
}

/// The members of `tied` (not empty) that `strategy` likes best.
pub(crate) fn narrow(
    strategy: &Strategy,
    tied: Vec<usize>,
    standing: &Standing<'_>,
    rng: &mut Rng,
) -> Vec<usize> {
    match strategy {
        Strategy::Random => vec![tied[rng.below(tied.len())]],
        Strategy::Binpack(BinpackField::Cpu) => keep_min(tied, |i| standing.remaining[i].cpu),
        Strategy::Binpack(BinpackField::Memory) => {
            keep_min(tied, |i| standing.remaining[i].memory_mib)
        }
        Strategy::Spread(SpreadField::InstanceId) => keep_min(tied, |i| standing.in_group[i]),
        Strategy::Spread(SpreadField::Attribute(name)) => {
            let Some(spread) = standing.spread_counts.iter().find(|s| &s.name == name) else {
                return tied;
            };
            keep_min(tied, |i| spread.tasks[spread.slot_of[i]])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidate::Candidate;

    fn standing_for<'a>(
        remaining: &'a [Resources],
        in_group: &'a [usize],
        spread_counts: &'a crate::SpreadCounts,
    ) -> Standing<'a> {
        Standing {
            remaining,
            in_group,
            spread_counts,
        }
    }

    #[test]
    fn each_strategy_keeps_its_favourites() {
        let candidates = [
            Candidate::new("a", Resources::new(500, 900))
                .with_attribute("ecs.availability-zone", Some("z1")),
            Candidate::new("b", Resources::new(300, 900))
                .with_attribute("ecs.availability-zone", Some("z1")),
            Candidate::new("c", Resources::new(300, 100))
                .with_attribute("ecs.availability-zone", Some("z2")),
            Candidate::new("d", Resources::new(900, 900)),
        ];
        let remaining: Vec<Resources> = candidates.iter().map(|c| c.remaining.clone()).collect();
        let in_group = [1, 0, 2, 0];
        // z1 (a, b) holds 1 task, z2 (c) 2, the instance without a zone (d) none.
        let zones = vec![crate::SpreadCount {
            name: "ecs.availability-zone".into(),
            slot_of: vec![0, 0, 1, 2],
            tasks: vec![1, 2, 0],
        }];
        let s = standing_for(&remaining, &in_group, &zones);
        let mut rng = Rng::new(1);
        let all = || vec![0, 1, 2, 3];
        let mut narrow =
            |strategy: Strategy, tied: Vec<usize>| narrow(&strategy, tied, &s, &mut rng);
        assert_eq!(
            narrow(Strategy::Binpack(BinpackField::Cpu), all()),
            vec![1, 2]
        );
        assert_eq!(
            narrow(Strategy::Binpack(BinpackField::Memory), all()),
            vec![2]
        );
        assert_eq!(
            narrow(Strategy::Spread(SpreadField::InstanceId), all()),
            vec![1, 3]
        );
        // z1 holds 1 task, z2 holds 2, the instance without a zone none.
        let az = Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into()));
        assert_eq!(narrow(az.clone(), all()), vec![3]);
        assert_eq!(narrow(az, vec![0, 1, 2]), vec![0, 1]);
        let picked = narrow(Strategy::Random, all());
        assert_eq!(picked.len(), 1);
        assert!(picked[0] < 4);
    }
}
