//! The store: an etcd-shaped, ordered key-value contract and its backends.
//!
//! Contract (DESIGN.md §3): string keys ordered bytewise, opaque byte values, one global
//! `revision` that grows by one with every committed transaction that writes (and by nothing
//! else, as long as nothing but Berth writes to the backend), `range` by prefix with a limit and
//! a continuation key, transactions whose compares look at a key's `mod_revision` (0 means "does
//! not exist") and whose writes apply all-or-nothing, and `watch` of a prefix from a revision.
//! A write that returned `Ok` is durable: a crash right after it loses nothing.
//!
//! Nothing here reads the clock or makes identifiers; callers pass them in. This crate depends
//! on no other Berth crate. Backends: SQLite (embedded default, feature `sqlite`) and etcd (for
//! several servers on one state, feature `etcd`); both pass the same [`conformance`] suite.
//! [`election`] lets the servers that share a store agree on one leader.

#![warn(missing_docs)]

pub mod conformance;
pub mod election;
#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use election::{Election, Leadership, SoleLeader};

use async_trait::async_trait;
use futures::stream::BoxStream;

/// One stored key with its value and revision bookkeeping (etcd's `mvccpb.KeyValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value, opaque to the store.
    pub value: Vec<u8>,
    /// Revision of the transaction that created the key (since its last deletion).
    pub create_revision: i64,
    /// Revision of the transaction that last wrote the key.
    pub mod_revision: i64,
    /// Number of writes since the key was created; 1 after creation.
    pub version: i64,
}

/// A condition a transaction checks before it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's `mod_revision` equals the given one; 0 means the key must not exist.
    ModRevision {
        /// The key to check.
        key: String,
        /// The `mod_revision` it must have.
        revision: i64,
    },
}

/// A write inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or overwrite `key`.
    Put {
        /// The key to write.
        key: String,
        /// Its new value.
        value: Vec<u8>,
    },
    /// Remove `key`; a no-op when it does not exist.
    Delete {
        /// The key to remove.
        key: String,
    },
}

/// All compares must hold, then every op applies atomically; otherwise nothing applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// Conditions that must all hold.
    pub compares: Vec<Compare>,
    /// Writes applied, in order, when they do.
    pub ops: Vec<Op>,
}

impl Txn {
    /// An empty transaction (no compares, no ops).
    pub fn new() -> Self {
        Self::default()
    }
    /// Require `key` to be at `revision` (0: absent).
    pub fn when(mut self, key: impl Into<String>, revision: i64) -> Self {
        self.compares.push(Compare::ModRevision {
            key: key.into(),
            revision,
        });
        self
    }
    /// Add a put of `key`.
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }
    /// Add a delete of `key`.
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResult {
    /// False when a compare failed; nothing was written then.
    pub succeeded: bool,
    /// The store's revision after the transaction (unchanged when nothing was written).
    pub revision: i64,
}

/// A page of keys in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeResult {
    /// The keys, in bytewise key order.
    pub kvs: Vec<KeyValue>,
    /// True when more keys match past the last one returned.
    pub more: bool,
    /// The store's revision at which the range was read.
    pub revision: i64,
}

/// Which keys a range reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest {
    /// Keys that start with this prefix.
    pub prefix: String,
    /// Only keys strictly greater than this one (a continuation from a previous page).
    pub after: Option<String>,
    /// At most this many keys; 0 means no limit.
    pub limit: usize,
}

impl RangeRequest {
    /// Every key under `prefix`, no continuation, no limit.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            after: None,
            limit: 0,
        }
    }
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key after the write.
    Put(KeyValue),
    /// The key was deleted at `mod_revision`.
    Delete {
        /// The deleted key.
        key: String,
        /// The revision of the deleting transaction.
        mod_revision: i64,
    },
}

impl WatchEvent {
    /// The key the event is about.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(kv) => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }
    /// The revision of the transaction that made the change.
    pub fn revision(&self) -> i64 {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The history a watch needs was removed by [`Store::compact`].
    #[error("revision {requested} has been compacted; the oldest available is {oldest}")]
    Compacted {
        /// The `after_revision` (or stream position) asked for.
        requested: i64,
        /// The compacted revision: the smallest `after_revision` a watch may start from.
        oldest: i64,
    },
    /// The backend failed (I/O, database, invalid request such as compacting the future).
    #[error("store backend failed: {0}")]
    Backend(String),
    /// The store was shut down.
    #[error("store is closed")]
    Closed,
}

/// A result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The etcd-shaped store every backend implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest committed revision. A store that was never written is at its base revision:
    /// 0 for SQLite, 1 for etcd (which counts its own creation).
    async fn revision(&self) -> Result<i64>;
    /// One key, if present.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// Keys matching the request, in bytewise key order.
    async fn range(&self, req: RangeRequest) -> Result<RangeResult>;
    /// Check the compares, then apply all ops atomically and durably.
    async fn txn(&self, txn: Txn) -> Result<TxnResult>;
    /// Every change under `prefix` with a revision greater than `after_revision`, in revision
    /// order, first the ones already committed and then new ones as they commit.
    async fn watch(
        &self,
        prefix: &str,
        after_revision: i64,
    ) -> Result<BoxStream<'static, Result<WatchEvent>>>;
    /// Forget history at or below `revision` (watches from before it fail with `Compacted`).
    async fn compact(&self, revision: i64) -> Result<()>;
}
