//! Typed reads from the view and transactional writes to the store.
//!
//! Reads clone records out of the [`View`]. A write is a [`Writes`] batch: puts and deletes
//! plus the revisions the caller read, which the store compares before applying anything.
//! [`Db::transact`] re-runs a closure until its batch commits, so read-modify-write handlers
//! never lose an update to a concurrent writer.

use crate::records::Kind;
use crate::view::View;
use berth_api::ApiError;
use berth_store::{Store, Txn};
use std::sync::Arc;

/// A record read from the view with the revision that last wrote it.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub key: String,
    pub revision: i64,
    pub value: T,
}

/// A batch of writes guarded by the revisions they were computed from.
#[derive(Debug, Default)]
pub struct Writes {
    txn: Txn,
}

impl Writes {
    pub fn new() -> Self {
        Self::default()
    }
    /// Commit only if `key` is still at `revision` (0: still absent).
    pub fn expect(mut self, key: &str, revision: i64) -> Self {
        self.txn = self.txn.when(key, revision);
        self
    }
    /// Commit only if the record is unchanged since it was read.
    pub fn expect_unchanged<T>(self, read: &Versioned<T>) -> Self {
        let (key, revision) = (read.key.clone(), read.revision);
        self.expect(&key, revision)
    }
    pub fn put<T: Kind>(mut self, key: &str, value: T) -> Self {
        self.txn = self.txn.put(key, value.wrap().encode());
        self
    }
    pub fn delete(mut self, key: &str) -> Self {
        self.txn = self.txn.delete(key);
        self
    }
    pub fn is_empty(&self) -> bool {
        self.txn.ops.is_empty()
    }
}

const MAX_ATTEMPTS: usize = 50;

#[derive(Clone)]
pub struct Db {
    store: Arc<dyn Store>,
    view: Arc<View>,
}

impl Db {
    pub async fn open(store: Arc<dyn Store>) -> berth_store::Result<Db> {
        let view = View::start(store.clone()).await?;
        Ok(Db { store, view })
    }

    pub fn get<T: Kind>(&self, key: &str) -> Option<Versioned<T>> {
        let entry = self.view.get(key)?;
        let value = T::peel(&entry.record)?.clone();
        Some(Versioned {
            key: key.to_string(),
            revision: entry.mod_revision,
            value,
        })
    }

    /// Every record of kind `T` under `prefix`, in key order.
    pub fn list<T: Kind>(&self, prefix: &str) -> Vec<Versioned<T>> {
        let mut out = Vec::new();
        self.view.scan(prefix, |key, entry| {
            if let Some(value) = T::peel(&entry.record) {
                out.push(Versioned {
                    key: key.to_string(),
                    revision: entry.mod_revision,
                    value: value.clone(),
                });
            }
            true
        });
        out
    }

    /// Visits records of kind `T` under `prefix` without cloning them; return false to stop.
    pub fn scan<T: Kind>(&self, prefix: &str, mut visit: impl FnMut(&str, &T) -> bool) {
        self.view
            .scan(prefix, |key, entry| match T::peel(&entry.record) {
                Some(value) => visit(key, value),
                None => true,
            });
    }

    /// Commits a batch; `Ok(false)` when a compared revision moved (nothing was written).
    /// On success the view has caught up with the write before this returns.
    pub async fn commit(&self, writes: Writes) -> Result<bool, ApiError> {
        if writes.txn.ops.is_empty() && writes.txn.compares.is_empty() {
            return Ok(true);
        }
        let result = self
            .store
            .txn(writes.txn)
            .await
            .map_err(|e| ApiError::server(format!("store write failed: {e}")))?;
        // On failure too: catch up, so the caller's retry reads what beat it.
        self.view.caught_up(result.revision).await;
        Ok(result.succeeded)
    }

    /// Runs `plan` against the current view and commits the writes it returns, again and again
    /// until they commit without conflict; then returns the plan's result.
    pub async fn transact<R>(
        &self,
        mut plan: impl FnMut(&Db) -> Result<(Writes, R), ApiError>,
    ) -> Result<R, ApiError> {
        for _ in 0..MAX_ATTEMPTS {
            let (writes, result) = plan(self)?;
            if self.commit(writes).await? {
                return Ok(result);
            }
        }
        Err(ApiError::server(
            "the write kept conflicting with concurrent writes; retry the request",
        ))
    }
}
