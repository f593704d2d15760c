//! The server's background loops (service controller, instance health, janitor, target drain
//! sweeper, registry sweep) share one shape: a pass every period, a late pass delaying the next
//! rather than bunching up. They run beside the API on the elected leader only
//! ([`crate::leader`]), and stop when it loses the leadership or shuts down.

use std::future::Future;
use std::time::Duration;

/// Runs `pass` every `period`, forever (the caller aborts the task to stop it).
pub async fn every<F, Fut>(period: Duration, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        pass().await;
    }
}
