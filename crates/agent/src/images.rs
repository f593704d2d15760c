//! How the agent gets a task's images: the ECS agent's `ECS_IMAGE_PULL_BEHAVIOR`.
//!
//! | behaviour | pulls | when the pull fails |
//! |---|---|---|
//! | `default` | every time | the cached image, if there is one |
//! | `always` | every time | the task fails |
//! | `once` | the first time this agent needs the image, or when it is no longer cached | the task fails |
//! | `prefer-cached` | only when the image is not cached | the task fails |
//!
//! A failure is ECS's reason, `CannotPullContainerError: …`, naming the image.
//!
//! Images the agent pulled are cleaned up as the ECS agent does (ECS_IMAGE_CLEANUP_INTERVAL,
//! ECS_IMAGE_MINIMUM_CLEANUP_AGE, ECS_NUM_IMAGES_DELETE_PER_CYCLE): [`Images::sweep`] removes,
//! oldest use first, those no task has asked for within the minimum age, and the runtime
//! refuses any that a container (running or stopped) still uses. Images the agent did not
//! pull — built or loaded on the host — are never removed.

use crate::runtime::{RegistryAuth, Runtime};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullBehavior {
    #[default]
    Default,
    Always,
    Once,
    PreferCached,
}

impl FromStr for PullBehavior {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(PullBehavior::Default),
            "always" => Ok(PullBehavior::Always),
            "once" => Ok(PullBehavior::Once),
            "prefer-cached" => Ok(PullBehavior::PreferCached),
            _ => Err(format!(
                "'{s}' is not an image pull behavior; use default, always, once or prefer-cached"
            )),
        }
    }
}

impl fmt::Display for PullBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PullBehavior::Default => "default",
            PullBehavior::Always => "always",
            PullBehavior::Once => "once",
            PullBehavior::PreferCached => "prefer-cached",
        })
    }
}

/// When pulled images are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// How often [`Images::sweep`] runs; `None` turns cleanup off (ECS_DISABLE_IMAGE_CLEANUP).
    pub interval: Option<Duration>,
    /// An image is removed only once no task has asked for it for this long.
    pub minimum_age: Duration,
    /// At most this many images are removed per sweep.
    pub per_cycle: usize,
}

impl Default for CleanupPolicy {
    /// The ECS agent's defaults: every 30 minutes, unused for an hour, 5 at a time.
    fn default() -> Self {
        CleanupPolicy {
            interval: Some(Duration::from_secs(30 * 60)),
            minimum_age: Duration::from_secs(3600),
            per_cycle: 5,
        }
    }
}

/// The agent's images: its pull behaviour, and the images it has pulled since it started with
/// when a task last asked for each.
#[derive(Debug, Default)]
pub struct Images {
    behavior: PullBehavior,
    pulled: Mutex<HashMap<String, Instant>>,
}

impl Images {
    pub fn new(behavior: PullBehavior) -> Self {
        Images {
            behavior,
            pulled: Mutex::default(),
        }
    }

