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
use berth_model::placement::{Constraint, Strategy};

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
        }
    }

    fn check(&self, i: usize) -> Result<(), Reason> {
        Check {
            demand: &self.request.demand,
            required_attributes: &self.request.required_attributes,
            constraints: &self.request.constraints,
            group: &self.request.group,
        }
        .run(
            &self.candidates[i],
            &self.remaining[i],
            self.in_group[i],
            self.planned[i],
        )
    }

    /// Places one task on one of `considered`, or records why none of them can take it.
    fn place_one(&mut self, considered: impl IntoIterator<Item = usize>) {
        let mut fit = Vec::new();
        let mut rejections = Vec::new();
        for i in considered {
            match self.check(i) {
                Ok(()) => fit.push(i),
                Err(reason) => rejections.push(Rejection {
                    candidate: i,
                    reason,
                }),
            }
        }
        if fit.is_empty() {
            self.placements.push(Err(Unplaced { rejections }));
            return;
        }
        let standing = Standing {
            candidates: self.candidates,
            remaining: &self.remaining,
            in_group: &self.in_group,
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
