//! Choosing a target of a target group: round robin or least outstanding requests over the
//! targets that may take new requests — healthy ones, or, when none is healthy, every one that
//! is not draining (ALB fails open). A draining target finishes what it has and gets nothing
//! new. A target's counters ([`TargetStats`]) outlive configuration changes.
//!
//! Slow start (`slow_start.duration_seconds`): a target that has just turned healthy, while
//! others are not warming up, gets a share of its normal traffic that grows linearly from
//! nothing to all of it over the duration; a request the algorithm gave it is turned away
//! with the remaining probability and goes to a target that is not warming up.

use berth_model::elbv2::data_plane::Algorithm;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// A target's health as this data plane's checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not decided yet (just registered).
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    fn from_u8(v: u8) -> Health {
        match v {
            1 => Health::Healthy,
            2 => Health::Unhealthy,
            _ => Health::Unknown,
        }
    }
    fn as_u8(self) -> u8 {
        match self {
            Health::Unknown => 0,
            Health::Healthy => 1,
            Health::Unhealthy => 2,
        }
    }
}

/// Milliseconds since this process first asked; never 0, which stands for "never".
pub fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
}

/// What is known of a target across configurations: its health, requests in flight, and when
/// it last turned healthy.
#[derive(Debug, Default)]
pub struct TargetStats {
    health: AtomicU8,
    outstanding: AtomicUsize,
    /// [`now_ms`] when the target last turned healthy, 0 if it was healthy when first seen
    /// (a data plane restarted does not warm up targets that were serving).
    healthy_since: AtomicU64,
}

impl TargetStats {
    pub fn new(health: Health) -> TargetStats {
        TargetStats {
            health: AtomicU8::new(health.as_u8()),
            outstanding: AtomicUsize::new(0),
            healthy_since: AtomicU64::new(0),
        }
    }
    pub fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Relaxed))
    }
    pub fn set_health(&self, h: Health) {
        self.set_health_at(h, now_ms());
    }
    fn set_health_at(&self, h: Health, now: u64) {
        let before = Health::from_u8(self.health.swap(h.as_u8(), Ordering::Relaxed));
        if h == Health::Healthy && before != Health::Healthy {
            self.healthy_since.store(now, Ordering::Relaxed);
        }
    }
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }
}

/// Counts a request as outstanding on its target until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<TargetStats>);

impl InFlight {
    pub fn start(stats: Arc<TargetStats>) -> InFlight {
        stats.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight(stats)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One registered target as the current configuration has it.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub port: u16,
    /// Where to connect; `None` when the control plane knows no address for it.
    pub address: Option<SocketAddr>,
    pub draining: bool,
    pub stats: Arc<TargetStats>,
}

/// A target group as the current configuration has it.
#[derive(Debug)]
pub struct Group {
    pub arn: String,
    pub algorithm: Algorithm,
    /// Health checks off: every target counts as healthy.
    pub checks_enabled: bool,
    pub targets: Vec<Target>,
    /// Shared with the group's previous configurations, so the rotation goes on.
    pub next: Arc<AtomicUsize>,
    /// `slow_start.duration_seconds` in milliseconds; 0 turns slow start off.
    pub slow_start_ms: u64,
    /// How a client is held to its target; `None`: requests are not sticky.
    pub stickiness: Option<crate::sticky::Policy>,
}

impl Group {
    fn usable(t: &Target) -> bool {
        !t.draining && t.address.is_some()
    }

    fn healthy(&self, t: &Target) -> bool {
        Self::usable(t) && (!self.checks_enabled || t.stats.health() == Health::Healthy)
    }

    /// The targets a new request may go to.
    pub fn candidates(&self) -> impl Iterator<Item = &Target> + Clone {
        let any_healthy = self.targets.iter().any(|t| self.healthy(t));
        self.targets.iter().filter(move |t| {
            if any_healthy {
                self.healthy(t)
            } else {
                Self::usable(t)
            }
        })
    }

