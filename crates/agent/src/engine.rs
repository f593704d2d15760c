//! The task engine: reconciles the tasks the control plane wants on this instance with the
//! containers that run here.
//!
//! Each [`Engine::tick`] lists the tasks desired RUNNING on this instance; a task new to the
//! engine gets its own manager (a tokio task) that pulls, creates and starts its containers,
//! reports RUNNING, watches them, and — when an essential container exits or the task is no
//! longer desired — stops the rest (SIGTERM, then SIGKILL after `stopTimeout`) and reports
//! STOPPED. Managers watch through the runtime's event stream, which the engine follows for
//! all of this instance's containers: an event makes the manager of the container's task
//! inspect that container at once. A slow sweep that inspects every running container (every
//! `sweep_interval`, and once each time the stream is subscribed again after it broke)
//! catches what a lost event would hide. Containers that carry this instance's labels when
//! the engine starts are adopted by their task's manager instead of started again; those of
//! tasks no longer desired are stopped and reported. A task's secrets and registry credentials
//! ([`crate::secrets`]) are fetched before any of its containers is created. Containers start
//! once their `dependsOn` conditions hold and stop in reverse dependency order; health checks
//! give container and task health, restart policies restart containers that exit, and a
//! stopped task's containers are removed after `task_cleanup_wait`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_client::ClientError;
use berth_model::common::TransportProtocol;
use berth_model::task::{ContainerStatus, HealthStatus, NetworkBinding, Task, TaskStatus};
use berth_model::task_definition::{ContainerCondition, TaskDefinition};
use berth_model::time::Timestamp;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::control::{ContainerStateChange, ControlPlane, TaskStateChange};
use crate::env_files;
use crate::images::Images;
use crate::ports::PortPicker;
use crate::runtime::{
    ContainerEvent, ContainerInfo, ContainerState, EventStream, PortBinding, Runtime, RuntimeError,
    labels,
};
use crate::secrets;
use crate::spec::{Placement, VolumeScope, container_spec, has_health_check, task_volumes};

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
    /// How often every running container is inspected even without an event: the safety net
    /// for events the runtime's stream lost.
    pub sweep_interval: Duration,
    /// Whether a host port is free (binding it, for real; tests may pretend).
    pub probe: fn(u16, TransportProtocol) -> bool,
    /// How long a stopped task's containers stay before they are removed
    /// (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION, 3 h).
    pub task_cleanup_wait: Duration,
    /// Whether containers may run privileged; a task that asks otherwise fails to start.
    pub allow_privileged: bool,
    /// How images are pulled (ECS_IMAGE_PULL_BEHAVIOR), shared by every task.
    pub images: Arc<Images>,
}

struct Managed {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// What a task's manager is asked to inspect.
#[derive(Debug)]
enum Nudge {
    /// The container with this id had an event.
    Container(String),
    /// Every running container: events may have been lost.
    All,
}

/// The managers' inboxes of nudges, by task ARN.
type Inboxes = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Nudge>>>>;

/// The first wait before the engine subscribes to container events again; it doubles while
/// the stream keeps failing, up to [`RESUBSCRIBE_MAX`].
const RESUBSCRIBE_FIRST: Duration = Duration::from_millis(500);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(10);

/// The engine of one container instance.
pub struct Engine {
    runtime: Arc<dyn Runtime>,
    control: Arc<dyn ControlPlane>,
    ports: Arc<Mutex<PortPicker>>,
    config: Arc<EngineConfig>,
    tasks: HashMap<String, Managed>,
    /// Removals of stopped tasks' containers waiting for their time.
    cleanups: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Labelled containers found at start, by task ARN, until the first reconciliation.
    adoptable: Option<HashMap<String, Vec<ContainerInfo>>>,
    inboxes: Inboxes,
    /// Follows the runtime's container events and passes them to the managers.
    events: JoinHandle<()>,
}

impl Engine {
    /// An engine that first looks for containers this instance started before a restart, and
    /// follows the runtime's events of this instance's containers from then on.
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
        let config = Arc::new(config);
        let inboxes = Inboxes::default();
        let events = tokio::spawn(follow_events(
            runtime.clone(),
            config.clone(),
            inboxes.clone(),
        ));
        Ok(Engine {
            runtime,
            control,
            ports: Arc::new(Mutex::new(ports)),
            config,
            tasks: HashMap::new(),
            cleanups: Arc::default(),
            adoptable: Some(adoptable),
            inboxes,
            events,
        })
    }

