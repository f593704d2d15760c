//! Typed reads from the view and transactional writes to the store.
//!
//! Reads clone records out of the [`View`]. A write is a [`Writes`] batch: puts and deletes
//! plus the revisions the caller read, which the store compares before applying anything.
//! [`Db::transact`] runs a plan through the [`Applier`]: the plan reads the view plus the
//! writes of plans not yet committed, its writes are committed in a batch with others, and
//! it runs again if another writer beat it, so read-modify-write handlers never lose an update.

use crate::applier::{Applier, Pending, PlannedWrites, Uncommitted, pending_revision};
use crate::fleets::Fleets;
use crate::records::{Kind, Record};
use crate::tally::{Tallies, Tally};
use crate::view::{Snapshot, View};
use berth_api::ApiError;
use berth_store::Store;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

/// A record read from the view with the revision that last wrote it.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub key: String,
    pub revision: i64,
    pub value: T,
}

/// A record of kind `T` shared with the view rather than copied out of it: reads of many
/// records (every instance of a cluster, for placement) cost a pointer each. Derefs to `T`.
#[derive(Debug, Clone)]
pub struct Shared<T> {
    record: Arc<Record>,
    kind: PhantomData<fn() -> T>,
}

impl<T: Kind> Shared<T> {
    pub(crate) fn new(record: &Arc<Record>) -> Option<Self> {
        T::peel(record)?;
        Some(Shared {
            record: record.clone(),
            kind: PhantomData,
        })
    }
}

impl<T: Kind> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        T::peel(&self.record).expect("a Shared<T> holds a record of kind T")
    }
}

/// A batch of writes guarded by the revisions they were computed from.
#[derive(Debug, Default)]
pub struct Writes {
    planned: PlannedWrites,
}

impl Writes {
    pub fn new() -> Self {
        Self::default()
    }
    /// Commit only if `key` is still at `revision` (0: still absent).
    pub fn expect(mut self, key: &str, revision: i64) -> Self {
        self.planned.compares.push((key.to_string(), revision));
        self
    }
    /// Commit only if the record is unchanged since it was read.
    pub fn expect_unchanged<T>(self, read: &Versioned<T>) -> Self {
        let (key, revision) = (read.key.clone(), read.revision);
        self.expect(&key, revision)
    }
    pub fn put<T: Kind>(mut self, key: &str, value: T) -> Self {
        self.planned
            .ops
            .push((key.to_string(), Some(Arc::new(value.wrap()))));
        self
    }
    pub fn delete(mut self, key: &str) -> Self {
        self.planned.ops.push((key.to_string(), None));
        self
    }
    pub fn is_empty(&self) -> bool {
        self.planned.ops.is_empty()
    }
}

const MAX_ATTEMPTS: usize = 50;

/// Reads and writes of one server. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    store: Arc<dyn Store>,
    view: Arc<View>,
    applier: Arc<Applier>,
    /// Inside a plan: the writes of plans not yet committed, read before the view.
    overlay: Option<Arc<Uncommitted>>,
}

impl Db {
    pub async fn open(store: Arc<dyn Store>) -> berth_store::Result<Db> {
        let view = View::start(store.clone()).await?;
        Ok(Db {
            store,
            view,
            applier: Arc::new(Applier::new()),
            overlay: None,
        })
    }

    pub fn get<T: Kind>(&self, key: &str) -> Option<Versioned<T>> {
        let shared = self.get_shared::<T>(key)?;
        Some(Versioned {
            key: shared.key,
            revision: shared.revision,
            value: T::clone(&shared.value),
        })
    }

    /// The record of kind `T` at `key`, shared with the view.
    pub fn get_shared<T: Kind>(&self, key: &str) -> Option<Versioned<Shared<T>>> {
        let (revision, record) = match self.overlay.as_ref().and_then(|o| o.writes.get(key)) {
            Some(pending) => (pending_revision(pending.batch), pending.record.clone()?),
            None => {
                let entry = self.view.get(key)?;
                (entry.mod_revision, entry.record)
            }
        };
        Some(Versioned {
            key: key.to_string(),
            revision,
            value: Shared::new(&record)?,
        })
    }

    /// The generation of `instance`'s work (see [`crate::work_signals`]).
    pub fn work_signal(&self, instance: &str) -> tokio::sync::watch::Receiver<u64> {
        self.view.work_signal(instance)
    }

    /// Ends every agent's long poll, so a shutting-down server need not wait for them.
    pub fn release_work_waiters(&self) {
        self.view.release_work_waiters();
    }

    /// The revision of the store the view has applied.
    pub fn revision(&self) -> i64 {
        self.view.revision()
    }

