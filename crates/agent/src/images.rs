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

use crate::runtime::{RegistryAuth, Runtime};
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

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

/// The agent's images: its pull behaviour and the images it has pulled since it started.
#[derive(Debug, Default)]
pub struct Images {
    behavior: PullBehavior,
    pulled: Mutex<HashSet<String>>,
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
            return Ok(false);
        }
        match runtime.pull_image(image, auth).await {
            Ok(()) => {
                self.pulled
                    .lock()
                    .expect("images lock poisoned")
                    .insert(image.to_owned());
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
        self.pulled
            .lock()
            .expect("images lock poisoned")
            .contains(image)
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
