//! Choosing a target of a target group: round robin or least outstanding requests over the
//! targets that may take new requests — healthy ones, or, when none is healthy, every one that
//! is not draining (ALB fails open). A draining target finishes what it has and gets nothing
//! new. A target's counters ([`TargetStats`]) outlive configuration changes.

use berth_model::elbv2::data_plane::Algorithm;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

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

/// What is known of a target across configurations: its health and requests in flight.
#[derive(Debug, Default)]
pub struct TargetStats {
    health: AtomicU8,
    outstanding: AtomicUsize,
}

impl TargetStats {
    pub fn new(health: Health) -> TargetStats {
        TargetStats {
            health: AtomicU8::new(health.as_u8()),
            outstanding: AtomicUsize::new(0),
        }
    }
    pub fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Relaxed))
    }
    pub fn set_health(&self, h: Health) {
        self.health.store(h.as_u8(), Ordering::Relaxed);
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

    /// The target for a new request, `None` when the group has none to offer.
    pub fn pick(&self) -> Option<&Target> {
        let candidates = self.candidates();
        let n = candidates.clone().count();
        if n == 0 {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % n;
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
}
