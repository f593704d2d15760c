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
//!
//! The work is arranged so that a plan looks at each candidate about once, with the same result
//! as checking and ranking every candidate for every task: the checks no placement can change
//! are made once per plan, each `memberOf` expression evaluated once per distinct combination of
//! the values it reads (`memo.rs`); the candidates that pass are grouped into cells by the
//! attribute values they are spread over, each cell keeping its best (`cells.rs`), so a task
//! after the first compares one candidate per cell; and only the candidate that took a task is
//! checked again. The tests' `reference.rs` places the plain way and checks that plans agree.

mod candidate;
mod cells;
mod constraint;
mod demand;
mod memo;
mod rng;
pub mod rollout;
mod strategy;

pub use candidate::{Attributes, Candidate};
pub use constraint::Reason;
pub use demand::task_demand;
pub use strategy::{run_task_default, service_default};

use berth_model::common::Attribute;
use berth_model::container_instance::Resources;
use berth_model::placement::{Constraint, SpreadField, Strategy};
use cells::Cells;
use constraint::{Check, Rules};
use memo::Interner;
use rng::Rng;
use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use strategy::{Own, Ranking, Standing};

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
    /// What the candidates that took tasks have left after them, by candidate index (the
    /// others have what they came with).
    pub remaining: BTreeMap<usize, Resources>,
}

/// For one `spread` on an attribute: which value each candidate has (as a slot) and the
/// group's tasks per slot, kept current as the plan places tasks.
#[derive(Debug, Clone)]
pub(crate) struct SpreadCount {
    pub name: String,
    /// Per candidate: the slot of its value. [`UNUSED`] for a candidate that can take none of
    /// the plan's tasks and has none of the group's: no one reads its slot.
    pub slot_of: Vec<usize>,
    pub tasks: Vec<usize>,
}

/// One [`SpreadCount`] per attribute a `spread` strategy names.
pub(crate) type SpreadCounts = Vec<SpreadCount>;

/// The slot of a candidate whose value no one reads.
const UNUSED: usize = usize::MAX;

impl SpreadCount {
    fn new(name: String, candidates: usize) -> Self {
        SpreadCount {
            name,
            slot_of: Vec::with_capacity(candidates),
            tasks: Vec::new(),
        }
    }

    /// Counts the next candidate, which has `tasks` of the group; `needed`: whether it may take
    /// tasks of this plan (its slot is read then even when it has none). `slots` numbers the
    /// values.
    fn count<'a>(
        &mut self,
        slots: &mut Interner<Option<&'a str>>,
        candidate: &'a Candidate,
        tasks: usize,
        needed: bool,
    ) {
        if !needed && tasks == 0 {
            self.slot_of.push(UNUSED);
            return;
        }
        let (slot, new) = slots.id(&[candidate.attribute(&self.name)]);
        if new {
            self.tasks.push(0);
        }
        self.tasks[slot] += tasks;
        self.slot_of.push(slot);
    }
}

impl Request {
    /// The checks every candidate must pass.
    fn check(&self) -> Check<'_> {
        Check {
            demand: &self.demand,
            required_attributes: &self.required_attributes,
            constraints: &self.constraints,
            group: &self.group,
        }
    }

    /// The attributes the `spread` strategies name, in order.
    fn spread_attributes(&self) -> impl Iterator<Item = &str> {
        self.strategies.iter().filter_map(|s| match s {
            Strategy::Spread(SpreadField::Attribute(name)) => Some(name.as_str()),
            _ => None,
        })
    }
}

/// Where a plan stands: what each candidate has left and holds, and the spread counts.
struct State<'a> {
    /// Borrowed from the candidate until the plan puts a task there.
    remaining: Vec<Cow<'a, Resources>>,
    /// Tasks of the request's group on each candidate: existing plus planned.
    in_group: Vec<usize>,
    /// Tasks this plan has put on each candidate.
    planned: Vec<usize>,
    /// Whether each candidate passes every check but resources now. Only the candidate that
    /// takes a task can change, so only it is checked again.
    open: Vec<bool>,
    /// For each `spread` on an attribute: the group's tasks per value.
    spread_counts: SpreadCounts,
}