    /// One reconciliation with the control plane.
    pub async fn tick(&mut self) -> Result<(), ClientError> {
        let desired: HashSet<String> = self.control.desired_running().await?.into_iter().collect();
        lock(&self.cleanups).retain(|c| !c.is_finished());
        // A finished manager is forgotten only once the server no longer lists its task, so a
        // listing taken just before its STOPPED report cannot start the task again.
        self.tasks
            .retain(|arn, m| !m.handle.is_finished() || desired.contains(arn));
        lock(&self.inboxes).retain(|arn, _| self.tasks.contains_key(arn));
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
                // Old news: the server already has this task as STOPPED; only the removal of
                // its containers is left.
                let placement = Placement {
                    cluster: &self.config.cluster,
                    container_instance_arn: &self.config.container_instance_arn,
                    allow_privileged: self.config.allow_privileged,
                };
                let volumes = task_volumes(&task, &definition, &placement)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|v| v.scope == VolumeScope::Task)
                    .map(|v| v.spec.name)
                    .collect();
                self.schedule_cleanup(
                    task.task_arn.clone(),
                    adopted.into_iter().map(|c| c.id).collect(),
                    volumes,
                );
                continue;
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
            // Containers of a task the server does not know at all: stop them, report
            // nothing, remove them in time.
            let runtime = self.runtime.clone();
            let timeout = self.config.default_stop_timeout;
            let wait = self.config.task_cleanup_wait;
            let handle = tokio::spawn(async move {
                for c in containers
                    .iter()
                    .filter(|c| c.state == ContainerState::Running)
                {
                    tracing::info!(task = %arn, container = %c.id, "stopping a container of a task the server does not know");
                    if let Err(e) = runtime.stop(&c.id, timeout).await {
                        tracing::warn!(container = %c.id, "could not stop the container: {e}");
                    }
                }
                let ids = containers.into_iter().map(|c| c.id).collect();
                cleanup(runtime, arn, ids, Vec::new(), wait).await;
            });
            lock(&self.cleanups).push(handle);
        }
        Ok(())
    }

    fn schedule_cleanup(&self, task: String, containers: Vec<String>, volumes: Vec<String>) {
        let handle = tokio::spawn(cleanup(
            self.runtime.clone(),
            task,
            containers,
            volumes,
            self.config.task_cleanup_wait,
        ));
        lock(&self.cleanups).push(handle);
    }

    fn spawn(
        &mut self,
        task: Task,
        definition: TaskDefinition,
        adopted: Vec<ContainerInfo>,
        stop_now: bool,
    ) {
        let (stop, stop_rx) = watch::channel(stop_now);
        let (inbox, inbox_rx) = mpsc::unbounded_channel();
        let arn = task.task_arn.clone();
        lock(&self.inboxes).insert(arn.clone(), inbox);
        let signals = Signals {
            stop: stop_rx,
            inbox: inbox_rx,
        };
        let run = TaskRun::new(
            task,
            definition,
            self.runtime.clone(),
            self.control.clone(),
            self.ports.clone(),
            self.cleanups.clone(),
            self.config.clone(),
        );
        let handle = tokio::spawn(run.run(adopted, signals));
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
    /// The managers (and pending removals) end with the engine; the containers go on running,
    /// to be adopted later.
    fn drop(&mut self) {
        self.events.abort();
        for m in self.tasks.values() {
            m.handle.abort();
        }
        for c in lock(&self.cleanups).iter() {
            c.abort();
        }
    }
}

