//! A throwaway Docker distribution registry (Debian's `docker-registry`) to compare with:
//! filesystem storage in a temporary directory beside Berth's, the in-memory blob descriptor
//! cache Debian's configuration enables, no authentication, no access log. Killed and its
//! directory removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::oci::OciClient;

pub struct PeerRegistry {
    child: Child,
    dir: PathBuf,
    pub endpoint: String,
    /// What `docker-registry --version` says.
    pub version: String,
}

/// A loopback port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?.port())
}

fn config(root: &Path, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: {}\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: berth-bench-not-a-secret\n",
        root.display()
    )
}

impl PeerRegistry {
    pub async fn start(binary: &Path) -> anyhow::Result<PeerRegistry> {
        let version = Command::new(binary)
            .arg("--version")
            .output()
            .with_context(|| {
                format!(
                    "could not run {}; install it with `apt-get install docker-registry` or pass --peer",
                    binary.display()
                )
            })?;
        // `<path> github.com/docker/distribution <version>`: keep what follows the path.
        let version = String::from_utf8_lossy(&version.stdout);
        let version = version
            .trim()
            .split_once(' ')
            .map_or(version.trim(), |(_, rest)| rest)
            .to_owned();
        let dir = std::env::temp_dir().join(format!("berth-bench-peer-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("storage"))
            .with_context(|| format!("could not create {}", dir.display()))?;
        let port = free_port()?;
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config(&dir.join("storage"), port))?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("could not start {}", binary.display()))?;
        let mut peer = PeerRegistry {
            child,
            dir,
            endpoint: format!("http://127.0.0.1:{port}"),
            version,
        };
        peer.wait_ready().await?;
        Ok(peer)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = OciClient::new(&self.endpoint, None)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if client.ping().await {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                let log =
                    std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default();
                bail!("docker-registry exited ({status}):\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "docker-registry did not answer on {} within 15 s",
            self.endpoint
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PeerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
