//! The candidates that may take a plan's tasks, grouped into cells by their values of the
//! attributes the [`Ranking`] spreads over, so that finding the best candidate for each task
//! looks at one candidate per cell rather than at every candidate.
//!
//! Contract: [`Cells::tied`] gives exactly what a scan of every candidate would: those that may
//! take the task and that the ranking likes best, in candidate order. This holds because within
//! a cell the spread counts are the same for every member, so the cell's best are decided by the
//! members' own values (resources left, tasks of the group), and those change only for the
//! candidate that takes a task: [`Cells::taken`] is told of each one and updates its cell alone,
//! looking at the cell's other members again only when none of its best is left.

use std::cmp::Ordering;

use crate::memo::Interner;
use crate::strategy::{Ranking, Standing};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Cells {
    /// Per cell: its members, in candidate order.
    members: Vec<Vec<usize>>,
    /// Per cell: the members that may take a task and that the ranking likes best, in
    /// candidate order (empty when none may), unless `stale`.
    best: Vec<Vec<usize>>,
    /// Per cell: whether `best` must be found again.
    stale: Vec<bool>,
    /// Per candidate: its cell (meaningless for candidates that are in none).
    cell_of: Vec<usize>,
    /// The cells tied for the current task, kept to reuse the allocation.
    winners: Vec<usize>,
    /// The members of several tied cells, merged, kept likewise.
    merged: Vec<usize>,
}

impl Cells {
    /// Groups `members` (indexes below `candidates`, in order) by `key`, which writes a
    /// candidate's spread slots to the buffer it is given.
    pub(crate) fn new(
        candidates: usize,
        members: &[usize],
        mut key: impl FnMut(usize, &mut Vec<usize>),
    ) -> Self {
        let mut ids = Interner::new();
        let mut buffer = Vec::new();
        let mut cells: Vec<Vec<usize>> = Vec::new();
        let mut cell_of = vec![0; candidates];
        for &i in members {
            buffer.clear();
            key(i, &mut buffer);
            let (cell, new) = ids.id(&buffer);
            if new {
                cells.push(Vec::new());
            }
            cells[cell].push(i);
            cell_of[i] = cell;
        }
        Cells {
            best: vec![Vec::new(); cells.len()],
            stale: vec![true; cells.len()],
            members: cells,
            cell_of,
            winners: Vec::new(),
            merged: Vec::new(),
        }
    }

    /// The members that `may_take` the task and that `ranking` likes best, in candidate order;
    /// empty when no member may take it.
    pub(crate) fn tied(
        &mut self,
        ranking: &Ranking,
        standing: &Standing<'_>,
        may_take: impl Fn(usize) -> bool,
    ) -> &[usize] {
        for ((members, best), stale) in self.members.iter().zip(&mut self.best).zip(&mut self.stale)
        {
            if *stale {
                find_best(members, best, ranking, standing, &may_take);
                *stale = false;
            }
        }
        self.winners.clear();
        for (cell, best) in self.best.iter().enumerate() {
            let Some(&first) = best.first() else {
                continue;
            };
            let order = self.winners.first().map_or(Ordering::Less, |&w| {
                ranking.compare(first, self.best[w][0], standing)
            });
            keep(&mut self.winners, cell, order);
        }
        match self.winners[..] {
            [] => &[],
            [cell] => &self.best[cell],
            _ => {
                self.merged.clear();
                for &cell in &self.winners {
                    self.merged.extend_from_slice(&self.best[cell]);
                }
                self.merged.sort_unstable();
                &self.merged
            }
        }
    }

    /// Notes that `chosen`, one of the members [`tied`](Self::tied) gave, took a task: whether
    /// it may take another (`still`), and how the ranking likes it now compared with before
    /// (`change`, [`Ranking::compare_own`]).
    pub(crate) fn taken(&mut self, chosen: usize, still: bool, change: Ordering) {
        let cell = self.cell_of[chosen];
        let best = &mut self.best[cell];
        match (still, change) {
            // Better than the cell's best were: alone now.
            (true, Ordering::Less) => {
                best.clear();
                best.push(chosen);
            }
            (true, Ordering::Equal) => {}
            // Out of the best; the rest are as good as they were, and no other member as good.
            _ => {
                if let Ok(at) = best.binary_search(&chosen) {
                    best.remove(at);
                }
                self.stale[cell] = best.is_empty();
            }
        }
    }
}

/// Fills `best` with the `members` that `may_take` a task and that `ranking` likes best.
fn find_best(
    members: &[usize],
    best: &mut Vec<usize>,
    ranking: &Ranking,
    standing: &Standing<'_>,
    may_take: impl Fn(usize) -> bool,
) {
    best.clear();
    for &i in members {
        if may_take(i) {
            let order = best
                .first()
                .map_or(Ordering::Less, |&b| ranking.compare(i, b, standing));
            keep(best, i, order);
        }
    }
}

/// Adds `item` to `least` (items that compare equal) by how it compares with them: alone when
/// `Less`, beside them when `Equal`, not at all when `Greater`.
fn keep(least: &mut Vec<usize>, item: usize, order: Ordering) {
    match order {
        Ordering::Less => {
            least.clear();
            least.push(item);
        }
        Ordering::Equal => least.push(item),
        Ordering::Greater => {}
    }
}
