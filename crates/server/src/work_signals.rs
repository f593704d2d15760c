//! Which container instances have new work, for the agents' long poll
//! (`berth_model::agent_channel`).
//!
//! The view calls [`changed_work`] for every task record it applies and [`WorkSignals::notify`]
//! once the revision holding them is published, so an agent that wakes up and lists its tasks
//! sees the whole write; after it loaded the whole store again, it calls
//! [`WorkSignals::notify_all`]. An instance's generation lives only while this server runs;
//! agents treat any difference from what they last saw (a restart resets it to 0) as news.

use crate::records::Record;
use berth_model::task::DesiredStatus;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// One generation counter per container instance that an agent waits on.
#[derive(Default)]
pub struct WorkSignals {
    counters: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Set once the server shuts down: waits end at once from then on.
    released: AtomicBool,
}

impl WorkSignals {
    /// The generation of `instance`'s work, to wait on.
    pub fn subscribe(&self, instance: &str) -> watch::Receiver<u64> {
        let mut counters = self.counters.lock().expect("work signals lock poisoned");
        if self.released.load(Ordering::SeqCst) {
            // Its sender is dropped here, so waiting on it ends at once.
            return watch::channel(0).1;
        }
        match counters.get(instance) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(0);
                counters.insert(instance.to_owned(), sender);
                receiver
            }
        }
    }

    /// Ends every wait at once (the server is shutting down): the waiters answer with the
    /// generation they hold, and their agents call again, elsewhere or later.
    pub fn release_all(&self) {
        let mut counters = self.counters.lock().expect("work signals lock poisoned");
        self.released.store(true, Ordering::SeqCst);
        counters.clear();
    }

    /// Advances the generation of each instance in `instances` that someone waits on.
    pub fn notify(&self, instances: impl IntoIterator<Item = String>) {
        let counters = self.counters.lock().expect("work signals lock poisoned");
        for instance in instances {
            if let Some(sender) = counters.get(&instance) {
                sender.send_modify(|generation| *generation += 1);
            }
        }
    }

    /// Advances the generation of every instance someone waits on: after the view loaded the
    /// store again, any of them may have new work.
    pub fn notify_all(&self) {
        let counters = self.counters.lock().expect("work signals lock poisoned");
        for sender in counters.values() {
            sender.send_modify(|generation| *generation += 1);
        }
    }
}

/// The instance whose agent has something new to do when a record at some key goes from `old`
/// to `new`: a task placed on it, or a task there whose desired status changed. Status reports
/// from the agent itself change neither, so they wake no one.
pub fn changed_work<'a>(old: Option<&Record>, new: Option<&'a Record>) -> Option<&'a str> {
    let Some(Record::Task(task)) = new else {
        return None;
    };
    let before: Option<DesiredStatus> = match old {
        Some(Record::Task(old)) => Some(old.desired_status),
        _ => None,
    };
    (before != Some(task.desired_status))
        .then_some(task.container_instance_arn.as_deref())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(desired: &str, last: &str) -> Record {
        Record::Task(
            serde_json::from_value(json!({
                "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/1",
                "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/c",
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
                "containerInstanceArn": "arn:i/1",
                "containers": [],
                "createdAt": 0,
                "desiredStatus": desired,
                "enableExecuteCommand": false,
                "lastStatus": last,
                "version": 1,
            }))
            .expect("a task record"),
        )
    }

    #[test]
    fn placements_and_desired_status_changes_are_work_but_reports_are_not() {
        let pending = task("RUNNING", "PENDING");
        let running = task("RUNNING", "RUNNING");
        let stopping = task("STOPPED", "RUNNING");
        assert_eq!(changed_work(None, Some(&pending)), Some("arn:i/1"));
        assert_eq!(changed_work(Some(&pending), Some(&running)), None);
        assert_eq!(
            changed_work(Some(&running), Some(&stopping)),
            Some("arn:i/1")
        );
        assert_eq!(changed_work(Some(&running), None), None);
    }

    #[tokio::test]
    async fn only_watched_instances_advance() {
        let signals = WorkSignals::default();
        signals.notify(["arn:i/1".to_owned()]);
        let mut rx = signals.subscribe("arn:i/1");
        assert_eq!(*rx.borrow_and_update(), 0);
        signals.notify(["arn:i/2".to_owned()]);
        assert!(!rx.has_changed().expect("sender alive"));
        signals.notify(["arn:i/1".to_owned(), "arn:i/1".to_owned()]);
        assert_eq!(*rx.borrow_and_update(), 2);
        let mut other = signals.subscribe("arn:i/2");
        signals.notify_all();
        assert_eq!(*rx.borrow_and_update(), 3);
        assert_eq!(*other.borrow_and_update(), 1);
        signals.release_all();
        assert!(rx.changed().await.is_err(), "a released wait ends");
        let mut late = signals.subscribe("arn:i/1");
        assert!(
            late.changed().await.is_err(),
            "so does one that starts after"
        );
    }
}
