//! How a REPLICA service moves toward its promise, one step at a time: how many tasks the
//! primary deployment starts and how many each deployment stops, so that running tasks never
//! fall below `minimumHealthyPercent` of the desired count (rounded up) and running + pending
//! tasks never exceed `maximumPercent` (rounded down).
//!
//! The caller (the service controller) counts the tasks of each deployment that are still
//! meant to run — tasks it already asked to stop are not counted — applies the step, and
//! steps again when tasks change state. A task that stops on its own simply leaves the counts,
//! so the next step replaces it.

/// The tasks of one deployment that are meant to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeploymentTasks {
    /// RUNNING (and healthy).
    pub running: i32,
    /// Placed but not yet RUNNING.
    pub pending: i32,
}

impl DeploymentTasks {
    pub fn total(self) -> i32 {
        self.running + self.pending
    }
}

/// The service's bounds for one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub desired: i32,
    /// The fewest RUNNING tasks to keep while replacing.
    pub min_healthy: i32,
    /// The most RUNNING + PENDING tasks at any time — tasks asked to stop count until they
    /// have stopped.
    pub max_total: i32,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// Tasks the primary deployment starts.
    pub start: i32,
    /// Tasks each deployment stops (same order as the input), pending ones and running ones.
    pub stop: Vec<DeploymentTasks>,
}

impl Step {
    pub fn is_idle(&self) -> bool {
        self.start == 0 && self.stop.iter().all(|s| s.total() == 0)
    }
}

/// One step for `deployments`: the primary first, then the older ones, which all drain.
/// `stopping` is how many tasks were asked to stop and have not stopped yet. `may_start` is
/// false when the primary must not launch (its circuit breaker tripped).
pub fn step(
    bounds: Bounds,
    deployments: &[DeploymentTasks],
    stopping: i32,
    may_start: bool,
) -> Step {
    let mut stop = vec![DeploymentTasks::default(); deployments.len()];
    let Some((primary, older)) = deployments.split_first() else {
        return Step::default();
    };
    // Pending tasks of older deployments serve nothing: they go at once.
    for (i, d) in older.iter().enumerate() {
        stop[i + 1].pending = d.pending;
    }
    // The primary above the desired count (a scale-in): pending first, then running.
    let excess = (primary.total() - bounds.desired).max(0);
    stop[0].pending = excess.min(primary.pending);
    stop[0].running = excess - stop[0].pending;
    // Older running tasks go while enough running tasks stay.
    let healthy: i32 = deployments.iter().map(|d| d.running).sum::<i32>() - stop[0].running;
    let mut budget = (healthy - bounds.min_healthy).max(0);
    for (i, d) in older.iter().enumerate() {
        let n = d.running.min(budget);
        stop[i + 1].running = n;
        budget -= n;
    }
    // Tasks stopped now still run until they exit: they leave room only once gone.
    let present: i32 = deployments.iter().map(|d| d.total()).sum::<i32>() + stopping.max(0);
    let start = if may_start {
        let need = bounds.desired - (primary.total() - stop[0].total());
        need.min(bounds.max_total - present).max(0)
    } else {
        0
    };
    Step { start, stop }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(running: i32, pending: i32) -> DeploymentTasks {
        DeploymentTasks { running, pending }
    }

    fn bounds(desired: i32, min: i32, max: i32) -> Bounds {
        Bounds {
            desired,
            min_healthy: (desired * min + 99) / 100,
            max_total: desired * max / 100,
        }
    }

    #[test]
    fn a_new_service_starts_its_desired_count() {
        let s = step(bounds(4, 100, 200), &[tasks(0, 0)], 0, true);
        assert_eq!(s.start, 4);
        assert_eq!(s.stop, [tasks(0, 0)]);
        assert!(step(bounds(4, 100, 200), &[tasks(4, 0)], 0, true).is_idle());
    }

    #[test]
    fn a_stopped_task_is_replaced() {
        let s = step(bounds(4, 100, 200), &[tasks(3, 0)], 0, true);
        assert_eq!(s.start, 1);
    }

    #[test]
    fn scaling_in_stops_pending_tasks_first() {
        let s = step(bounds(2, 100, 200), &[tasks(3, 2)], 0, true);
        assert_eq!((s.start, s.stop[0]), (0, tasks(1, 2)));
    }

    #[test]
    fn default_rolling_update_surges_then_drains() {
        let b = bounds(4, 100, 200);
        // New revision: start 4 alongside the old 4, stop nothing yet.
        let s = step(b, &[tasks(0, 0), tasks(4, 0)], 0, true);
        assert_eq!((s.start, s.stop[1]), (4, tasks(0, 0)));
        // The new ones run: the old ones may go.
        let s = step(b, &[tasks(4, 0), tasks(4, 0)], 0, true);
        assert_eq!((s.start, s.stop[1]), (0, tasks(4, 0)));
    }

    #[test]
    fn half_healthy_without_surge_replaces_in_halves() {
        let b = bounds(4, 50, 100);
        let s = step(b, &[tasks(0, 0), tasks(4, 0)], 0, true);
        assert_eq!((s.start, s.stop[1]), (0, tasks(2, 0)));
        let s = step(b, &[tasks(0, 0), tasks(2, 0)], 0, true);
        assert_eq!((s.start, s.stop[1]), (2, tasks(0, 0)));
        let s = step(b, &[tasks(2, 0), tasks(2, 0)], 0, true);
        assert_eq!((s.start, s.stop[1]), (0, tasks(2, 0)));
        let s = step(b, &[tasks(2, 0), tasks(0, 0)], 0, true);
        assert_eq!(s.start, 2);
    }

    #[test]
    fn a_tripped_breaker_starts_nothing() {
        let s = step(bounds(4, 100, 200), &[tasks(0, 0), tasks(4, 0)], 0, false);
        assert!(s.is_idle(), "{s:?}");
    }

    #[test]
    fn tasks_still_stopping_take_room() {
        let s = step(bounds(4, 50, 100), &[tasks(0, 0), tasks(2, 0)], 2, true);
        assert_eq!(s.start, 0);
    }

    #[test]
    fn older_pending_tasks_go_at_once() {
        let s = step(bounds(2, 100, 200), &[tasks(0, 0), tasks(1, 1)], 0, true);
        assert_eq!(s.stop[1], tasks(0, 1));
        assert_eq!(s.start, 2);
    }
}
