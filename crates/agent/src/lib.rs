//! `berth-agent`: turns a host into a container instance of a Berth cluster.
//!
//! Contract: the agent registers the host (CPU = cores × 1024, memory less a reserve, reserved
//! ports, `ecs.*` and custom attributes), then keeps the containers on the host in line with
//! the tasks the control plane places on it, and reports every task's state back. It reaches
//! the control plane only through `berth-client` and the public ECS, ECR and Secrets Manager
//! APIs — never the store — and containers only through the [`runtime::Runtime`] trait:
//! Docker ([`docker`], the one module that may use `bollard`) for real, [`mock`] for fast tests. Every container carries labels
//! (cluster, container instance, task ARN, container name, task definition), so an agent that
//! restarts with the same data directory adopts the containers still running instead of
//! starting them again. Stopping the agent leaves the containers running. A stopped task's
//! containers (and its task-scoped volumes) are removed after `task_cleanup_wait`.

pub mod control;
pub mod docker;
pub mod engine;
pub mod env_files;
pub mod images;
pub mod join;
pub mod mock;
pub mod ports;
pub mod register;
pub mod resources;
pub mod runtime;
pub mod secrets;
pub mod spec;

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_client::{Client, ClientError, Credentials, ServerPin};

use crate::control::HttpControlPlane;
use crate::engine::{Engine, EngineConfig};
use crate::images::{CleanupPolicy, Images, PullBehavior};
use crate::ports::PortPicker;
use crate::register::{AgentState, Registration};
use crate::resources::HostResources;
use crate::runtime::Runtime;

/// How often the agent calls in; the server counts it disconnected after 30 s of silence.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

/// How often every running container is inspected without an event, in case Docker's event
/// stream lost one.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Everything the agent needs to run.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The control plane, `https://HOST:PORT` or `http://HOST:PORT`.
    pub endpoint: String,
    /// The server's identity (`--server-pin`); without it, the one the state file or the join
    /// token holds ([`join`]).
    pub server_pin: Option<ServerPin>,
    /// The key pair to sign with; with a join token instead, the agent obtains its own.
    pub credentials: Option<Credentials>,
    /// A join token (`berth token create`) to trade for a key pair on the first start.
    pub join_token: Option<String>,
    pub region: String,
    pub cluster: String,
    /// Where the agent keeps its state file.
    pub data_dir: PathBuf,
    /// `ecs.availability-zone`.
    pub availability_zone: String,
    /// `ecs.instance-type`.
    pub instance_type: String,
    /// Custom attributes.
    pub attributes: Vec<(String, String)>,
    /// The address load balancers reach this host's tasks at, registered as the
    /// `berth.host-address` attribute.
    pub host_address: String,
    /// MiB of the host's memory kept back from tasks (ECS_RESERVED_MEMORY).
    pub reserved_memory_mib: i64,
    /// Host ports never given to tasks: 22, 2375, 2376 and the agent's own.
    pub reserved_ports: Vec<u16>,
    /// Where `hostPort: 0` draws from (ECS_DYNAMIC_HOST_PORT_RANGE).
    pub dynamic_ports: RangeInclusive<u16>,
    /// Default SIGTERM-to-SIGKILL wait (ECS_CONTAINER_STOP_TIMEOUT).
    pub stop_timeout: Duration,
    /// How often the agent asks the control plane for its tasks while the work channel, which
    /// tells it at once, is unavailable.
    pub poll_interval: Duration,
    /// How long a stopped task's containers are kept before they are removed
    /// (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION).
    pub task_cleanup_wait: Duration,
    /// Whether tasks may run privileged containers.
    pub allow_privileged: bool,
    /// When images are pulled (ECS_IMAGE_PULL_BEHAVIOR).
    pub pull_behavior: PullBehavior,
    /// When the images the agent pulled are removed again.
    pub image_cleanup: CleanupPolicy,
}

