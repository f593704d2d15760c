//! SQLite backend: one database file, one writer thread with group commit, a pool of readers.
//!
//! # Layout
//!
//! * `kv`: the current keys (`key` BLOB primary key, holding the key's UTF-8 bytes so that SQLite
//!   compares them bytewise), their value and `create_revision`, `mod_revision`, `version`.
//! * `log`: one row per changed key per revision (`revision`, `seq`, key, value or NULL for a
//!   deletion); watches read their history from it and [`Store::compact`] trims it.
//! * `meta`: a single row with the current and the compacted revision.
//!
//! # Durability
//!
//! WAL journal with `synchronous=FULL`: SQLite syncs the WAL on every commit, so a transaction
//! whose [`Store::txn`] returned `Ok` survives a process crash and a power loss. The directory
//! holding the database is synced once when the store is opened. The writer does not
//! checkpoint (`wal_autocheckpoint=0`); a separate thread with its own connection runs passive
//! checkpoints after roughly every thousand WAL pages, so commits never wait for one.
//!
//! # Writes: group commit
//!
//! Every [`Store::txn`] and [`Store::compact`] is sent over a channel to one dedicated writer
//! thread. The writer takes everything queued (up to [`MAX_BATCH`] commands), opens one SQLite
//! transaction, and evaluates the commands in order: each transaction's compares see the state
//! left by the earlier transactions of the same batch, and each transaction that changes
//! something gets its own, consecutive revision. The batch commits once (one fsync for the whole
//! batch); then the writer publishes the batch's watch events and answers every caller. If SQLite
//! fails, the whole batch rolls back and every caller in it gets [`StoreError::Backend`].
//!
//! A caller that stops waiting for its `txn` (drops the future) does not cancel it: the
//! transaction may still commit.
//!
//! # Transaction semantics
//!
//! * The revision grows by one for each committed transaction that changes at least one key (a
//!   put, or a delete of an existing key). A transaction whose compares fail, a transaction with
//!   no ops, and one whose only ops delete missing keys write nothing and keep the revision (this
//!   matches etcd).
//! * A key written several times in one transaction ends with the last op's outcome; its
//!   `version` grows by one per transaction, not per op, and watchers see one event for it with
//!   its final state. A delete followed by a put of the same key in one transaction re-creates it
//!   (`create_revision` is the transaction's revision and `version` is 1).
//!
//! # Reads
//!
//! [`Store::get`], [`Store::range`] and watch history run on the blocking thread pool with
//! connections from a small pool of query-only connections, concurrently with the writer (WAL
//! readers never block on it). A range reads the keys and the revision in one read transaction,
//! so `RangeResult::revision` is exactly the state it saw.
//!
//! # Watches
//!
//! A watch subscribes to the live event broadcast first, then reads history from `log` up to the
//! revision committed at that moment, then yields live events with greater revisions: no gap
//! and no duplicate across the switch-over. A watcher that falls behind the broadcast buffer
//! does not lose events: it re-reads the missed revisions from `log` and resumes live. If the
//! history it needs was compacted meanwhile, the stream yields [`StoreError::Compacted`] and
//! ends. When the store is dropped, open streams yield [`StoreError::Closed`] and end.
//!
//! # Compaction
//!
//! [`Store::compact`] records the compacted revision (durably, before it returns) and removes the
//! log rows at or below it in small chunks while the writer is otherwise idle, so a large
//! compaction does not stall writes. Compacting to a revision at or below the current compacted
//! one is a no-op; compacting beyond the current revision is an error. Nothing compacts on its
//! own: the owner of the store decides how much history to keep.
//!
//! One process owns a database file at a time; opening the same file from two stores at once is
//! not supported.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{broadcast, oneshot};

use crate::{
    Compare, KeyValue, Op, RangeRequest, RangeResult, Result, Store, StoreError, Txn, TxnResult,
    WatchEvent,
};

/// The most commands the writer folds into one SQLite transaction.
pub const MAX_BATCH: usize = 1024;

