//! An in-memory [`Runtime`] for fast tests of the engine: images, containers and their exits
//! are whatever the test says. Its containers send events as Docker's do (start, die, oom,
//! health, destroy) to every subscription whose labels they carry; a test can also change a
//! container unseen, as if the event were lost, and break the subscriptions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use berth_model::task::HealthStatus;
use futures::StreamExt;
use futures::channel::mpsc;

use crate::runtime::{
    ContainerEvent, ContainerInfo, ContainerSpec, ContainerState, EventKind, EventStream,
    RegistryAuth, Runtime, RuntimeError, VolumeSpec,
};

/// One subscription to events: the labels it asked for, and its stream's sending end.
struct Subscriber {
    labels: Vec<(String, String)>,
    sender: mpsc::UnboundedSender<Result<ContainerEvent, RuntimeError>>,
}

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
    subscribers: Vec<Subscriber>,
    subscriptions: usize,
    inspections: usize,
}

impl State {
    /// Sends `kind` of container `id` to the subscriptions whose labels it carries.
    fn emit(&mut self, id: &str, kind: EventKind) {
        let Some((spec, _)) = self.containers.get(id) else {
            return;
        };
        let event = ContainerEvent {
            id: id.to_owned(),
            kind,
            attributes: spec.labels.clone(),
        };
        self.subscribers.retain(|s| {
            let wanted = s
                .labels
                .iter()
                .all(|(k, v)| event.attribute(k) == Some(v.as_str()));
            !wanted || s.sender.unbounded_send(Ok(event.clone())).is_ok()
        });
    }

    /// Sets a running container's state to exited; whether it was running.
    fn exit(&mut self, id: &str, exit_code: i64, oom_killed: bool) -> bool {
        match self.containers.get_mut(id) {
            Some((_, state)) if *state == ContainerState::Running => {
                *state = ContainerState::Exited {
                    exit_code,
                    oom_killed,
                };
                true
            }
            _ => false,
        }
    }
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

    /// Makes a running container exit with `exit_code`, as if its process ended, with Docker's
    /// events (`oom` first when the kernel killed it).
    pub fn exit(&self, id: &str, exit_code: i64, oom_killed: bool) {
        let mut state = self.state();
        if state.exit(id, exit_code, oom_killed) {
            if oom_killed {
                state.emit(id, EventKind::Oom);
            }
            state.emit(id, EventKind::Die);
        }
    }

    /// Makes a running container exit without an event, as if the event were lost.
    pub fn exit_unseen(&self, id: &str, exit_code: i64) {
        self.state().exit(id, exit_code, false);
    }

    /// Ends every event stream with an error, as when Docker restarts.
    pub fn break_events(&self) {
        for s in self.state().subscribers.drain(..) {
            let _ = s.sender.unbounded_send(Err(RuntimeError::Failed(
                "unexpected EOF: the Docker Engine went away".into(),
            )));
        }
    }

    /// How many times events were subscribed to.
    pub fn subscriptions(&self) -> usize {
        self.state().subscriptions
    }

    /// How many containers were inspected so far (listing inspects each too).
    pub fn inspections(&self) -> usize {
        self.state().inspections
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

    /// Sets what a container's health check says, with an event when the verdict changes.
    pub fn set_health(&self, id: &str, health: HealthStatus) {
        let mut state = self.state();
        if state.health.insert(id.to_owned(), health) != Some(health) {
            state.emit(id, EventKind::Health);
        }
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
                state.emit(id, EventKind::Start);
                Ok(())
            }
            None => Err(RuntimeError::NotFound(format!("no such container: {id}"))),
        }
    }

    async fn stop(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let mut state = self.state();
        state.stops.push((id.to_owned(), timeout));
        state.events.push(("stop", id.to_owned()));
        if !state.containers.contains_key(id) {
            return Err(RuntimeError::NotFound(format!("no such container: {id}")));
        }
        if state.exit(id, SIGTERM_EXIT, false) {
            state.emit(id, EventKind::Die);
        }
        Ok(())
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        let mut state = self.state();
        state.inspections += 1;
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
        state.emit(id, EventKind::Destroy);
        state.containers.remove(id);
        state.health.remove(id);
        Ok(())
    }

    async fn events(&self, labels: &[(&str, &str)]) -> Result<EventStream, RuntimeError> {
        let (sender, receiver) = mpsc::unbounded();
        let mut state = self.state();
        state.subscriptions += 1;
        state.subscribers.push(Subscriber {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            sender,
        });
        Ok(receiver.boxed())
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
