//! The conformance suite and the etcd backend's own behaviour (revisions, folded ops, paged
//! ranges, watches across an etcd restart and a compaction, leader election) against a real
//! etcd server that each test starts on free ports (`LocalEtcd`). Without an `etcd` binary
//! these tests fail and say how to install one.
#![cfg(feature = "etcd")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_store::conformance::Fixture;
use berth_store::etcd::EtcdStore;
use berth_store::etcd::local::LocalEtcd;
use berth_store::{Election, RangeRequest, Store, StoreError, Txn, WatchEvent};
use futures::StreamExt;
use futures::stream::BoxStream;

fn etcd() -> LocalEtcd {
    LocalEtcd::start().unwrap_or_else(|e| panic!("{e}"))
}

async fn connect(etcd: &LocalEtcd) -> EtcdStore {
    EtcdStore::connect(&[etcd.endpoint()])
        .await
        .expect("connect to etcd")
}

async fn fresh() -> Fixture {
    let etcd = etcd();
    let store = connect(&etcd).await;
    Fixture::with_guard(store, etcd)
}

berth_store::conformance_tests!(fresh);

async fn next(w: &mut BoxStream<'static, berth_store::Result<WatchEvent>>) -> WatchEvent {
    match tokio::time::timeout(Duration::from_secs(20), w.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within 20 s"),
    }
}

#[tokio::test]
async fn revisions_are_etcds_own() {
    let etcd = etcd();
    let store = connect(&etcd).await;
    assert_eq!(
        store.revision().await.unwrap(),
        1,
        "a fresh etcd is at revision 1"
    );
    let r = store.txn(Txn::new().put("/a", "1")).await.unwrap();
    assert_eq!(r.revision, 2);
    let kv = store.get("/a").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 2, 1));
    // Another client's write moves the same revision: they are etcd's, not the backend's.
    let other = connect(&etcd).await;
    assert_eq!(
        other.txn(Txn::new().put("/b", "1")).await.unwrap().revision,
        3
    );
    assert_eq!(store.revision().await.unwrap(), 3);
}

