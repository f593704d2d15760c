//! The write path's group commit: every transaction of this server goes through one applier,
//! which plans writes one at a time and commits them in batches.
//!
//! Planning is serial: a plan runs under the applier's lock against the view *plus the writes
//! of plans not yet committed* (the overlay), so two plans of this server never conflict on
//! the records they both touch — the second sees the first's result. Committing is batched:
//! the plans made while one batch is being committed form the next batch, committed as one
//! store transaction. Under load many requests share one commit (and one fsync), and the
//! p99 of a write is a couple of commits, not a queue of retries.
//!
//! Invariants:
//! - A record read from the overlay carries a negative revision, `-(batch id)`. A compare on it
//!   is dropped when the writer is in the same batch (the same transaction wrote it), and
//!   becomes the writer batch's commit revision when that batch committed before (a store
//!   transaction gives all of its keys one revision). So another server's write in between is
//!   still caught by the compare.
//! - Batches commit in order, one at a time. When one fails (a compare moved: another server
//!   wrote), the overlay is dropped and the batch planned on top of it is doomed: its members
//!   plan again against the view, which has by then caught up with what beat them.
//! - A member returns only after its batch committed and the view applied it, so a client
//!   reads its own writes.

use crate::records::Record;
use crate::tally::Tallies;
use crate::view::View;
use berth_api::ApiError;
use berth_store::{Store, Txn};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as SyncMutex};
use tokio::sync::Mutex;

/// A write not yet committed: the record (None: deleted) and the batch that wrote it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub record: Option<Arc<Record>>,
    pub batch: u64,
}

/// Writes of batches that are planned but not yet committed, by key.
pub type Overlay = BTreeMap<String, Pending>;

/// What plans read besides the view: the uncommitted writes and how they change the view's
/// tallies.
#[derive(Debug, Default, Clone)]
pub struct Uncommitted {
    pub writes: Overlay,
    /// The tallies' change from the view's to what they will be once the writes commit.
    pub tallies: Tallies,
}

impl Uncommitted {
    fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The tallies' delta again, against what the view holds now.
    fn recount(&mut self, view: &View) {
        self.tallies = Tallies::default();
        for (key, p) in &self.writes {
            let committed = view.get(key).map(|e| e.record);
            self.tallies
                .replace(key, committed.as_deref(), p.record.as_deref());
        }
    }
}

/// The revision a read from the overlay reports: negative, naming the writing batch.
pub fn pending_revision(batch: u64) -> i64 {
    -i64::try_from(batch).unwrap_or(i64::MAX)
}

fn writer_of(revision: i64) -> Option<u64> {
    (revision < 0).then(|| revision.unsigned_abs())
}

/// What a plan wants written: compares on what it read, then puts and deletes.
#[derive(Debug, Default)]
pub struct PlannedWrites {
    pub compares: Vec<(String, i64)>,
    pub ops: Vec<(String, Option<Arc<Record>>)>,
}

#[derive(Default)]
struct BatchTxn {
    compares: Vec<(String, i64)>,
    /// Last write wins per key (a store transaction may name a key once).
    ops: BTreeMap<String, Option<Arc<Record>>>,
}

/// The plans committed together.
pub struct Batch {
    id: u64,
    txn: SyncMutex<BatchTxn>,
    doomed: SyncMutex<bool>,
    outcome: SyncMutex<Option<Result<bool, ApiError>>>,
}

impl Batch {
    fn outcome(&self) -> Option<Result<bool, ApiError>> {
        self.outcome.lock().expect("batch lock").clone()
    }
    fn settle(&self, outcome: Result<bool, ApiError>) {
        *self.outcome.lock().expect("batch lock") = Some(outcome);
    }
}

struct State {
    overlay: Arc<Uncommitted>,
    open: Option<Arc<Batch>>,
    next_id: u64,
    /// Commit revisions of recent batches, for compares on what they wrote.
    committed: HashMap<u64, i64>,
}

/// How many recent batches' commit revisions are remembered.
const REMEMBERED_BATCHES: u64 = 64;

pub struct Applier {
    state: Mutex<State>,
    /// Held while one batch commits; members queue on it in arrival order.
    committing: Mutex<()>,
}

/// A plan's place in a batch, to wait on.
pub struct Ticket(Arc<Batch>);

/// The applier's planning lock, held while a plan runs: gives the overlay to read.
pub struct Planning<'a> {
    state: tokio::sync::MutexGuard<'a, State>,
}

