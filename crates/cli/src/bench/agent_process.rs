//! A throwaway `berth agent` child joined to a benchmark's server, with its state in a temporary
//! directory, so that its memory can be read apart from the server's. Killed (its containers
//! left running, as a stopped agent leaves them) and its directory removed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use berth_client::Client;
use serde_json::{Value, json};

use super::server_process::ServerProcess;

pub struct AgentProcess {
    child: Child,
    data_dir: PathBuf,
}

impl AgentProcess {
    /// Starts `berth agent` for `cluster` of `server` (the cluster must exist).
    pub fn start(server: &ServerProcess, cluster: &str) -> anyhow::Result<AgentProcess> {
        let data_dir =
            std::env::temp_dir().join(format!("berth-bench-agent-{}", std::process::id()));
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("could not create {}", data_dir.display()))?;
        let exe = std::env::current_exe().context("could not find the berth binary")?;
        let child = Command::new(exe)
            .args(["agent", "--server", &server.endpoint, "--cluster", cluster])
            .args(["--address", "127.0.0.1", "--data-dir"])
            .arg(&data_dir)
            .env("AWS_ACCESS_KEY_ID", &server.credentials.access_key_id)
            .env(
                "AWS_SECRET_ACCESS_KEY",
                &server.credentials.secret_access_key,
            )
            .env("BERTH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("could not start `berth agent`")?;
        Ok(AgentProcess { child, data_dir })
    }

    /// Waits until the agent has registered its container instance; returns its ARN.
    pub async fn registered(&mut self, client: &Client, cluster: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let listed: Value = client
                .ecs("ListContainerInstances", &json!({ "cluster": cluster }))
                .await?;
            if let Some(arn) = listed["containerInstanceArns"][0].as_str() {
                return Ok(arn.to_owned());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("`berth agent` exited ({status}) before it registered");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("`berth agent` did not register within 30 s")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
