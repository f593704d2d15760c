//! Crash safety: every transaction acknowledged before a SIGKILL is there after reopening.
//!
//! The test re-executes its own test binary (libtest's `--exact` filter selects this test again)
//! with `BERTH_STORE_CRASH_CHILD` set. The child opens the store and writes one new key per
//! transaction from many concurrent tasks, printing `ACK <key> <revision>` only after `txn`
//! returned `Ok`. The parent kills it mid-stream, reopens the store and checks. This works the
//! same under `cargo test` and `cargo nextest run`, which both run the libtest binary.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use berth_store::sqlite::SqliteStore;
use berth_store::{RangeRequest, Store, Txn, WatchEvent};
use futures::StreamExt;

const CHILD_ENV: &str = "BERTH_STORE_CRASH_CHILD";
const TEST_NAME: &str = "acknowledged_writes_survive_sigkill";
const ROUNDS: usize = 3;
const KILL_AFTER_ACKS: usize = 300;
const WRITERS: usize = 16;

fn value_for(key: &str) -> Vec<u8> {
    format!("value of {key}").into_bytes()
}

/// The child: write until killed.
fn child(dir: &Path, round: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    rt.unwrap().block_on(async {
        let store = std::sync::Arc::new(SqliteStore::open(&dir.join("store.db")).unwrap());
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = store.clone();
                let round = round.to_owned();
                tokio::spawn(async move {
                    for i in 0.. {
                        let key = format!("crash/{round}/{w:02}/{i:06}");
                        let txn = Txn::new()
                            .when(key.clone(), 0)
                            .put(key.clone(), value_for(&key));
                        let res = store.txn(txn).await.expect("txn");
                        assert!(res.succeeded);
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {key} {}", res.revision).unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var("BERTH_STORE_CRASH_ROUND").unwrap_or_default();
        child(Path::new(&dir), &round);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // Every round reuses the same database: recovery after several crashes in a row.
    let mut acked: BTreeMap<String, i64> = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("BERTH_STORE_CRASH_ROUND", round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut acks_this_round = 0;
        let mut killed = false;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            // A line cut short by the kill was not an acknowledgement.
            let Some(rest) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ACK ")) else {
                continue;
            };
            let (key, rev) = rest.split_once(' ').unwrap();
            acked.insert(key.to_owned(), rev.parse().unwrap());
            acks_this_round += 1;
            if acks_this_round == KILL_AFTER_ACKS && !killed {
                child.kill().unwrap(); // SIGKILL on unix
                killed = true;
            }
        }
        let status = child.wait().unwrap();
        assert!(killed, "the child exited on its own: {status}");
        assert!(!status.success());
        verify(dir.path(), &acked, round);
    }
}

/// Reopen the store and check every acknowledged key and the revision bookkeeping.
fn verify(dir: &Path, acked: &BTreeMap<String, i64>, round: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&dir.join("store.db")).unwrap();
        let revision = store.revision().await.unwrap();
        for (key, rev) in acked {
            let kv = store
                .get(key)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("lost {key}"));
            assert_eq!(kv.value, value_for(key), "{key}");
            assert_eq!(kv.mod_revision, *rev, "{key}");
            assert_eq!(kv.version, 1, "{key}");
        }
        // Every committed transaction wrote exactly one new key, so the keys' revisions are
        // exactly 1..=revision: nothing half-written, no revision skipped or reused.
        let all = store.range(RangeRequest::prefix("crash/")).await.unwrap();
        assert_eq!(all.revision, revision);
        let mut revs: Vec<i64> = all.kvs.iter().map(|kv| kv.mod_revision).collect();
        revs.sort_unstable();
        assert_eq!(revs, (1..=revision).collect::<Vec<_>>());
        assert!(all.kvs.len() >= acked.len());
        // The history agrees with the keys.
        let mut w = store.watch("", 0).await.unwrap();
        for expect in 1..=revision {
            match w.next().await.unwrap().unwrap() {
                WatchEvent::Put(kv) => {
                    assert_eq!(kv.mod_revision, expect);
                    assert_eq!(kv.value, value_for(&kv.key));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // The store still takes writes, at the next revision (a `crash/` key written once,
        // so the next round's checks still hold).
        let key = format!("crash/after/{round}");
        let res = store
            .txn(Txn::new().put(key.clone(), value_for(&key)))
            .await
            .unwrap();
        assert_eq!(res.revision, revision + 1);
        println!(
            "round {round}: {} keys acknowledged in total, {} present, revision {revision}",
            acked.len(),
            all.kvs.len()
        );
    });
}
