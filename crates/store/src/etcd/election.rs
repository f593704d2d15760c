//! Leader election on etcd: a lease and a key created only if absent.
//!
//! A candidate first reads the leader key. While another candidate holds it, it watches the key
//! until it is deleted (a leader that resigns revokes its lease; one that died stops renewing
//! it, and etcd deletes the key when the lease's TTL runs out), looking again at least once per
//! TTL. When the key is absent, the candidate grants a lease and, in one transaction, creates
//! the key under it if its `create_revision` is still 0: of several candidates exactly one wins.
//!
//! The winner's keeper task renews the lease every third of its TTL and checks that the key is
//! still the one it created. The term ends, and the holder's [`Leadership::lost`] resolves, as
//! soon as etcd says the lease expired, the key is gone or replaced, or the lease's deadline
//! passes without a renewal: the deadline counts from the moment the last successful renewal
//! was *sent*, so it falls before etcd's own expiry and the old leader stops before a new one
//! can be elected. Resigning (or dropping the [`Leadership`]) revokes the lease, which deletes
//! the key at once.

use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, EventType, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn,
    TxnOp, WatchOptions,
};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::{Failure, header_revision, within};
use crate::Result;
use crate::election::{Election, Leadership, ResignRequest};

/// The shortest and the longest pause after a failed attempt to campaign.
const RETRY_PAUSE: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));
/// How long giving the lease back may take before the keeper gives up on it.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(2);

/// The election among the servers on one etcd; see the [module docs](self).
#[derive(Clone)]
pub struct EtcdElection {
    client: Client,
    key: String,
    ttl: Duration,
}

