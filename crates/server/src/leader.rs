//! Leadership: every server answers the API, and only the elected leader runs the background
//! controllers (the service controller with its target registration, the target drain sweeper,
//! instance health, the janitor and the registry sweep), so that two servers on one store never
//! both act on the same service.
//!
//! Contract: [`run`] campaigns through the store's [`Election`], starts the controllers when this
//! server wins, and stops them (aborted and awaited) as soon as the term ends, before another
//! server can win; then it campaigns again. On shutdown it stops the controllers and resigns, so
//! another server takes over at once instead of after the lease's TTL. With SQLite the election
//! is `SoleLeader`: the one server always leads. Leadership changes are logged in plain words.

use crate::{App, elbv2, history, instance_health, janitor, registry, service_controller};
use berth_store::Election;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// The etcd key the leader holds. It lies under `/`, which the views watch, so that every store
/// revision is one a view sees: a writer that waits for its view to reach the store's revision
/// after a failed compare would otherwise wait for the next record write if the leader key's
/// change was the newest. Views ignore it (no record decodes from it).
pub const LEADER_KEY: &str = "/berth/leader";
/// How long a leader that stopped renewing keeps the key: a dead leader is replaced after at
/// most this long (plus etcd's expiry check).
pub const LEADER_TTL: Duration = Duration::from_secs(10);
/// The pause before campaigning again after the election failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Campaigns as `candidate` and runs the controllers while this server leads, until `stop`
/// fires (or its sender is dropped).
pub async fn run(
    app: App,
    election: Arc<dyn Election>,
    candidate: String,
    stop: oneshot::Receiver<()>,
) {
    supervise(election, candidate, stop, || start_controllers(&app)).await;
}

/// [`run`] with the controllers `start` spawns.
async fn supervise(
    election: Arc<dyn Election>,
    candidate: String,
    mut stop: oneshot::Receiver<()>,
    start: impl Fn() -> JoinSet<()>,
) {
    loop {
        let campaign = tokio::select! {
            campaign = election.campaign(&candidate) => campaign,
            _ = &mut stop => return,
        };
        let mut term = match campaign {
            Ok(term) => term,
            Err(e) => {
                tracing::error!(error = %e, "leader election failed; this server runs no controllers until it succeeds");
                tokio::select! {
                    () = tokio::time::sleep(RETRY_AFTER) => continue,
                    _ = &mut stop => return,
                }
            }
        };
        tracing::info!(server = %candidate, "this server is now the leader: it runs the controllers");
        let mut controllers = start();
        tokio::select! {
            reason = term.lost() => {
                controllers.shutdown().await;
                tracing::warn!(server = %candidate, "this server is no longer the leader ({reason}): its controllers are stopped; it keeps serving the API and campaigns again");
            }
            _ = &mut stop => {
                controllers.shutdown().await;
                term.resign().await;
                tracing::info!(server = %candidate, "this server stopped its controllers and gave up the leadership");
                return;
            }
        }
    }
}

/// Spawns every controller; dropping or shutting the set down aborts them.
fn start_controllers(app: &App) -> JoinSet<()> {
    let mut controllers = JoinSet::new();
    controllers.spawn(janitor::run(app.clone()));
    controllers.spawn(service_controller::run(app.clone()));
    controllers.spawn(elbv2::run_drain_sweeper(app.clone()));
    controllers.spawn(instance_health::run(app.clone()));
    controllers.spawn(registry::run_sweeper(app.clone()));
    controllers.spawn(history::run(app.clone()));
    controllers
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::Leadership;
    use berth_store::election::ResignRequest;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::{Mutex, mpsc, watch};

    /// An election whose terms the test hands out, one per campaign.
    struct Scripted {
        terms: Mutex<mpsc::Receiver<Leadership>>,
        campaigns: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Election for Scripted {
        async fn campaign(&self, _candidate: &str) -> berth_store::Result<Leadership> {
            self.campaigns.fetch_add(1, Ordering::SeqCst);
            let term = self.terms.lock().await.recv().await;
            Ok(term.expect("the test hands out a term"))
        }
    }

    /// A term the test can end, and the resign requests it receives.
    fn term() -> (
        Leadership,
        watch::Sender<Option<String>>,
        oneshot::Receiver<ResignRequest>,
    ) {
        let (end, ended) = watch::channel(None);
        let (resign, requests) = oneshot::channel();
        (Leadership::kept(ended, resign), end, requests)
    }

    /// Controllers that only count how many of them run.
    fn counted(running: &Arc<AtomicUsize>) -> JoinSet<()> {
        struct Running(Arc<AtomicUsize>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let mut set = JoinSet::new();
        running.fetch_add(1, Ordering::SeqCst);
        let guard = Running(running.clone());
        set.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        set
    }

    async fn until(what: &str, mut check: impl FnMut() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{what} did not happen");
    }

    #[tokio::test]
    async fn controllers_run_only_during_a_term_and_stop_with_it() {
        let (hand_out, terms) = mpsc::channel(4);
        let election = Arc::new(Scripted {
            terms: Mutex::new(terms),
            campaigns: AtomicUsize::new(0),
        });
        let running = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel();
        let supervisor = tokio::spawn({
            let (election, running) = (election.clone(), running.clone());
            async move {
                supervise(election, "me".into(), stopped, || counted(&running)).await;
            }
        });
        until("the first campaign", || {
            election.campaigns.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(
            running.load(Ordering::SeqCst),
            0,
            "no controllers before a win"
        );

        let (first, end_first, _) = term();
        hand_out.send(first).await.unwrap();
        until("the controllers start", || {
            running.load(Ordering::SeqCst) == 1
        })
        .await;

        end_first.send(Some("the lease expired".into())).unwrap();
        until("the controllers stop", || {
            running.load(Ordering::SeqCst) == 0
        })
        .await;
        until("a new campaign", || {
            election.campaigns.load(Ordering::SeqCst) == 2
        })
        .await;

        let (second, _end_second, resign) = term();
        hand_out.send(second).await.unwrap();
        until("the controllers start again", || {
            running.load(Ordering::SeqCst) == 1
        })
        .await;
        stop.send(()).unwrap();
        let done = resign.await.expect("shutting down resigns the term");
        assert_eq!(
            running.load(Ordering::SeqCst),
            0,
            "stopped before resigning"
        );
        done.send(()).unwrap();
        supervisor.await.unwrap();
    }
}