/// Follows the runtime's events of this instance's containers and passes each to the manager
/// of the container's task. When the stream ends or fails it subscribes again, with backoff,
/// and has every manager inspect all its running containers, since the events in between are
/// lost; the managers' sweeps go on meanwhile.
async fn follow_events(runtime: Arc<dyn Runtime>, config: Arc<EngineConfig>, inboxes: Inboxes) {
    let labels = [
        (labels::CLUSTER, config.cluster.as_str()),
        (
            labels::CONTAINER_INSTANCE,
            config.container_instance_arn.as_str(),
        ),
    ];
    let mut backoff = RESUBSCRIBE_FIRST;
    let mut failing = false;
    loop {
        match runtime.events(&labels).await {
            Ok(stream) => {
                if failing {
                    tracing::info!("following container events again");
                    failing = false;
                }
                nudge_all(&inboxes);
                let began = Instant::now();
                let ended = deliver(stream, &inboxes).await;
                tracing::warn!("the container event stream {ended}; subscribing again");
                if began.elapsed() >= RESUBSCRIBE_MAX {
                    backoff = RESUBSCRIBE_FIRST;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        "could not follow container events ({e}); retrying, and inspecting containers every {:?} meanwhile",
                        config.sweep_interval
                    );
                }
                failing = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RESUBSCRIBE_MAX);
    }
}

/// Passes the stream's events on until it ends; says how it ended.
async fn deliver(mut stream: EventStream, inboxes: &Inboxes) -> String {
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => route(&event, inboxes),
            Err(e) => return format!("failed ({e})"),
        }
    }
    "ended".into()
}

/// Nudges the manager of the event's task, if the engine runs one.
fn route(event: &ContainerEvent, inboxes: &Inboxes) {
    tracing::debug!(container = %event.id, kind = ?event.kind, "container event");
    let Some(task) = event.attribute(labels::TASK_ARN) else {
        return;
    };
    if let Some(inbox) = lock(inboxes).get(task) {
        // A manager that has finished reads no more; nothing is lost.
        let _ = inbox.send(Nudge::Container(event.id.clone()));
    }
}

fn nudge_all(inboxes: &Inboxes) {
    for inbox in lock(inboxes).values() {
        let _ = inbox.send(Nudge::All);
    }
}

pub(crate) fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(ms)
}

/// How a container is restarted when it exits (its `restartPolicy`, when enabled).
struct Restart {
    ignored_exit_codes: Vec<i32>,
    /// How long the container must have run since its last (re)start before it is restarted.
    attempt_period: Duration,
    last: Option<Instant>,
    count: u32,
}

impl Restart {
    /// ECS's rule: restart unless the exit code is ignored or the container ran for less than
    /// the attempt period since it last started.
    fn should_restart(&self, exit_code: i64, started_at: Option<Instant>, now: Instant) -> bool {
        let ignored = i32::try_from(exit_code).is_ok_and(|c| self.ignored_exit_codes.contains(&c));
        let since = self.last.or(started_at);
        !ignored && since.is_some_and(|s| now.duration_since(s) >= self.attempt_period)
    }
}

