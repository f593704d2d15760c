//! Task placement as a pure function: a snapshot of candidate instances and a request in, a
//! plan of placements and failures out.
//!
//! Contract: synchronous, no I/O, no clock, no thread RNG — chance comes only from the request's
//! `seed`, so the same candidates and request always give the same plan. Depends only on
//! `berth-model`. The server's applier commits a plan only if every instance it touches is
//! unchanged since the snapshot, so a plan can never over-commit a host.
//!
//! Placement follows ECS. For each task, in turn:
//!
//! 1. every candidate is checked ([`Reason`] says why one is refused): its agent is connected,
//!    it has the task definition's `requiresAttributes`, every placement constraint holds
//!    (`distinctInstance`, and `memberOf` expressions in the cluster query language, which see
//!    `task:group` including tasks this plan has already placed), and the task's CPU, memory and
//!    static host ports fit in what is left;
//! 2. the placement strategies, in order, narrow the instances that passed: each later one only
//!    breaks the ties of the earlier ones (`binpack` keeps the least remaining CPU or memory,
//!    `spread` the fewest tasks of the group per instance or per attribute value, `random` one
//!    at random); a tie that remains is settled at random;
//! 3. the task's resources are taken from the chosen instance before the next task is placed.
//!
//! A task no instance can take is [`Unplaced`], with every candidate's reason. Tasks are counted
//! by group (`service:NAME` for a service, the RunTask `group`, else `family:NAME`), as ECS
//! spreads a service's tasks over the tasks of that service and standalone tasks over the tasks
//! of their group.

mod candidate;
mod constraint;
mod demand;
mod rng;
pub mod rollout;
mod strategy;

pub use candidate::Candidate;
pub use constraint::Reason;
pub use demand::task_demand;
pub use strategy::{run_task_default, service_default};

use berth_model::common::Attribute;
use berth_model::container_instance::Resources;
use berth_model::placement::{Constraint, SpreadField, Strategy};
use std::collections::HashMap;

use constraint::Check;
use rng::Rng;
use strategy::{Standing, narrow};

/// What to place: one task's needs and the rules for where it may and should go.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What each task takes ([`task_demand`]).
    pub demand: Resources,
    /// The tasks' group: spread, distinctInstance and `task:group` count tasks of this group.
    pub group: String,
    /// Applied in order, each breaking the ties of the ones before; empty: no preference (ties
    /// are settled at random). See [`run_task_default`] and [`service_default`].
    pub strategies: Vec<Strategy>,
    /// All must hold: the request's constraints and the task definition's.
    pub constraints: Vec<Constraint>,
    /// The task definition's `requiresAttributes`: each must be on the instance, with the given
    /// value if there is one.
    pub required_attributes: Vec<Attribute>,
    /// The only source of chance.
    pub seed: u64,
}

/// One candidate that could not take a task, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index into the candidates.
    pub candidate: usize,
    pub reason: Reason,
}

/// Why a task could not be placed: each candidate that was considered and its reason (empty
/// when there was no candidate at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unplaced {
    pub rejections: Vec<Rejection>,
}

/// The outcome: for each task in order, the index of its candidate, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub placements: Vec<Result<usize, Unplaced>>,
    /// The candidates' remaining resources after the placements.
    pub remaining: Vec<Resources>,
}

/// For one `spread` on an attribute: which value each candidate has (as a slot) and the
/// group's tasks per slot, kept current as the plan places tasks.
#[derive(Debug, Clone)]
pub(crate) struct SpreadCount {
    pub name: String,
    pub slot_of: Vec<usize>,
    pub tasks: Vec<usize>,
}

/// One [`SpreadCount`] per attribute a `spread` strategy names.
pub(crate) type SpreadCounts = Vec<SpreadCount>;

fn spread_counts(candidates: &[Candidate], request: &Request) -> SpreadCounts {
    request
        .strategies
        .iter()
        .filter_map(|s| match s {
            Strategy::Spread(SpreadField::Attribute(name)) => Some(name.clone()),
            _ => None,
        })
        .map(|name| {
            let mut slots: HashMap<Option<&str>, usize> = HashMap::new();
            let mut tasks = Vec::new();
            let slot_of = candidates
                .iter()
                .map(|c| {
                    let next = slots.len();
                    let slot = *slots.entry(c.attribute(&name)).or_insert(next);
                    if slot == tasks.len() {
                        tasks.push(0);
                    }
                    tasks[slot] += c.tasks_in(&request.group);
                    slot
                })
                .collect();
            SpreadCount {
                name,
                slot_of,
                tasks,
            }
        })
        .collect()
}