    /// A counter the view keeps (see [`crate::tally`]), with the overlay's writes counted.
    pub fn tally(&self, name: &str) -> Tally {
        let mut tally = self.view.tally(name);
        if let Some(overlay) = &self.overlay {
            tally.add(overlay.tallies.get(name), 1);
        }
        tally
    }

    /// How many unstopped tasks of each group a container instance runs.
    pub fn task_groups_on(&self, instance_arn: &str) -> BTreeMap<String, usize> {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        let pending = self
            .overlay
            .as_ref()
            .map(|o| o.tallies.groups_on(instance_arn));
        for (group, t) in self
            .view
            .groups_on(instance_arn)
            .into_iter()
            .chain(pending.into_iter().flatten())
        {
            *counts.entry(group).or_default() += t.running + t.pending;
        }
        counts
            .into_iter()
            .filter_map(|(group, n)| Some((group, usize::try_from(n).ok().filter(|n| *n > 0)?)))
            .collect()
    }

    /// Every record of kind `T` under `prefix`, in key order, shared with the view.
    pub fn list_shared<T: Kind>(&self, prefix: &str) -> Vec<Versioned<Shared<T>>> {
        let mut out = Vec::new();
        self.visit(prefix, None, |key, revision, record| {
            if let Some(value) = Shared::new(record) {
                out.push(Versioned {
                    key: key.to_string(),
                    revision,
                    value,
                });
            }
            true
        });
        out
    }

    /// Runs `read` on the view's counters and the overlay's changes to them (inside a plan
    /// whose overlay has any), holding them still while it runs. `read` must not read the
    /// view again.
    pub fn read_tallies<R>(&self, read: impl FnOnce(&Tallies, Option<&Tallies>) -> R) -> R {
        let overlay = self.overlay.as_ref().map(|o| &o.tallies);
        self.view.read_tallies(|tallies| read(tallies, overlay))
    }