/// Committed batches kept for live watchers before a slow one must re-read the log.
const WATCH_BUFFER: usize = 1024;
/// Idle read connections kept open.
const READ_POOL_IDLE: usize = 8;
/// Log rows read per history page.
const HISTORY_PAGE: i64 = 512;
/// Log rows one background purge step removes at most: a revision may hold thousands (one
/// batch of many requests), so a step is bounded by rows, to stay short beside the writes.
const PURGE_ROWS: i64 = 2048;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    key BLOB NOT NULL PRIMARY KEY,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    key BLOB NOT NULL,
    value BLOB,
    create_revision INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (revision, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    compacted INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, revision, compacted) VALUES (1, 0, 0);
PRAGMA user_version = 1;
";
/// The schema `SCHEMA` creates, recorded in SQLite's `user_version`.
const SCHEMA_VERSION: i64 = 1;

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The [`Store`] on an SQLite database file; see the [module docs](self) for the design.
pub struct SqliteStore {
    writer: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// Kept only to subscribe new watches; the writer thread holds the other sender, so
    /// streams see the channel close once the store is dropped.
    events: broadcast::Sender<Arc<Batch>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("revision", &self.shared.revision.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

/// What readers and watch streams share with the store.
struct Shared {
    path: PathBuf,
    /// The latest committed revision; stored after a batch commits and before its events are
    /// published.
    revision: AtomicI64,
    idle: Mutex<Vec<Connection>>,
}

/// One committed batch's events, in revision order.
struct Batch {
    /// The revision after the batch.
    revision: i64,
    events: Vec<WatchEvent>,
}

enum Command {
    Txn(Txn, oneshot::Sender<Result<TxnResult>>),
    Compact(i64, oneshot::Sender<Result<()>>),
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path` and start the writer thread.
    /// The parent directory must exist.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with_buffer(path, WATCH_BUFFER)
    }

    fn open_with_buffer(path: &Path, watch_buffer: usize) -> Result<SqliteStore> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| backend(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(backend(format!(
                "cannot enable the wal journal (got {mode})"
            )));
        }
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA cache_size=-16384; \
             PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;",
        )
        .map_err(backend)?;
        let schema: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend)?;
        if schema > SCHEMA_VERSION {
            return Err(backend(format!(
                "{} has store schema version {schema}; this build knows up to {SCHEMA_VERSION}",
                path.display()
            )));
        }
        conn.execute_batch(SCHEMA).map_err(backend)?;
        let (revision, compacted) = read_meta(&conn).map_err(backend)?;
        sync_parent_dir(path)?;

        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            revision: AtomicI64::new(revision),
            idle: Mutex::new(Vec::new()),
        });
        let (events, _) = broadcast::channel(watch_buffer.max(1));
        let (tx, rx) = mpsc::channel();
        let checkpointer = Checkpointer::start(path)?;
        let mut writer = Writer {
            conn,
            shared: shared.clone(),
            events: events.clone(),
            purge_pending: compacted > 0,
            checkpointer: Some(checkpointer),
            unchecked_pages: 0,
        };
        let thread = std::thread::Builder::new()
            .name("berth-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| backend(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            writer: Some(tx),
            thread: Some(thread),
            shared,
            events,
        })
    }

    /// The database file this store uses.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    fn send(&self, cmd: Command) -> Result<()> {
        self.writer
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(cmd)
            .map_err(|_| StoreError::Closed)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel stops the writer after it has finished (and answered) every
        // command already queued; waiting for it lets the same file be reopened right away.
        drop(self.writer.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn sync_parent_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| backend(format!("cannot sync directory {}: {e}", dir.display())))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn read_meta(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.prepare_cached("SELECT revision, compacted FROM meta WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
}

/// The smallest byte string greater than every string starting with `prefix` (None: no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn key_string(bytes: Vec<u8>) -> rusqlite::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

fn row_to_kv(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_string(r.get(0)?)?,
        value: r.get(1)?,
        create_revision: r.get(2)?,
        mod_revision: r.get(3)?,
        version: r.get(4)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Reads

impl Shared {
    fn open_reader(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch("PRAGMA query_only=1; PRAGMA cache_size=-8192;")?;
        Ok(conn)
    }

    /// Run `f` with a pooled read connection on the blocking thread pool.
    async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = shared.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut conn = match pooled {
                Some(c) => c,
                None => shared.open_reader().map_err(backend)?,
            };
            let out = f(&mut conn);
            // A connection left inside a transaction (a panic cannot get here, an error can)
            // is not reused.
            if conn.is_autocommit() {
                let mut idle = shared.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < READ_POOL_IDLE {
                    idle.push(conn);
                }
            }
            out
        })
        .await
        .map_err(|e| backend(format!("read task failed: {e}")))?
    }
}

fn get_kv(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    conn.prepare_cached(
        "SELECT key, value, create_revision, mod_revision, version FROM kv WHERE key = ?1",
    )?
    .query_row([key.as_bytes()], row_to_kv)
    .optional()
}

fn range_kv(conn: &mut Connection, req: &RangeRequest) -> rusqlite::Result<RangeResult> {
    let tx = conn.transaction()?;
    let (revision, _) = read_meta(&tx)?;
    // Lower bound: the prefix itself, or the continuation key when it is past the prefix.
    let (lower_op, lower): (&str, &[u8]) = match &req.after {
        Some(after) if after.as_str() >= req.prefix.as_str() => (">", after.as_bytes()),
        _ => (">=", req.prefix.as_bytes()),
    };
    let upper = prefix_end(req.prefix.as_bytes());
    let limit: i64 = if req.limit == 0 {
        -1
    } else {
        req.limit.saturating_add(1) as i64
    };
    let sql = format!(
        "SELECT key, value, create_revision, mod_revision, version FROM kv \
         WHERE key {lower_op} ?1 {} ORDER BY key LIMIT ?3",
        if upper.is_some() {
            "AND key < ?2"
        } else {
            "AND ?2 IS NULL"
        },
    );
    let mut kvs = {
        let mut stmt = tx.prepare_cached(&sql)?;
        stmt.query_map(params![lower, upper, limit], row_to_kv)?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.finish()?;
    let more = req.limit != 0 && kvs.len() > req.limit;
    kvs.truncate(if req.limit == 0 { kvs.len() } else { req.limit });
    Ok(RangeResult {
        kvs,
        more,
        revision,
    })
}

/// One page of history: log rows after `(rev, seq)` up to revision `upto`, under the prefix.
/// Fails with `Compacted` when the history after `after_revision` is gone.
fn history_page(
    conn: &mut Connection,
    lower: &[u8],
    upper: Option<&[u8]>,
    after_revision: i64,
    cursor: (i64, i64),
    upto: i64,
) -> Result<Vec<(i64, i64, WatchEvent)>> {
    let tx = conn.transaction().map_err(backend)?;
    let (_, compacted) = read_meta(&tx).map_err(backend)?;
    if after_revision < compacted {
        return Err(StoreError::Compacted {
            requested: after_revision,
            oldest: compacted,
        });
    }
    let mut stmt = tx
        .prepare_cached(
            "SELECT revision, seq, key, value, create_revision, version FROM log \
             WHERE (revision, seq) > (?1, ?2) AND revision <= ?3 \
             AND key >= ?4 AND (?5 IS NULL OR key < ?5) \
             ORDER BY revision, seq LIMIT ?6",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            params![cursor.0, cursor.1, upto, lower, upper, HISTORY_PAGE],
            |r| {
                let revision: i64 = r.get(0)?;
                let seq: i64 = r.get(1)?;
                let key = key_string(r.get(2)?)?;
                let value: Option<Vec<u8>> = r.get(3)?;
                let event = match value {
                    Some(value) => WatchEvent::Put(KeyValue {
                        key,
                        value,
                        create_revision: r.get(4)?,
                        mod_revision: revision,
                        version: r.get(5)?,
                    }),
                    None => WatchEvent::Delete {
                        key,
                        mod_revision: revision,
                    },
                };
                Ok((revision, seq, event))
            },
        )
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// The writer thread

struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    events: broadcast::Sender<Arc<Batch>>,
    /// Log rows at or below the compacted revision may remain.
    purge_pending: bool,
    checkpointer: Option<Checkpointer>,
    /// A rough count of WAL pages written since the checkpointer was last woken.
    unchecked_pages: usize,
}

/// Copies the WAL into the database file on its own thread and connection, so the writer's
/// commits never pay for a checkpoint (the writer runs with `wal_autocheckpoint=0`).
struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;")
            .map_err(backend)?;
        let (wake, rx) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("berth-store-checkpoint".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // PASSIVE never blocks the writer or readers; frames it cannot copy yet
                    // (still needed by a reader) are copied on a later wake-up.
                    let res: rusqlite::Result<(i64, i64, i64)> =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        });
                    match res {
                        Ok((_, log, done)) => tracing::trace!(log, done, "store checkpoint"),
                        Err(e) => tracing::warn!(error = %e, "store checkpoint failed"),
                    }
                }
            })
            .map_err(|e| backend(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { wake, thread })
    }
}

/// Wake the checkpointer after roughly this many WAL pages (SQLite's own default threshold).
const CHECKPOINT_PAGES: usize = 1000;

/// A command's answer channel, kept apart from its work while the batch applies.
enum Reply {
    Txn(oneshot::Sender<Result<TxnResult>>),
    Compact(oneshot::Sender<Result<()>>),
}

/// A command's work.
enum Work {
    Txn(Txn),
    Compact(i64),
}

/// A command's answer, sent once the batch has committed.
enum Answer {
    Txn(TxnResult),
    Compact(Result<()>),
}

/// A key's state while a transaction's ops apply.
#[derive(Clone)]
struct Entry {
    value: Vec<u8>,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Command>) {
        loop {
            let first = if self.purge_pending {
                match rx.try_recv() {
                    Ok(cmd) => cmd,
                    Err(mpsc::TryRecvError::Empty) => {
                        self.purge_step();
                        continue;
                    }
                    Err(mpsc::TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        if let Some(Checkpointer { wake, thread }) = self.checkpointer.take() {
            drop(wake);
            let _ = thread.join();
        }
    }

    /// Count the pages a committed batch roughly added to the WAL; wake the checkpointer when
    /// enough have piled up.
    fn note_written(&mut self, events: &[WatchEvent]) {
        let bytes: usize = events
            .iter()
            .map(|e| match e {
                WatchEvent::Put(kv) => kv.key.len() + kv.value.len(),
                WatchEvent::Delete { key, .. } => key.len(),
            })
            .sum();
        // Each change touches a page of `kv`, its key index and `log`, and the values are
        // written twice; plus the meta page.
        self.unchecked_pages += 1 + 3 * events.len() + 2 * bytes / 4096;
        if self.unchecked_pages >= CHECKPOINT_PAGES {
            self.unchecked_pages = 0;
            if let Some(c) = &self.checkpointer {
                // Full: a wake-up is already pending, which covers this one.
                let _ = c.wake.try_send(());
            }
        }
    }

    fn commit_batch(&mut self, batch: Vec<Command>) {
        let (work, replies): (Vec<Work>, Vec<Reply>) = batch
            .into_iter()
            .map(|cmd| match cmd {
                Command::Txn(txn, reply) => (Work::Txn(txn), Reply::Txn(reply)),
                Command::Compact(rev, reply) => (Work::Compact(rev), Reply::Compact(reply)),
            })
            .unzip();
        let mut events = Vec::new();
        match self.apply_batch(&work, &mut events) {
            Ok((revision, answers)) => {
                self.shared.revision.store(revision, Ordering::Release);
                self.note_written(&events);
                if !events.is_empty() {
                    // Having no receivers is fine: nobody watches.
                    let _ = self.events.send(Arc::new(Batch { revision, events }));
                }
                for (reply, answer) in replies.into_iter().zip(answers) {
                    match (reply, answer) {
                        (Reply::Txn(reply), Answer::Txn(res)) => {
                            let _ = reply.send(Ok(res));
                        }
                        (Reply::Compact(reply), Answer::Compact(res)) => {
                            let _ = reply.send(res);
                        }
                        _ => unreachable!("answers follow the commands"),
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, commands = replies.len(), "store batch failed");
                for reply in replies {
                    match reply {
                        Reply::Txn(reply) => {
                            let _ = reply.send(Err(backend(&e)));
                        }
                        Reply::Compact(reply) => {
                            let _ = reply.send(Err(backend(&e)));
                        }
                    }
                }
            }
        }
    }

    /// Apply every command in one SQLite transaction and commit it. Returns the revision after
    /// the batch and one answer per command; on error nothing was committed.
    fn apply_batch(
        &mut self,
        work: &[Work],
        events: &mut Vec<WatchEvent>,
    ) -> rusqlite::Result<(i64, Vec<Answer>)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (start, compacted_before) = read_meta(&tx)?;
        let (mut revision, mut compacted) = (start, compacted_before);
        let mut answers = Vec::with_capacity(work.len());
        for w in work {
            answers.push(match w {
                Work::Txn(txn) => {
                    let res = apply_txn(&tx, txn, revision, events)?;
                    revision = res.revision;
                    Answer::Txn(res)
                }
                Work::Compact(rev) if *rev > revision => Answer::Compact(Err(backend(format!(
                    "cannot compact to revision {rev} beyond the current revision {revision}"
                )))),
                Work::Compact(rev) => {
                    compacted = compacted.max(*rev);
                    Answer::Compact(Ok(()))
                }
            });
        }
        if revision != start || compacted != compacted_before {
            tx.prepare_cached("UPDATE meta SET revision = ?1, compacted = ?2 WHERE id = 1")?
                .execute([revision, compacted])?;
            tx.commit()?;
        }
        // Otherwise nothing was written: the transaction rolls back when dropped.
        if compacted != compacted_before {
            self.purge_pending = true;
        }
        Ok((revision, answers))
    }

    /// Remove one chunk of log rows at or below the compacted revision.
    fn purge_step(&mut self) {
        let res = (|| -> rusqlite::Result<usize> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (_, compacted) = read_meta(&tx)?;
            let n = tx.execute(
                "DELETE FROM log WHERE (revision, seq) IN \
                 (SELECT revision, seq FROM log WHERE revision <= ?1 \
                  ORDER BY revision, seq LIMIT ?2)",
                [compacted, PURGE_ROWS],
            )?;
            tx.commit()?;
            Ok(n)
        })();
        match res {
            Ok(0) => self.purge_pending = false,
            Ok(_) => {}
            Err(e) => {
                // Leftover rows are never read (watches check the compacted revision first);
                // try again after the next compaction.
                tracing::warn!(error = %e, "purging compacted store history failed");
                self.purge_pending = false;
            }
        }
    }
}

impl TxnResult {
    fn failed(revision: i64) -> Self {
        TxnResult {
            succeeded: false,
            revision,
        }
    }
}

/// Evaluate and apply one transaction inside the batch's SQLite transaction. `revision` is the
/// store revision before it; the result carries the revision after it.
fn apply_txn(
    tx: &rusqlite::Transaction<'_>,
    txn: &Txn,
    revision: i64,
    events: &mut Vec<WatchEvent>,
) -> rusqlite::Result<TxnResult> {
    let mut select = tx.prepare_cached(
        "SELECT value, create_revision, mod_revision, version FROM kv WHERE key = ?1",
    )?;
    let mut load = |key: &str| -> rusqlite::Result<Option<Entry>> {
        select
            .query_row([key.as_bytes()], |r| {
                Ok(Entry {
                    value: r.get(0)?,
                    create_revision: r.get(1)?,
                    mod_revision: r.get(2)?,
                    version: r.get(3)?,
                })
            })
            .optional()
    };
    for Compare::ModRevision {
        key,
        revision: want,
    } in &txn.compares
    {
        let have = load(key)?.map_or(0, |e| e.mod_revision);
        if have != *want {
            return Ok(TxnResult::failed(revision));
        }
    }
    let next = revision + 1;
    // Keys in first-touch order with their state before and after the transaction.
    let mut order: Vec<&str> = Vec::new();
    let mut touched: HashMap<&str, (Option<Entry>, Option<Entry>)> = HashMap::new();
    for op in &txn.ops {
        let key = match op {
            Op::Put { key, .. } | Op::Delete { key } => key.as_str(),
        };
        if !touched.contains_key(key) {
            let before = load(key)?;
            touched.insert(key, (before.clone(), before));
            order.push(key);
        }
        let (_, after) = touched.get_mut(key).expect("inserted above");
        match op {
            Op::Put { value, .. } => {
                *after = Some(match after.take() {
                    Some(mut e) if e.mod_revision == next => {
                        e.value = value.clone();
                        e
                    }
                    Some(e) => Entry {
                        value: value.clone(),
                        create_revision: e.create_revision,
                        mod_revision: next,
                        version: e.version + 1,
                    },
                    None => Entry {
                        value: value.clone(),
                        create_revision: next,
                        mod_revision: next,
                        version: 1,
                    },
                });
            }
            Op::Delete { .. } => *after = None,
        }
    }
    let first_event = events.len();
    let mut seq = 0i64;
    for key in order {
        let (before, after) = &touched[key];
        match (before, after) {
            (_, Some(e)) => {
                tx.prepare_cached(
                    "INSERT INTO kv (key, value, create_revision, mod_revision, version) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO UPDATE SET \
                     value = excluded.value, create_revision = excluded.create_revision, \
                     mod_revision = excluded.mod_revision, version = excluded.version",
                )?
                .execute(params![
                    key.as_bytes(),
                    e.value,
                    e.create_revision,
                    next,
                    e.version
                ])?;
                tx.prepare_cached(
                    "INSERT INTO log (revision, seq, key, value, create_revision, version) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    next,
                    seq,
                    key.as_bytes(),
                    e.value,
                    e.create_revision,
                    e.version
                ])?;
                events.push(WatchEvent::Put(KeyValue {
                    key: key.to_owned(),
                    value: e.value.clone(),
                    create_revision: e.create_revision,
                    mod_revision: next,
                    version: e.version,
                }));
            }
            (Some(_), None) => {
                tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                    .execute([key.as_bytes()])?;
                tx.prepare_cached(
                    "INSERT INTO log (revision, seq, key, value, create_revision, version) \
                     VALUES (?1, ?2, ?3, NULL, 0, 0)",
                )?
                .execute(params![next, seq, key.as_bytes()])?;
                events.push(WatchEvent::Delete {
                    key: key.to_owned(),
                    mod_revision: next,
                });
            }
            (None, None) => continue,
        }
        seq += 1;
    }
    debug_assert_eq!(events.len() - first_event, seq as usize);
    if seq == 0 {
        // Nothing changed: no new revision.
        Ok(TxnResult {
            succeeded: true,
            revision,
        })
    } else {
        Ok(TxnResult {
            succeeded: true,
            revision: next,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The trait

#[async_trait]
impl Store for SqliteStore {
    async fn revision(&self) -> Result<i64> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.shared
            .read(move |conn| get_kv(conn, &key).map_err(backend))
            .await
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResult> {
        self.shared
            .read(move |conn| range_kv(conn, &req).map_err(backend))
            .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Txn(txn, tx))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn watch(
        &self,
        prefix: &str,
        after_revision: i64,
    ) -> Result<BoxStream<'static, Result<WatchEvent>>> {
        // Subscribe before fixing the history's end, so every later commit reaches `rx`.
        let rx = self.events.subscribe();
        let upto = self.shared.revision.load(Ordering::Acquire);
        let lower = prefix.as_bytes().to_vec();
        let upper = prefix_end(&lower);
        // Fail early (rather than as the stream's first item) when the history is gone.
        let (l, u) = (lower.clone(), upper.clone());
        let first = self
            .shared
            .read(move |conn| {
                history_page(
                    conn,
                    &l,
                    u.as_deref(),
                    after_revision,
                    (after_revision, i64::MAX),
                    upto,
                )
            })
            .await?;
        let mut watch = Watch {
            shared: self.shared.clone(),
            prefix: prefix.to_owned(),
            lower,
            upper,
            rx,
            pending: VecDeque::new(),
            cursor: (after_revision, i64::MAX),
            upto,
            done: false,
        };
        watch.take_page(first);
        Ok(stream::unfold(watch, |mut w| async move {
            let item = w.next().await?;
            Some((item, w))
        })
        .boxed())
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Compact(revision, tx))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// A watch stream's state.
struct Watch {
    shared: Arc<Shared>,
    prefix: String,
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
    rx: broadcast::Receiver<Arc<Batch>>,
    /// Events ready to yield.
    pending: VecDeque<WatchEvent>,
    /// Everything up to this (revision, seq) has been read; `seq == i64::MAX` means the whole
    /// revision. In the live phase, `cursor.0 >= upto` and live events at or below it are
    /// duplicates.
    cursor: (i64, i64),
    /// The history phase reads the log up to this revision.
    upto: i64,
    done: bool,
}

impl Watch {
    /// Queue one page of history; a short page ends the history phase.
    fn take_page(&mut self, rows: Vec<(i64, i64, WatchEvent)>) {
        let complete = (rows.len() as i64) < HISTORY_PAGE;
        for (rev, seq, event) in rows {
            self.cursor = (rev, seq);
            self.pending.push_back(event);
        }
        if complete {
            self.cursor = (self.cursor.0.max(self.upto), i64::MAX);
        }
    }

    fn in_history(&self) -> bool {
        self.cursor.0 < self.upto || (self.cursor.0 == self.upto && self.cursor.1 != i64::MAX)
    }

    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if self.in_history() {
                let (lower, upper) = (self.lower.clone(), self.upper.clone());
                let (after, cursor, upto) = (self.cursor.0, self.cursor, self.upto);
                let page = self
                    .shared
                    .read(move |conn| {
                        // Compaction only matters below the revisions still to be read.
                        let after = if cursor.1 == i64::MAX {
                            after
                        } else {
                            after - 1
                        };
                        history_page(conn, &lower, upper.as_deref(), after, cursor, upto)
                    })
                    .await;
                match page {
                    Ok(rows) => self.take_page(rows),
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(batch) => {
                    let floor = self.cursor.0;
                    if batch.revision <= floor {
                        continue;
                    }
                    self.pending.extend(
                        batch
                            .events
                            .iter()
                            .filter(|e| e.revision() > floor && e.key().starts_with(&self.prefix))
                            .cloned(),
                    );
                    self.cursor = (batch.revision, i64::MAX);
                    self.upto = batch.revision;
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    // Re-read what the buffer dropped from the log, then resume live.
                    tracing::debug!(missed, "store watcher lagged; re-reading history");
                    self.upto = self.shared.revision.load(Ordering::Acquire);
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return Some(Err(StoreError::Closed));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RangeRequest;

    fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&dir.path().join("store.db")).unwrap()
    }

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }

    #[tokio::test]
    async fn reopen_keeps_keys_revision_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(&dir);
            for i in 0..5 {
                s.txn(Txn::new().put(format!("k{i}"), vec![i]))
                    .await
                    .unwrap();
            }
            s.compact(3).await.unwrap();
        }
        let s = open(&dir);
        assert_eq!(s.revision().await.unwrap(), 5);
        assert_eq!(s.get("k4").await.unwrap().unwrap().mod_revision, 5);
        assert!(matches!(
            s.watch("", 2).await,
            Err(StoreError::Compacted { oldest: 3, .. })
        ));
        let r = s.txn(Txn::new().put("k9", "x")).await.unwrap();
        assert_eq!(r.revision, 6);
    }

    #[tokio::test]
    async fn same_key_twice_in_one_txn_last_write_wins() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        s.txn(Txn::new().put("a", "0")).await.unwrap();
        let r = s
            .txn(
                Txn::new()
                    .put("a", "1")
                    .put("a", "2")
                    .put("b", "x")
                    .delete("b"),
            )
            .await
            .unwrap();
        assert_eq!(r.revision, 2);
        let a = s.get("a").await.unwrap().unwrap();
        assert_eq!(
            (a.value.as_slice(), a.version, a.create_revision),
            (&b"2"[..], 2, 1)
        );
        assert_eq!(s.get("b").await.unwrap(), None);
        // Delete then put re-creates.
        s.txn(Txn::new().delete("a").put("a", "3")).await.unwrap();
        let a = s.get("a").await.unwrap().unwrap();
        assert_eq!((a.version, a.create_revision, a.mod_revision), (1, 3, 3));
        let mut w = s.watch("", 1).await.unwrap();
        let e = w.next().await.unwrap().unwrap();
        assert_eq!(e.revision(), 2);
        assert_eq!(e.key(), "a");
        assert_eq!(w.next().await.unwrap().unwrap().revision(), 3);
    }

    #[tokio::test]
    async fn compaction_purges_log_rows() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        for i in 0..3000 {
            s.txn(Txn::new().put(format!("k{}", i % 10), "v"))
                .await
                .unwrap();
        }
        s.compact(2990).await.unwrap();
        // Any later command runs after the purge steps that were due while the writer idled,
        // but purging is best effort: poll.
        let path = s.path().to_path_buf();
        let mut left = i64::MAX;
        for _ in 0..200 {
            let conn = Connection::open(&path).unwrap();
            left = conn
                .query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))
                .unwrap();
            if left == 10 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(left, 10);
        let r = s.range(RangeRequest::prefix("k")).await.unwrap();
        assert_eq!(r.kvs.len(), 10);
        assert!(s.compact(5000).await.is_err());
        s.compact(10).await.unwrap(); // below the compacted revision: no-op
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lagging_watcher_rereads_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open_with_buffer(&dir.path().join("store.db"), 2).unwrap();
        let mut w = s.watch("k/", 0).await.unwrap();
        // Many separate batches while the watcher does not poll.
        for i in 0..200 {
            s.txn(
                Txn::new()
                    .put(format!("k/{i}"), "v")
                    .put(format!("x/{i}"), "v"),
            )
            .await
            .unwrap();
        }
        for i in 0..200 {
            let e = w.next().await.unwrap().unwrap();
            assert_eq!(e.revision(), i + 1);
            assert_eq!(e.key(), format!("k/{i}"));
        }
        s.txn(Txn::new().put("k/last", "v")).await.unwrap();
        assert_eq!(w.next().await.unwrap().unwrap().key(), "k/last");
        drop(s);
        assert!(matches!(w.next().await, Some(Err(StoreError::Closed))));
        assert!(w.next().await.is_none());
    }

    #[tokio::test]
    async fn lagging_watcher_fails_when_history_was_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open_with_buffer(&dir.path().join("store.db"), 1).unwrap();
        let mut w = s.watch("", 0).await.unwrap();
        for i in 0..10 {
            s.txn(Txn::new().put(format!("k{i}"), "v")).await.unwrap();
        }
        s.compact(5).await.unwrap();
        let mut got = Vec::new();
        let err = loop {
            match w.next().await {
                Some(Ok(e)) => got.push(e.revision()),
                Some(Err(e)) => break e,
                None => panic!("stream ended without an error"),
            }
        };
        assert!(
            matches!(
                err,
                StoreError::Compacted {
                    requested: 0,
                    oldest: 5
                }
            ),
            "{err}"
        );
        assert!(got.is_empty());
    }
}