/// The running state of one plan.
struct Placer<'a> {
    candidates: &'a [Candidate],
    request: &'a Request,
    remaining: Vec<Resources>,
    /// Tasks of the request's group on each candidate: existing plus planned.
    in_group: Vec<usize>,
    /// Tasks this plan has put on each candidate.
    planned: Vec<usize>,
    rng: Rng,
    placements: Vec<Result<usize, Unplaced>>,
    /// For each `spread` on an attribute: the group's tasks per value, kept as tasks are placed.
    spread_counts: SpreadCounts,
    /// Per candidate: whether it passes the checks no placement can change (computed once).
    statically_ok: Vec<bool>,
}

impl<'a> Placer<'a> {
    fn new(candidates: &'a [Candidate], request: &'a Request) -> Self {
        Placer {
            candidates,
            request,
            remaining: candidates.iter().map(|c| c.remaining.clone()).collect(),
            in_group: candidates
                .iter()
                .map(|c| c.tasks_in(&request.group))
                .collect(),
            planned: vec![0; candidates.len()],
            rng: Rng::new(request.seed),
            placements: Vec::new(),
            spread_counts: spread_counts(candidates, request),
            statically_ok: {
                let check = Check {
                    demand: &request.demand,
                    required_attributes: &request.required_attributes,
                    constraints: &request.constraints,
                    group: &request.group,
                };
                candidates.iter().map(|c| check.passes_static(c)).collect()
            },
        }
    }

    /// Places one task on one of `considered`, or records why none of them can take it.
    fn place_one(&mut self, considered: impl IntoIterator<Item = usize>) {
        let check = Check {
            demand: &self.request.demand,
            required_attributes: &self.request.required_attributes,
            constraints: &self.request.constraints,
            group: &self.request.group,
        };
        let mut fit = Vec::new();
        let mut misses = Vec::new();
        for i in considered {
            let ok = self.statically_ok[i]
                && check.passes_now(
                    &self.candidates[i],
                    &self.remaining[i],
                    self.in_group[i],
                    self.planned[i],
                );
            if ok {
                fit.push(i);
            } else {
                misses.push(i);
            }
        }
        if fit.is_empty() {
            // Only now: the reason of each instance, every check in order.
            let rejections = misses
                .into_iter()
                .filter_map(|i| {
                    check
                        .fault(
                            &self.candidates[i],
                            &self.remaining[i],
                            self.in_group[i],
                            self.planned[i],
                        )
                        .err()
                        .map(|fault| Rejection {
                            candidate: i,
                            reason: fault.into_reason(),
                        })
                })
                .collect();
            self.placements.push(Err(Unplaced { rejections }));
            return;
        }
        let standing = Standing {
            remaining: &self.remaining,
            in_group: &self.in_group,
            spread_counts: &self.spread_counts,
        };
        for strategy in &self.request.strategies {
            if fit.len() == 1 {
                break;
            }
            fit = narrow(strategy, fit, &standing, &mut self.rng);
        }
        let chosen = fit[self.rng.below(fit.len())];
        self.remaining[chosen].subtract(&self.request.demand);
        self.in_group[chosen] += 1;
        self.planned[chosen] += 1;
        for spread in &mut self.spread_counts {
            spread.tasks[spread.slot_of[chosen]] += 1;
        }
        self.placements.push(Ok(chosen));
    }

    fn finish(self) -> Plan {
        Plan {
            placements: self.placements,
            remaining: self.remaining,
        }
    }
}

/// Places `count` tasks of `request` onto `candidates` (RunTask, services).
pub fn place(candidates: &[Candidate], request: &Request, count: usize) -> Plan {
    let mut placer = Placer::new(candidates, request);
    for _ in 0..count {
        placer.place_one(0..candidates.len());
    }
    placer.finish()
}

/// Places one task of `request` on each of `targets` (StartTask): indexes into `candidates`,
/// each below `candidates.len()`, that may repeat. Each is checked against what the earlier
/// ones left; strategies play no part.
pub fn place_on(candidates: &[Candidate], request: &Request, targets: &[usize]) -> Plan {
    let mut placer = Placer::new(candidates, request);
    for &target in targets {
        placer.place_one([target]);
    }
    placer.finish()
}

#[cfg(test)]
mod tests;