/// Why the agent cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error(
        "cluster '{0}' does not exist; create it (aws ecs create-cluster --cluster-name {0}) and start the agent again"
    )]
    ClusterNotFound(String),
    #[error("could not register with the control plane at {endpoint}")]
    Register {
        endpoint: String,
        #[source]
        source: ClientError,
    },
    #[error("{0}")]
    State(String),
}

pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Connects to Docker, retrying with a plain-words warning while it cannot be reached.
async fn connect_docker() -> (docker::Docker, String) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let attempt = async {
            let d = docker::Docker::connect().await?;
            let v = d.version().await?;
            Ok::<_, runtime::RuntimeError>((d, v))
        };
        match attempt.await {
            Ok(found) => return found,
            Err(e) => {
                tracing::error!(
                    "the agent cannot run containers: {e}; retrying in {backoff:?} (with `berth up`, pass --no-agent to run without Docker)"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Runs the agent until the future is dropped: waits for Docker, registers, then reconciles
/// every `poll_interval`. Returns only on an error the agent cannot get past by retrying.
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    let resources = HostResources::detect(config.reserved_memory_mib, &config.reserved_ports)
        .map_err(AgentError::Config)?;
    let mut state = AgentState::load(&config.data_dir).map_err(AgentError::State)?;
    if state.cluster != config.cluster {
        state = AgentState {
            cluster: config.cluster.clone(),
            ..AgentState::default()
        };
    }
    let token = config
        .join_token
        .as_deref()
        .map(join::parse_token)
        .transpose()?;
    let pin = join::server_pin(config.server_pin, state.server_pin, token.as_ref())?;
    let trust = join::trust(&config.endpoint, pin)?;
    if pin.is_some() && state.server_pin != pin {
        state.server_pin = pin;
        state.save(&config.data_dir).map_err(AgentError::State)?;
    }
    let credentials = match (&token, &state.joined_key, &config.credentials) {
        (Some(_), Some(key), _) => key.clone().into(),
        (Some(token), None, _) => {
            let key = join::join(
                &config.endpoint,
                &config.region,
                &trust,
                token,
                &config.cluster,
            )
            .await?;
            state.joined_key = Some(key.clone());
            state.save(&config.data_dir).map_err(AgentError::State)?;
            tracing::info!(access_key_id = %key.access_key_id, "joined with the token");
            key.into()
        }
        (None, _, Some(credentials)) => credentials.clone(),
        (None, _, None) => {
            return Err(AgentError::Config(
                "the agent needs credentials: a join token (--token, from `berth token create`) or a key pair (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)".into(),
            ));
        }
    };
    let client = Client::with_trust(&config.endpoint, credentials, &config.region, &trust)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let (docker, docker_version) = connect_docker().await;
    let mut attributes = vec![
        ("ecs.os-type".to_owned(), "linux".to_owned()),
        (
            "ecs.cpu-architecture".to_owned(),
            register::cpu_architecture().to_owned(),
        ),
        ("ecs.instance-type".to_owned(), config.instance_type.clone()),
        (
            "ecs.availability-zone".to_owned(),
            config.availability_zone.clone(),
        ),
    ];
    attributes.push((
        berth_model::elbv2::data_plane::HOST_ADDRESS_ATTRIBUTE.to_owned(),
        config.host_address.clone(),
    ));
    // The server gives every instance Berth's other capabilities.
    if config.allow_privileged {
        attributes.extend(
            berth_model::task_definition::berth_capabilities(true)
                .into_iter()
                .filter(|c| c.ends_with(".privileged-container"))
                .map(|c| (c, String::new())),
        );
    }
    attributes.extend(config.attributes.iter().cloned());
    let registration = Registration {
        cluster: &config.cluster,
        resources: &resources,
        attributes: &attributes,
        docker_version: &docker_version,
    };
    let mut backoff = Duration::from_secs(1);
    let instance_arn = loop {
        match register::register(
            &client,
            &registration,
            state.container_instance_arn.as_deref(),
        )
        .await
        {
            Ok(arn) => break arn,
            Err(e @ ClientError::Transport { .. }) => {
                tracing::warn!("{e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) if e.code() == Some("ClusterNotFoundException") => {
                return Err(AgentError::ClusterNotFound(config.cluster.clone()));
            }
            Err(source) => {
                return Err(AgentError::Register {
                    endpoint: config.endpoint.clone(),
                    source,
                });
            }
        }
    };
    state.container_instance_arn = Some(instance_arn.clone());
    state.save(&config.data_dir).map_err(AgentError::State)?;
    tracing::info!(cluster = %config.cluster, container_instance = %instance_arn, "registered");
    let runtime: Arc<dyn Runtime> = Arc::new(docker);
    let control = Arc::new(HttpControlPlane::new(
        client,
        config.cluster.clone(),
        instance_arn.clone(),
    ));
    let heartbeat = {
        let (control, runtime) = (control.clone(), runtime.clone());
        tokio::spawn(async move {
            let mut docker_down = false;
            loop {
                // Without Docker the agent cannot start tasks: it stops calling in, so the
                // server counts the instance disconnected and places nothing on it.
                match runtime.version().await {
                    Err(e) => {
                        if !docker_down {
                            tracing::error!(
                                "Docker does not answer ({e}); this instance takes no new tasks until it does"
                            );
                        }
                        docker_down = true;
                    }
                    Ok(_) => {
                        if docker_down {
                            tracing::info!("Docker answers again");
                        }
                        docker_down = false;
                        if let Err(e) = control.heartbeat().await {
                            tracing::warn!("could not call in to the control plane: {e}");
                        }
                    }
                }
                tokio::time::sleep(HEARTBEAT_INTERVAL).await;
            }
        })
    };
    // Stops calling in when the agent stops.
    let _heartbeat = AbortOnDrop(heartbeat);
    let images = Arc::new(Images::new(config.pull_behavior));
    let engine_config = EngineConfig {
        cluster: config.cluster.clone(),
        container_instance_arn: instance_arn,
        default_stop_timeout: config.stop_timeout,
        sweep_interval: SWEEP_INTERVAL,
        probe: ports::is_free,
        task_cleanup_wait: config.task_cleanup_wait,
        allow_privileged: config.allow_privileged,
        images: images.clone(),
    };
    let _image_cleanup = config.image_cleanup.interval.map(|every| {
        let (images, runtime, policy) = (images.clone(), runtime.clone(), config.image_cleanup);
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                images
                    .sweep(runtime.as_ref(), &policy, Instant::now())
                    .await;
            }
        }))
    });
    let mut engine = loop {
        match Engine::new(
            runtime.clone(),
            control.clone(),
            PortPicker::new(config.dynamic_ports.clone(), config.reserved_ports.clone()),
            engine_config.clone(),
        )
        .await
        {
            Ok(engine) => break engine,
            Err(e) => {
                tracing::warn!("could not list this instance's containers: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let mut failing = false;
    let mut channel = WorkChannel::default();
    loop {
        match engine.tick().await {
            Ok(()) if failing => {
                tracing::info!("the control plane answers again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!("could not get this instance's tasks: {e}");
                }
                failing = true;
            }
        }
        channel.next(&control, config.poll_interval).await;
    }
}

/// How long one wait on the work channel is held when nothing changes.
const CHANNEL_WAIT: Duration = Duration::from_secs(20);

/// The agent's end of the work channel: it returns as soon as the server says the instance's
/// work changed, or after [`CHANNEL_WAIT`] (so the agent still reconciles now and then).
/// While the channel fails (e.g. a server that does not offer it), it polls every `fallback`.
#[derive(Default)]
struct WorkChannel {
    seen: Option<u64>,
    failing: bool,
}

impl WorkChannel {
    async fn next(&mut self, control: &HttpControlPlane, fallback: Duration) {
        match control.wait_for_work(self.seen, CHANNEL_WAIT).await {
            Ok(generation) => {
                self.seen = Some(generation);
                self.failing = false;
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!("the work channel failed ({e}); polling every {fallback:?}");
                }
                self.failing = true;
                tokio::time::sleep(fallback).await;
            }
        }
    }
}