/// One container of a task, as its manager tracks it.
struct Local {
    name: String,
    essential: bool,
    stop_timeout: Duration,
    /// Containers this one waits for before it starts (dependsOn; links and volumesFrom wait
    /// for START), by index; the same edges order the shutdown the other way round.
    depends_on: Vec<(usize, ContainerCondition)>,
    /// How long COMPLETE, SUCCESS and HEALTHY dependents wait for this container after it
    /// started (its `startTimeout`).
    start_timeout: Option<Duration>,
    health_checked: bool,
    restart: Option<Restart>,
    id: Option<String>,
    status: ContainerStatus,
    started_at: Option<Instant>,
    exit_code: Option<i32>,
    reason: Option<String>,
    health: HealthStatus,
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
            health_status: self.health,
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

/// Where a container's dependencies stand.
enum Dependencies {
    Resolved,
    Waiting,
    /// They never will be: the reason the task cannot run.
    Unresolvable(String),
}

/// What one look at the running containers found.
#[derive(Default)]
struct Observed {
    changed: bool,
    essential_exit: bool,
}

/// Which running containers a manager inspects.
enum Look {
    /// Every one: the sweep.
    All,
    /// Those with these ids (those that had events).
    Only(HashSet<String>),
}

impl Look {
    fn includes(&self, id: &str) -> bool {
        match self {
            Look::All => true,
            Look::Only(ids) => ids.contains(id),
        }
    }
}

/// What a manager hears while it waits: whether its task is to stop, and nudges to inspect
/// its containers.
struct Signals {
    stop: watch::Receiver<bool>,
    inbox: mpsc::UnboundedReceiver<Nudge>,
}

impl Signals {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// `first` and every nudge already waiting behind it, as one look.
    fn gather(&mut self, first: Nudge) -> Look {
        let mut look = Look::Only(HashSet::new());
        let mut next = Some(first);
        while let Some(nudge) = next {
            look = match (look, nudge) {
                (Look::Only(mut ids), Nudge::Container(id)) => {
                    ids.insert(id);
                    Look::Only(ids)
                }
                _ => Look::All,
            };
            next = self.inbox.try_recv().ok();
        }
        look
    }
}

/// The manager of one task.
struct TaskRun {
    task: Task,
    definition: TaskDefinition,
    runtime: Arc<dyn Runtime>,
    control: Arc<dyn ControlPlane>,
    ports: Arc<Mutex<PortPicker>>,
    cleanups: Arc<Mutex<Vec<JoinHandle<()>>>>,
    config: Arc<EngineConfig>,
    containers: Vec<Local>,
    pull_started_at: Option<Timestamp>,
    pull_stopped_at: Option<Timestamp>,
    /// When the running containers are next inspected whether or not they had events.
    next_sweep: Instant,
    /// What each container gets from Secrets Manager, fetched before any is created.
    secrets: Vec<secrets::Resolved>,
}

/// The ECS default of `restartPolicy.restartAttemptPeriod`.
const DEFAULT_RESTART_ATTEMPT_PERIOD: Duration = Duration::from_secs(300);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TaskRun {
    fn new(
        task: Task,
        definition: TaskDefinition,
        runtime: Arc<dyn Runtime>,
        control: Arc<dyn ControlPlane>,
        ports: Arc<Mutex<PortPicker>>,
        cleanups: Arc<Mutex<Vec<JoinHandle<()>>>>,
        config: Arc<EngineConfig>,
    ) -> Self {
        let defs = &definition.container_definitions;
        let index = |name: &str| defs.iter().position(|d| d.name.as_deref() == Some(name));
        let containers = defs
            .iter()
            .map(|c| {
                let mut depends_on: Vec<(usize, ContainerCondition)> = c
                    .depends_on
                    .iter()
                    .flatten()
                    .filter_map(|d| Some((index(&d.container_name)?, d.condition)))
                    .collect();
                let started_first = c
                    .links
                    .iter()
                    .flatten()
                    .map(|l| l.split_once(':').map_or(l.as_str(), |(target, _)| target))
                    .chain(
                        c.volumes_from
                            .iter()
                            .flatten()
                            .filter_map(|v| v.source_container.as_deref()),
                    )
                    .filter_map(index);
                for j in started_first {
                    if !depends_on.iter().any(|(k, _)| *k == j) {
                        depends_on.push((j, ContainerCondition::Start));
                    }
                }
                let seconds = |s: Option<i32>| {
                    s.and_then(|s| u64::try_from(s).ok())
                        .map(Duration::from_secs)
                };
                Local {
                    name: c.name.clone().unwrap_or_default(),
                    essential: c.is_essential(),
                    stop_timeout: seconds(c.stop_timeout).unwrap_or(config.default_stop_timeout),
                    depends_on,
                    start_timeout: seconds(c.start_timeout).filter(|t| !t.is_zero()),
                    health_checked: has_health_check(c),
                    restart: c
                        .restart_policy
                        .as_ref()
                        .filter(|p| p.enabled)
                        .map(|p| Restart {
                            ignored_exit_codes: p.ignored_exit_codes.clone().unwrap_or_default(),
                            attempt_period: seconds(p.restart_attempt_period)
                                .unwrap_or(DEFAULT_RESTART_ATTEMPT_PERIOD),
                            last: None,
                            count: 0,
                        }),
                    id: None,
                    status: ContainerStatus::Pending,
                    started_at: None,
                    exit_code: None,
                    reason: None,
                    health: HealthStatus::Unknown,
                    ports: Vec::new(),
                }
            })
            .collect();
        let next_sweep = Instant::now() + config.sweep_interval;
        TaskRun {
            task,
            definition,
            runtime,
            control,
            ports,
            cleanups,
            config,
            containers,
            pull_started_at: None,
            pull_stopped_at: None,
            next_sweep,
            secrets: Vec::new(),
        }
    }

    fn with_ports<T>(&self, f: impl FnOnce(&mut PortPicker) -> T) -> T {
        f(&mut lock(&self.ports))
    }

    fn placement(&self) -> Placement<'_> {
        Placement {
            cluster: &self.config.cluster,
            container_instance_arn: &self.config.container_instance_arn,
            allow_privileged: self.config.allow_privileged,
        }
    }

