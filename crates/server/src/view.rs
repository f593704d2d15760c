//! The server's in-memory view of the store, fed by a watch.
//!
//! Every server keeps one. Handlers read from it (no store round trip) and write through the
//! store with transactions that compare the `mod_revision` they read here, so a stale view can
//! make a write fail and retry but never win over a newer one. After a write, a handler waits
//! until the view has caught up with the write's revision, so a client reads its own writes.
//!
//! When the watch fails (the view fell behind a compaction, or the store's connection could not
//! be resumed), the view loads every record again, puts the new state in place of the old one at
//! once, wakes every agent's wait (the writes it missed may have given any instance work) and
//! watches again from there; while the store does not answer, it tries again with a growing
//! pause. It stops following only when the store is closed or the view dropped.

use crate::fleets::Fleets;
use crate::records::Record;
use crate::tally::{Tallies, Tally};
use crate::work_signals::{WorkSignals, changed_work};
use berth_store::{RangeRequest, Store, StoreError, WatchEvent};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// Keys read per page of a load.
const LOAD_PAGE: usize = 5000;
/// The first and the longest pause between attempts to reload while the store does not answer.
const RELOAD_PAUSE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

type Events = BoxStream<'static, berth_store::Result<WatchEvent>>;

/// A record as the view holds it, with the revision that last wrote it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub mod_revision: i64,
    pub record: Arc<Record>,
}

#[derive(Default)]
struct State {
    /// Every write up to this revision is applied.
    revision: i64,
    entries: BTreeMap<String, Entry>,
    tallies: Tallies,
    /// Instances with new work in writes not yet published (see [`crate::work_signals`]).
    touched: Vec<String>,
    /// The pages of the load this state started from, until the watch has passed them.
    loaded: Pages,
    /// Values derived from clusters' instances, and which instances changed since (readers
    /// update them under the read lock, so they have a lock of their own).
    fleets: Mutex<Fleets>,
}

impl State {
    fn put(&mut self, key: String, entry: Entry) {
        let old = self.entries.get(&key).map(|e| e.record.clone());
        self.tallies
            .replace(&key, old.as_deref(), Some(&entry.record));
        self.fleets_mut()
            .note(&key, old.as_deref(), Some(&entry.record));
        if let Some(instance) = changed_work(old.as_deref(), Some(&entry.record)) {
            self.touched.push(instance.to_owned());
        }
        self.entries.insert(key, entry);
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.tallies.replace(key, Some(&old.record), None);
            self.fleets_mut().note(key, Some(&old.record), None);
        }
    }

    fn fleets_mut(&mut self) -> &mut Fleets {
        self.fleets.get_mut().expect("fleets lock poisoned")
    }

    /// Whether the state already holds the write of `key` at `revision`.
    fn holds(&self, key: &str, revision: i64) -> bool {
        let held = self.entries.get(key).map_or(0, |e| e.mod_revision);
        held >= revision || self.loaded.revision_of(key) >= revision
    }
}

/// The revision each page of a load was read at, by the last key of the page (None: every key
/// after the previous page). Pages are read at different revisions, and a page holds its keys as
/// of its own: the watch's events up to that revision are already in it, including those of a
/// key the page no longer had (replaying the put of a key deleted before its page was read would
/// bring the key back).
#[derive(Default)]
struct Pages(Vec<(Option<String>, i64)>);

impl Pages {
    /// The revision of the page that holds `key` (0: no load to account for).
    fn revision_of(&self, key: &str) -> i64 {
        self.0
            .iter()
            .find(|(last, _)| last.as_deref().is_none_or(|last| key <= last))
            .map_or(0, |(_, revision)| *revision)
    }

    /// The revision of the last page read: no later event is in the load.
    fn newest(&self) -> i64 {
        self.0.last().map_or(0, |(_, revision)| *revision)
    }
}

/// Reads every record, in pages, into a new state at the revision of the first page (the
/// watch goes on from there).
async fn load(store: &dyn Store) -> berth_store::Result<State> {
    let mut state = State::default();
    let mut after = None;
    loop {
        let page = store
            .range(RangeRequest {
                prefix: "/".into(),
                after: after.clone(),
                limit: LOAD_PAGE,
            })
            .await?;
        if state.loaded.0.is_empty() {
            state.revision = page.revision;
        }
        after = page.kvs.last().map(|kv| kv.key.clone());
        for kv in page.kvs {
            if let Some(record) = Record::decode(&kv.key, &kv.value) {
                let entry = Entry {
                    mod_revision: kv.mod_revision,
                    record: Arc::new(record),
                };
                state.put(kv.key, entry);
            }
        }
        let last = if page.more { after.clone() } else { None };
        state.loaded.0.push((last, page.revision));
        if !page.more {
            break;
        }
    }
    // Agents ask for their work on their first wait, and a reload wakes them all.
    state.touched.clear();
    Ok(state)
}

/// A [`load`] and a watch of the changes since.
async fn load_and_watch(store: &dyn Store) -> berth_store::Result<(State, Events)> {
    let state = load(store).await?;
    let events = store.watch("/", state.revision).await?;
    Ok((state, events))
}

