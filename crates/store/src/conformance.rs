//! The conformance suite every [`Store`] backend must pass.
//!
//! Each check is a `pub async fn(&dyn Store)` that expects a fresh store holding no keys and
//! panics on a violation. They use only the [`Store`] trait, so they hold for any backend
//! (SQLite and etcd). Revisions are counted from the fresh store's base revision (0 for SQLite,
//! 1 for etcd, which counts its own creation): the first write is the base plus one. Checks
//! that cover behaviour etcd rejects (writing one key twice in one transaction) or cannot
//! express (compacting to the current revision) are left to backend-specific tests.
//!
//! A backend wires the suite into its tests with [`conformance_tests!`](crate::conformance_tests),
//! which generates one `#[tokio::test]` per check from an async factory returning a
//! [`Fixture`]:
//!
//! ```ignore
//! async fn fresh() -> berth_store::conformance::Fixture {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = berth_store::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap();
//!     berth_store::conformance::Fixture::with_guard(store, dir)
//! }
//! berth_store::conformance_tests!(fresh);
//! ```
//!
//! [`run_all`] runs every check in one test instead.

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use futures::future::{BoxFuture, join_all};
use futures::stream::{BoxStream, StreamExt};

use crate::{RangeRequest, Store, StoreError, Txn, WatchEvent};

/// How long a check waits for an expected watch event before failing.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh store for one check, with whatever must outlive it (a temporary directory, a
/// container handle). The store is dropped before the guard.
pub struct Fixture {
    store: Box<dyn Store>,
    _guard: Box<dyn Any + Send>,
}

impl Fixture {
    /// A store that needs nothing kept alive beside it.
    pub fn new(store: impl Store) -> Self {
        Self::with_guard(store, ())
    }

    /// A store plus a guard dropped after it.
    pub fn with_guard(store: impl Store, guard: impl Any + Send) -> Self {
        Fixture {
            store: Box::new(store),
            _guard: Box::new(guard),
        }
    }

    /// The store under test.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }
}

/// One named check.
#[derive(Clone, Copy)]
pub struct Check {
    /// The check's function name.
    pub name: &'static str,
    /// Runs the check against a fresh store.
    pub run: for<'a> fn(&'a dyn Store) -> BoxFuture<'a, ()>,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

macro_rules! check_list {
    ($($name:ident),* $(,)?) => {
        /// Every check, in the order [`run_all`] runs them.
        pub const CHECKS: &[Check] = &[$(Check { name: stringify!($name), run: |s| Box::pin($name(s)) }),*];
    };
}

check_list!(
    empty_store,
    put_get_delete,
    revision_bookkeeping,
    range_prefix_and_order,
    range_pagination,
    range_reports_revision,
    txn_compare_success,
    txn_compare_failure_writes_nothing,
    txn_multi_op_is_atomic,
    txn_without_changes_keeps_revision,
    concurrent_cas_counter,
    concurrent_writers_get_distinct_revisions,
    watch_from_past_revision,
    watch_live,
    watch_prefix_filter,
    watch_deletes,
    watch_history_then_live_without_gaps,
    watch_compacted_revision_fails,
);

/// Generate one `#[tokio::test]` per conformance check. `$factory` is an `async fn() ->
/// Fixture` (or a path to one) called once per test for a fresh store.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@tests $factory;
            empty_store,
            put_get_delete,
            revision_bookkeeping,
            range_prefix_and_order,
            range_pagination,
            range_reports_revision,
            txn_compare_success,
            txn_compare_failure_writes_nothing,
            txn_multi_op_is_atomic,
            txn_without_changes_keeps_revision,
            concurrent_cas_counter,
            concurrent_writers_get_distinct_revisions,
            watch_from_past_revision,
            watch_live,
            watch_prefix_filter,
            watch_deletes,
            watch_history_then_live_without_gaps,
            watch_compacted_revision_fails,
        );
    };
    (@tests $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let fixture = $factory().await;
                $crate::conformance::$name(fixture.store()).await;
            }
        )*

        #[test]
        fn conformance_tests_cover_every_check() {
            let generated: &[&str] = &[$(stringify!($name)),*];
            let all: Vec<&str> = $crate::conformance::CHECKS.iter().map(|c| c.name).collect();
            assert_eq!(generated, all.as_slice());
        }
    };
}

