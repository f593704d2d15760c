//! Keeps the store's history short. The store keeps every revision of every key until it is
//! compacted, so that watches can replay what they missed; nothing else trims it, and without
//! this the data directory would grow with every write ever made (on ten thousand instances
//! the agents' heartbeats alone add a thousand a second).
//!
//! Every [`COMPACT_INTERVAL`] the leader compacts the store up to the revision the view had
//! reached one interval before, as etcd's periodic auto-compaction and kine do: the history of
//! the last interval stays, and a watch more than an interval behind fails with `Compacted`,
//! after which the view loads the store again by itself (see [`crate::view`]).

use crate::App;
use std::time::Duration;

/// How often the history is trimmed, and how much of it is kept.
pub const COMPACT_INTERVAL: Duration = Duration::from_secs(60);

/// Compacts the store every [`COMPACT_INTERVAL`] to the revision seen one interval before,
/// until the task is dropped.
pub async fn run(app: App) {
    let mut seen: Option<i64> = None;
    crate::background::every(COMPACT_INTERVAL, || {
        let upto = seen.replace(app.db.revision());
        let app = app.clone();
        async move {
            if let Some(revision) = upto.filter(|r| *r > 0)
                && let Err(e) = app.db.compact(revision).await
            {
                tracing::warn!(revision, error = %e, "could not compact the store's history");
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::db::Writes;
    use crate::records::{Family, keys};
    use crate::{App, open_sqlite};
    use berth_store::StoreError;
    use futures::StreamExt;

    #[tokio::test]
    async fn compaction_forgets_the_history_before_a_revision_and_keeps_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
        let store = open_sqlite(&config).unwrap();
        let (app, _) = App::open(config, store.clone()).await.unwrap();
        let key = keys::family("r", "web");
        for latest_revision in 1..=3 {
            let writes = Writes::new().put(&key, Family { latest_revision });
            assert!(app.db.commit(writes).await.unwrap());
        }
        let before = app.db.revision();
        let writes = Writes::new().put(&key, Family { latest_revision: 4 });
        assert!(app.db.commit(writes).await.unwrap());

        app.db.compact(before).await.unwrap();
        let early = match store.watch("/", 1).await {
            Ok(mut events) => events.next().await.and_then(Result::err),
            Err(e) => Some(e),
        };
        assert!(
            matches!(early, Some(StoreError::Compacted { .. })),
            "history before the compacted revision is gone: {early:?}"
        );
        let mut recent = store.watch("/", before).await.unwrap();
        assert!(
            matches!(recent.next().await, Some(Ok(_))),
            "the rest is kept"
        );
        assert_eq!(app.db.get::<Family>(&key).unwrap().value.latest_revision, 4);
    }
}