impl std::fmt::Debug for EtcdElection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdElection")
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl EtcdElection {
    pub(super) fn new(client: Client, key: String, ttl: Duration) -> EtcdElection {
        EtcdElection {
            client,
            key,
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    /// One attempt: `None` when another candidate leads (after waiting for its key to go, or
    /// for one TTL), or when another candidate won the race for the vacant key.
    async fn attempt(
        &self,
        candidate: &str,
        shown: &mut Option<String>,
    ) -> Result<Option<Leadership>, Failure> {
        let mut kv = self.client.kv_client();
        let current = within(kv.get(self.key.as_bytes(), None)).await?;
        if let Some(holder) = current.kvs().first() {
            let holder = String::from_utf8_lossy(holder.value()).into_owned();
            if shown.as_deref() != Some(holder.as_str()) {
                tracing::info!(leader = %holder, "another server leads and runs the controllers; this one stands by");
                *shown = Some(holder);
            }
            self.wait_until_vacant(header_revision(current.header()))
                .await?;
            return Ok(None);
        }
        let mut leases = self.client.lease_client();
        let asked = Instant::now();
        let ttl_secs = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let lease = within(leases.grant(ttl_secs, None)).await?;
        let (lease_id, granted) = (lease.id(), lease.ttl());
        let claim = Txn::new()
            .when([Compare::create_revision(
                self.key.as_bytes(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(
                self.key.as_bytes(),
                candidate,
                Some(PutOptions::new().with_lease(lease_id)),
            )]);
        let won = match within(kv.txn(claim)).await {
            Ok(res) => res,
            Err(e) => {
                revoke(&self.client, lease_id).await;
                return Err(e);
            }
        };
        if !won.succeeded() {
            revoke(&self.client, lease_id).await;
            return Ok(None);
        }
        let (ended_tx, ended_rx) = watch::channel(None);
        let (resign_tx, resign_rx) = oneshot::channel();
        let keeper = Keeper {
            client: self.client.clone(),
            key: self.key.clone(),
            lease: lease_id,
            term: header_revision(won.header()),
            ttl: Duration::from_secs(u64::try_from(granted).unwrap_or(1)),
            deadline: asked + Duration::from_secs(u64::try_from(granted).unwrap_or(0)),
        };
        tokio::spawn(keeper.run(ended_tx, resign_rx));
        Ok(Some(Leadership::kept(ended_rx, resign_tx)))
    }

    /// Returns once the leader key written at or before `revision` is deleted, or after one
    /// TTL (the caller looks again), whichever comes first.
    async fn wait_until_vacant(&self, revision: i64) -> Result<(), Failure> {
        let mut watches = self.client.watch_client();
        let options = WatchOptions::new().with_start_revision(revision + 1);
        let mut stream = within(watches.watch(self.key.as_bytes(), Some(options))).await?;
        let deadline = Instant::now() + self.ttl;
        loop {
            let Ok(message) = tokio::time::timeout_at(deadline, stream.message()).await else {
                return Ok(());
            };
            match message.map_err(Failure::Etcd)? {
                Some(res) if res.canceled() => return Ok(()),
                Some(res) => {
                    if res
                        .events()
                        .iter()
                        .any(|e| e.event_type() == EventType::Delete)
                    {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            }
        }
    }
}

#[async_trait]
impl Election for EtcdElection {
    async fn campaign(&self, candidate: &str) -> Result<Leadership> {
        let mut pause = RETRY_PAUSE.0;
        let mut shown = None;
        loop {
            match self.attempt(candidate, &mut shown).await {
                Ok(Some(term)) => return Ok(term),
                Ok(None) => pause = RETRY_PAUSE.0,
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "leader election: etcd did not answer; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RETRY_PAUSE.1);
                }
                Err(e) => return Err(e.into_store("leader election")),
            }
        }
    }
}

/// Gives a lease back, deleting the keys under it; best effort.
async fn revoke(client: &Client, lease: i64) {
    let mut leases = client.lease_client();
    if let Ok(Err(e)) = tokio::time::timeout(REVOKE_TIMEOUT, leases.revoke(lease)).await {
        tracing::debug!(lease, error = %e, "could not revoke the leader lease");
    }
}

/// Keeps one term: renews its lease and watches over its key.
struct Keeper {
    client: Client,
    key: String,
    lease: i64,
    /// The revision that created the leader key.
    term: i64,
    ttl: Duration,
    /// When the lease may have expired, as far as this server knows.
    deadline: Instant,
}

impl Keeper {
    async fn run(
        mut self,
        ended: watch::Sender<Option<String>>,
        mut resign: oneshot::Receiver<ResignRequest>,
    ) {
        let reason = tokio::select! {
            reason = self.hold() => reason,
            request = &mut resign => {
                // Resigned, or the holder dropped its term.
                revoke(&self.client, self.lease).await;
                let _ = ended.send(Some("this server resigned".into()));
                if let Ok(done) = request {
                    let _ = done.send(());
                }
                return;
            }
        };
        let _ = ended.send(Some(reason));
        // Whatever is left of the lease goes, so that another server need not wait for it.
        revoke(&self.client, self.lease).await;
        if let Ok(done) = resign.await {
            let _ = done.send(());
        }
    }

    /// Renews the lease until the term ends; returns why it ended.
    async fn hold(&mut self) -> String {
        let mut keepalive: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
        let mut next_renewal = Instant::now() + self.ttl / 3;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(self.deadline) => {
                    return "its lease could not be renewed before it ran out".into();
                }
                () = tokio::time::sleep_until(next_renewal) => {}
            }
            let asked = Instant::now();
            let renewed = tokio::time::timeout_at(self.deadline, self.renew(&mut keepalive)).await;
            match renewed {
                Err(_) => return "its lease could not be renewed before it ran out".into(),
                Ok(Ok(Renewal::Renewed(ttl))) => {
                    self.deadline = asked + ttl;
                    next_renewal = asked + self.ttl / 3;
                }
                Ok(Ok(Renewal::Expired)) => return "its lease expired".into(),
                Ok(Ok(Renewal::KeyLost)) => {
                    return "its leader key was deleted or replaced".into();
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not renew the leader lease; trying again");
                    keepalive = None;
                    next_renewal = Instant::now() + Duration::from_millis(500);
                }
            }
        }
    }

    /// One keep-alive of the lease, then a look at the key.
    async fn renew(
        &self,
        keepalive: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    ) -> Result<Renewal, Failure> {
        let ttl = match keepalive.as_mut() {
            Some((keeper, stream)) => {
                keeper.keep_alive().await.map_err(Failure::Etcd)?;
                match stream.message().await.map_err(Failure::Etcd)? {
                    Some(res) => res.ttl(),
                    None => {
                        return Err(Failure::Etcd(etcd_client::Error::LeaseKeepAliveError(
                            "the keep-alive stream ended".into(),
                        )));
                    }
                }
            }
            None => {
                // Opening the stream renews once; etcd then restarts the lease's full TTL.
                match self.client.lease_client().keep_alive(self.lease).await {
                    Ok(opened) => {
                        *keepalive = Some(opened);
                        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
                    }
                    Err(etcd_client::Error::LeaseKeepAliveError(m)) if m == "lease not found" => 0,
                    Err(e) => return Err(Failure::Etcd(e)),
                }
            }
        };
        if ttl <= 0 {
            return Ok(Renewal::Expired);
        }
        let current = within(self.client.kv_client().get(self.key.as_bytes(), None)).await?;
        let ours = current
            .kvs()
            .first()
            .is_some_and(|kv| kv.create_revision() == self.term && kv.lease() == self.lease);
        if !ours {
            return Ok(Renewal::KeyLost);
        }
        Ok(Renewal::Renewed(Duration::from_secs(
            u64::try_from(ttl).unwrap_or(0),
        )))
    }
}

/// What one renewal found.
enum Renewal {
    /// The lease runs for this long from when the renewal was sent.
    Renewed(Duration),
    Expired,
    KeyLost,
}
