//! The server's in-memory view of the store, fed by a watch.
//!
//! Every server keeps one. Handlers read from it (no store round trip) and write through the
//! store with transactions that compare the `mod_revision` they read here, so a stale view can
//! make a write fail and retry but never win over a newer one. After a write, a handler waits
//! until the view has caught up with the write's revision, so a client reads its own writes.

use crate::records::Record;
use crate::tally::{Tallies, Tally};
use crate::work_signals::{WorkSignals, changed_work};
use berth_store::{RangeRequest, Store, WatchEvent};
use futures::{FutureExt, StreamExt};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// A record as the view holds it, with the revision that last wrote it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub mod_revision: i64,
    pub record: Arc<Record>,
}

#[derive(Default)]
struct State {
    revision: i64,
    entries: BTreeMap<String, Entry>,
    tallies: Tallies,
    /// Instances with new work in writes not yet published (see [`crate::work_signals`]).
    touched: Vec<String>,
}

impl State {
    fn put(&mut self, key: String, entry: Entry) {
        let old = self.entries.get(&key).map(|e| e.record.clone());
        self.tallies
            .replace(&key, old.as_deref(), Some(&entry.record));
        if let Some(instance) = changed_work(old.as_deref(), Some(&entry.record)) {
            self.touched.push(instance.to_owned());
        }
        self.entries.insert(key, entry);
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.tallies.replace(key, Some(&old.record), None);
        }
    }
}

pub struct View {
    state: RwLock<State>,
    revision_tx: watch::Sender<i64>,
    signals: WorkSignals,
}

impl View {
    /// Loads every record from the store and starts following its changes.
    pub async fn start(store: Arc<dyn Store>) -> berth_store::Result<Arc<View>> {
        // Pages are read at different revisions; watching from the first page's revision and
        // applying events only when newer than what is held makes the result exact.
        let mut state = State::default();
        let mut after = None;
        let mut start_revision = None;
        loop {
            let page = store
                .range(RangeRequest {
                    prefix: "/".into(),
                    after: after.clone(),
                    limit: 5000,
                })
                .await?;
            start_revision.get_or_insert(page.revision);
            state.revision = state.revision.max(page.revision);
            for kv in &page.kvs {
                if let Some(record) = Record::decode(&kv.key, &kv.value) {
                    state.put(
                        kv.key.clone(),
                        Entry {
                            mod_revision: kv.mod_revision,
                            record: Arc::new(record),
                        },
                    );
                }
            }
            after = page.kvs.last().map(|kv| kv.key.clone());
            if !page.more {
                break;
            }
        }
        let watch_from = start_revision.unwrap_or(0);
        // Agents ask for their work on their first wait anyway.
        state.touched.clear();
        let (revision_tx, _) = watch::channel(state.revision);
        let view = Arc::new(View {
            state: RwLock::new(state),
            revision_tx,
            signals: WorkSignals::default(),
        });
        let mut events = store.watch("/", watch_from).await?;
        let follower = Arc::downgrade(&view);
        tokio::spawn(async move {
            // A transaction's events share one revision and arrive together; the revision is
            // published only once all of them are applied, so a reader that waited for it
            // sees the whole transaction, never half of it.
            while let Some(first) = events.next().await {
                let Some(view) = follower.upgrade() else {
                    return;
                };
                let mut next = Some(first);
                while let Some(event) = next.take() {
                    match event {
                        Ok(event) => {
                            let revision = event.revision();
                            if revision > view.revision() {
                                // Every earlier revision is complete.
                                view.publish(revision - 1);
                            }
                            view.apply(event);
                        }
                        Err(berth_store::StoreError::Closed) => return,
                        Err(e) => {
                            tracing::error!(error = %e, "store watch failed; the view stops following the store");
                            return;
                        }
                    }
                    match events.next().now_or_never() {
                        Some(Some(event)) => next = Some(event),
                        Some(None) => return,
                        None => {}
                    }
                }
                view.publish(view.revision());
            }
        });
        Ok(view)
    }

    /// Applies one event to the entries (not yet visible to [`View::caught_up`]).
    fn apply(&self, event: WatchEvent) {
        let revision = event.revision();
        let mut state = self.state.write().expect("view lock poisoned");
        let held = state.entries.get(event.key()).map_or(0, |e| e.mod_revision);
        match event {
            // Already applied from the initial load.
            _ if held >= revision => {}
            WatchEvent::Put(kv) => {
                if let Some(record) = Record::decode(&kv.key, &kv.value) {
                    state.put(
                        kv.key,
                        Entry {
                            mod_revision: kv.mod_revision,
                            record: Arc::new(record),
                        },
                    );
                }
            }
            WatchEvent::Delete { key, .. } => state.remove(&key),
        }
        state.revision = state.revision.max(revision);
    }

    /// Tells waiters that every write up to `revision` is applied.
    fn publish(&self, revision: i64) {
        let touched = std::mem::take(&mut self.state.write().expect("view lock poisoned").touched);
        self.signals.notify(touched);
        self.revision_tx.send_if_modified(|r| {
            let changed = revision > *r;
            *r = (*r).max(revision);
            changed
        });
    }

    /// Waits until the view has applied every write up to `revision`.
    pub async fn caught_up(&self, revision: i64) {
        let mut rx = self.revision_tx.subscribe();
        // The sender lives as long as the view, so this only ends when the revision is reached.
        let _ = rx.wait_for(|r| *r >= revision).await;
    }

    /// The generation of `instance`'s work, which advances once a published write places a
    /// task on it or changes the desired status of one there.
    pub fn work_signal(&self, instance: &str) -> watch::Receiver<u64> {
        self.signals.subscribe(instance)
    }

    /// Ends every agent's wait (see [`WorkSignals::release_all`]).
    pub fn release_work_waiters(&self) {
        self.signals.release_all();
    }

    pub fn revision(&self) -> i64 {
        self.state.read().expect("view lock poisoned").revision
    }

    pub fn get(&self, key: &str) -> Option<Entry> {
        self.state
            .read()
            .expect("view lock poisoned")
            .entries
            .get(key)
            .cloned()
    }

    /// A counter of [`crate::tally`]: by collection prefix or container instance ARN.
    pub fn tally(&self, name: &str) -> Tally {
        self.state
            .read()
            .expect("view lock poisoned")
            .tallies
            .get(name)
    }

    /// The task groups on an instance with their counts (see [`crate::tally`]).
    pub fn groups_on(&self, instance_arn: &str) -> Vec<(String, Tally)> {
        self.state
            .read()
            .expect("view lock poisoned")
            .tallies
            .groups_on(instance_arn)
    }

    /// Every entry under `prefix`, in key order.
    pub fn list(&self, prefix: &str) -> Vec<(String, Entry)> {
        let state = self.state.read().expect("view lock poisoned");
        state
            .entries
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    }

    /// Visits entries under `prefix` after the key `after` (all when None) in key order
    /// without copying them; stop by returning false.
    pub fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        mut visit: impl FnMut(&str, &Entry) -> bool,
    ) {
        use std::ops::Bound;
        let state = self.state.read().expect("view lock poisoned");
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        for (k, e) in state.entries.range((start, Bound::Unbounded)) {
            if !k.starts_with(prefix) || !visit(k, e) {
                break;
            }
        }
    }
}
