//! An in-memory [`Runtime`] for fast tests of the engine: images, containers and their exits
//! are whatever the test says.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use berth_model::task::HealthStatus;

use crate::runtime::{
    ContainerInfo, ContainerSpec, ContainerState, RegistryAuth, Runtime, RuntimeError, VolumeSpec,
};

/// The exit code of a process ended by SIGTERM.
pub const SIGTERM_EXIT: i64 = 143;

#[derive(Default)]
struct State {
    cached: BTreeSet<String>,
    pullable: BTreeSet<String>,
    /// Every pull asked for, with the credentials it came with.
    pulls: Vec<(String, Option<RegistryAuth>)>,
    containers: BTreeMap<String, (ContainerSpec, ContainerState)>,
    health: BTreeMap<String, HealthStatus>,
    volumes: BTreeMap<String, VolumeSpec>,
    stops: Vec<(String, Duration)>,
    events: Vec<(&'static str, String)>,
    created: usize,
}

/// The mock runtime.
#[derive(Default)]
pub struct Mock {
    state: Mutex<State>,
}

impl Mock {
    pub fn new() -> Self {
        Mock::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every pull asked for so far, with its credentials.
    pub fn pulls(&self) -> Vec<(String, Option<RegistryAuth>)> {
        self.state().pulls.clone()
    }

    /// Puts `image` in the local cache (its pulls still fail unless it is also pullable).
    pub fn cache_image(&self, image: &str) {
        self.state().cached.insert(image.to_owned());
    }

    /// Whether `image` is in the local cache.
    pub fn is_cached(&self, image: &str) -> bool {
        self.state().cached.contains(image)
    }

    /// Lets `image` be pulled.
    pub fn allow_pull(&self, image: &str) {
        self.state().pullable.insert(image.to_owned());
    }

    /// Makes a running container exit with `exit_code`, as if its process ended.
    pub fn exit(&self, id: &str, exit_code: i64, oom_killed: bool) {
        if let Some((_, state)) = self.state().containers.get_mut(id) {
            *state = ContainerState::Exited {
                exit_code,
                oom_killed,
            };
        }
    }

    /// Every container: id, spec, state.
    pub fn containers(&self) -> Vec<(String, ContainerSpec, ContainerState)> {
        self.state()
            .containers
            .iter()
            .map(|(id, (spec, state))| (id.clone(), spec.clone(), state.clone()))
            .collect()
    }

    /// Every stop the runtime was asked for, with its timeout.
    pub fn stops(&self) -> Vec<(String, Duration)> {
        self.state().stops.clone()
    }

    /// Sets what a container's health check says.
    pub fn set_health(&self, id: &str, health: HealthStatus) {
        self.state().health.insert(id.to_owned(), health);
    }

    /// Every `start`, `stop` and `remove` of a container, in order, with the container's id.
    pub fn events(&self) -> Vec<(&'static str, String)> {
        self.state().events.clone()
    }

    /// The named volumes that exist.
    pub fn volumes(&self) -> Vec<VolumeSpec> {
        self.state().volumes.values().cloned().collect()
    }
}

#[async_trait]
impl Runtime for Mock {
    async fn version(&self) -> Result<String, RuntimeError> {
        Ok("DockerVersion: mock".into())
    }

    async fn pull_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        let mut state = self.state();
        state.pulls.push((image.to_owned(), auth.cloned()));
        if state.pullable.contains(image) {
            state.cached.insert(image.to_owned());
            Ok(())
        } else {
            Err(RuntimeError::Failed(format!(
                "pull access denied for {image}"
            )))
        }
    }

    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        Ok(self.state().cached.contains(image))
    }

    async fn remove_image(&self, image: &str) -> Result<(), RuntimeError> {
        let mut state = self.state();
        if state
            .containers
            .values()
            .any(|(spec, _)| spec.image == image)
        {
            return Err(RuntimeError::Failed(format!(
                "conflict: unable to remove {image}: a container uses it"
            )));
        }
        state.cached.remove(image);
        Ok(())
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let mut state = self.state();
        if !state.cached.contains(&spec.image) {
            return Err(RuntimeError::NotFound(format!(
                "no such image: {}",
                spec.image
            )));
        }
        if state.containers.values().any(|(s, _)| s.name == spec.name) {
            return Err(RuntimeError::Failed(format!(
                "the container name {} is already in use",
                spec.name
            )));
        }
        state.created += 1;
        let id = format!("mock{:04}", state.created);
        if spec.health_check.is_some() {
            state.health.insert(id.clone(), HealthStatus::Unknown);
        }
        state
            .containers
            .insert(id.clone(), (spec.clone(), ContainerState::Created));
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.state();
        state.events.push(("start", id.to_owned()));
        match state.containers.get_mut(id) {
            Some((_, s)) => {
                *s = ContainerState::Running;
                Ok(())
            }
            None => Err(RuntimeError::NotFound(format!("no such container: {id}"))),
        }
    }

    async fn stop(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let mut state = self.state();
        state.stops.push((id.to_owned(), timeout));
        state.events.push(("stop", id.to_owned()));
        match state.containers.get_mut(id) {
            Some((_, s)) => {
                if *s == ContainerState::Running {
                    *s = ContainerState::Exited {
                        exit_code: SIGTERM_EXIT,
                        oom_killed: false,
                    };
                }
                Ok(())
            }
            None => Err(RuntimeError::NotFound(format!("no such container: {id}"))),
        }
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        let state = self.state();
        let (spec, s) = state
            .containers
            .get(id)
            .ok_or_else(|| RuntimeError::NotFound(format!("no such container: {id}")))?;
        Ok(ContainerInfo {
            id: id.to_owned(),
            labels: spec.labels.clone(),
            state: s.clone(),
            ports: spec.ports.clone(),
            health: state.health.get(id).copied(),
        })
    }

    async fn list(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let ids: Vec<String> = self
            .state()
            .containers
            .iter()
            .filter(|(_, (spec, _))| {
                labels
                    .iter()
                    .all(|(k, v)| spec.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in ids {
            out.push(self.inspect(&id).await?);
        }
        Ok(out)
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.state();
        state.events.push(("remove", id.to_owned()));
        if let Some((_, ContainerState::Running)) = state.containers.get(id) {
            return Err(RuntimeError::Failed(format!(
                "cannot remove running container {id}"
            )));
        }
        state.containers.remove(id);
        state.health.remove(id);
        Ok(())
    }

    async fn has_volume(&self, name: &str) -> Result<bool, RuntimeError> {
        Ok(self.state().volumes.contains_key(name))
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), RuntimeError> {
        self.state()
            .volumes
            .entry(spec.name.clone())
            .or_insert_with(|| spec.clone());
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        self.state().volumes.remove(name);
        Ok(())
    }
}