impl Planning<'_> {
    /// The uncommitted writes, if any (shared: cheap to hand to a plan).
    pub fn overlay(&self) -> Option<Arc<Uncommitted>> {
        (!self.state.overlay.is_empty()).then(|| self.state.overlay.clone())
    }

    /// Adds a plan's writes to the open batch. `None` when there is nothing to wait for:
    /// no writes, and no uncommitted write the plan could have read.
    pub fn join(mut self, writes: PlannedWrites, view: &View) -> Option<Ticket> {
        if writes.ops.is_empty() && self.state.overlay.is_empty() {
            return None;
        }
        let state = &mut *self.state;
        let batch = match &state.open {
            Some(b) => b.clone(),
            None => {
                state.next_id += 1;
                let b = Arc::new(Batch {
                    id: state.next_id,
                    txn: Default::default(),
                    doomed: SyncMutex::new(false),
                    outcome: SyncMutex::new(None),
                });
                state.open = Some(b.clone());
                b
            }
        };
        let overlay = Arc::make_mut(&mut state.overlay);
        let mut txn = batch.txn.lock().expect("batch lock");
        txn.compares.extend(writes.compares);
        for (key, record) in writes.ops {
            let before = match overlay.writes.get(&key) {
                Some(p) => p.record.clone(),
                None => view.get(&key).map(|e| e.record),
            };
            overlay
                .tallies
                .replace(&key, before.as_deref(), record.as_deref());
            overlay.writes.insert(
                key.clone(),
                Pending {
                    record: record.clone(),
                    batch: batch.id,
                },
            );
            txn.ops.insert(key, record);
        }
        drop(txn);
        Some(Ticket(batch))
    }
}

impl Applier {
    pub fn new() -> Applier {
        Applier {
            state: Mutex::new(State {
                overlay: Arc::default(),
                open: None,
                next_id: 0,
                committed: HashMap::new(),
            }),
            committing: Mutex::new(()),
        }
    }

    /// Takes the planning lock.
    pub async fn plan(&self) -> Planning<'_> {
        Planning {
            state: self.state.lock().await,
        }
    }

    /// Waits until the ticket's batch is settled, committing it if no other member has.
    /// `Ok(true)`: committed and visible in the view; `Ok(false)`: plan again.
    pub async fn settle(
        &self,
        ticket: Ticket,
        store: &dyn Store,
        view: &View,
    ) -> Result<bool, ApiError> {
        let batch = ticket.0;
        let _turn = self.committing.lock().await;
        if let Some(outcome) = batch.outcome() {
            return outcome;
        }
        // Batches are taken in order by their own members, so ours is still the open one.
        let txn = {
            let mut state = self.state.lock().await;
            if state.open.as_ref().is_some_and(|b| Arc::ptr_eq(b, &batch)) {
                state.open = None;
            }
            if *batch.doomed.lock().expect("batch lock") {
                None
            } else {
                build_txn(&batch, &state.committed)
            }
        };
        let Some(txn) = txn else {
            // Planned on writes that did not commit: the overlay is already gone.
            batch.settle(Ok(false));
            return Ok(false);
        };
        let outcome = match store.txn(txn).await {
            Ok(result) => {
                view.caught_up(result.revision).await;
                if result.succeeded {
                    let mut state = self.state.lock().await;
                    state.committed.insert(batch.id, result.revision);
                    let oldest = batch.id.saturating_sub(REMEMBERED_BATCHES);
                    state.committed.retain(|id, _| *id > oldest);
                    // The view holds these now; later batches' writes stay.
                    let overlay = Arc::make_mut(&mut state.overlay);
                    overlay.writes.retain(|_, p| p.batch != batch.id);
                    overlay.recount(view);
                    batch.settle(Ok(true));
                    return Ok(true);
                }
                Ok(false)
            }
            Err(e) => Err(ApiError::server(format!("store write failed: {e}"))),
        };
        self.fail(&batch, outcome.clone()).await;
        outcome
    }

    /// A batch did not commit: drop every uncommitted write and doom the batch planned on
    /// top of them, so its members plan again; later plans start a fresh batch.
    async fn fail(&self, batch: &Batch, outcome: Result<bool, ApiError>) {
        let mut state = self.state.lock().await;
        state.overlay = Arc::default();
        if let Some(open) = state.open.take() {
            *open.doomed.lock().expect("batch lock") = true;
        }
        batch.settle(outcome);
    }
}

/// The store transaction of a batch, or None when a compare names a batch whose commit
/// revision is no longer known (the batch must plan again).
fn build_txn(batch: &Batch, committed: &HashMap<u64, i64>) -> Option<Txn> {
    let planned = batch.txn.lock().expect("batch lock");
    let mut txn = Txn::new();
    let mut seen = std::collections::HashSet::new();
    for (key, revision) in &planned.compares {
        let revision = match writer_of(*revision) {
            None => *revision,
            Some(id) if id == batch.id => continue,
            Some(id) => *committed.get(&id)?,
        };
        if seen.insert((key.clone(), revision)) {
            txn = txn.when(key.clone(), revision);
        }
    }
    for (key, record) in &planned.ops {
        txn = match record {
            Some(r) => txn.put(key.clone(), r.encode()),
            None => txn.delete(key.clone()),
        };
    }
    Some(txn)
}