impl State<'_> {
    fn standing(&self) -> Standing<'_> {
        Standing {
            remaining: &self.remaining,
            in_group: &self.in_group,
            spread_counts: &self.spread_counts,
        }
    }

    /// Whether candidate `i` may take one more task needing `demand` now (`needs_ports`:
    /// whether it has static ports to check).
    fn may_take(&self, i: usize, demand: &Resources, needs_ports: bool) -> bool {
        let have = &self.remaining[i];
        self.open[i]
            && demand.cpu <= have.cpu
            && demand.memory_mib <= have.memory_mib
            && (!needs_ports || have.fits(demand).is_ok())
    }
}

/// The running state of one plan.
struct Placer<'a> {
    candidates: Vec<&'a Candidate>,
    request: &'a Request,
    rules: Rules<'a>,
    ranking: Ranking,
    /// Whether the task needs static ports (else fitting is CPU and memory alone).
    needs_ports: bool,
    state: State<'a>,
    /// The candidates that pass the checks no placement can change, in order.
    eligible: Vec<usize>,
    /// The eligible candidates grouped for finding the best, once a task is placed anywhere.
    cells: Option<Cells>,
    rng: Rng,
    placements: Vec<Result<usize, Unplaced>>,
}

impl<'a> Placer<'a> {
    /// Looks at each candidate once: its tasks of the group, the checks no placement can change,
    /// and its values of the spread attributes.
    fn new(candidates: Vec<&'a Candidate>, request: &'a Request) -> Self {
        let n = candidates.len();
        let mut rules = Rules::new(&request.check());
        let mut spreads: Vec<_> = request
            .spread_attributes()
            .map(|name| (SpreadCount::new(name.to_string(), n), Interner::new()))
            .collect();
        let mut state = State {
            remaining: Vec::with_capacity(n),
            in_group: Vec::with_capacity(n),
            planned: vec![0; n],
            open: Vec::with_capacity(n),
            spread_counts: Vec::new(),
        };
        let mut eligible = Vec::new();
        for (i, &c) in candidates.iter().enumerate() {
            let tasks = c.tasks_in(&request.group);
            let ok = rules.passes_static(c);
            if ok {
                eligible.push(i);
            }
            state.open.push(ok && rules.passes_moving(c, tasks, 0));
            for (spread, slots) in &mut spreads {
                spread.count(slots, c, tasks, ok);
            }
            state.in_group.push(tasks);
            state.remaining.push(Cow::Borrowed(&c.remaining));
        }
        state.spread_counts = spreads.into_iter().map(|(count, _)| count).collect();
        let demand = &request.demand;
        Placer {
            candidates,
            request,
            rules,
            ranking: Ranking::new(&request.strategies, &state.spread_counts),
            needs_ports: !demand.ports_tcp.is_empty() || !demand.ports_udp.is_empty(),
            state,
            eligible,
            cells: None,
            rng: Rng::new(request.seed),
            placements: Vec::new(),
        }
    }

    /// Places one task on the candidate the strategies like best, or records why none can take
    /// it.
    fn place_anywhere(&mut self) {
        let (ranking, state, eligible) = (&self.ranking, &self.state, &self.eligible);
        let cells = self.cells.get_or_insert_with(|| {
            let spreads: Vec<&SpreadCount> =
                ranking.spreads().map(|n| &state.spread_counts[n]).collect();
            Cells::new(state.remaining.len(), eligible, |i, key| {
                key.extend(spreads.iter().map(|s| s.slot_of[i]));
            })
        });
        let (demand, needs_ports) = (&self.request.demand, self.needs_ports);
        let tied = cells.tied(ranking, &state.standing(), |i| {
            state.may_take(i, demand, needs_ports)
        });
        match tied {
            [] => self.reject(0..self.candidates.len()),
            tied => {
                let chosen = ranking.choose(tied, &mut self.rng);
                self.take(chosen);
            }
        }
    }