    /// Runs `read` on the view as of one moment (the overlay's writes are not in it), with the
    /// values kept for clusters' instances (see [`crate::fleets`]).
    pub fn with_fleets<R>(&self, read: impl FnOnce(Snapshot<'_>, &mut Fleets) -> R) -> R {
        self.view.with_fleets(read)
    }

    /// Visits each key the overlay writes under `prefix` with the record it has in the view and
    /// the one it will have (None: absent); nothing outside a plan.
    pub fn visit_pending(
        &self,
        prefix: &str,
        mut visit: impl FnMut(&str, Option<&Record>, Option<&Record>),
    ) {
        let Some(overlay) = &self.overlay else {
            return;
        };
        let from = (
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        );
        for (key, p) in overlay.writes.range::<str, _>(from) {
            if !key.starts_with(prefix) {
                break;
            }
            let committed = self.view.get(key).map(|e| e.record);
            visit(key, committed.as_deref(), p.record.as_deref());
        }
    }

    /// Every record of kind `T` under `prefix`, in key order.
    pub fn list<T: Kind>(&self, prefix: &str) -> Vec<Versioned<T>> {
        let mut out = Vec::new();
        self.visit(prefix, None, |key, revision, record| {
            if let Some(value) = T::peel(record) {
                out.push(Versioned {
                    key: key.to_string(),
                    revision,
                    value: value.clone(),
                });
            }
            true
        });
        out
    }

    /// Visits records of kind `T` under `prefix` without cloning them; return false to stop.
    pub fn scan<T: Kind>(&self, prefix: &str, visit: impl FnMut(&str, &T) -> bool) {
        self.scan_after(prefix, None, visit);
    }

    /// Visits every record of kind `T` in one collection of every region of a service — keys
    /// `/{service}/{region}/{collection}/…` — region by region in key order, reading no other
    /// collection (a background sweep over the services of every region must not walk every
    /// task); return false to stop.
    pub fn scan_every_region<T: Kind>(
        &self,
        service: &str,
        collection: &str,
        mut visit: impl FnMut(&str, &T) -> bool,
    ) {
        let root = format!("/{service}/");
        let mut after: Option<String> = None;
        loop {
            let mut next = None;
            self.visit(&root, after.as_deref(), |key, _, _| {
                next = Some(key.to_string());
                false
            });
            let Some(region) = next
                .as_deref()
                .and_then(|k| k[root.len()..].split('/').next())
            else {
                return;
            };
            let mut go = true;
            self.scan(&format!("{root}{region}/{collection}/"), |key, value| {
                go = visit(key, value);
                go
            });
            if !go {
                return;
            }
            // Past every key of the region: the next one found is another region's.
            after = Some(format!("{root}{region}/{}", char::MAX));
        }
    }

    /// As [`Db::scan`], starting after the key `after`: pages cost what they hold.
    pub fn scan_after<T: Kind>(
        &self,
        prefix: &str,
        after: Option<&str>,
        mut visit: impl FnMut(&str, &T) -> bool,
    ) {
        self.visit(prefix, after, |key, _, record| match T::peel(record) {
            Some(value) => visit(key, value),
            None => true,
        });
    }

    /// Visits every record under `prefix` after `after` in key order, the overlay's writes
    /// merged in.
    fn visit(
        &self,
        prefix: &str,
        after: Option<&str>,
        mut visit: impl FnMut(&str, i64, &Arc<Record>) -> bool,
    ) {
        let pending: Vec<(&String, &Pending)> = match &self.overlay {
            Some(o) => o
                .writes
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
                .collect(),
            None => Vec::new(),
        };
        if pending.is_empty() {
            self.view.scan(prefix, after, |key, e| {
                visit(key, e.mod_revision, &e.record)
            });
            return;
        }
        let mut pending = pending.into_iter().peekable();
        let mut stopped = false;
        self.view.scan(prefix, after, |key, entry| {
            while let Some((k, p)) = pending.next_if(|(k, _)| k.as_str() < key) {
                if let Some(record) = &p.record
                    && !visit(k, pending_revision(p.batch), record)
                {
                    stopped = true;
                    return false;
                }
            }
            let go = match pending.next_if(|(k, _)| k.as_str() == key) {
                // The overlay's write shadows the view's record.
                Some((_, p)) => match &p.record {
                    Some(record) => visit(key, pending_revision(p.batch), record),
                    None => true,
                },
                None => visit(key, entry.mod_revision, &entry.record),
            };
            stopped = !go;
            go
        });
        if !stopped {
            for (k, p) in pending {
                if let Some(record) = &p.record
                    && !visit(k, pending_revision(p.batch), record)
                {
                    break;
                }
            }
        }
    }

    /// Forgets the store's history at or below `revision` (see [`crate::history`]).
    pub async fn compact(&self, revision: i64) -> Result<(), ApiError> {
        self.store
            .compact(revision)
            .await
            .map_err(|e| ApiError::server(format!("compacting the store: {e}")))
    }

    /// Commits writes computed from the view outside a plan; `Ok(false)` when a compared
    /// revision moved (nothing was written). On success the view has applied the write.
    pub async fn commit(&self, writes: Writes) -> Result<bool, ApiError> {
        if writes.is_empty() {
            return Ok(true);
        }
        match self.applier.plan().await.join(writes.planned, &self.view) {
            Some(ticket) => self.applier.settle(ticket, &*self.store, &self.view).await,
            None => Ok(true),
        }
    }

    /// Runs `plan` against the view and the writes of plans not yet committed, and commits
    /// the writes it returns with those of other plans; runs it again when another writer
    /// beat it. Returns the plan's result once its writes are committed and visible.
    pub async fn transact<R>(
        &self,
        mut plan: impl FnMut(&Db) -> Result<(Writes, R), ApiError>,
    ) -> Result<R, ApiError> {
        for _ in 0..MAX_ATTEMPTS {
            let planning = self.applier.plan().await;
            let db = Db {
                overlay: planning.overlay(),
                ..self.clone()
            };
            let (writes, result) = plan(&db)?;
            drop(db);
            let Some(ticket) = planning.join(writes.planned, &self.view) else {
                return Ok(result);
            };
            if self
                .applier
                .settle(ticket, &*self.store, &self.view)
                .await?
            {
                return Ok(result);
            }
        }
        Err(ApiError::server(
            "the write kept conflicting with concurrent writes; retry the request",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Family, keys};
    use berth_store::sqlite::SqliteStore;

    async fn open(dir: &tempfile::TempDir) -> (Arc<dyn Store>, Db) {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let db = Db::open(store.clone()).await.unwrap();
        (store, db)
    }

    /// Adds one to a family's revision counter; returns the value it wrote.
    async fn bump(db: &Db, family: &str) -> i32 {
        let key = keys::family("r", family);
        db.transact(|db| {
            let current = db.get::<Family>(&key);
            let next = current.as_ref().map_or(0, |f| f.value.latest_revision) + 1;
            let writes = Writes::new()
                .expect(&key, current.as_ref().map_or(0, |f| f.revision))
                .put(
                    &key,
                    Family {
                        latest_revision: next,
                    },
                );
            Ok((writes, next))
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn scans_one_collection_of_every_region_and_nothing_else() {
        use crate::records::Heartbeat;
        use berth_model::time::Timestamp;
        let dir = tempfile::tempdir().unwrap();
        let (_, db) = open(&dir).await;
        let family = Family { latest_revision: 1 };
        let beat = Heartbeat {
            last_seen: Timestamp::from_millis(1),
        };
        let mut writes = Writes::new();
        for region in ["eu-west-1", "us-east-1", "us-east-1-b", "us-east-1x"] {
            writes = writes
                .put(&keys::family(region, "web"), family.clone())
                .put(&keys::heartbeat(region, "c", "i1"), beat.clone());
        }
        assert!(db.commit(writes).await.unwrap());

        let mut seen = Vec::new();
        db.scan_every_region::<Heartbeat>("ecs", "heartbeats", |key, _| {
            seen.push(key.to_string());
            true
        });
        assert_eq!(
            seen,
            [
                "/ecs/eu-west-1/heartbeats/c/i1",
                "/ecs/us-east-1-b/heartbeats/c/i1",
                "/ecs/us-east-1/heartbeats/c/i1",
                "/ecs/us-east-1x/heartbeats/c/i1",
            ]
        );
        let mut families = 0;
        db.scan_every_region::<Family>("ecs", "families", |_, _| {
            families += 1;
            families < 2
        });
        assert_eq!(families, 2, "stops when told");
        db.scan_every_region::<Family>("ecr", "families", |_, _| panic!("no such service"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_read_modify_writes_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, one) = open(&dir).await;
        // A second server on the same store: its writes conflict with the first's.
        let two = Db::open(store).await.unwrap();
        let mut calls = Vec::new();
        for i in 0..96 {
            let db = if i % 3 == 0 { two.clone() } else { one.clone() };
            calls.push(tokio::spawn(async move { bump(&db, "web").await }));
        }
        let mut seen = Vec::new();
        for call in calls {
            seen.push(call.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (1..=96).collect::<Vec<_>>(),
            "every bump got its own value"
        );
        for db in [&one, &two] {
            let key = keys::family("r", "web");
            db.view.caught_up(store_revision(db).await).await;
            assert_eq!(db.get::<Family>(&key).unwrap().value.latest_revision, 96);
        }
    }

    async fn store_revision(db: &Db) -> i64 {
        db.store.revision().await.unwrap()
    }

    /// A transaction's keys share one revision: a writer that returns must see all of them,
    /// never the first applied and the rest not yet.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_committed_transaction_is_visible_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (_, db) = open(&dir).await;
        let keys: Vec<String> = (0..8).map(|i| format!("/ecs/r/families/f{i}")).collect();
        for n in 1..=200 {
            let writes = keys.iter().fold(Writes::new(), |w, k| {
                w.put(k, Family { latest_revision: n })
            });
            assert!(db.commit(writes).await.unwrap());
            for k in &keys {
                assert_eq!(
                    db.get::<Family>(k).map(|f| f.value.latest_revision),
                    Some(n),
                    "{k} after write {n}"
                );
            }
        }
    }

    #[tokio::test]
    async fn plans_read_uncommitted_writes_merged_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let (_, db) = open(&dir).await;
        let family = |n| Family { latest_revision: n };
        let writes = ["a", "c", "e"].iter().fold(Writes::new(), |w, k| {
            w.put(&format!("/ecs/r/families/{k}"), family(1))
        });
        assert!(db.commit(writes).await.unwrap());
        let pending = |n: Option<i32>, batch| Pending {
            record: n.map(|n| Arc::new(family(n).wrap())),
            batch,
        };
        let writes: crate::applier::Overlay = [
            ("/ecs/r/families/b", pending(Some(2), 7)),
            ("/ecs/r/families/c", pending(Some(3), 7)),
            ("/ecs/r/families/e", pending(None, 7)),
            ("/ecs/r/families/f", pending(Some(4), 8)),
        ]
        .into_iter()
        .map(|(k, p)| (k.to_string(), p))
        .collect();
        let planning = Db {
            overlay: Some(Arc::new(Uncommitted {
                writes,
                tallies: Default::default(),
            })),
            ..db.clone()
        };
        let seen: Vec<(String, i64, i32)> = planning
            .list::<Family>("/ecs/r/families/")
            .into_iter()
            .map(|v| {
                (
                    v.key.rsplit('/').next().unwrap().to_string(),
                    v.revision,
                    v.value.latest_revision,
                )
            })
            .collect();
        let committed = db.get::<Family>("/ecs/r/families/a").unwrap().revision;
        assert!(committed > 0);
        assert_eq!(
            seen,
            [
                ("a".to_string(), committed, 1),
                ("b".to_string(), -7, 2),
                ("c".to_string(), -7, 3),
                ("f".to_string(), -8, 4),
            ]
        );
        assert!(planning.get::<Family>("/ecs/r/families/e").is_none());
        assert_eq!(
            db.get::<Family>("/ecs/r/families/e")
                .unwrap()
                .value
                .latest_revision,
            1
        );
        // A visitor that stops early is not called again.
        let mut visited = 0;
        planning.scan::<Family>("/ecs/r/families/", |_, _| {
            visited += 1;
            visited < 2
        });
        assert_eq!(visited, 2);
    }
}
