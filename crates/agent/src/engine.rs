//! The task engine: reconciles the tasks the control plane wants on this instance with the
//! containers that run here.
//!
//! Each [`Engine::tick`] lists the tasks desired RUNNING on this instance; a task new to the
//! engine gets its own manager (a tokio task) that pulls, creates and starts its containers,
//! reports RUNNING, watches them, and — when an essential container exits or the task is no
//! longer desired — stops the rest (SIGTERM, then SIGKILL after `stopTimeout`) and reports
//! STOPPED. Containers that carry this instance's labels when the engine starts are adopted by
//! their task's manager instead of started again; those of tasks no longer desired are stopped
//! and reported.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_client::ClientError;
use berth_model::common::TransportProtocol;
use berth_model::task::{ContainerStatus, NetworkBinding, Task, TaskStatus};
use berth_model::task_definition::TaskDefinition;
use berth_model::time::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control::{ContainerStateChange, ControlPlane, TaskStateChange};
use crate::ports::PortPicker;
use crate::runtime::{
    ContainerInfo, ContainerState, PortBinding, Runtime, RuntimeError, ensure_image, labels,
};
use crate::spec::{Placement, container_spec};

/// The task's stoppedReason when an essential container exits (ECS's words).
pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";
/// A container's reason when the kernel killed it for its memory limit (ECS's words).
pub const OOM_KILLED: &str = "OutOfMemoryError: Container killed due to memory usage";

/// How the engine runs.
#[derive(Clone)]
pub struct EngineConfig {
    pub cluster: String,
    pub container_instance_arn: String,
    /// Used when a container has no `stopTimeout` (ECS_CONTAINER_STOP_TIMEOUT, 30 s).
    pub default_stop_timeout: Duration,
    /// How often running containers are inspected for exits.
    pub monitor_interval: Duration,
    /// Whether a host port is free (binding it, for real; tests may pretend).
    pub probe: fn(u16, TransportProtocol) -> bool,
}

struct Managed {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// The engine of one container instance.
pub struct Engine {
    runtime: Arc<dyn Runtime>,
    control: Arc<dyn ControlPlane>,
    ports: Arc<Mutex<PortPicker>>,
    config: Arc<EngineConfig>,
    tasks: HashMap<String, Managed>,
    /// Labelled containers found at start, by task ARN, until the first reconciliation.
    adoptable: Option<HashMap<String, Vec<ContainerInfo>>>,
}

impl Engine {
    /// An engine that first looks for containers this instance started before a restart.
    pub async fn new(
        runtime: Arc<dyn Runtime>,
        control: Arc<dyn ControlPlane>,
        ports: PortPicker,
        config: EngineConfig,
    ) -> Result<Engine, RuntimeError> {
        let found = runtime
            .list(&[
                (labels::CLUSTER, &config.cluster),
                (labels::CONTAINER_INSTANCE, &config.container_instance_arn),
            ])
            .await?;
        let mut adoptable: HashMap<String, Vec<ContainerInfo>> = HashMap::new();
        for info in found {
            if let Some(task) = info.label(labels::TASK_ARN) {
                adoptable.entry(task.to_owned()).or_default().push(info);
            }
        }
        if !adoptable.is_empty() {
            tracing::info!(
                tasks = adoptable.len(),
                "found containers of earlier tasks to adopt"
            );
        }
        Ok(Engine {
            runtime,
            control,
            ports: Arc::new(Mutex::new(ports)),
            config: Arc::new(config),
            tasks: HashMap::new(),
            adoptable: Some(adoptable),
        })
    }

