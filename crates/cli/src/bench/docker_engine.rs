//! Starting containers without Berth, the two ways the task-start benchmark compares with:
//! the docker CLI (`docker run -d`, which returns once the container has started) and the
//! Docker Engine API over its unix socket (create, then start: the two calls the agent makes
//! for a pulled image). Every container carries the benchmark's label, by which
//! [`remove_labelled`] removes them.

use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// What one container runs and how it is marked.
pub struct Run<'a> {
    pub image: &'a str,
    pub command: &'a [&'a str],
    pub memory_mib: i64,
    /// `NAME=VALUE`.
    pub label: (&'a str, &'a str),
}

/// `docker run -d`: returns once the CLI has, with the container id it printed.
pub async fn docker_run(run: &Run<'_>) -> anyhow::Result<String> {
    let label = format!("{}={}", run.label.0, run.label.1);
    let memory = format!("{}m", run.memory_mib);
    let out = tokio::process::Command::new("docker")
        .args([
            "run", "-d", "--label", &label, "--memory", &memory, run.image,
        ])
        .args(run.command)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("could not run the docker CLI")?;
    if !out.status.success() {
        bail!(
            "docker run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Removes every container (running or not) that carries `label` (`NAME=VALUE`).
pub fn remove_labelled(label: &str) {
    let filter = format!("label={label}");
    let Ok(out) = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
    else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// The Docker Engine API on its local unix socket (`DOCKER_HOST=unix://…` or the default).
pub struct Engine {
    socket: PathBuf,
}

impl Engine {
    pub fn local() -> anyhow::Result<Engine> {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() => PathBuf::from(
                host.strip_prefix("unix://")
                    .with_context(|| format!("DOCKER_HOST={host} is not a unix:// socket"))?,
            ),
            _ => PathBuf::from("/var/run/docker.sock"),
        };
        Ok(Engine { socket })
    }

    /// One request on a connection of its own; the status and the JSON answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .with_context(|| format!("could not connect to {}", self.socket.display()))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "docker")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Creates and starts a container; returns its id.
    pub async fn create_and_start(&self, run: &Run<'_>) -> anyhow::Result<String> {
        let spec = json!({
            "Image": run.image,
            "Cmd": run.command,
            "Labels": { run.label.0: run.label.1 },
            "HostConfig": { "Memory": run.memory_mib << 20 },
        });
        let (status, created) = self
            .call(Method::POST, "/containers/create", Some(&spec))
            .await?;
        if status != StatusCode::CREATED {
            bail!("creating the container: HTTP {status}: {created}");
        }
        let id = created["Id"]
            .as_str()
            .context("the engine created a container without an Id")?
            .to_owned();
        let (status, answer) = self
            .call(Method::POST, &format!("/containers/{id}/start"), None)
            .await?;
        if status != StatusCode::NO_CONTENT {
            bail!("starting the container: HTTP {status}: {answer}");
        }
        Ok(id)
    }
}