/// Run every check, each on a fresh fixture from `factory`.
pub async fn run_all<F, Fut>(mut factory: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Fixture>,
{
    for check in CHECKS {
        let fixture = factory().await;
        tracing::info!(check = check.name, "store conformance check");
        (check.run)(fixture.store()).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

async fn put(store: &dyn Store, key: &str, value: &str) -> i64 {
    let res = store.txn(Txn::new().put(key, value)).await.expect("put");
    assert!(res.succeeded, "an unconditional put must succeed");
    res.revision
}

async fn delete(store: &dyn Store, key: &str) -> i64 {
    let res = store.txn(Txn::new().delete(key)).await.expect("delete");
    assert!(res.succeeded, "an unconditional delete must succeed");
    res.revision
}

async fn value(store: &dyn Store, key: &str) -> Option<String> {
    store
        .get(key)
        .await
        .expect("get")
        .map(|kv| String::from_utf8(kv.value).expect("test values are utf-8"))
}

async fn keys(store: &dyn Store, req: RangeRequest) -> (Vec<String>, bool) {
    let res = store.range(req).await.expect("range");
    (res.kvs.into_iter().map(|kv| kv.key).collect(), res.more)
}

async fn next_event(stream: &mut BoxStream<'static, crate::Result<WatchEvent>>) -> WatchEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended early"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

fn put_of(event: &WatchEvent) -> (&str, &[u8], i64) {
    match event {
        WatchEvent::Put(kv) => (&kv.key, &kv.value, kv.mod_revision),
        other => panic!("expected a put, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// A new store holds nothing, and reading it does not move its (base) revision.
pub async fn empty_store(store: &dyn Store) {
    let base = store.revision().await.unwrap();
    assert!(base >= 0, "revisions are never negative");
    assert_eq!(store.get("a").await.unwrap(), None);
    let res = store.range(RangeRequest::prefix("")).await.unwrap();
    assert!(res.kvs.is_empty());
    assert!(!res.more);
    assert_eq!(res.revision, base);
    assert_eq!(store.revision().await.unwrap(), base);
}

/// Put, get, overwrite and delete one key.
pub async fn put_get_delete(store: &dyn Store) {
    let r1 = put(store, "k", "one").await;
    assert_eq!(value(store, "k").await.as_deref(), Some("one"));
    let r2 = put(store, "k", "two").await;
    assert!(r2 > r1);
    assert_eq!(value(store, "k").await.as_deref(), Some("two"));
    assert_eq!(value(store, "k2").await, None);
    let r3 = delete(store, "k").await;
    assert!(r3 > r2);
    assert_eq!(value(store, "k").await, None);
    assert_eq!(store.revision().await.unwrap(), r3);
    // Binary values round-trip untouched.
    let bytes: Vec<u8> = (0..=255u8).collect();
    store
        .txn(Txn::new().put("bin", bytes.clone()))
        .await
        .unwrap();
    assert_eq!(store.get("bin").await.unwrap().unwrap().value, bytes);
}

/// `create_revision`, `mod_revision` and `version` follow etcd: the revision grows by one per
/// writing transaction, a delete resets the key's history.
pub async fn revision_bookkeeping(store: &dyn Store) {
    let base = store.revision().await.unwrap();
    let rev = |n: i64| base + n;
    let r1 = put(store, "a", "1").await;
    assert_eq!(r1, rev(1));
    let kv = store.get("a").await.unwrap().unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (rev(1), rev(1), 1)
    );

    let r2 = put(store, "b", "1").await;
    assert_eq!(r2, rev(2));
    let r3 = put(store, "a", "2").await;
    assert_eq!(r3, rev(3));
    let kv = store.get("a").await.unwrap().unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (rev(1), rev(3), 2)
    );

    assert_eq!(delete(store, "a").await, rev(4));
    assert_eq!(put(store, "a", "3").await, rev(5));
    let kv = store.get("a").await.unwrap().unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (rev(5), rev(5), 1)
    );
    let kv = store.get("b").await.unwrap().unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (rev(2), rev(2), 1)
    );
    assert_eq!(store.revision().await.unwrap(), rev(5));
}

/// Range returns exactly the keys under the prefix, in bytewise order.
pub async fn range_prefix_and_order(store: &dyn Store) {
    for key in [
        "a/b", "a", "a/", "a0", "a/a/x", "a/\u{e9}", "a/Z", "a/z", "b/1", "a/a",
    ] {
        put(store, key, "v").await;
    }
    let (got, more) = keys(store, RangeRequest::prefix("a/")).await;
    assert!(!more);
    assert_eq!(got, ["a/", "a/Z", "a/a", "a/a/x", "a/b", "a/z", "a/\u{e9}"]);
    let (got, _) = keys(store, RangeRequest::prefix("a/a")).await;
    assert_eq!(got, ["a/a", "a/a/x"]);
    let (got, _) = keys(store, RangeRequest::prefix("")).await;
    assert_eq!(
        got,
        [
            "a", "a/", "a/Z", "a/a", "a/a/x", "a/b", "a/z", "a/\u{e9}", "a0", "b/1"
        ]
    );
    let (got, _) = keys(store, RangeRequest::prefix("c")).await;
    assert!(got.is_empty());
    let res = store.range(RangeRequest::prefix("a/b")).await.unwrap();
    assert_eq!(res.kvs.len(), 1);
    assert_eq!(res.kvs[0].value, b"v");
    assert_eq!(res.kvs[0].version, 1);
}

/// `limit`, `after` and `more` page through a prefix without gaps or repeats.
pub async fn range_pagination(store: &dyn Store) {
    let mut all = Vec::new();
    let mut txn = Txn::new();
    for i in 0..25 {
        let key = format!("p/{i:03}");
        txn = txn.put(key.clone(), "v");
        all.push(key);
    }
    store.txn(txn).await.unwrap();
    put(store, "q/000", "v").await;
    put(store, "o/999", "v").await;

    let (got, more) = keys(
        store,
        RangeRequest {
            limit: 0,
            ..RangeRequest::prefix("p/")
        },
    )
    .await;
    assert_eq!(got, all);
    assert!(!more);

    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let req = RangeRequest {
            prefix: "p/".into(),
            after: after.clone(),
            limit: 7,
        };
        let (page, more) = keys(store, req).await;
        assert!(page.len() <= 7);
        paged.extend(page.iter().cloned());
        if !more {
            break;
        }
        assert_eq!(page.len(), 7, "a page with more after it is full");
        after = page.last().cloned();
    }
    assert_eq!(paged, all);

    // Exactly `limit` keys left: no more.
    let req = RangeRequest {
        prefix: "p/".into(),
        after: Some("p/019".into()),
        limit: 5,
    };
    let (page, more) = keys(store, req).await;
    assert_eq!(page, all[20..]);
    assert!(!more);
    // A continuation key before the prefix, and after the last key.
    let req = RangeRequest {
        prefix: "p/".into(),
        after: Some("a".into()),
        limit: 2,
    };
    let (page, more) = keys(store, req).await;
    assert_eq!(page, all[..2]);
    assert!(more);
    let req = RangeRequest {
        prefix: "p/".into(),
        after: Some("p/024".into()),
        limit: 2,
    };
    assert_eq!(keys(store, req).await, (vec![], false));
    // The continuation key need not exist.
    let req = RangeRequest {
        prefix: "p/".into(),
        after: Some("p/010x".into()),
        limit: 1,
    };
    assert_eq!(keys(store, req).await, (vec!["p/011".to_owned()], true));
}

/// A range reports the revision it read at.
pub async fn range_reports_revision(store: &dyn Store) {
    put(store, "x", "1").await;
    let r = put(store, "y", "1").await;
    let res = store.range(RangeRequest::prefix("x")).await.unwrap();
    assert_eq!(res.revision, r);
    let r = delete(store, "x").await;
    let res = store.range(RangeRequest::prefix("x")).await.unwrap();
    assert!(res.kvs.is_empty());
    assert_eq!(res.revision, r);
}

/// Compares on `mod_revision` (0: absent) that hold let the writes through.
pub async fn txn_compare_success(store: &dyn Store) {
    // Create-if-absent.
    let res = store
        .txn(Txn::new().when("k", 0).put("k", "1"))
        .await
        .unwrap();
    assert!(res.succeeded);
    let kv = store.get("k").await.unwrap().unwrap();
    assert_eq!(kv.mod_revision, res.revision);
    // Update-if-unchanged.
    let res = store
        .txn(Txn::new().when("k", kv.mod_revision).put("k", "2"))
        .await
        .unwrap();
    assert!(res.succeeded);
    assert_eq!(res.revision, kv.mod_revision + 1);
    assert_eq!(value(store, "k").await.as_deref(), Some("2"));
    // Delete-if-unchanged, with a compare on another key's absence.
    let res = store
        .txn(
            Txn::new()
                .when("k", res.revision)
                .when("nope", 0)
                .delete("k"),
        )
        .await;
    assert!(res.unwrap().succeeded);
    assert_eq!(value(store, "k").await, None);
}

/// A failed compare writes nothing and keeps the revision.
pub async fn txn_compare_failure_writes_nothing(store: &dyn Store) {
    let r1 = put(store, "a", "1").await;
    put(store, "b", "1").await;
    let before = store.revision().await.unwrap();

    // Stale revision.
    let res = store
        .txn(Txn::new().when("a", r1 - 1).put("a", "x").put("c", "x"))
        .await
        .unwrap();
    assert!(!res.succeeded);
    assert_eq!(res.revision, before);
    // Expected absent, is present.
    let res = store
        .txn(Txn::new().when("a", 0).put("a", "x"))
        .await
        .unwrap();
    assert!(!res.succeeded);
    // Expected present, is absent.
    let res = store
        .txn(Txn::new().when("zz", 7).put("zz", "x"))
        .await
        .unwrap();
    assert!(!res.succeeded);
    // One good compare and one bad: still nothing.
    let res = store
        .txn(
            Txn::new()
                .when("a", r1)
                .when("b", 0)
                .put("a", "x")
                .delete("b")
                .put("c", "x"),
        )
        .await
        .unwrap();
    assert!(!res.succeeded);
    assert_eq!(res.revision, before);

    assert_eq!(store.revision().await.unwrap(), before);
    assert_eq!(value(store, "a").await.as_deref(), Some("1"));
    assert_eq!(value(store, "b").await.as_deref(), Some("1"));
    assert_eq!(value(store, "c").await, None);
    assert_eq!(value(store, "zz").await, None);
    assert_eq!(store.get("a").await.unwrap().unwrap().version, 1);
}

/// All ops of a transaction apply together, at one revision.
pub async fn txn_multi_op_is_atomic(store: &dyn Store) {
    put(store, "m/gone", "x").await;
    let before = store.revision().await.unwrap();
    let mut txn = Txn::new().delete("m/gone");
    for i in 0..50 {
        txn = txn.put(format!("m/{i:02}"), format!("{i}"));
    }
    let res = store.txn(txn).await.unwrap();
    assert!(res.succeeded);
    assert_eq!(res.revision, before + 1, "one transaction, one revision");
    let page = store.range(RangeRequest::prefix("m/")).await.unwrap();
    assert_eq!(page.kvs.len(), 50);
    for kv in &page.kvs {
        assert_eq!(kv.mod_revision, res.revision);
        assert_eq!(kv.create_revision, res.revision);
        assert_eq!(kv.version, 1);
    }
    assert_eq!(value(store, "m/gone").await, None);
}

/// Transactions that change nothing keep the revision: no ops, compares only, deleting a
/// missing key.
pub async fn txn_without_changes_keeps_revision(store: &dyn Store) {
    let r = put(store, "k", "v").await;
    let res = store.txn(Txn::new()).await.unwrap();
    assert!(res.succeeded);
    assert_eq!(res.revision, r);
    let res = store.txn(Txn::new().when("k", r)).await.unwrap();
    assert!(res.succeeded);
    assert_eq!(res.revision, r);
    let res = store.txn(Txn::new().delete("missing")).await.unwrap();
    assert!(res.succeeded);
    assert_eq!(res.revision, r);
    assert_eq!(store.revision().await.unwrap(), r);
    assert_eq!(value(store, "missing").await, None);
    // The next write gets the next revision.
    assert_eq!(put(store, "k", "w").await, r + 1);
}

/// Many tasks incrementing one counter with compare-and-swap retries lose no update.
pub async fn concurrent_cas_counter(store: &dyn Store) {
    const TASKS: usize = 64;
    let start = put(store, "counter", "0").await;
    let attempts = join_all((0..TASKS).map(|_| async move {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let kv = store.get("counter").await.unwrap().expect("counter exists");
            let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
            let res = store
                .txn(
                    Txn::new()
                        .when("counter", kv.mod_revision)
                        .put("counter", (n + 1).to_string()),
                )
                .await
                .unwrap();
            if res.succeeded {
                return attempts;
            }
            tokio::task::yield_now().await;
        }
    }))
    .await;
    assert!(attempts.iter().all(|a| *a >= 1));
    let kv = store.get("counter").await.unwrap().unwrap();
    assert_eq!(kv.value, TASKS.to_string().into_bytes(), "no lost update");
    assert_eq!(kv.version, TASKS as i64 + 1);
    assert_eq!(
        store.revision().await.unwrap(),
        start + TASKS as i64,
        "failed CAS must not write"
    );
}

/// Concurrent writers each get their own revision, and together the revisions are contiguous.
pub async fn concurrent_writers_get_distinct_revisions(store: &dyn Store) {
    const WRITERS: usize = 32;
    const EACH: usize = 10;
    let base = store.revision().await.unwrap();
    let results = join_all((0..WRITERS).map(|w| async move {
        let mut out = Vec::new();
        for i in 0..EACH {
            let key = format!("w/{w:02}/{i:02}");
            let rev = put(store, &key, "v").await;
            out.push((key, rev));
        }
        out
    }))
    .await;
    let mut revisions = Vec::new();
    for (key, rev) in results.into_iter().flatten() {
        assert_eq!(store.get(&key).await.unwrap().unwrap().mod_revision, rev);
        revisions.push(rev);
    }
    revisions.sort_unstable();
    let expected: Vec<i64> = (base + 1..=base + (WRITERS * EACH) as i64).collect();
    assert_eq!(revisions, expected);
}

/// A watch from a past revision replays the history after it, in order.
pub async fn watch_from_past_revision(store: &dyn Store) {
    let r1 = put(store, "h/a", "1").await;
    let r2 = put(store, "h/b", "1").await;
    let r3 = put(store, "h/a", "2").await;
    let r4 = delete(store, "h/b").await;

    let mut w = store.watch("h/", r1).await.unwrap();
    assert_eq!(put_of(&next_event(&mut w).await), ("h/b", &b"1"[..], r2));
    let e = next_event(&mut w).await;
    assert_eq!(put_of(&e), ("h/a", &b"2"[..], r3));
    if let WatchEvent::Put(kv) = &e {
        assert_eq!((kv.create_revision, kv.version), (r1, 2));
    }
    assert_eq!(
        next_event(&mut w).await,
        WatchEvent::Delete {
            key: "h/b".into(),
            mod_revision: r4
        }
    );

    // From 0: everything.
    let mut w = store.watch("h/", 0).await.unwrap();
    for rev in [r1, r2, r3, r4] {
        assert_eq!(next_event(&mut w).await.revision(), rev);
    }
    // History then a live event.
    let r5 = put(store, "h/c", "1").await;
    assert_eq!(put_of(&next_event(&mut w).await), ("h/c", &b"1"[..], r5));
}

/// A watch from the current revision sees later writes as they commit, all keys of one
/// transaction at the same revision.
pub async fn watch_live(store: &dyn Store) {
    put(store, "l/old", "x").await;
    let now = store.revision().await.unwrap();
    let mut w = store.watch("l/", now).await.unwrap();
    let r1 = put(store, "l/a", "1").await;
    assert_eq!(put_of(&next_event(&mut w).await), ("l/a", &b"1"[..], r1));
    let res = store
        .txn(Txn::new().put("l/b", "2").put("l/c", "3").delete("l/old"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = next_event(&mut w).await;
        assert_eq!(e.revision(), res.revision);
        seen.push(e.key().to_owned());
    }
    seen.sort();
    assert_eq!(seen, ["l/b", "l/c", "l/old"]);
    // Failed and empty transactions produce no events: the next event is the next write.
    store
        .txn(Txn::new().when("l/a", 0).put("l/a", "x"))
        .await
        .unwrap();
    store.txn(Txn::new().delete("l/missing")).await.unwrap();
    let r = put(store, "l/d", "4").await;
    assert_eq!(put_of(&next_event(&mut w).await), ("l/d", &b"4"[..], r));

    // A watch from a revision not reached yet starts after it.
    let mut w = store.watch("l/", r + 1).await.unwrap();
    put(store, "l/e", "skipped").await;
    let r = put(store, "l/f", "seen").await;
    assert_eq!(put_of(&next_event(&mut w).await), ("l/f", &b"seen"[..], r));
}

/// A watch sees only keys under its prefix, in history and live.
pub async fn watch_prefix_filter(store: &dyn Store) {
    put(store, "f/1", "in").await;
    put(store, "f", "out").await;
    put(store, "f0", "out").await;
    put(store, "g/1", "out").await;
    let mut w = store.watch("f/", 0).await.unwrap();
    assert_eq!(next_event(&mut w).await.key(), "f/1");
    put(store, "e", "out").await;
    store
        .txn(
            Txn::new()
                .put("g/2", "out")
                .put("f/2", "in")
                .put("f1", "out"),
        )
        .await
        .unwrap();
    assert_eq!(next_event(&mut w).await.key(), "f/2");
    put(store, "f/", "in").await;
    assert_eq!(next_event(&mut w).await.key(), "f/");
    // The empty prefix sees everything, a transaction's keys in op order.
    let mut all = store.watch("", 0).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..9 {
        seen.push(next_event(&mut all).await.key().to_owned());
    }
    assert_eq!(
        seen,
        ["f/1", "f", "f0", "g/1", "e", "g/2", "f/2", "f1", "f/"]
    );
}

/// Deletes show up as delete events; deleting a missing key shows nothing.
pub async fn watch_deletes(store: &dyn Store) {
    let mut w = store.watch("d/", 0).await.unwrap();
    put(store, "d/a", "1").await;
    delete(store, "d/missing").await;
    let rd = delete(store, "d/a").await;
    assert_eq!(next_event(&mut w).await.key(), "d/a");
    assert_eq!(
        next_event(&mut w).await,
        WatchEvent::Delete {
            key: "d/a".into(),
            mod_revision: rd
        }
    );
    // Re-created: version 1 again, history starts over.
    let rc = put(store, "d/a", "2").await;
    let e = next_event(&mut w).await;
    match e {
        WatchEvent::Put(kv) => assert_eq!((kv.create_revision, kv.version), (rc, 1)),
        other => panic!("expected a put, got {other:?}"),
    }
}

/// A watch opened while writes are in flight switches from history to live without missing or
/// repeating a revision.
pub async fn watch_history_then_live_without_gaps(store: &dyn Store) {
    const TOTAL: i64 = 300;
    let base = store.revision().await.unwrap();
    let writer = async {
        for i in 0..TOTAL {
            // Every third write is outside the watched prefix.
            let prefix = if i % 3 == 2 { "other" } else { "s" };
            put(store, &format!("{prefix}/{i:04}"), "v").await;
            if i % 10 == 0 {
                tokio::task::yield_now().await;
            }
        }
    };
    let watcher = async {
        while store.revision().await.unwrap() < base + TOTAL / 3 {
            tokio::task::yield_now().await;
        }
        let mut w = store.watch("s/", 0).await.unwrap();
        let mut seen = Vec::new();
        while (seen.len() as i64) < TOTAL - TOTAL / 3 {
            seen.push(next_event(&mut w).await);
        }
        (w, seen)
    };
    let ((), (mut w, seen)) = futures::join!(writer, watcher);
    let expected: Vec<i64> = (1..=TOTAL)
        .filter(|r| (r - 1) % 3 != 2)
        .map(|r| base + r)
        .collect();
    let got: Vec<i64> = seen.iter().map(|e| e.revision()).collect();
    assert_eq!(got, expected);
    for e in &seen {
        assert_eq!(e.key(), format!("s/{:04}", e.revision() - base - 1));
    }
    let r = put(store, "s/last", "v").await;
    assert_eq!(next_event(&mut w).await.revision(), r);
}

/// Watching from a compacted revision fails with `Compacted`; from the compaction point on it
/// works, and compaction never touches current keys.
pub async fn watch_compacted_revision_fails(store: &dyn Store) {
    let mut revs = Vec::new();
    for i in 0..5 {
        revs.push(put(store, "c/k", &i.to_string()).await);
    }
    put(store, "c/other", "x").await;
    let at = revs[2];
    store.compact(at).await.unwrap();

    match store.watch("c/", at - 1).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            assert_eq!(requested, at - 1);
            assert_eq!(oldest, at);
        }
        Err(e) => panic!("expected Compacted, got {e}"),
        Ok(_) => panic!("expected Compacted, got a stream"),
    }
    assert!(matches!(
        store.watch("", 0).await,
        Err(StoreError::Compacted { .. })
    ));

    let mut w = store.watch("c/", at).await.unwrap();
    assert_eq!(next_event(&mut w).await.revision(), revs[3]);
    assert_eq!(next_event(&mut w).await.revision(), revs[4]);
    assert_eq!(next_event(&mut w).await.key(), "c/other");

    assert_eq!(value(store, "c/k").await.as_deref(), Some("4"));
    assert_eq!(
        keys(store, RangeRequest::prefix("c/")).await.0,
        ["c/k", "c/other"]
    );
    let r = put(store, "c/k", "5").await;
    assert_eq!(next_event(&mut w).await.revision(), r);
}