    /// One reconciliation with the control plane.
    pub async fn tick(&mut self) -> Result<(), ClientError> {
        let desired: HashSet<String> = self.control.desired_running().await?.into_iter().collect();
        // A finished manager is forgotten only once the server no longer lists its task, so a
        // listing taken just before its STOPPED report cannot start the task again.
        self.tasks
            .retain(|arn, m| !m.handle.is_finished() || desired.contains(arn));
        for (arn, m) in &self.tasks {
            if !desired.contains(arn) {
                m.stop.send_replace(true);
            }
        }
        let mut wanted: Vec<String> = desired
            .iter()
            .filter(|arn| !self.tasks.contains_key(*arn))
            .cloned()
            .collect();
        let orphans = self.adoptable.as_ref().map_or_else(Vec::new, |a| {
            a.keys()
                .filter(|arn| !desired.contains(*arn))
                .cloned()
                .collect()
        });
        wanted.extend(orphans.iter().cloned());
        if wanted.is_empty() {
            self.adoptable = None;
            return Ok(());
        }
        let tasks = self.control.describe_tasks(&wanted).await?;
        let mut adoptable = self.adoptable.take().unwrap_or_default();
        for task in tasks {
            let definition = match self
                .control
                .task_definition(&task.task_definition_arn)
                .await
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(task = %task.task_arn, "could not read the task definition: {e}");
                    if let Some(left) = adoptable.remove(&task.task_arn) {
                        adoptable.insert(task.task_arn.clone(), left);
                    }
                    continue;
                }
            };
            let adopted = adoptable.remove(&task.task_arn).unwrap_or_default();
            let stop_now = !desired.contains(&task.task_arn);
            let all_exited = adopted
                .iter()
                .all(|c| matches!(c.state, ContainerState::Exited { .. }));
            if stop_now && task.last_status == TaskStatus::Stopped && all_exited {
                continue; // Old news: the server already has this task as STOPPED.
            }
            self.spawn(task, definition, adopted, stop_now);
        }
        for (arn, containers) in adoptable {
            if !orphans.contains(&arn) {
                // A desired task that could not be taken on this time: keep its containers
                // for the next tick, so they are adopted rather than started twice.
                self.adoptable
                    .get_or_insert_with(HashMap::new)
                    .insert(arn, containers);
                continue;
            }
            // Containers of a task the server does not know at all: stop them, report nothing.
            let runtime = self.runtime.clone();
            let timeout = self.config.default_stop_timeout;
            tokio::spawn(async move {
                for c in containers
                    .into_iter()
                    .filter(|c| c.state == ContainerState::Running)
                {
                    tracing::info!(task = %arn, container = %c.id, "stopping a container of a task the server does not know");
                    if let Err(e) = runtime.stop(&c.id, timeout).await {
                        tracing::warn!(container = %c.id, "could not stop the container: {e}");
                    }
                }
            });
        }
        Ok(())
    }

    fn spawn(
        &mut self,
        task: Task,
        definition: TaskDefinition,
        adopted: Vec<ContainerInfo>,
        stop_now: bool,
    ) {
        let (stop, stop_rx) = watch::channel(stop_now);
        let arn = task.task_arn.clone();
        let run = TaskRun::new(
            task,
            definition,
            self.runtime.clone(),
            self.control.clone(),
            self.ports.clone(),
            self.config.clone(),
        );
        let handle = tokio::spawn(run.run(adopted, stop_rx));
        self.tasks.insert(arn, Managed { stop, handle });
    }

    /// The ARNs of the tasks whose managers are still working.
    pub fn active_tasks(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|(_, m)| !m.handle.is_finished())
            .map(|(arn, _)| arn.clone())
            .collect()
    }
}

impl Drop for Engine {
    /// The managers end with the engine; the containers go on running, to be adopted later.
    fn drop(&mut self) {
        for m in self.tasks.values() {
            m.handle.abort();
        }
    }
}

fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(ms)
}

/// One container of a task, as its manager tracks it.
struct Local {
    name: String,
    essential: bool,
    stop_timeout: Duration,
    id: Option<String>,
    status: ContainerStatus,
    exit_code: Option<i32>,
    reason: Option<String>,
    ports: Vec<PortBinding>,
}