    /// The target `id`:`port` (a stickiness cookie's), if it may still take new requests.
    pub fn sticky(&self, id: &str, port: u16) -> Option<&Target> {
        self.candidates().find(|t| t.id == id && t.port == port)
    }

    /// The target for a new request, `None` when the group has none to offer.
    pub fn pick(&self) -> Option<&Target> {
        self.pick_at(now_ms())
    }

    fn pick_at(&self, now: u64) -> Option<&Target> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let chosen = self.pick_from(self.candidates(), turn)?;
        let Some(share) = self.warm_share(chosen, now) else {
            return Some(chosen);
        };
        let warm = |t: &&Target| self.warm_share(t, now).is_none();
        if !self.candidates().any(|t| warm(&t)) {
            // Every candidate is warming up: none is held back.
            return Some(chosen);
        }
        if unit_roll(turn) < share {
            return Some(chosen);
        }
        self.pick_from(self.candidates().filter(warm), turn)
    }

    /// `turn`'s choice among `candidates` by the group's algorithm.
    fn pick_from<'a>(
        &self,
        candidates: impl Iterator<Item = &'a Target> + Clone,
        turn: usize,
    ) -> Option<&'a Target> {
        let n = candidates.clone().count();
        if n == 0 {
            return None;
        }
        let turn = turn % n;
        match self.algorithm {
            Algorithm::RoundRobin => candidates.clone().nth(turn),
            Algorithm::LeastOutstandingRequests => {
                // Ties go round robin, so equal targets share the load.
                candidates
                    .clone()
                    .skip(turn)
                    .chain(candidates.take(turn))
                    .min_by_key(|t| t.stats.outstanding())
            }
        }
    }

    /// The share of its traffic a target warming up takes at `now`, in (0, 1); `None` when it
    /// is not warming up.
    fn warm_share(&self, t: &Target, now: u64) -> Option<f64> {
        let since = t.stats.healthy_since.load(Ordering::Relaxed);
        if self.slow_start_ms == 0 || since == 0 || t.stats.health() != Health::Healthy {
            return None;
        }
        let elapsed = now.saturating_sub(since);
        (elapsed < self.slow_start_ms).then(|| elapsed as f64 / self.slow_start_ms as f64)
    }
}

