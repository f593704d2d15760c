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
//!
//! `narrow` (in tests) applies one strategy as just described. The placer does not apply them
//! one by one: [`Ranking`] orders instances by the strategies before the first `random` at once
//! (the instances still tied after applying those in turn are exactly the least in that order),
//! and [`Ranking::choose`] draws from the generator among them as applying the rest in turn,
//! then settling the tie, would.

use std::borrow::Cow;
use std::cmp::Ordering;

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
    pub remaining: &'a [Cow<'a, Resources>],
    /// Tasks of the request's group on each candidate, existing and planned.
    pub in_group: &'a [usize],
    /// Tasks of the group per value of each attribute a spread names, existing and planned.
    pub spread_counts: &'a crate::SpreadCounts,
}

/// What one strategy before the first `random` compares instances by; less is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Cpu,
    Memory,
    InGroup,
    /// The group's tasks on the instance's value of the attribute of this spread count.
    Spread(usize),
}

impl Part {
    /// How `a` and `b` compare by this part; spread parts see no difference.
    fn compare(self, a: Own, b: Own) -> Ordering {
        match self {
            Part::Cpu => a.cpu.cmp(&b.cpu),
            Part::Memory => a.memory_mib.cmp(&b.memory_mib),
            Part::InGroup => a.in_group.cmp(&b.in_group),
            Part::Spread(_) => Ordering::Equal,
        }
    }
}

/// What the strategies read of one instance that changes only when it takes a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Own {
    cpu: i64,
    memory_mib: i64,
    in_group: usize,
}

impl Own {
    /// Instance `i`'s values in `standing`.
    pub(crate) fn of(i: usize, standing: &Standing<'_>) -> Self {
        Own {
            cpu: standing.remaining[i].cpu,
            memory_mib: standing.remaining[i].memory_mib,
            in_group: standing.in_group[i],
        }
    }
}

/// A request's strategies prepared for one plan.
#[derive(Debug)]
pub(crate) struct Ranking {
    /// The strategies before the first `random`, in order.
    parts: Vec<Part>,
    /// Whether there is a `random` (the strategies after it never see a tie).
    random: bool,
}

impl Ranking {
    /// `spread_counts` must hold a count for each attribute a `spread` names.
    pub(crate) fn new(strategies: &[Strategy], spread_counts: &crate::SpreadCounts) -> Self {
        let random = strategies.iter().position(|s| *s == Strategy::Random);
        let parts = strategies[..random.unwrap_or(strategies.len())]
            .iter()
            .filter_map(|s| match s {
                Strategy::Binpack(BinpackField::Cpu) => Some(Part::Cpu),
                Strategy::Binpack(BinpackField::Memory) => Some(Part::Memory),
                Strategy::Spread(SpreadField::InstanceId) => Some(Part::InGroup),
                Strategy::Spread(SpreadField::Attribute(name)) => spread_counts
                    .iter()
                    .position(|s| &s.name == name)
                    .map(Part::Spread),
                Strategy::Random => None,
            })
            .collect();
        Ranking {
            parts,
            random: random.is_some(),
        }
    }

    /// The spread counts the ranking reads, in order: candidates with the same slot in each
    /// tie or differ by their own values alone.
    pub(crate) fn spreads(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|part| match part {
            Part::Spread(n) => Some(*n),
            _ => None,
        })
    }

    /// How instances `a` and `b` compare by the strategies before the first `random`: `Less`
    /// when they keep `a` rather than `b`, `Equal` when they keep both or neither.
    pub(crate) fn compare(&self, a: usize, b: usize, standing: &Standing<'_>) -> Ordering {
        self.parts
            .iter()
            .map(|part| match *part {
                Part::Spread(n) => {
                    let s = &standing.spread_counts[n];
                    s.tasks[s.slot_of[a]].cmp(&s.tasks[s.slot_of[b]])
                }
                own => own.compare(Own::of(a, standing), Own::of(b, standing)),
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// How an instance with values `a` compares with one with values `b` when they have the
    /// same slot in every spread count (as [`compare`](Self::compare) would say).
    pub(crate) fn compare_own(&self, a: Own, b: Own) -> Ordering {
        self.parts
            .iter()
            .map(|part| part.compare(a, b))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// The instance to take the task among `tied` (in candidate order, not empty): the least by
    /// [`compare`](Self::compare), drawing from `rng` as applying the strategies from the first
    /// `random` on in turn, then settling the tie that remains, would.
    pub(crate) fn choose(&self, tied: &[usize], rng: &mut Rng) -> usize {
        // `random` keeps one of several; settling the tie of one that is left still draws.
        let tied = if self.random && tied.len() > 1 {
            &tied[rng.below(tied.len())..][..1]
        } else {
            tied
        };
        tied[rng.below(tied.len())]
    }
}

/// The members of `tied` (not empty) with the smallest `key`.
#[cfg(test)]
fn keep_min<K: Ord>(tied: Vec<usize>, key: impl Fn(usize) -> K) -> Vec<usize> {
    let Some(best) = tied.iter().map(|&i| key(i)).min() else {
        return tied;
    };
    tied.into_iter().filter(|&i| key(i) == best).collect()
}

/// The members of `tied` (not empty) that `strategy` likes best: the definition the placer's
/// [`Ranking`] is tested against.
#[cfg(test)]
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
        remaining: &'a [Cow<'a, Resources>],
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
        let remaining: Vec<Cow<Resources>> = candidates
            .iter()
            .map(|c| Cow::Borrowed(&c.remaining))
            .collect();
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