    /// Places one task on `target`, or records why it cannot take it.
    fn place_at(&mut self, target: usize) {
        if self
            .state
            .may_take(target, &self.request.demand, self.needs_ports)
        {
            let chosen = self.ranking.choose(&[target], &mut self.rng);
            self.take(chosen);
        } else {
            self.reject([target]);
        }
    }

    /// Records that no candidate of `considered` can take the task: each one's reason, every
    /// check in order.
    fn reject(&mut self, considered: impl IntoIterator<Item = usize>) {
        let check = self.request.check();
        let state = &self.state;
        let rejections = considered
            .into_iter()
            .filter_map(|i| {
                check
                    .fault(
                        self.candidates[i],
                        &state.remaining[i],
                        state.in_group[i],
                        state.planned[i],
                    )
                    .err()
                    .map(|fault| Rejection {
                        candidate: i,
                        reason: fault.into_reason(),
                    })
            })
            .collect();
        self.placements.push(Err(Unplaced { rejections }));
    }

    /// Puts the task on `chosen`: takes its resources, counts it, and checks the candidate
    /// again.
    fn take(&mut self, chosen: usize) {
        let candidate: &'a Candidate = self.candidates[chosen];
        let state = &mut self.state;
        let before = Own::of(chosen, &state.standing());
        state.remaining[chosen]
            .to_mut()
            .subtract(&self.request.demand);
        state.in_group[chosen] += 1;
        state.planned[chosen] += 1;
        for spread in &mut state.spread_counts {
            spread.tasks[spread.slot_of[chosen]] += 1;
        }
        state.open[chosen] =
            self.rules
                .passes_moving(candidate, state.in_group[chosen], state.planned[chosen]);
        if let Some(cells) = &mut self.cells {
            let change = self
                .ranking
                .compare_own(Own::of(chosen, &state.standing()), before);
            let still = state.may_take(chosen, &self.request.demand, self.needs_ports);
            cells.taken(chosen, still, change);
        }
        self.placements.push(Ok(chosen));
    }

    fn finish(self) -> Plan {
        Plan {
            placements: self.placements,
            remaining: taken(self.state.remaining),
        }
    }
}

/// What the candidates that took tasks have left: those whose resources were copied to be
/// changed.
fn taken(remaining: Vec<Cow<'_, Resources>>) -> BTreeMap<usize, Resources> {
    remaining
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Cow::Owned(r) => Some((i, r)),
            Cow::Borrowed(_) => None,
        })
        .collect()
}

/// Places `count` tasks of `request` onto `candidates` (RunTask, services): owned, or
/// borrowed from where the caller keeps them.
pub fn place<C: Borrow<Candidate>>(candidates: &[C], request: &Request, count: usize) -> Plan {
    let mut placer = Placer::new(candidates.iter().map(C::borrow).collect(), request);
    for _ in 0..count {
        match placer.placements.last() {
            // A task that could not be placed changed nothing: the next one fares the same.
            Some(Err(unplaced)) => {
                let again = Err(unplaced.clone());
                placer.placements.push(again);
            }
            _ => placer.place_anywhere(),
        }
    }
    placer.finish()
}

/// Places one task of `request` on each of `targets` (StartTask): indexes into `candidates`,
/// each below `candidates.len()`, that may repeat. Each is checked against what the earlier
/// ones left; strategies play no part.
pub fn place_on<C: Borrow<Candidate>>(
    candidates: &[C],
    request: &Request,
    targets: &[usize],
) -> Plan {
    let mut placer = Placer::new(candidates.iter().map(C::borrow).collect(), request);
    for &target in targets {
        placer.place_at(target);
    }
    placer.finish()
}

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