    /// Makes `image` available to create containers from. Returns whether it was pulled
    /// (false: the cached image is used), or the reason it cannot be had.
    pub async fn ensure(
        &self,
        runtime: &dyn Runtime,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<bool, String> {
        let cached = || async { runtime.has_image(image).await.unwrap_or(false) };
        let use_cache = match self.behavior {
            PullBehavior::Default | PullBehavior::Always => false,
            PullBehavior::Once => self.was_pulled(image) && cached().await,
            PullBehavior::PreferCached => cached().await,
        };
        if use_cache {
            self.used(image, false);
            return Ok(false);
        }
        match runtime.pull_image(image, auth).await {
            Ok(()) => {
                self.used(image, true);
                Ok(true)
            }
            Err(pull) if self.behavior == PullBehavior::Default && cached().await => {
                tracing::debug!(image, error = %pull, "pull failed; using the cached image");
                Ok(false)
            }
            Err(pull) if self.behavior == PullBehavior::Default => Err(format!(
                "CannotPullContainerError: could not pull image '{image}' and it is not cached on this host: {pull}"
            )),
            Err(pull) => Err(format!(
                "CannotPullContainerError: could not pull image '{image}' (image pull behavior {}): {pull}",
                self.behavior
            )),
        }
    }

    fn was_pulled(&self, image: &str) -> bool {
        self.lock().contains_key(image)
    }

    /// Notes that a task asked for `image` now; `pulled` makes it one the agent pulled.
    fn used(&self, image: &str, pulled: bool) {
        let mut held = self.lock();
        if pulled || held.contains_key(image) {
            held.insert(image.to_owned(), Instant::now());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.pulled.lock().expect("images lock poisoned")
    }

    /// Removes up to `policy.per_cycle` pulled images that no task asked for since
    /// `now - policy.minimum_age`, least recently used first; returns those removed.
    pub async fn sweep(
        &self,
        runtime: &dyn Runtime,
        policy: &CleanupPolicy,
        now: Instant,
    ) -> Vec<String> {
        let mut idle: Vec<(Instant, String)> = self
            .lock()
            .iter()
            .filter(|(_, used)| now.saturating_duration_since(**used) >= policy.minimum_age)
            .map(|(image, used)| (*used, image.clone()))
            .collect();
        idle.sort();
        let mut removed = Vec::new();
        for (used, image) in idle {
            if removed.len() >= policy.per_cycle {
                break;
            }
            match runtime.remove_image(&image).await {
                Ok(()) => {
                    let mut held = self.lock();
                    // A task may have asked for it again meanwhile; then it is pulled anew.
                    if held.get(&image) == Some(&used) {
                        held.remove(&image);
                    }
                    tracing::info!(image, "removed an image no task has used for a while");
                    removed.push(image);
                }
                Err(e) => tracing::debug!(image, error = %e, "image kept"),
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::Mock;

    async fn outcome(
        behavior: PullBehavior,
        cached: bool,
        pullable: bool,
    ) -> (Result<bool, String>, usize) {
        let mock = Mock::new();
        if cached {
            mock.cache_image("web:1");
        }
        if pullable {
            mock.allow_pull("web:1");
        }
        let got = Images::new(behavior).ensure(&mock, "web:1", None).await;
        (got, mock.pulls().len())
    }

    #[tokio::test]
    async fn each_behavior_pulls_and_falls_back_as_ecs_does() {
        use PullBehavior::*;
        // (behavior, cached, pullable) → (pulled?, pulls asked for); Err → None.
        let table = [
            (Default, true, true, Some(true), 1),
            (Default, true, false, Some(false), 1),
            (Default, false, false, None, 1),
            (Always, true, false, None, 1),
            (Always, false, true, Some(true), 1),
            (Once, true, true, Some(true), 1),
            (Once, true, false, None, 1),
            (PreferCached, true, false, Some(false), 0),
            (PreferCached, false, true, Some(true), 1),
            (PreferCached, false, false, None, 1),
        ];
        for (behavior, cached, pullable, want, pulls) in table {
            let (got, asked) = outcome(behavior, cached, pullable).await;
            let case = format!("{behavior} cached={cached} pullable={pullable}: {got:?}");
            assert_eq!(got.as_ref().ok().copied(), want, "{case}");
            assert_eq!(asked, pulls, "{case}");
            if let Err(reason) = got {
                assert!(
                    reason.starts_with("CannotPullContainerError:") && reason.contains("web:1"),
                    "{case}"
                );
            }
        }
    }

    #[tokio::test]
    async fn once_pulls_only_the_first_time() {
        let mock = Mock::new();
        mock.allow_pull("web:1");
        let images = Images::new(PullBehavior::Once);
        assert_eq!(images.ensure(&mock, "web:1", None).await, Ok(true));
        assert_eq!(images.ensure(&mock, "web:1", None).await, Ok(false));
        assert_eq!(mock.pulls().len(), 1);
    }

    #[tokio::test]
    async fn sweeps_only_idle_unused_images_the_agent_pulled() {
        let mock = Mock::new();
        for image in ["old:1", "busy:1", "fresh:1", "old:2"] {
            mock.allow_pull(image);
        }
        mock.cache_image("local:1");
        let images = Images::new(PullBehavior::Default);
        for image in ["old:1", "old:2", "busy:1", "fresh:1"] {
            assert_eq!(images.ensure(&mock, image, None).await, Ok(true));
        }
        let spec = crate::runtime::ContainerSpec {
            image: "busy:1".into(),
            ..Default::default()
        };
        mock.create(&spec).await.unwrap();
        let policy = CleanupPolicy {
            interval: Some(Duration::from_secs(1)),
            minimum_age: Duration::from_secs(3600),
            per_cycle: 1,
        };
        // Nothing is idle yet.
        assert!(
            images
                .sweep(&mock, &policy, Instant::now())
                .await
                .is_empty()
        );
        let later = Instant::now() + Duration::from_secs(7200);
        // One per cycle, least recently used first; the busy image stays; the host's own
        // image was never the agent's to remove.
        assert_eq!(images.sweep(&mock, &policy, later).await, ["old:1"]);
        let policy = CleanupPolicy {
            per_cycle: 5,
            ..policy
        };
        let mut rest = images.sweep(&mock, &policy, later).await;
        rest.sort();
        assert_eq!(rest, ["fresh:1", "old:2"]);
        assert!(mock.is_cached("busy:1") && mock.is_cached("local:1"));
        assert!(!mock.is_cached("old:1") && !mock.is_cached("old:2"));
    }

    #[test]
    fn parses_the_ecs_agent_names() {
        for name in ["default", "always", "once", "prefer-cached"] {
            assert_eq!(name.parse::<PullBehavior>().unwrap().to_string(), name);
        }
        assert!(
            "sometimes"
                .parse::<PullBehavior>()
                .unwrap_err()
                .contains("prefer-cached")
        );
    }
}
