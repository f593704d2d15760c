//! Leader election among the servers that share one store.
//!
//! Contract: [`Election::campaign`] waits until the caller leads and hands it a [`Leadership`].
//! At most one participant holds a leadership at a time: a holder learns that its term ended
//! ([`Leadership::lost`] resolves) no later than the moment another participant could win, so
//! work that must run on one server only (the controllers) stops before anyone else starts it.
//! A term ends when the backend can no longer confirm it (for etcd: the lease could not be
//! renewed before its TTL ran out, or the leader key was deleted), when the holder resigns, or
//! when the [`Leadership`] is dropped; the last two let another participant take over at once.
//!
//! A store that only one server can open (SQLite) needs no election: [`SoleLeader`] grants a
//! term that never ends. The etcd backend's election is `crate::etcd::EtcdElection`.

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};

use crate::Result;

/// A way for the servers that share a store to agree on one leader.
#[async_trait]
pub trait Election: Send + Sync + 'static {
    /// Waits until `candidate` (a description of the caller for logs and for the other
    /// participants, e.g. its address) leads, and returns its term. Transient failures of the
    /// backend are retried inside; an error means the election cannot go on.
    async fn campaign(&self, candidate: &str) -> Result<Leadership>;
}

/// What a backend's keeper of a term receives when the holder gives the term up: where to say
/// that it is done.
pub type ResignRequest = oneshot::Sender<()>;

/// One term of leadership. Dropping it gives the leadership up, as [`Leadership::resign`] does,
/// without waiting for that to finish.
#[derive(Debug)]
pub struct Leadership {
    /// `Some(reason)` once the term has ended.
    ended: watch::Receiver<Option<String>>,
    /// Asks the keeper to give the leadership up; `None` for a term nobody keeps.
    resign: Option<oneshot::Sender<ResignRequest>>,
    /// The sending side of `ended` for a term that never ends.
    _forever: Option<watch::Sender<Option<String>>>,
}

impl Leadership {
    /// A term kept by a backend's task: it sends `Some(reason)` on `ended` when the term ends,
    /// and gives the leadership up when `resign` delivers a request (answering it once done) or
    /// is closed. A keeper that goes away without a word ends the term too.
    pub fn kept(
        ended: watch::Receiver<Option<String>>,
        resign: oneshot::Sender<ResignRequest>,
    ) -> Leadership {
        Leadership {
            ended,
            resign: Some(resign),
            _forever: None,
        }
    }

    /// A term that never ends: the sole server of a store no other server can open.
    pub fn forever() -> Leadership {
        let (tx, rx) = watch::channel(None);
        Leadership {
            ended: rx,
            resign: None,
            _forever: Some(tx),
        }
    }

    /// Whether the term is still on, as far as the holder knows.
    pub fn is_held(&self) -> bool {
        self.ended.borrow().is_none() && self.ended.has_changed().is_ok()
    }

    /// Resolves when the term ends, with the reason in plain words.
    pub async fn lost(&mut self) -> String {
        match self.ended.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "the election's keeper stopped".to_owned(),
        }
    }

    /// Gives the leadership up and waits until the backend has let it go, so that another
    /// participant can win at once.
    pub async fn resign(mut self) {
        if let Some(resign) = self.resign.take() {
            let (done, finished) = oneshot::channel();
            if resign.send(done).is_ok() {
                let _ = finished.await;
            }
        }
    }
}

/// The election of a store that only one server can open: that server always leads.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoleLeader;

#[async_trait]
impl Election for SoleLeader {
    async fn campaign(&self, _candidate: &str) -> Result<Leadership> {
        Ok(Leadership::forever())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_sole_leader_leads_until_it_resigns() {
        let mut term = SoleLeader.campaign("me").await.unwrap();
        assert!(term.is_held());
        let waited = tokio::time::timeout(Duration::from_millis(50), term.lost()).await;
        assert!(waited.is_err(), "a sole leader's term never ends");
        term.resign().await;
    }

    #[tokio::test]
    async fn a_kept_term_ends_when_the_keeper_says_so_or_goes_away() {
        let (tx, rx) = watch::channel(None);
        let (resign, _requests) = oneshot::channel();
        let mut term = Leadership::kept(rx, resign);
        assert!(term.is_held());
        tx.send(Some("the lease expired".into())).unwrap();
        assert_eq!(term.lost().await, "the lease expired");
        assert!(!term.is_held());

        let (tx, rx) = watch::channel(None);
        let (resign, _requests) = oneshot::channel();
        let mut term = Leadership::kept(rx, resign);
        drop(tx);
        assert!(!term.is_held());
        assert_eq!(term.lost().await, "the election's keeper stopped");
    }

    #[tokio::test]
    async fn resigning_waits_for_the_keeper_and_dropping_asks_it_too() {
        let (_tx, rx) = watch::channel(None);
        let (resign, requests) = oneshot::channel::<ResignRequest>();
        let keeper = tokio::spawn(async move {
            let done = requests.await.expect("a resign request");
            done.send(()).unwrap();
        });
        Leadership::kept(rx, resign).resign().await;
        keeper.await.unwrap();

        let (_tx, rx) = watch::channel(None);
        let (resign, requests) = oneshot::channel::<ResignRequest>();
        drop(Leadership::kept(rx, resign));
        assert!(
            requests.await.is_err(),
            "a dropped term closes its resign channel"
        );
    }
}