#[tokio::test]
async fn ops_on_one_key_in_one_txn_fold_into_the_last() {
    let etcd = etcd();
    let store = connect(&etcd).await;
    store.txn(Txn::new().put("k/a", "0")).await.unwrap();
    let base = store.revision().await.unwrap();
    let mut w = store.watch("k/", base).await.unwrap();
    // etcd itself refuses a transaction that names a key twice.
    let res = store
        .txn(
            Txn::new()
                .put("k/a", "1")
                .put("k/b", "x")
                .put("k/a", "2")
                .delete("k/b"),
        )
        .await
        .unwrap();
    assert!(res.succeeded);
    assert_eq!(res.revision, base + 1);
    let a = store.get("k/a").await.unwrap().unwrap();
    assert_eq!((a.value.as_slice(), a.version), (&b"2"[..], 2));
    assert_eq!(store.get("k/b").await.unwrap(), None);
    // One event for the key that changed, with its final value; none for the key created and
    // deleted in the same transaction (it never existed outside it).
    match next(&mut w).await {
        WatchEvent::Put(kv) => {
            assert_eq!((kv.key.as_str(), kv.value.as_slice()), ("k/a", &b"2"[..]))
        }
        other => panic!("expected the put of k/a, got {other:?}"),
    }
    store.txn(Txn::new().put("k/c", "1")).await.unwrap();
    assert_eq!(next(&mut w).await.key(), "k/c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_range_is_paged_at_one_revision() {
    const KEYS: usize = 1_234;
    let etcd = etcd();
    let store = Arc::new(connect(&etcd).await);
    for chunk in 0..KEYS.div_ceil(500) {
        let mut txn = Txn::new();
        for i in chunk * 500..((chunk + 1) * 500).min(KEYS) {
            txn = txn.put(format!("r/{i:05}"), vec![b'v'; 256]);
        }
        store.txn(txn).await.unwrap();
    }
    // Keep rewriting keys while ranging: every page must still be read at the first one's
    // revision, so no key is newer than the result's revision.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let key = format!("r/{:05}", (i * 7) % KEYS);
                store.txn(Txn::new().put(key, "changed")).await.unwrap();
            }
        })
    };
    for _ in 0..5 {
        let all = store.range(RangeRequest::prefix("r/")).await.unwrap();
        assert_eq!(all.kvs.len(), KEYS);
        assert!(!all.more);
        assert!(all.kvs.windows(2).all(|w| w[0].key < w[1].key));
        assert!(all.kvs.iter().all(|kv| kv.mod_revision <= all.revision));
    }
    writer.await.unwrap();
    let limited = store
        .range(RangeRequest {
            prefix: "r/".into(),
            after: Some("r/00100".into()),
            limit: 700,
        })
        .await
        .unwrap();
    assert_eq!(limited.kvs.len(), 700);
    assert!(limited.more);
    assert_eq!(limited.kvs[0].key, "r/00101");
    assert_eq!(limited.kvs[699].key, "r/00800");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_after_etcd_restarts() {
    let mut etcd = etcd();
    let store = connect(&etcd).await;
    let base = store.revision().await.unwrap();
    let mut w = store.watch("w/", base).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..3 {
        expected.push(
            store
                .txn(Txn::new().put(format!("w/{i}"), "before"))
                .await
                .unwrap()
                .revision,
        );
    }
    for rev in &expected[..2] {
        assert_eq!(next(&mut w).await.revision(), *rev);
    }
    // Killed with one event still on its way, restarted on the same data and ports.
    etcd.kill();
    etcd.restart().unwrap();
    let writer = connect(&etcd).await;
    for i in 3..6 {
        expected.push(
            writer
                .txn(Txn::new().put(format!("w/{i}"), "after"))
                .await
                .unwrap()
                .revision,
        );
    }
    for rev in &expected[2..] {
        assert_eq!(next(&mut w).await.revision(), *rev, "no gap, no repeat");
    }
    let r = writer.txn(Txn::new().put("w/live", "x")).await.unwrap();
    assert_eq!(next(&mut w).await.revision(), r.revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_cannot_resume_says_its_history_was_compacted() {
    let mut etcd = etcd();
    let store = connect(&etcd).await;
    let base = store.revision().await.unwrap();
    let mut w = store.watch("c/", base).await.unwrap();
    let first = store.txn(Txn::new().put("c/1", "x")).await.unwrap();
    assert_eq!(next(&mut w).await.revision(), first.revision);
    etcd.kill();
    etcd.restart().unwrap();
    // While the watch is away, more history is written and compacted.
    let writer = connect(&etcd).await;
    let mut last = 0;
    for i in 2..5 {
        last = writer
            .txn(Txn::new().put(format!("c/{i}"), "x"))
            .await
            .unwrap()
            .revision;
    }
    writer.compact(last).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), w.next())
        .await
        .expect("the watch answers");
    match outcome {
        Some(Err(StoreError::Compacted { requested, oldest })) => {
            assert_eq!(requested, first.revision);
            assert_eq!(oldest, last);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(w.next().await.is_none(), "the stream ends after the error");
    // Compacting again at or below the compacted revision changes nothing; beyond the
    // current revision is an error.
    writer.compact(last - 1).await.unwrap();
    assert!(writer.compact(last + 100).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_a_resignation_hands_over_at_once() {
    let etcd = etcd();
    let a = connect(&etcd)
        .await
        .election("test/leader", Duration::from_secs(3));
    let b = connect(&etcd)
        .await
        .election("test/leader", Duration::from_secs(3));
    let first = a.campaign("server a").await.unwrap();
    assert!(first.is_held());
    let second = tokio::spawn(async move { b.campaign("server b").await });
    // Several lease renewals pass: a keeps leading, b keeps waiting.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(first.is_held());
    assert!(!second.is_finished(), "b must not lead while a does");
    let store = connect(&etcd).await;
    let key = store.get("test/leader").await.unwrap().unwrap();
    assert_eq!(key.value, b"server a");
    let resigned = Instant::now();
    first.resign().await;
    let mut term = tokio::time::timeout(Duration::from_secs(2), second)
        .await
        .expect("b leads right after a resigned")
        .unwrap()
        .unwrap();
    assert!(resigned.elapsed() < Duration::from_secs(2));
    assert!(term.is_held());
    let key = store.get("test/leader").await.unwrap().unwrap();
    assert_eq!(key.value, b"server b");
    // Deleting the key behind the leader's back ends its term within a renewal period.
    store.txn(Txn::new().delete("test/leader")).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(3), term.lost())
        .await
        .expect("the term ends");
    assert!(reason.contains("key"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_etcd_stops_within_the_ttl() {
    let mut etcd = etcd();
    let ttl = Duration::from_secs(3);
    let election = connect(&etcd).await.election("test/leader", ttl);
    let mut term = election.campaign("server a").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(term.is_held(), "renewals keep the term");
    let cut = Instant::now();
    etcd.kill();
    let reason = tokio::time::timeout(ttl + Duration::from_secs(1), term.lost())
        .await
        .expect("the term ends within the lease's TTL");
    assert!(
        cut.elapsed() <= ttl,
        "it ended {:?} after the cut",
        cut.elapsed()
    );
    assert!(reason.contains("lease"), "{reason}");
    // etcd comes back: the lease the old term held has expired meanwhile at the latest, and
    // a campaign wins again.
    etcd.restart().unwrap();
    let again = tokio::time::timeout(Duration::from_secs(30), election.campaign("server a"))
        .await
        .expect("a new term")
        .unwrap();
    assert!(again.is_held());
}