impl Local {
    fn change(&self) -> ContainerStateChange {
        ContainerStateChange {
            container_name: self.name.clone(),
            runtime_id: self.id.clone(),
            status: self.status,
            exit_code: self.exit_code,
            reason: self.reason.clone(),
            network_bindings: self
                .ports
                .iter()
                .map(|p| NetworkBinding {
                    bind_ip: Some("0.0.0.0".into()),
                    container_port: Some(i32::from(p.container_port)),
                    host_port: Some(i32::from(p.host_port)),
                    protocol: Some(p.protocol),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn exited(&mut self, exit_code: i64, oom_killed: bool) {
        self.status = ContainerStatus::Stopped;
        self.exit_code = Some(i32::try_from(exit_code).unwrap_or(i32::MAX));
        if oom_killed && self.reason.is_none() {
            self.reason = Some(OOM_KILLED.into());
        }
    }
}

/// The manager of one task.
struct TaskRun {
    task: Task,
    definition: TaskDefinition,
    runtime: Arc<dyn Runtime>,
    control: Arc<dyn ControlPlane>,
    ports: Arc<Mutex<PortPicker>>,
    config: Arc<EngineConfig>,
    containers: Vec<Local>,
    pull_started_at: Option<Timestamp>,
    pull_stopped_at: Option<Timestamp>,
}

impl TaskRun {
    fn new(
        task: Task,
        definition: TaskDefinition,
        runtime: Arc<dyn Runtime>,
        control: Arc<dyn ControlPlane>,
        ports: Arc<Mutex<PortPicker>>,
        config: Arc<EngineConfig>,
    ) -> Self {
        let containers = definition
            .container_definitions
            .iter()
            .map(|c| Local {
                name: c.name.clone().unwrap_or_default(),
                essential: c.is_essential(),
                stop_timeout: c
                    .stop_timeout
                    .and_then(|s| u64::try_from(s).ok())
                    .map_or(config.default_stop_timeout, Duration::from_secs),
                id: None,
                status: ContainerStatus::Pending,
                exit_code: None,
                reason: None,
                ports: Vec::new(),
            })
            .collect();
        TaskRun {
            task,
            definition,
            runtime,
            control,
            ports,
            config,
            containers,
            pull_started_at: None,
            pull_stopped_at: None,
        }
    }

    fn with_ports<T>(&self, f: impl FnOnce(&mut PortPicker) -> T) -> T {
        let mut guard = self
            .ports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    async fn run(mut self, adopted: Vec<ContainerInfo>, mut stop: watch::Receiver<bool>) {
        self.adopt(adopted);
        let mut reason = None;
        if !*stop.borrow() {
            reason = self.start_all(&stop).await.err();
        }
        if reason.is_none() && !*stop.borrow() {
            self.report(TaskStatus::Running, None).await;
            reason = self.monitor(&mut stop).await;
        }
        self.stop_all().await;
        self.report(TaskStatus::Stopped, reason).await;
        let held: Vec<PortBinding> = self
            .containers
            .iter()
            .flat_map(|c| c.ports.clone())
            .collect();
        self.with_ports(|p| {
            for b in held {
                p.release(b.host_port, b.protocol);
            }
        });
    }

    fn adopt(&mut self, adopted: Vec<ContainerInfo>) {
        for info in adopted {
            let Some(name) = info.label(labels::CONTAINER_NAME) else {
                continue;
            };
            let Some(local) = self.containers.iter_mut().find(|c| c.name == name) else {
                continue;
            };
            tracing::info!(task = %self.task.task_arn, container = %name, id = %info.id, state = ?info.state, "adopting a container started before the agent restarted");
            local.id = Some(info.id.clone());
            local.ports = info.ports.clone();
            match info.state {
                ContainerState::Created => local.status = ContainerStatus::Created,
                ContainerState::Running => local.status = ContainerStatus::Running,
                ContainerState::Exited {
                    exit_code,
                    oom_killed,
                } => local.exited(exit_code, oom_killed),
            }
        }
        let held: Vec<PortBinding> = self
            .containers
            .iter()
            .flat_map(|c| c.ports.clone())
            .collect();
        self.with_ports(|p| held.iter().for_each(|b| p.hold(b.host_port, b.protocol)));
    }

    /// Pulls, creates and starts every container that is not running yet. `Err` is the
    /// reason the task cannot run.
    async fn start_all(&mut self, stop: &watch::Receiver<bool>) -> Result<(), String> {
        for i in 0..self.containers.len() {
            if *stop.borrow() {
                return Ok(());
            }
            let local = &self.containers[i];
            if local.status == ContainerStatus::Stopped {
                if local.essential {
                    return Err(ESSENTIAL_EXITED.into());
                }
                continue;
            }
            if local.status == ContainerStatus::Running {
                continue;
            }
            if let Err(reason) = self.start_one(i).await {
                let local = &mut self.containers[i];
                local.reason = Some(reason.clone());
                return Err(reason);
            }
        }
        Ok(())
    }

    async fn start_one(&mut self, i: usize) -> Result<(), String> {
        let definition = &self.definition.container_definitions[i];
        if self.containers[i].id.is_none() {
            let placement = Placement {
                cluster: &self.config.cluster,
                container_instance_arn: &self.config.container_instance_arn,
            };
            let mut spec = container_spec(&self.task, &self.definition, definition, &placement)
                .map_err(|e| format!("CannotCreateContainerError: {e}"))?;
            self.pull_started_at.get_or_insert_with(now);
            let pulled = ensure_image(self.runtime.as_ref(), &spec.image).await;
            self.pull_stopped_at = Some(now());
            pulled?;
            let probe = self.config.probe;
            let picked = self.with_ports(|picker| {
                for p in &mut spec.ports {
                    if p.host_port == 0 {
                        p.host_port = picker.pick(p.protocol, probe).ok_or(
                            "CannotStartContainerError: no free host port is left in the dynamic port range",
                        )?;
                    } else {
                        picker.hold(p.host_port, p.protocol);
                    }
                }
                Ok::<(), &str>(())
            });
            self.containers[i].ports = spec.ports.clone();
            picked?;
            let id = self
                .runtime
                .create(&spec)
                .await
                .map_err(|e| format!("CannotCreateContainerError: {e}"))?;
            self.containers[i].id = Some(id);
            self.containers[i].status = ContainerStatus::Created;
        }
        let id = self.containers[i].id.clone().unwrap_or_default();
        self.runtime
            .start(&id)
            .await
            .map_err(|e| format!("CannotStartContainerError: {e}"))?;
        self.containers[i].status = ContainerStatus::Running;
        Ok(())
    }

    /// Watches the running containers until the task must stop: `Some(reason)` when an
    /// essential container exited, `None` when the task is no longer desired.
    async fn monitor(&mut self, stop: &mut watch::Receiver<bool>) -> Option<String> {
        loop {
            tokio::select! {
                changed = stop.changed() => match changed {
                    Ok(()) if *stop.borrow() => return None,
                    Ok(()) => {}
                    // The engine is gone; it aborts its managers, so this is only a pause.
                    Err(_) => std::future::pending::<()>().await,
                },
                () = tokio::time::sleep(self.config.monitor_interval) => {
                    let mut changed = false;
                    let mut essential_exit = false;
                    for local in &mut self.containers {
                        let (Some(id), ContainerStatus::Running) = (&local.id, local.status) else { continue };
                        match self.runtime.inspect(id).await {
                            Ok(ContainerInfo { state: ContainerState::Exited { exit_code, oom_killed }, .. }) => {
                                local.exited(exit_code, oom_killed);
                            }
                            Ok(_) => continue,
                            Err(RuntimeError::NotFound(_)) => {
                                local.status = ContainerStatus::Stopped;
                                local.reason = Some("the container was removed outside the agent".into());
                            }
                            Err(e) => {
                                tracing::warn!(task = %self.task.task_arn, container = %local.name, "could not inspect the container: {e}");
                                continue;
                            }
                        }
                        changed = true;
                        essential_exit |= local.essential;
                    }
                    if essential_exit {
                        return Some(ESSENTIAL_EXITED.into());
                    }
                    if changed {
                        self.report(TaskStatus::Running, None).await;
                    }
                }
            }
        }
    }

    /// Stops every running container (each with its own stop timeout) and records how it ended.
    async fn stop_all(&mut self) {
        let runtime = self.runtime.clone();
        let stops = self.containers.iter().filter_map(|local| {
            let id = local.id.clone()?;
            (local.status != ContainerStatus::Stopped).then(|| {
                let runtime = runtime.clone();
                let timeout = local.stop_timeout;
                async move {
                    let stopped = runtime.stop(&id, timeout).await;
                    (id.clone(), stopped, runtime.inspect(&id).await)
                }
            })
        });
        let results = futures::future::join_all(stops).await;
        for (id, stopped, inspected) in results {
            let Some(local) = self
                .containers
                .iter_mut()
                .find(|c| c.id.as_deref() == Some(&id))
            else {
                continue;
            };
            if let Err(e) = stopped {
                tracing::warn!(task = %self.task.task_arn, container = %local.name, "could not stop the container: {e}");
            }
            match inspected {
                Ok(ContainerInfo {
                    state:
                        ContainerState::Exited {
                            exit_code,
                            oom_killed,
                        },
                    ..
                }) => {
                    local.exited(exit_code, oom_killed);
                }
                _ => local.status = ContainerStatus::Stopped,
            }
        }
        for local in &mut self.containers {
            local.status = ContainerStatus::Stopped;
        }
    }

    /// Reports the task's state, retrying while the server cannot be reached.
    async fn report(&self, status: TaskStatus, reason: Option<String>) {
        let change = TaskStateChange {
            task: self.task.task_arn.clone(),
            status,
            reason,
            containers: self.containers.iter().map(Local::change).collect(),
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            execution_stopped_at: (status == TaskStatus::Stopped).then(now),
        };
        let mut backoff = Duration::from_millis(500);
        loop {
            match self.control.submit(&change).await {
                Ok(()) => return,
                Err(e @ ClientError::Api { .. }) => {
                    tracing::warn!(task = %change.task, status = status.as_str(), "the server refused the task's state change: {e}");
                    return;
                }
                Err(e) => {
                    tracing::warn!(task = %change.task, "could not report the task's state, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
