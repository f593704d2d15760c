//! The view after its watch fails: it loads everything again and follows the store from there,
//! on SQLite and on a real etcd, through a store adapter whose watches fail on demand.

use super::*;
use async_trait::async_trait;
use berth_store::etcd::EtcdStore;
use berth_store::etcd::local::LocalEtcd;
use berth_store::sqlite::SqliteStore;
use berth_store::{KeyValue, RangeResult, Txn, TxnResult};
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

/// A store that passes everything on to `inner`, except that it can stop answering reads and
/// watches (`down`, as if the connection were lost) and make every open watch fail with
/// `Compacted` ([`Flaky::break_watches`]). Writes always reach `inner`: other servers' writes.
struct Flaky {
    inner: Arc<dyn Store>,
    down: AtomicBool,
    breaks: watch::Sender<u64>,
}

impl Flaky {
    fn new(inner: Arc<dyn Store>) -> Arc<Flaky> {
        Arc::new(Flaky {
            inner,
            down: AtomicBool::new(false),
            breaks: watch::channel(0).0,
        })
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn break_watches(&self) {
        self.breaks.send_modify(|n| *n += 1);
    }

    fn answer(&self) -> berth_store::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("connection refused".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for Flaky {
    async fn revision(&self) -> berth_store::Result<i64> {
        self.answer()?;
        self.inner.revision().await
    }

    async fn get(&self, key: &str) -> berth_store::Result<Option<KeyValue>> {
        self.answer()?;
        self.inner.get(key).await
    }

    async fn range(&self, req: RangeRequest) -> berth_store::Result<RangeResult> {
        self.answer()?;
        self.inner.range(req).await
    }

    async fn txn(&self, txn: Txn) -> berth_store::Result<TxnResult> {
        self.inner.txn(txn).await
    }

    async fn watch(&self, prefix: &str, after_revision: i64) -> berth_store::Result<Events> {
        self.answer()?;
        let broken = self.breaks.subscribe();
        let events = self.inner.watch(prefix, after_revision).await?;
        let compacted = StoreError::Compacted {
            requested: after_revision,
            oldest: after_revision + 1,
        };
        Ok(
            futures::stream::unfold(Some((events, broken, compacted)), |open| async move {
                let (mut events, mut broken, compacted) = open?;
                tokio::select! {
                    biased;
                    _ = broken.changed() => Some((Err(compacted), None)),
                    event = events.next() => Some((event?, Some((events, broken, compacted)))),
                }
            })
            .boxed(),
        )
    }

    async fn compact(&self, revision: i64) -> berth_store::Result<()> {
        self.inner.compact(revision).await
    }
}

fn key(id: &str) -> String {
    format!("/ecs/r/tasks/c/{id}")
}

fn task(id: &str, instance: &str, desired: &str, last: &str) -> Vec<u8> {
    json!({
        "taskArn": format!("arn:aws:ecs:r:123456789012:task/c/{id}"),
        "clusterArn": "arn:aws:ecs:r:123456789012:cluster/c",
        "taskDefinitionArn": "arn:aws:ecs:r:123456789012:task-definition/web:1",
        "containerInstanceArn": instance,
        "containers": [],
        "createdAt": 0,
        "desiredStatus": desired,
        "enableExecuteCommand": false,
        "lastStatus": last,
        "version": 1,
    })
    .to_string()
    .into_bytes()
}

fn put(id: &str, instance: &str, desired: &str, last: &str) -> Txn {
    Txn::new().put(key(id), task(id, instance, desired, last))
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} within 20 s"))
}

/// Every entry's key and revision, and every counter: what two views must agree on.
fn snapshot(view: &View) -> (Vec<(String, i64)>, Tallies) {
    let state = view.state.read().unwrap();
    let entries = state
        .entries
        .iter()
        .map(|(k, e)| (k.clone(), e.mod_revision))
        .collect();
    (entries, state.tallies.clone())
}

async fn reloads_after_its_watch_fails(inner: Arc<dyn Store>) {
    let flaky = Flaky::new(inner.clone());
    let view = View::start(flaky.clone()).await.unwrap();
    let i1 = "arn:i/1";
    let i2 = "arn:i/2";
    inner.txn(put("a", i1, "RUNNING", "RUNNING")).await.unwrap();
    inner.txn(put("b", i1, "RUNNING", "PENDING")).await.unwrap();
    let before = inner.txn(put("c", i2, "RUNNING", "RUNNING")).await.unwrap();
    within("the first writes", view.caught_up(before.revision)).await;
    assert_eq!(view.tally(i1).running + view.tally(i1).pending, 2);
    let mut work = view.work_signal(i2);

    // The store stops answering and the watch fails. Meanwhile other servers delete a task, stop
    // one and place one, and the history the old watch would need is compacted.
    flaky.set_down(true);
    flaky.break_watches();
    inner.txn(Txn::new().delete(key("a"))).await.unwrap();
    inner.txn(put("b", i1, "STOPPED", "STOPPED")).await.unwrap();
    let gap = inner.txn(put("d", i2, "RUNNING", "PENDING")).await.unwrap();
    inner.compact(gap.revision).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(view.get(&key("a")).is_some() && view.get(&key("d")).is_none());
    assert!(
        !work.has_changed().unwrap(),
        "no news while the store is down"
    );

    flaky.set_down(false);
    within("the reloaded view", view.caught_up(gap.revision)).await;
    assert!(view.get(&key("a")).is_none(), "deleted in the gap");
    assert!(view.get(&key("d")).is_some(), "placed in the gap");
    assert_eq!(view.tally(i1), Tally::default());
    assert_eq!((view.tally(i2).running, view.tally(i2).pending), (1, 1));
    let fresh = View::start(inner.clone()).await.unwrap();
    assert_eq!(snapshot(&view), snapshot(&fresh));
    within("the agents' wake-up", work.changed()).await.unwrap();

    // It follows the store again.
    let after = inner.txn(put("e", i2, "RUNNING", "PENDING")).await.unwrap();
    within("a write after the reload", view.caught_up(after.revision)).await;
    assert!(view.get(&key("e")).is_some());
    assert_eq!(view.tally(i2).pending, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_sqlite_after_its_watch_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    reloads_after_its_watch_fails(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_etcd_after_its_watch_fails() {
    let etcd = LocalEtcd::start().unwrap_or_else(|e| panic!("{e}"));
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    reloads_after_its_watch_fails(Arc::new(store)).await;
}

fn kv(id: &str, revision: i64) -> KeyValue {
    KeyValue {
        key: key(id),
        value: task(id, "arn:i/1", "RUNNING", "PENDING"),
        create_revision: revision,
        mod_revision: revision,
        version: 1,
    }
}

/// Pages read at revisions 10 and 12 (split after key `m`); the watch replays from 10.
#[test]
fn events_a_page_already_holds_are_not_applied_again() {
    let state = State {
        revision: 10,
        loaded: Pages(vec![(Some(key("m")), 10), (None, 12)]),
        ..State::default()
    };
    let view = View {
        state: RwLock::new(state),
        revision_tx: watch::channel(10).0,
        signals: WorkSignals::default(),
    };
    // `x` was put at 11 and deleted at 12, so the second page did not have it.
    view.apply(WatchEvent::Put(kv("x", 11)));
    assert!(
        view.get(&key("x")).is_none(),
        "a deleted key does not come back"
    );
    assert_eq!(view.tally("arn:i/1"), Tally::default());
    // `b` is on the first page, read before its put.
    view.apply(WatchEvent::Put(kv("b", 11)));
    assert!(view.get(&key("b")).is_some());
    view.apply(WatchEvent::Delete {
        key: key("x"),
        mod_revision: 12,
    });
    assert!(
        view.state.read().unwrap().loaded.0.is_empty(),
        "past the load"
    );
    view.apply(WatchEvent::Put(kv("x", 13)));
    assert!(view.get(&key("x")).is_some());
    assert_eq!(view.tally("arn:i/1").pending, 2);
}