/// A number in [0, 1) that looks random but follows from `turn` (SplitMix64).
fn unit_roll(turn: usize) -> f64 {
    let mut z = (turn as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str, health: Health) -> Target {
        Target {
            id: id.into(),
            port: 80,
            address: Some("127.0.0.1:80".parse().unwrap()),
            draining: false,
            stats: Arc::new(TargetStats::new(health)),
        }
    }

    fn group(algorithm: Algorithm, targets: Vec<Target>) -> Group {
        Group {
            arn: "tg".into(),
            algorithm,
            checks_enabled: true,
            targets,
            next: Arc::new(AtomicUsize::new(0)),
            slow_start_ms: 0,
            stickiness: None,
        }
    }

    fn picks(g: &Group, n: usize) -> Vec<String> {
        (0..n).map(|_| g.pick().unwrap().id.clone()).collect()
    }

    #[test]
    fn round_robin_over_healthy_targets() {
        let g = group(
            Algorithm::RoundRobin,
            vec![
                target("a", Health::Healthy),
                target("sick", Health::Unhealthy),
                target("b", Health::Healthy),
                target("new", Health::Unknown),
            ],
        );
        assert_eq!(picks(&g, 4), ["a", "b", "a", "b"]);
    }

    #[test]
    fn least_outstanding_requests() {
        let g = group(
            Algorithm::LeastOutstandingRequests,
            vec![target("a", Health::Healthy), target("b", Health::Healthy)],
        );
        let busy = InFlight::start(g.targets[0].stats.clone());
        let _busy2 = InFlight::start(g.targets[0].stats.clone());
        assert_eq!(picks(&g, 3), ["b", "b", "b"]);
        let _b = InFlight::start(g.targets[1].stats.clone());
        let _b2 = InFlight::start(g.targets[1].stats.clone());
        let _b3 = InFlight::start(g.targets[1].stats.clone());
        assert_eq!(picks(&g, 2), ["a", "a"]);
        drop(busy);
        assert_eq!(g.targets[0].stats.outstanding(), 1);
        // Equal counts share the load.
        let _a = InFlight::start(g.targets[0].stats.clone());
        let _a2 = InFlight::start(g.targets[0].stats.clone());
        let mut seen = picks(&g, 4);
        seen.sort();
        assert_eq!(seen, ["a", "a", "b", "b"]);
    }

    #[test]
    fn fails_open_when_no_target_is_healthy() {
        let mut g = group(
            Algorithm::RoundRobin,
            vec![
                target("a", Health::Unhealthy),
                target("b", Health::Unknown),
                target("gone", Health::Unhealthy),
            ],
        );
        g.targets[2].draining = true;
        assert_eq!(picks(&g, 4), ["a", "b", "a", "b"]);
        g.targets[0].draining = true;
        g.targets[1].draining = true;
        assert!(g.pick().is_none(), "draining targets get no new requests");
        let empty = group(Algorithm::RoundRobin, vec![]);
        assert!(empty.pick().is_none());
    }

    #[test]
    fn disabled_checks_count_every_target_healthy() {
        let mut g = group(
            Algorithm::RoundRobin,
            vec![target("a", Health::Healthy), target("b", Health::Unknown)],
        );
        g.checks_enabled = false;
        assert_eq!(picks(&g, 2), ["a", "b"]);
    }

    #[test]
    fn a_target_warming_up_gets_a_share_that_grows_linearly() {
        let mut g = group(
            Algorithm::RoundRobin,
            vec![
                target("old", Health::Healthy),
                target("new", Health::Unknown),
            ],
        );
        g.slow_start_ms = 10_000;
        g.targets[1].stats.set_health_at(Health::Healthy, 1_000);
        let share_of_new = |now: u64| {
            let picks = 20_000;
            let new = (0..picks)
                .filter(|_| g.pick_at(now).unwrap().id == "new")
                .count();
            new as f64 / picks as f64
        };
        // Round robin alone would give it half: 0.5 × the fraction of the duration passed.
        let at_start = share_of_new(1_000);
        assert!(at_start < 0.01, "just healthy: {at_start}");
        let at_a_fifth = share_of_new(3_000);
        assert!((at_a_fifth - 0.1).abs() < 0.02, "a fifth in: {at_a_fifth}");
        let at_half = share_of_new(6_000);
        assert!((at_half - 0.25).abs() < 0.02, "halfway: {at_half}");
        let after = share_of_new(11_000);
        assert!((after - 0.5).abs() < 0.01, "warmed up: {after}");
    }

    #[test]
    fn slow_start_holds_nothing_back_when_every_target_is_warming_up() {
        let mut g = group(
            Algorithm::RoundRobin,
            vec![target("a", Health::Unknown), target("b", Health::Unknown)],
        );
        g.slow_start_ms = 10_000;
        g.targets[0].stats.set_health_at(Health::Healthy, 1_000);
        g.targets[1].stats.set_health_at(Health::Healthy, 1_000);
        let ids: Vec<&str> = (0..4)
            .map(|_| g.pick_at(1_500).unwrap().id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "a", "b"]);
    }

    #[test]
    fn targets_healthy_when_first_seen_do_not_warm_up() {
        let mut g = group(
            Algorithm::RoundRobin,
            vec![target("a", Health::Healthy), target("b", Health::Healthy)],
        );
        g.slow_start_ms = 10_000;
        // Health reported again (each check) does not restart slow start.
        g.targets[1].stats.set_health_at(Health::Healthy, 1_000);
        assert_eq!(picks(&g, 4), ["a", "b", "a", "b"]);
    }
}
