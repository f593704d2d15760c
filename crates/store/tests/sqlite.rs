//! The conformance suite and a few measurements against `SqliteStore`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_store::conformance::Fixture;
use berth_store::sqlite::SqliteStore;
use berth_store::{RangeRequest, Store, Txn};

async fn fresh() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("store.db")).expect("open store");
    Fixture::with_guard(store, dir)
}

berth_store::conformance_tests!(fresh);

#[tokio::test]
async fn a_fresh_sqlite_store_is_at_revision_zero() {
    let fixture = fresh().await;
    let store = fixture.store();
    assert_eq!(store.revision().await.unwrap(), 0);
    let r = store.txn(Txn::new().put("a", "1")).await.unwrap();
    assert_eq!(r.revision, 1);
}

#[tokio::test]
async fn run_all_passes() {
    berth_store::conformance::run_all(fresh).await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// 64 concurrent writers doing create-if-absent puts of ~1 KiB values. Prints throughput and
/// latency; asserts only correctness (run with `--nocapture` to see the numbers).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn measure_64_concurrent_writers() {
    const WRITERS: usize = 64;
    const EACH: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    let value = vec![b'x'; 1024];
    let start = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let value = value.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(EACH);
                for i in 0..EACH {
                    let key = format!("tasks/{w:03}/{i:05}");
                    let t = Instant::now();
                    let res = store
                        .txn(Txn::new().when(key.clone(), 0).put(key, value.clone()))
                        .await;
                    latencies.push(t.elapsed());
                    assert!(res.unwrap().succeeded);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let n = latencies.len();
    assert_eq!(store.revision().await.unwrap(), n as i64);
    println!(
        "sqlite store, {WRITERS} concurrent writers: {n} txns in {elapsed:?} = {:.0} txn/s; \
         latency p50 {:?} p99 {:?} max {:?}",
        n as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[n - 1],
    );
}

/// 100,000 records: paging a prefix with limit and continuation stays fast. Prints timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_range_over_100k_records() {
    const RECORDS: usize = 100_000;
    const PER_TXN: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let value = vec![b'v'; 512];
    let t = Instant::now();
    for chunk in 0..RECORDS / PER_TXN {
        let mut txn = Txn::new();
        for i in chunk * PER_TXN..(chunk + 1) * PER_TXN {
            // Two clusters so that a prefix selects half the keys.
            txn = txn.put(format!("tasks/c{}/{i:06}", i % 2), value.clone());
        }
        store.txn(txn).await.unwrap();
    }
    let load = t.elapsed();

    let t = Instant::now();
    let mut after = Some("tasks/c1/050001".to_owned());
    let mut pages = 0;
    for _ in 0..100 {
        let req = RangeRequest {
            prefix: "tasks/c1/".into(),
            after: after.clone(),
            limit: 100,
        };
        let res = store.range(req).await.unwrap();
        assert_eq!(res.kvs.len(), 100);
        assert!(res.more);
        after = res.kvs.last().map(|kv| kv.key.clone());
        pages += 1;
    }
    let paging = t.elapsed() / pages;

    let t = Instant::now();
    for i in 0..1000 {
        let key = format!("tasks/c{}/{:06}", i % 2, i * 97);
        assert!(store.get(&key).await.unwrap().is_some());
    }
    let get = t.elapsed() / 1000;

    let t = Instant::now();
    let all = store
        .range(RangeRequest::prefix("tasks/c0/"))
        .await
        .unwrap();
    assert_eq!(all.kvs.len(), RECORDS / 2);
    let full = t.elapsed();
    println!(
        "sqlite store, {RECORDS} records: load {load:?}; range page of 100 with continuation \
         {paging:?}; get {get:?}; full prefix range of {} keys {full:?}",
        all.kvs.len()
    );
}
