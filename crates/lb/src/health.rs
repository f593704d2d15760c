//! Health checks: every target of every served target group is checked continuously — an HTTP
//! `GET` of the group's path on the target's health check port every interval, failing after
//! the timeout or on a code the matcher does not accept. A new target is healthy after its first
//! passing check; a healthy one turns unhealthy after `unhealthy_threshold` failures in a row, an
//! unhealthy one healthy again after `healthy_threshold` passes in a row. The verdict steers the
//! balancer at once and is reported to the control plane (with ELBv2's reason codes) so that
//! DescribeTargetHealth shows it.

use crate::balancer::Health;
use crate::config::{CheckSpec, Shared, TargetKey};
use berth_model::elbv2::data_plane::{HealthCheckConfig, HealthReport};
use berth_model::elbv2::target::TargetState;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The HTTP codes a matcher accepts: `200`, `200,202`, `200-299`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher(Vec<(u16, u16)>);

impl Matcher {
    pub fn parse(s: &str) -> Option<Matcher> {
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (low, high) = match part.split_once('-') {
                Some((l, h)) => (l.trim().parse().ok()?, h.trim().parse().ok()?),
                None => {
                    let c: u16 = part.parse().ok()?;
                    (c, c)
                }
            };
            if low > high || !(100..=599).contains(&low) || high > 599 {
                return None;
            }
            ranges.push((low, high));
        }
        Some(Matcher(ranges))
    }

    pub fn accepts(&self, code: u16) -> bool {
        self.0.iter().any(|(l, h)| (*l..=*h).contains(&code))
    }
}

/// Why a check failed: ELBv2's reason code and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: &'static str,
    pub description: String,
}

/// Consecutive results turned into a verdict.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub health: Health,
    passes: u32,
    failures: u32,
}

impl Tracker {
    pub fn new(health: Health) -> Tracker {
        Tracker {
            health,
            passes: 0,
            failures: 0,
        }
    }

    /// Counts one check's result; returns the health after it.
    pub fn observe(&mut self, passed: bool, check: &HealthCheckConfig) -> Health {
        if passed {
            self.passes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.passes = 0;
        }
        self.health = match self.health {
            Health::Unknown if passed => Health::Healthy,
            Health::Unhealthy if self.passes >= check.healthy_threshold => Health::Healthy,
            Health::Unknown | Health::Healthy if self.failures >= check.unhealthy_threshold => {
                Health::Unhealthy
            }
            h => h,
        };
        self.health
    }
}

type CheckClient = Client<HttpConnector, Empty<Bytes>>;

fn check_client() -> CheckClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    // A fresh connection per check: a target that stopped accepting is seen at once.
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector)
}

/// One health check of `spec`'s target.
pub async fn check_once(client: &CheckClient, spec: &CheckSpec) -> Result<(), Failure> {
    let check = &spec.check;
    let failed = || Failure {
        reason: "Target.FailedHealthChecks",
        description: "Health checks failed".into(),
    };
    let uri: http::Uri = format!("http://{}{}", spec.address, check.path)
        .parse()
        .map_err(|_| failed())?;
    let request = http::Request::get(uri)
        .header(http::header::USER_AGENT, "ELB-HealthChecker/2.0")
        .header(http::header::HOST, spec.address.to_string())
        .body(Empty::new())
        .map_err(|_| failed())?;
    let timeout = Duration::from_millis(check.timeout_ms.max(1));
    let response = match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => {
            return Err(Failure {
                reason: "Target.Timeout",
                description: "Request timed out".into(),
            });
        }
        Ok(Err(_)) => return Err(failed()),
        Ok(Ok(response)) => response,
    };
    let code = response.status().as_u16();
    let accepted = Matcher::parse(&check.matcher).is_some_and(|m| m.accepts(code));
    if accepted {
        Ok(())
    } else {
        Err(Failure {
            reason: "Target.ResponseCodeMismatch",
            description: format!("Health checks failed with these codes: [{code}]"),
        })
    }
}

/// Checks one target every interval, forever; publishes each verdict.
async fn check_target(
    spec: CheckSpec,
    client: CheckClient,
    reports: mpsc::UnboundedSender<HealthReport>,
) {
    let mut tracker = Tracker::new(spec.stats.health());
    let interval = Duration::from_millis(spec.check.interval_ms.max(1));
    let mut last_failure: Option<Failure> = None;
    loop {
        let started = Instant::now();
        let result = check_once(&client, &spec).await;
        let passed = result.is_ok();
        if let Err(f) = result {
            last_failure = Some(f);
        }
        let before = tracker.health;
        let health = tracker.observe(passed, &spec.check);
        spec.stats.set_health(health);
        if health != before {
            tracing::info!(
                target_group = %spec.key.target_group_arn,
                target = %spec.key.id,
                port = spec.key.port,
                "target is now {health:?}"
            );
        }
        let report = match health {
            Health::Unknown => None,
            Health::Healthy => Some((true, None)),
            Health::Unhealthy => Some((false, last_failure.clone())),
        };
        if let Some((healthy, failure)) = report {
            let sent = reports.send(HealthReport {
                target_group_arn: spec.key.target_group_arn.clone(),
                id: spec.key.id.clone(),
                port: spec.key.port,
                healthy,
                reason: failure.as_ref().map(|f| f.reason.to_string()),
                description: failure.map(|f| f.description),
            });
            if sent.is_err() {
                return;
            }
        }
        tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
    }
}

