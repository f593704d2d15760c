//! Registration as a container instance, and the small state file that lets a restarted agent
//! register as the same instance (and so find its containers again).

use std::path::{Path, PathBuf};

use berth_client::{Client, ClientError, ServerPin};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::join::JoinedKey;
use crate::resources::HostResources;

/// What the agent keeps across restarts, in `DATA_DIR/agent-state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    pub cluster: String,
    pub container_instance_arn: Option<String>,
    /// The key pair obtained with a join token, if the agent joined with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_key: Option<JoinedKey>,
    /// The server's identity, from the join token or `--server-pin`: every connection to an
    /// `https://` server must show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_pin: Option<ServerPin>,
}

impl AgentState {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("agent-state.json")
    }

    /// The saved state, or an empty one when there is none yet.
    pub fn load(data_dir: &Path) -> Result<AgentState, String> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "the agent state file {} is damaged ({e}); remove it to register as a new container instance",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AgentState::default()),
            Err(e) => Err(format!("could not read {}: {e}", path.display())),
        }
    }

    /// Writes the state atomically (a temporary file renamed over the old one), readable by
    /// its owner only since it may hold a secret key.
    pub fn save(&self, data_dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            format!(
                "could not create the agent data directory {}: {e}",
                data_dir.display()
            )
        })?;
        let path = Self::path(data_dir);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| format!("could not encode the agent state: {e}"))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::remove_file(&tmp);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| format!("could not write {}: {e}", path.display()))
    }
}

/// What the agent registers.
pub struct Registration<'a> {
    pub cluster: &'a str,
    pub resources: &'a HostResources,
    /// `ecs.*` and custom attributes, by name.
    pub attributes: &'a [(String, String)],
    pub docker_version: &'a str,
}

/// The `ecs.cpu-architecture` of this host, in ECS's words.
pub fn cpu_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    }
}

/// This host's primary address: the one outgoing traffic leaves from (found without sending a
/// packet), or 127.0.0.1 when there is no route.
pub fn primary_address() -> std::net::IpAddr {
    let local = std::net::Ipv4Addr::LOCALHOST.into();
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(local)
}

fn registration_body(r: &Registration<'_>, previous: Option<&str>) -> Value {
    let attributes: Vec<Value> = r
        .attributes
        .iter()
        .map(|(name, value)| match value.as_str() {
            // A capability: a name without a value.
            "" => json!({"name": name}),
            value => json!({"name": name, "value": value}),
        })
        .collect();
    let mut body = json!({
        "cluster": r.cluster,
        "totalResources": r.resources.to_wire(),
        "attributes": attributes,
        "versionInfo": {
            "agentVersion": env!("CARGO_PKG_VERSION"),
            "agentHash": "berth",
            "dockerVersion": r.docker_version,
        },
    });
    if let Some(arn) = previous {
        body["containerInstanceArn"] = json!(arn);
    }
    body
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterOutput {
    container_instance: RegisteredInstance,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisteredInstance {
    container_instance_arn: String,
}

/// Registers this host in its cluster (creating `default` when it is missing, as the ECS agent
/// does) and returns the container instance ARN. Re-registers as `previous` when given; if the
/// server no longer knows that instance, registers a new one.
pub async fn register(
    client: &Client,
    registration: &Registration<'_>,
    previous: Option<&str>,
) -> Result<String, ClientError> {
    let mut previous = previous;
    let mut created_cluster = false;
    loop {
        let body = registration_body(registration, previous);
        match client
            .ecs::<_, RegisterOutput>("RegisterContainerInstance", &body)
            .await
        {
            Ok(out) => return Ok(out.container_instance.container_instance_arn),
            Err(e)
                if e.code() == Some("ClusterNotFoundException")
                    && registration.cluster == "default"
                    && !created_cluster =>
            {
                tracing::info!("creating cluster 'default' to register in");
                let _: Value = client
                    .ecs("CreateCluster", &json!({"clusterName": "default"}))
                    .await?;
                created_cluster = true;
            }
            Err(e) if e.code() == Some("InvalidParameterException") && previous.is_some() => {
                tracing::warn!(
                    "the server no longer knows container instance {} ({e}); registering as a new one",
                    previous.unwrap_or_default()
                );
                previous = None;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(AgentState::load(dir.path()).unwrap(), AgentState::default());
        let state = AgentState {
            cluster: "stage01".into(),
            container_instance_arn: Some(
                "arn:aws:ecs:us-east-1:0:container-instance/stage01/x".into(),
            ),
            joined_key: Some(crate::join::JoinedKey {
                access_key_id: "AKIAJOINED".into(),
                secret_access_key: "secret".into(),
            }),
            server_pin: Some("ab".repeat(32).parse().unwrap()),
        };
        state.save(&dir.path().join("nested")).unwrap();
        assert_eq!(AgentState::load(&dir.path().join("nested")).unwrap(), state);
        std::fs::write(dir.path().join("agent-state.json"), "{").unwrap();
        assert!(
            AgentState::load(dir.path())
                .unwrap_err()
                .contains("remove it")
        );
    }

    #[test]
    fn registers_resources_attributes_and_the_previous_arn() {
        let resources = HostResources {
            cpu: 2048,
            memory_mib: 4000,
            ports: vec![22],
            ports_udp: vec![],
        };
        let attributes = vec![("ecs.availability-zone".to_owned(), "us-east-1b".to_owned())];
        let r = Registration {
            cluster: "default",
            resources: &resources,
            attributes: &attributes,
            docker_version: "DockerVersion: 20.10.24",
        };
        let body = registration_body(&r, Some("arn:old"));
        assert_eq!(body["containerInstanceArn"], "arn:old");
        assert_eq!(body["totalResources"][0]["integerValue"], 2048);
        assert_eq!(body["attributes"][0]["value"], "us-east-1b");
        assert_eq!(
            body["versionInfo"]["dockerVersion"],
            "DockerVersion: 20.10.24"
        );
        assert!(
            registration_body(&r, None)
                .get("containerInstanceArn")
                .is_none()
        );
    }
}
