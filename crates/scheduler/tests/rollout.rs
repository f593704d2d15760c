//! Property tests of the rolling update: a step never exceeds maximumPercent, never drops
//! running tasks below minimumHealthyPercent (except the primary's own scale-in), and a
//! deployment whose bounds leave room always completes.

use berth_scheduler::rollout::{Bounds, DeploymentTasks, step};
use proptest::prelude::*;

fn bounds(desired: i32, min: i32, max: i32) -> Bounds {
    Bounds {
        desired,
        min_healthy: (desired * min + 99) / 100,
        max_total: desired * max / 100,
    }
}

fn deployments() -> impl Strategy<Value = Vec<DeploymentTasks>> {
    proptest::collection::vec(
        (0i32..12, 0i32..6).prop_map(|(running, pending)| DeploymentTasks { running, pending }),
        1..4,
    )
}

proptest! {
    #[test]
    fn a_step_keeps_both_bounds(
        desired in 0i32..12,
        min in 0i32..=100,
        max in 100i32..=200,
        ds in deployments(),
        stopping in 0i32..4,
    ) {
        let b = bounds(desired, min, max);
        let s = step(b, &ds, stopping, true);
        let total_before: i32 = ds.iter().map(|d| d.total()).sum();
        // Starting never crosses the maximum, counting tasks that are still stopping.
        prop_assert!(
            s.start == 0 || total_before + stopping + s.start <= b.max_total,
            "{s:?} for {ds:?} {b:?}"
        );
        for (d, st) in ds.iter().zip(&s.stop) {
            prop_assert!(st.running <= d.running && st.pending <= d.pending);
        }
        // Older deployments' running tasks only go while enough stay running.
        let running_after: i32 = ds.iter().zip(&s.stop).map(|(d, st)| d.running - st.running).sum();
        let older_stopped: i32 = s.stop[1..].iter().map(|st| st.running).sum();
        prop_assert!(older_stopped == 0 || running_after >= b.min_healthy, "{s:?} for {ds:?} {b:?}");
    }

    #[test]
    fn a_deployment_with_room_completes(
        desired in 1i32..12,
        min in 0i32..=100,
        max in 101i32..=200,
        old_running in 0i32..12,
    ) {
        let b = bounds(desired, min, max);
        prop_assume!(b.max_total > b.min_healthy);
        // Every started task is RUNNING by the next step; every stop takes effect at once.
        let mut ds = vec![DeploymentTasks::default(), DeploymentTasks { running: old_running, pending: 0 }];
        for _ in 0..64 {
            let s = step(b, &ds, 0, true);
            if s.is_idle() {
                break;
            }
            for (d, st) in ds.iter_mut().zip(&s.stop) {
                d.running -= st.running;
                d.pending -= st.pending;
            }
            ds[0].running += s.start;
        }
        prop_assert_eq!(ds[0].running, desired);
        prop_assert_eq!(ds[1].total(), 0);
    }
}