/// Keeps one check loop per served target, following configuration changes, until dropped.
/// Verdicts go to `reports`.
pub async fn run(shared: Arc<Shared>, reports: mpsc::UnboundedSender<HealthReport>) {
    let client = check_client();
    let mut changes = shared.subscribe();
    let mut running: HashMap<TargetKey, (String, JoinHandle<()>)> = HashMap::new();
    loop {
        let current = shared.current();
        let mut wanted: HashMap<TargetKey, &CheckSpec> = HashMap::new();
        for spec in &current.checks {
            wanted.insert(spec.key.clone(), spec);
        }
        running.retain(|key, (signature, task)| {
            let keep = wanted
                .get(key)
                .is_some_and(|spec| signature_of(spec) == *signature);
            if !keep {
                task.abort();
            }
            keep
        });
        for (key, spec) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let task = tokio::spawn(check_target(spec.clone(), client.clone(), reports.clone()));
            running.insert(key, (signature_of(spec), task));
        }
        if changes.changed().await.is_err() {
            break;
        }
    }
    for (_, (_, task)) in running {
        task.abort();
    }
}

/// What makes a check loop stale when it changes.
fn signature_of(spec: &CheckSpec) -> String {
    format!("{}|{:?}", spec.address, spec.check)
}

/// How soon the same verdict is reported again while the control plane still disagrees.
const REPORT_AGAIN_AFTER: Duration = Duration::from_secs(2);

/// Sends verdicts that differ from what the control plane holds, through `post`, until
/// `verdicts` closes. A failed post is retried.
pub async fn report<F, Fut>(
    shared: Arc<Shared>,
    mut verdicts: mpsc::UnboundedReceiver<HealthReport>,
    post: F,
) where
    F: Fn(Vec<HealthReport>) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut latest: HashMap<TargetKey, HealthReport> = HashMap::new();
    let mut posted: HashMap<TargetKey, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            verdict = verdicts.recv() => match verdict {
                Some(r) => {
                    let key = TargetKey { target_group_arn: r.target_group_arn.clone(), id: r.id.clone(), port: r.port };
                    latest.insert(key, r);
                    continue;
                }
                None => return,
            },
            _ = tick.tick() => {}
        }
        let current = shared.current();
        let stored: HashMap<&TargetKey, TargetState> =
            current.checks.iter().map(|c| (&c.key, c.stored)).collect();
        latest.retain(|k, _| stored.contains_key(k));
        posted.retain(|k, _| stored.contains_key(k));
        let now = Instant::now();
        let mut batch = Vec::new();
        let mut keys = Vec::new();
        for (key, r) in &latest {
            let held = stored.get(key).copied();
            let agrees = match held {
                Some(TargetState::Healthy) => r.healthy,
                Some(TargetState::Unhealthy) => !r.healthy,
                _ => false,
            };
            let recent = posted
                .get(key)
                .is_some_and(|t| now.duration_since(*t) < REPORT_AGAIN_AFTER);
            if !agrees && !recent {
                batch.push(r.clone());
                keys.push(key.clone());
            }
        }
        if batch.is_empty() {
            continue;
        }
        match post(batch).await {
            Ok(()) => {
                failing = false;
                for key in keys {
                    posted.insert(key, now);
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("could not report target health: {e}; retrying");
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::elbv2::Protocol;

    fn check(healthy: u32, unhealthy: u32) -> HealthCheckConfig {
        HealthCheckConfig {
            enabled: true,
            protocol: Protocol::Http,
            path: "/".into(),
            interval_ms: 1000,
            timeout_ms: 500,
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
            matcher: "200".into(),
        }
    }

    #[test]
    fn matchers() {
        let m = Matcher::parse("200-299").unwrap();
        assert!(m.accepts(200) && m.accepts(299) && !m.accepts(300) && !m.accepts(199));
        let m = Matcher::parse("200,302").unwrap();
        assert!(m.accepts(200) && m.accepts(302) && !m.accepts(301));
        assert!(Matcher::parse("404").unwrap().accepts(404));
        for bad in ["", "abc", "300-200", "200,", "99", "200-700"] {
            assert!(Matcher::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn thresholds() {
        let c = check(3, 2);
        let mut t = Tracker::new(Health::Unknown);
        assert_eq!(t.observe(false, &c), Health::Unknown);
        assert_eq!(
            t.observe(true, &c),
            Health::Healthy,
            "one pass makes a new target healthy"
        );
        assert_eq!(t.observe(false, &c), Health::Healthy);
        assert_eq!(
            t.observe(true, &c),
            Health::Healthy,
            "a pass resets the failures"
        );
        assert_eq!(t.observe(false, &c), Health::Healthy);
        assert_eq!(t.observe(false, &c), Health::Unhealthy);
        assert_eq!(t.observe(true, &c), Health::Unhealthy);
        assert_eq!(t.observe(true, &c), Health::Unhealthy);
        assert_eq!(t.observe(true, &c), Health::Healthy);
        let mut new = Tracker::new(Health::Unknown);
        new.observe(false, &c);
        assert_eq!(new.observe(false, &c), Health::Unhealthy);
    }
}
