//! A throwaway `berth server` child on a free loopback port and a temporary data directory,
//! so that the load generator and the server are separate processes, as in a deployment.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use berth_client::Credentials;

pub struct ServerProcess {
    child: Child,
    data_dir: PathBuf,
    pub endpoint: String,
    pub credentials: Credentials,
}

impl ServerProcess {
    pub fn start() -> anyhow::Result<ServerProcess> {
        Self::start_with(&[])
    }

    /// Starts the server with extra flags (e.g. `--auth off`).
    pub fn start_with(extra_args: &[&str]) -> anyhow::Result<ServerProcess> {
        let data_dir = std::env::temp_dir().join(format!("berth-bench-{}", std::process::id()));
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("could not create {}", data_dir.display()))?;
        let exe = std::env::current_exe().context("could not find the berth binary")?;
        let mut child = Command::new(exe)
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(extra_args)
            .env("BERTH_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("could not start `berth server`")?;
        let stdout = child.stdout.take().context("no stdout from the server")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut endpoint, mut key, mut secret) = (None, None, None);
        for line in lines.by_ref() {
            let line = line?;
            let value = |prefix: &str| line.split_once(prefix).map(|(_, v)| v.trim().to_owned());
            if let Some(v) = value("listening on ") {
                endpoint = Some(v);
            } else if let Some(v) = value("access key id  :") {
                key = Some(v);
            } else if let Some(v) = value("secret key     :") {
                secret = Some(v);
            }
            if endpoint.is_some() && key.is_some() && secret.is_some() {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let mut server = ServerProcess {
            child,
            data_dir,
            endpoint: String::new(),
            credentials: Credentials {
                access_key_id: String::new(),
                secret_access_key: String::new(),
            },
        };
        let (Some(endpoint), Some(key), Some(secret)) = (endpoint, key, secret) else {
            bail!("`berth server` exited before printing its endpoint and key");
        };
        server.endpoint = endpoint;
        server.credentials = Credentials {
            access_key_id: key,
            secret_access_key: secret,
        };
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, from /proc (Linux), in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        super::procfs::rss_mib(self.child.id())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