    async fn run(mut self, adopted: Vec<ContainerInfo>, mut signals: Signals) {
        let adopting = !adopted.is_empty();
        self.adopt(adopted);
        if adopting {
            // Events of these containers from before this manager existed reached no one.
            self.observe(&Look::All).await;
        }
        let mut reason = None;
        if !signals.stopping() {
            reason = self.start_all(&mut signals).await.err();
        }
        if reason.is_none() && !signals.stopping() {
            self.report(TaskStatus::Running, None).await;
            reason = self.monitor(&mut signals).await;
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
        let volumes = task_volumes(&self.task, &self.definition, &self.placement())
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.scope == VolumeScope::Task)
            .map(|v| v.spec.name)
            .collect();
        let ids = self
            .containers
            .iter()
            .filter_map(|c| c.id.clone())
            .collect();
        let cleanup = tokio::spawn(cleanup(
            self.runtime.clone(),
            self.task.task_arn.clone(),
            ids,
            volumes,
            self.config.task_cleanup_wait,
        ));
        lock(&self.cleanups).push(cleanup);
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
            local.health = info.health.unwrap_or_default();
            match info.state {
                ContainerState::Created => local.status = ContainerStatus::Created,
                ContainerState::Running => {
                    local.status = ContainerStatus::Running;
                    local.started_at = Some(Instant::now());
                }
                ContainerState::Exited {
                    exit_code,
                    oom_killed,
                } => {
                    local.started_at = Some(Instant::now());
                    local.exited(exit_code, oom_killed);
                }
            }
        }
        let held: Vec<PortBinding> = self
            .containers
            .iter()
            .flat_map(|c| c.ports.clone())
            .collect();
        self.with_ports(|p| held.iter().for_each(|b| p.hold(b.host_port, b.protocol)));
    }

    /// Creates the named volumes the task needs (task volumes, and shared ones with
    /// `autoprovision`); a shared volume that must exist and does not fails the task.
    async fn prepare_volumes(&self) -> Result<(), String> {
        let volumes = task_volumes(&self.task, &self.definition, &self.placement())?;
        for volume in volumes {
            let name = &volume.spec.name;
            let exists = || async {
                self.runtime
                    .has_volume(name)
                    .await
                    .map_err(|e| format!("could not look up volume '{name}': {e}"))
            };
            match volume.scope {
                VolumeScope::Shared {
                    autoprovision: false,
                } => {
                    if !exists().await? {
                        return Err(format!(
                            "shared volume '{name}' does not exist on this instance and its dockerVolumeConfiguration does not autoprovision it"
                        ));
                    }
                    continue;
                }
                VolumeScope::Shared {
                    autoprovision: true,
                } if exists().await? => continue,
                _ => {}
            }
            self.runtime
                .create_volume(&volume.spec)
                .await
                .map_err(|e| format!("could not create volume '{name}': {e}"))?;
        }
        Ok(())
    }

    /// Where container `i`'s dependencies stand (ECS's rules: START once the dependency has
    /// started, COMPLETE once it stopped, SUCCESS once it stopped with exit code 0, HEALTHY
    /// once its health check passes; the dependency's `startTimeout` bounds the wait for the
    /// last three).
    fn dependencies(&self, i: usize, now: Instant) -> Dependencies {
        let target = &self.containers[i].name;
        for &(j, condition) in &self.containers[i].depends_on {
            let d = &self.containers[j];
            let stopped = d.status == ContainerStatus::Stopped;
            let never = |why: String| {
                Dependencies::Unresolvable(format!(
                    "DependencyError: container '{target}' cannot start: its dependency '{}' ({condition}) {why}",
                    d.name
                ))
            };
            if stopped && d.started_at.is_none() {
                return never("never started".into());
            }
            let resolved = match condition {
                ContainerCondition::Start => d.started_at.is_some(),
                ContainerCondition::Complete => stopped,
                ContainerCondition::Success => match (stopped, d.exit_code) {
                    (true, Some(0)) => true,
                    (true, code) => {
                        let code = code
                            .map_or_else(|| "no exit code".into(), |c| format!("exit code {c}"));
                        return never(format!("stopped with {code}, not 0"));
                    }
                    (false, _) => false,
                },
                ContainerCondition::Healthy => {
                    if stopped {
                        return never("stopped before it was healthy".into());
                    }
                    d.health == HealthStatus::Healthy
                }
            };
            if resolved {
                continue;
            }
            if condition != ContainerCondition::Start
                && let (Some(timeout), Some(started)) = (d.start_timeout, d.started_at)
                && now.duration_since(started) >= timeout
            {
                return never(format!(
                    "was not reached within its startTimeout of {}s",
                    timeout.as_secs()
                ));
            }
            return Dependencies::Waiting;
        }
        Dependencies::Resolved
    }

    /// Fetches the secrets and registry credentials of every container, then pulls, creates
    /// and starts each container once its dependencies are resolved. `Err` is the reason the
    /// task cannot run.
    async fn start_all(&mut self, signals: &mut Signals) -> Result<(), String> {
        let created: Vec<bool> = self.containers.iter().map(|c| c.id.is_some()).collect();
        self.secrets = secrets::resolve(
            self.control.as_ref(),
            &self.definition.container_definitions,
            |i| !created[i],
        )
        .await?;
        self.prepare_volumes()
            .await
            .map_err(|e| format!("CannotCreateContainerError: {e}"))?;
        loop {
            if signals.stopping() {
                return Ok(());
            }
            let mut waiting = false;
            for i in 0..self.containers.len() {
                let local = &self.containers[i];
                match local.status {
                    ContainerStatus::Stopped if local.essential => {
                        return Err(ESSENTIAL_EXITED.into());
                    }
                    ContainerStatus::Stopped | ContainerStatus::Running => continue,
                    _ => {}
                }
                match self.dependencies(i, Instant::now()) {
                    Dependencies::Waiting => waiting = true,
                    Dependencies::Unresolvable(reason) => {
                        let local = &mut self.containers[i];
                        local.status = ContainerStatus::Stopped;
                        local.reason = Some(reason.clone());
                        return Err(reason);
                    }
                    Dependencies::Resolved => {
                        if let Err(reason) = self.start_one(i).await {
                            self.containers[i].reason = Some(reason.clone());
                            return Err(reason);
                        }
                    }
                }
            }
            if !waiting {
                return Ok(());
            }
            let deadline = self.next_start_timeout(Instant::now());
            let Some(look) = self.pause(signals, deadline).await else {
                return Ok(());
            };
            let observed = self.observe(&look).await;
            if observed.changed {
                self.report(TaskStatus::Pending, None).await;
            }
        }
    }

    /// The next moment after `now` when a dependency's `startTimeout` runs out for a container
    /// that has not started yet, so that the wait for it ends on time without events.
    fn next_start_timeout(&self, now: Instant) -> Option<Instant> {
        self.containers
            .iter()
            .filter(|c| {
                !matches!(
                    c.status,
                    ContainerStatus::Running | ContainerStatus::Stopped
                )
            })
            .flat_map(|c| &c.depends_on)
            .filter(|(_, condition)| *condition != ContainerCondition::Start)
            .filter_map(|&(j, _)| {
                let d = &self.containers[j];
                Some(d.started_at? + d.start_timeout?)
            })
            .filter(|&at| at > now)
            .min()
    }

    async fn start_one(&mut self, i: usize) -> Result<(), String> {
        let definition = &self.definition.container_definitions[i];
        if self.containers[i].id.is_none() {
            let mut spec =
                container_spec(&self.task, &self.definition, definition, &self.placement())
                    .map_err(|e| format!("CannotCreateContainerError: {e}"))?;
            let from_files = env_files::load(&self.task, definition).await?;
            env_files::merge_under(&mut spec.environment, from_files);
            let resolved = self.secrets.get(i).cloned().unwrap_or_default();
            secrets::merge_over(&mut spec.environment, &resolved.environment);
            if let Some(log) = &mut spec.log {
                log.options.extend(resolved.log_options.iter().cloned());
            }
            self.pull_started_at.get_or_insert_with(now);
            let auth = match resolved.registry_auth {
                Some(auth) => Some(auth),
                None => self.control.registry_auth(&spec.image).await.map_err(|e| {
                    format!(
                        "CannotPullContainerError: could not get credentials for '{}' from the control plane: {e}",
                        spec.image
                    )
                })?,
            };
            let pulled = self
                .config
                .images
                .ensure(self.runtime.as_ref(), &spec.image, auth.as_ref())
                .await;
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
        let local = &mut self.containers[i];
        local.status = ContainerStatus::Running;
        local.started_at = Some(Instant::now());
        Ok(())
    }

    /// Waits for a nudge, the next sweep or `deadline`, whichever comes first, and says which
    /// containers to inspect then; `None` when the task is to stop.
    async fn pause(&self, signals: &mut Signals, deadline: Option<Instant>) -> Option<Look> {
        let wake = deadline.map_or(self.next_sweep, |d| d.min(self.next_sweep));
        tokio::select! {
            changed = signals.stop.changed() => match changed {
                Ok(()) if signals.stopping() => None,
                Ok(()) => Some(Look::Only(HashSet::new())),
                // The engine is gone; it aborts its managers, so this is only a pause.
                Err(_) => std::future::pending().await,
            },
            nudge = signals.inbox.recv() => match nudge {
                Some(nudge) => Some(signals.gather(nudge)),
                // As above: only a gone engine drops a running manager's inbox.
                None => std::future::pending().await,
            },
            () = tokio::time::sleep_until(wake) => Some(if Instant::now() >= self.next_sweep {
                Look::All
            } else {
                Look::Only(HashSet::new())
            }),
        }
    }

    /// Inspects the running containers `look` names: records exits (restarting those whose
    /// restart policy says so) and health changes. A look at all of them is the sweep, and
    /// puts the next one a `sweep_interval` away.
    async fn observe(&mut self, look: &Look) -> Observed {
        let mut observed = Observed::default();
        let now = Instant::now();
        if matches!(look, Look::All) {
            self.next_sweep = now + self.config.sweep_interval;
        }
        for local in &mut self.containers {
            let (Some(id), ContainerStatus::Running) = (&local.id, local.status) else {
                continue;
            };
            if !look.includes(id) {
                continue;
            }
            match self.runtime.inspect(id).await {
                Ok(ContainerInfo {
                    state:
                        ContainerState::Exited {
                            exit_code,
                            oom_killed,
                        },
                    ..
                }) => {
                    if let Some(restart) = &mut local.restart
                        && restart.should_restart(exit_code, local.started_at, now)
                    {
                        match self.runtime.start(id).await {
                            Ok(()) => {
                                restart.last = Some(now);
                                restart.count += 1;
                                tracing::info!(task = %self.task.task_arn, container = %local.name, exit_code, restarts = restart.count, "restarted the container, as its restart policy asks");
                                continue;
                            }
                            Err(e) => {
                                tracing::warn!(task = %self.task.task_arn, container = %local.name, "could not restart the container: {e}");
                            }
                        }
                    }
                    local.exited(exit_code, oom_killed);
                }
                Ok(info) => {
                    let health = info.health.unwrap_or_default();
                    if local.health_checked && health != local.health {
                        tracing::info!(task = %self.task.task_arn, container = %local.name, from = ?local.health, to = ?health, "health changed");
                        local.health = health;
                        observed.changed = true;
                    }
                    continue;
                }
                Err(RuntimeError::NotFound(_)) => {
                    local.status = ContainerStatus::Stopped;
                    local.reason = Some("the container was removed outside the agent".into());
                }
                Err(e) => {
                    tracing::warn!(task = %self.task.task_arn, container = %local.name, "could not inspect the container: {e}");
                    continue;
                }
            }
            observed.changed = true;
            observed.essential_exit |= local.essential;
        }
        observed
    }

    /// Watches the running containers until the task must stop: `Some(reason)` when an
    /// essential container exited, `None` when the task is no longer desired.
    async fn monitor(&mut self, signals: &mut Signals) -> Option<String> {
        loop {
            let look = self.pause(signals, None).await?;
            let observed = self.observe(&look).await;
            if observed.essential_exit {
                return Some(ESSENTIAL_EXITED.into());
            }
            if observed.changed {
                self.report(TaskStatus::Running, None).await;
            }
        }
    }

    /// Stops every container (each with its own stop timeout) in reverse dependency order —
    /// a container stops only after those that depend on it — and records how each ended.
    async fn stop_all(&mut self) {
        for local in &mut self.containers {
            if local.id.is_none() {
                local.status = ContainerStatus::Stopped;
            }
        }
        loop {
            let live = |k: usize| self.containers[k].status != ContainerStatus::Stopped;
            let remaining: Vec<usize> = (0..self.containers.len()).filter(|&k| live(k)).collect();
            if remaining.is_empty() {
                return;
            }
            let mut wave: Vec<usize> = remaining
                .iter()
                .copied()
                .filter(|&i| {
                    !remaining
                        .iter()
                        .any(|&k| self.containers[k].depends_on.iter().any(|(j, _)| *j == i))
                })
                .collect();
            if wave.is_empty() {
                wave = remaining; // A dependency loop: stop what is left together.
            }
            self.stop_wave(&wave).await;
        }
    }

    async fn stop_wave(&mut self, wave: &[usize]) {
        let stops = wave.iter().filter_map(|&i| {
            let local = &self.containers[i];
            let id = local.id.clone()?;
            let runtime = self.runtime.clone();
            let timeout = local.stop_timeout;
            Some(async move {
                let stopped = runtime.stop(&id, timeout).await;
                (i, stopped, runtime.inspect(&id).await)
            })
        });
        let results = futures::future::join_all(stops).await;
        for (i, stopped, inspected) in results {
            let local = &mut self.containers[i];
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
                }) => local.exited(exit_code, oom_killed),
                _ => local.status = ContainerStatus::Stopped,
            }
        }
        for &i in wave {
            self.containers[i].status = ContainerStatus::Stopped;
        }
    }

    /// The task's health: that of its essential containers with health checks (ECS's rule).
    fn health(&self) -> HealthStatus {
        HealthStatus::aggregate(
            self.containers
                .iter()
                .filter(|c| c.essential && c.health_checked)
                .map(|c| c.health),
        )
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
            health_status: self.health(),
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

/// Removes a stopped task's containers and task volumes once `wait` has passed
/// (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION).
async fn cleanup(
    runtime: Arc<dyn Runtime>,
    task: String,
    containers: Vec<String>,
    volumes: Vec<String>,
    wait: Duration,
) {
    tokio::time::sleep(wait).await;
    for id in containers {
        if let Err(e) = runtime.remove(&id).await {
            tracing::warn!(%task, container = %id, "could not remove the stopped container: {e}");
        }
    }
    for name in volumes {
        if let Err(e) = runtime.remove_volume(&name).await {
            tracing::warn!(%task, volume = %name, "could not remove the task's volume: {e}");
        }
    }
    tracing::debug!(%task, "cleaned up the stopped task");
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
