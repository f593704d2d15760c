//! `berth agent`'s flags and environment variables (the ECS agent's names where it has them),
//! and the agent settings `berth up` uses for its in-process agent.

use std::path::PathBuf;
use std::time::Duration;

use crate::control_plane_args::ControlPlaneArgs;
use anyhow::Context;
use berth_agent::AgentConfig;
use berth_agent::images::{CleanupPolicy, PullBehavior};
use berth_agent::ports::{DEFAULT_RANGE, DEFAULT_RESERVED, parse_range};
use berth_client::Credentials;
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    #[command(flatten)]
    control_plane: ControlPlaneArgs,
    /// The cluster to join.
    #[arg(long, env = "ECS_CLUSTER", default_value = "default")]
    cluster: String,
    /// A join token (`berth token create`): the agent trades it for a key pair of its own on
    /// its first start and keeps that key in its data directory.
    #[arg(long, env = "BERTH_JOIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where the agent keeps its state (the container instance it registered as)
    /// [default: the user's data directory, e.g. ~/.local/share/berth/agent].
    #[arg(long, env = "ECS_DATADIR")]
    data_dir: Option<PathBuf>,
    /// The `ecs.availability-zone` attribute [default: the region followed by `a`].
    #[arg(long, env = "BERTH_AVAILABILITY_ZONE")]
    availability_zone: Option<String>,
    /// The `ecs.instance-type` attribute.
    #[arg(long, env = "BERTH_INSTANCE_TYPE", default_value = "berth.host")]
    instance_type: String,
    /// The address load balancers reach this host's tasks at (the `berth.host-address`
    /// attribute) [default: the host's primary IP address].
    #[arg(long, env = "BERTH_HOST_ADDRESS")]
    address: Option<std::net::IpAddr>,
    /// A custom attribute, NAME=VALUE; may be repeated.
    #[arg(long = "attribute", value_name = "NAME=VALUE")]
    attributes: Vec<String>,
    /// MiB of memory kept back from tasks.
    #[arg(long, env = "ECS_RESERVED_MEMORY", default_value_t = 0)]
    reserved_memory: i64,
    /// Range `hostPort: 0` draws from, START-END.
    #[arg(
        long,
        env = "ECS_DYNAMIC_HOST_PORT_RANGE",
        default_value = "49153-65535"
    )]
    dynamic_port_range: String,
    /// Seconds between SIGTERM and SIGKILL for containers without `stopTimeout`.
    #[arg(long, env = "ECS_CONTAINER_STOP_TIMEOUT", default_value_t = 30)]
    stop_timeout: u64,
    /// How long a stopped task's containers are kept before they are removed, e.g. 3h, 10m,
    /// 30s (a bare number is seconds).
    #[arg(
        long,
        env = "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION",
        default_value = "3h",
        value_parser = parse_duration
    )]
    task_cleanup_wait: Duration,
    /// Let tasks run privileged containers; without it a task that asks to stops with a
    /// reason saying so.
    #[arg(long, env = "BERTH_ALLOW_PRIVILEGED")]
    allow_privileged: bool,
    /// When images are pulled: default (always, falling back to the cached image), always,
    /// once, or prefer-cached.
    #[arg(long, env = "ECS_IMAGE_PULL_BEHAVIOR", default_value = "default")]
    image_pull_behavior: PullBehavior,
    /// How often images the agent pulled and no task uses are looked for and removed.
    #[arg(long, env = "ECS_IMAGE_CLEANUP_INTERVAL", default_value = "30m", value_parser = parse_duration)]
    image_cleanup_interval: Duration,
    /// An image is removed only once no task has asked for it for this long.
    #[arg(long, env = "ECS_IMAGE_MINIMUM_CLEANUP_AGE", default_value = "1h", value_parser = parse_duration)]
    image_minimum_cleanup_age: Duration,
    /// At most this many images are removed per cleanup.
    #[arg(long, env = "ECS_NUM_IMAGES_DELETE_PER_CYCLE", default_value_t = 5)]
    images_deleted_per_cycle: usize,
    /// Never remove images.
    #[arg(long, env = "ECS_DISABLE_IMAGE_CLEANUP")]
    disable_image_cleanup: bool,
}

/// The agent's default wait before a stopped task's containers are removed (ECS's 3 h).
const DEFAULT_TASK_CLEANUP_WAIT: Duration = Duration::from_secs(3 * 3600);