/// Applies the store's changes to the view, loading the view again whenever the watch fails.
/// Holds neither strongly: it ends at the next event or attempt after the view is dropped, and
/// when the store is closed.
async fn follow(view: Weak<View>, store: Weak<dyn Store>, mut events: Events) {
    loop {
        let Some(e) = apply_events(&view, &mut events).await else {
            return;
        };
        tracing::warn!(error = %e, "the store's watch failed; the view loads everything again");
        drop(events);
        let Some(watched) = reload(&view, &store).await else {
            return;
        };
        events = watched;
    }
}

/// Applies the watch's events as they come; returns why the watch failed, or None when there is
/// nothing left to follow (the store is closed or the view dropped).
async fn apply_events(follower: &Weak<View>, events: &mut Events) -> Option<StoreError> {
    let ended = || StoreError::Backend("the watch ended".into());
    // A transaction's events share one revision and arrive together; the revision is published
    // only once all of them are applied, so a reader that waited for it sees the whole
    // transaction, never half of it.
    while let Some(first) = events.next().await {
        let view = follower.upgrade()?;
        let mut next = Some(first);
        while let Some(event) = next.take() {
            let event = match event {
                Ok(event) => event,
                Err(StoreError::Closed) => return None,
                Err(e) => return Some(e),
            };
            let revision = event.revision();
            if revision > view.revision() {
                // Every earlier revision is complete.
                view.publish(revision - 1);
            }
            view.apply(event);
            next = match events.next().now_or_never() {
                Some(Some(event)) => Some(event),
                Some(None) => return Some(ended()),
                None => None,
            };
        }
        view.publish(view.revision());
    }
    Some(ended())
}

/// Loads the view again and watches from there, trying again with a growing pause while the
/// store does not answer; None once the store is closed or either is dropped.
async fn reload(view: &Weak<View>, store: &Weak<dyn Store>) -> Option<Events> {
    let mut pause = RELOAD_PAUSE.0;
    loop {
        let attempt = load_and_watch(store.upgrade()?.as_ref()).await;
        match attempt {
            Ok((state, events)) => {
                let revision = state.revision;
                view.upgrade()?.replace(state);
                tracing::info!(
                    revision,
                    "the view loaded everything again and follows the store"
                );
                return Some(events);
            }
            Err(StoreError::Closed) => return None,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?pause, "the view cannot load the store; trying again");
            }
        }
        tokio::time::sleep(pause).await;
        if view.strong_count() == 0 {
            return None;
        }
        pause = (pause * 2).min(RELOAD_PAUSE.1);
    }
}

pub struct View {
    state: RwLock<State>,
    revision_tx: watch::Sender<i64>,
    signals: WorkSignals,
}

impl View {
    /// Loads every record from the store and starts following its changes (see the
    /// [module docs](self)).
    pub async fn start(store: Arc<dyn Store>) -> berth_store::Result<Arc<View>> {
        let (state, events) = load_and_watch(store.as_ref()).await?;
        let (revision_tx, _) = watch::channel(state.revision);
        let view = Arc::new(View {
            state: RwLock::new(state),
            revision_tx,
            signals: WorkSignals::default(),
        });
        tokio::spawn(follow(
            Arc::downgrade(&view),
            Arc::downgrade(&store),
            events,
        ));
        Ok(view)
    }

    /// Puts a freshly loaded state in place of the current one in one step, publishes its
    /// revision, and wakes every agent: the writes the view missed may have given any of them
    /// work.
    fn replace(&self, fresh: State) {
        let revision = fresh.revision;
        let mut state = self.state.write().expect("view lock poisoned");
        *state = fresh;
        drop(state);
        self.publish(revision);
        self.signals.notify_all();
    }

    /// Applies one event to the entries (not yet visible to [`View::caught_up`]).
    fn apply(&self, event: WatchEvent) {
        let revision = event.revision();
        let mut state = self.state.write().expect("view lock poisoned");
        match event {
            // Already in the load, or applied before.
            _ if state.holds(event.key(), revision) => {}
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
            WatchEvent::Delete { key, .. } => {
                state.remove(&key);
            }
        }
        state.revision = state.revision.max(revision);
        if revision >= state.loaded.newest() {
            state.loaded = Pages::default();
        }
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

    /// Runs `read` on the counters, holding them still while it runs.
    pub fn read_tallies<R>(&self, read: impl FnOnce(&Tallies) -> R) -> R {
        read(&self.state.read().expect("view lock poisoned").tallies)
    }

    /// Runs `read` on the entries and counters, held still while it runs, with the values
    /// kept for clusters' instances (see [`crate::fleets`]) to take and keep again.
    pub fn with_fleets<R>(&self, read: impl FnOnce(Snapshot<'_>, &mut Fleets) -> R) -> R {
        let state = self.state.read().expect("view lock poisoned");
        let mut fleets = state.fleets.lock().expect("fleets lock poisoned");
        read(Snapshot(&state), &mut fleets)
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

/// The entries and counters as of one moment, for [`View::with_fleets`].
#[derive(Clone, Copy)]
pub struct Snapshot<'a>(&'a State);

impl<'a> Snapshot<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Entry> {
        self.0.entries.get(key)
    }

    /// Visits the entries under `prefix` in key order.
    pub fn scan(&self, prefix: &str, mut visit: impl FnMut(&'a str, &'a Entry)) {
        for (k, e) in self.0.entries.range::<str, _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        )) {
            if !k.starts_with(prefix) {
                break;
            }
            visit(k, e);
        }
    }

    pub fn tallies(&self) -> &'a Tallies {
        &self.0.tallies
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