/// A duration as the ECS agent writes them (`3h`, `1h30m`, `90s`, `500ms`), or bare seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("'{s}' is not a duration; write it like 3h, 10m, 30s or 500ms");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let one = match &rest[..unit] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        total += one * u32::try_from(value).map_err(|_| bad())?;
        rest = &rest[unit..];
    }
    if s.is_empty() { Err(bad()) } else { Ok(total) }
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    dirs::data_dir()
        .map(|d| d.join("berth").join("agent"))
        .context("could not find the user's data directory; pass --data-dir")
}

fn parse_attribute(s: &str) -> anyhow::Result<(String, String)> {
    let (name, value) = s
        .split_once('=')
        .with_context(|| format!("--attribute '{s}': write it as NAME=VALUE"))?;
    anyhow::ensure!(!name.is_empty(), "--attribute '{s}': the name is empty");
    Ok((name.to_owned(), value.to_owned()))
}

impl AgentArgs {
    pub fn resolve(self) -> anyhow::Result<AgentConfig> {
        let attributes = self
            .attributes
            .iter()
            .map(|a| parse_attribute(a))
            .collect::<anyhow::Result<_>>()?;
        let dynamic_ports = parse_range(&self.dynamic_port_range).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(self.stop_timeout >= 1, "--stop-timeout: at least 1 second");
        anyhow::ensure!(
            self.image_cleanup_interval >= Duration::from_secs(1),
            "--image-cleanup-interval: at least 1s"
        );
        let credentials = self.control_plane.credentials();
        anyhow::ensure!(
            credentials.is_some() || self.token.is_some(),
            "the agent needs credentials: --token JOIN_TOKEN (from `berth token create`), or a key pair in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        );
        let ControlPlaneArgs {
            server,
            server_pin,
            region,
            ..
        } = self.control_plane;
        Ok(AgentConfig {
            endpoint: server,
            server_pin,
            credentials,
            join_token: self.token,
            availability_zone: self
                .availability_zone
                .unwrap_or_else(|| format!("{region}a")),
            region,
            cluster: self.cluster,
            data_dir: match self.data_dir {
                Some(dir) => dir,
                None => default_data_dir()?,
            },
            instance_type: self.instance_type,
            attributes,
            host_address: self
                .address
                .unwrap_or_else(berth_agent::register::primary_address)
                .to_string(),
            reserved_memory_mib: self.reserved_memory,
            reserved_ports: DEFAULT_RESERVED.to_vec(),
            dynamic_ports,
            stop_timeout: Duration::from_secs(self.stop_timeout),
            poll_interval: Duration::from_secs(1),
            task_cleanup_wait: self.task_cleanup_wait,
            allow_privileged: self.allow_privileged,
            pull_behavior: self.image_pull_behavior,
            image_cleanup: CleanupPolicy {
                interval: (!self.disable_image_cleanup).then_some(self.image_cleanup_interval),
                minimum_age: self.image_minimum_cleanup_age,
                per_cycle: self.images_deleted_per_cycle,
            },
        })
    }
}

/// The agent `berth up` runs beside the server: cluster `default`, the root key, state under
/// the server's data directory, and the server's own port reserved.
pub fn local(
    endpoint: String,
    credentials: Credentials,
    region: String,
    data_dir: PathBuf,
    server_port: u16,
) -> AgentConfig {
    let mut reserved_ports = DEFAULT_RESERVED.to_vec();
    reserved_ports.push(server_port);
    AgentConfig {
        endpoint,
        server_pin: None,
        credentials: Some(credentials),
        join_token: None,
        availability_zone: format!("{region}a"),
        region,
        cluster: "default".into(),
        data_dir: data_dir.join("agent"),
        instance_type: "berth.host".into(),
        attributes: Vec::new(),
        host_address: std::net::Ipv4Addr::LOCALHOST.to_string(),
        reserved_memory_mib: 0,
        reserved_ports,
        dynamic_ports: DEFAULT_RANGE,
        stop_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_secs(1),
        task_cleanup_wait: DEFAULT_TASK_CLEANUP_WAIT,
        allow_privileged: false,
        pull_behavior: PullBehavior::Default,
        image_cleanup: CleanupPolicy::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attributes() {
        assert_eq!(
            parse_attribute("stack=prod").unwrap(),
            ("stack".to_owned(), "prod".to_owned())
        );
        assert_eq!(
            parse_attribute("flag=").unwrap(),
            ("flag".to_owned(), String::new())
        );
        assert!(parse_attribute("novalue").is_err());
        assert!(parse_attribute("=x").is_err());
    }

    #[test]
    fn parses_durations_as_the_ecs_agent_writes_them() {
        assert_eq!(parse_duration("3h").unwrap(), DEFAULT_TASK_CLEANUP_WAIT);
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        for bad in ["", "h", "3d", "1.5h", "m3"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
