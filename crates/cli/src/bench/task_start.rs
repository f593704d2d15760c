//! `berth bench task-start`: how long Berth takes from RunTask until DescribeTasks shows the
//! task RUNNING, for an image already on the host, beside Docker starting the same container
//! without Berth (`docker run -d`, and the Engine API's create + start that the agent itself
//! calls). A throwaway `berth server` and `berth agent` run as children; the tasks start one at
//! a time, interleaved with the Docker starts, and keep running until the agent's memory has
//! been read. Then every task is stopped and every container the run made is removed.
//!
//! The task's own timestamps (createdAt, pullStartedAt, pullStoppedAt, startedAt) split
//! Berth's time into its stages, to show where it goes.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use berth_agent::runtime::labels;
use berth_client::Client;
use clap::Args;
use serde_json::{Value, json};

use super::agent_process::AgentProcess;
use super::busybox_image::{self, TEST_IMAGE};
use super::docker_engine::{Engine, Run, docker_run, remove_labelled};
use super::procfs;
use super::server_process::ServerProcess;
use super::stats::{Samples, Versus, versus_table};

#[derive(Args)]
pub struct TaskStartArgs {
    /// Tasks to start, one at a time (and as many containers each way without Berth).
    #[arg(long, default_value_t = 50)]
    tasks: usize,
    /// The image all of them run; berth-test/busybox:1 is built offline from /bin/busybox
    /// when missing, any other must be pulled already.
    #[arg(long, default_value = TEST_IMAGE)]
    image: String,
    /// How often DescribeTasks is polled for RUNNING, in milliseconds.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
}

const CLUSTER: &str = "bench";
const FAMILY: &str = "bench-start";
const COMMAND: [&str; 2] = ["sleep", "3600"];
const MEMORY_MIB: i64 = 32;
/// The label on the containers started without Berth; its value is this process's id.
const BENCH_LABEL: &str = "com.berth.bench-task-start";

/// Removes the run's containers when dropped, however the run ends.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for label in &self.0 {
            remove_labelled(label);
        }
    }
}

/// A task that reached RUNNING.
struct Started {
    arn: String,
    elapsed: Duration,
    run_task: Duration,
}

async fn describe(client: &Client, arns: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut tasks = Vec::new();
    for chunk in arns.chunks(100) {
        let out: Value = client
            .ecs(
                "DescribeTasks",
                &json!({"cluster": CLUSTER, "tasks": chunk}),
            )
            .await?;
        tasks.extend(out["tasks"].as_array().cloned().unwrap_or_default());
    }
    Ok(tasks)
}

/// RunTask, then DescribeTasks every `poll` until the task is RUNNING.
async fn start_task(client: &Client, poll: Duration) -> anyhow::Result<Started> {
    let started = Instant::now();
    let out: Value = client
        .ecs(
            "RunTask",
            &json!({"cluster": CLUSTER, "taskDefinition": FAMILY, "count": 1}),
        )
        .await?;
    let run_task = started.elapsed();
    let arn = out["tasks"][0]["taskArn"]
        .as_str()
        .with_context(|| format!("RunTask placed nothing: {}", out["failures"]))?
        .to_owned();
    let deadline = started + Duration::from_secs(120);
    loop {
        let task = describe(client, std::slice::from_ref(&arn)).await?;
        match task.first().and_then(|t| t["lastStatus"].as_str()) {
            Some("RUNNING") => {
                return Ok(Started {
                    arn,
                    elapsed: started.elapsed(),
                    run_task,
                });
            }
            Some("STOPPED") => bail!(
                "task {arn} stopped before it ran: {}",
                task[0]["stoppedReason"]
            ),
            _ if Instant::now() > deadline => bail!("task {arn} was not RUNNING after 120 s"),
            _ => tokio::time::sleep(poll).await,
        }
    }
}

/// StopTask for each, then waits (up to a minute) until all are STOPPED.
async fn stop_tasks(client: &Client, arns: &[String]) -> anyhow::Result<()> {
    for arn in arns {
        client
            .ecs::<_, Value>(
                "StopTask",
                &json!({"cluster": CLUSTER, "task": arn, "reason": "benchmark over"}),
            )
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = describe(client, arns).await?;
        if tasks.iter().all(|t| t["lastStatus"] == "STOPPED") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the agent had not stopped every task after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One way of starting a container, timed.
#[derive(Clone, Copy)]
enum Way {
    Berth,
    DockerRun,
    EngineApi,
}

/// What the run measured.
#[derive(Default)]
struct Measured {
    berth: Samples,
    docker_run: Samples,
    engine_api: Samples,
    run_task: Samples,
    arns: Vec<String>,
}

impl Measured {
    async fn start(
        &mut self,
        way: Way,
        client: &Client,
        engine: &Engine,
        run: &Run<'_>,
        poll: Duration,
    ) -> anyhow::Result<()> {
        let t = Instant::now();
        match way {
            Way::Berth => {
                let started = start_task(client, poll).await?;
                self.berth.ok(started.elapsed);
                self.run_task.ok(started.run_task);
                self.arns.push(started.arn);
            }
            Way::DockerRun => {
                docker_run(run).await?;
                self.docker_run.ok(t.elapsed());
            }
            Way::EngineApi => {
                engine.create_and_start(run).await?;
                self.engine_api.ok(t.elapsed());
            }
        }
        Ok(())
    }
}

/// Berth's stages, from the tasks' timestamps (seconds since the epoch, millisecond precision).
fn stages(tasks: &[Value], measured: &Samples, arns: &[String]) -> Vec<(&'static str, Samples)> {
    let mut pickup = Samples::default();
    let mut pull = Samples::default();
    let mut start = Samples::default();
    let mut seen = Samples::default();
    let ms = |secs: f64| Duration::from_secs_f64(secs.max(0.0));
    for (arn, elapsed) in arns.iter().zip(measured.latencies()) {
        let Some(task) = tasks.iter().find(|t| t["taskArn"] == arn.as_str()) else {
            continue;
        };
        let at = |field: &str| task[field].as_f64();
        let (Some(created), Some(pull_started), Some(pull_stopped), Some(running)) = (
            at("createdAt"),
            at("pullStartedAt"),
            at("pullStoppedAt"),
            at("startedAt"),
        ) else {
            continue;
        };
        pickup.ok(ms(pull_started - created));
        pull.ok(ms(pull_stopped - pull_started));
        start.ok(ms(running - pull_stopped));
        seen.ok(ms(elapsed.as_secs_f64() - (running - created)));
    }
    vec![
        (
            "createdAt -> pullStartedAt (the agent learns of it)",
            pickup,
        ),
        ("pullStartedAt -> pullStoppedAt (image pull attempt)", pull),
        ("pullStoppedAt -> startedAt (create, start, report)", start),
        ("the rest (RunTask, DescribeTasks polling)", seen),
    ]
}

fn docker_version() -> anyhow::Result<String> {
    let out = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .context("could not run the docker CLI; this benchmark needs Docker")?;
    anyhow::ensure!(
        out.status.success(),
        "the Docker Engine does not answer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn ensure_image(image: &str) -> anyhow::Result<()> {
    if busybox_image::exists(image)? {
        return Ok(());
    }
    anyhow::ensure!(
        image == TEST_IMAGE,
        "image {image} is not on this host; pull it first (the benchmark starts pulled images)"
    );
    eprintln!("building {TEST_IMAGE} offline from /bin/busybox");
    busybox_image::build(TEST_IMAGE, None)
}

fn ms_row(metric: &str, berth: &Samples, peer: &Samples, q: Option<f64>) -> Versus {
    let pick = |s: &Samples| q.map_or_else(|| s.mean_ms(), |q| s.quantile_ms(q));
    Versus::new(metric, pick(berth), pick(peer))
}

pub async fn run(args: TaskStartArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.tasks > 0, "--tasks must be at least 1");
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for figures worth quoting");
    }
    let poll = Duration::from_millis(args.poll_ms.max(1));
    let docker = docker_version()?;
    ensure_image(&args.image)?;
    let engine = Engine::local()?;
    let server = ServerProcess::start()?;
    let client = Client::new(&server.endpoint, server.credentials.clone(), "us-east-1")?;
    client
        .ecs::<_, Value>("CreateCluster", &json!({ "clusterName": CLUSTER }))
        .await?;
    let mut agent = AgentProcess::start(&server, CLUSTER)?;
    let instance = agent.registered(&client, CLUSTER).await?;
    let pid = std::process::id().to_string();
    let berth_label = format!("{}={instance}", labels::CONTAINER_INSTANCE);
    let containers = Containers(vec![berth_label.clone(), format!("{BENCH_LABEL}={pid}")]);
    client
        .ecs::<_, Value>(
            "RegisterTaskDefinition",
            &json!({
                "family": FAMILY,
                "containerDefinitions": [{
                    "name": "app",
                    "image": args.image,
                    "memory": MEMORY_MIB,
                    "essential": true,
                    "command": COMMAND,
                    "stopTimeout": 2
                }]
            }),
        )
        .await?;
    let run = Run {
        image: &args.image,
        command: &COMMAND,
        memory_mib: MEMORY_MIB,
        label: (BENCH_LABEL, &pid),
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let agent_idle = procfs::rss_mib(agent.pid());

    // One untimed start each way, then the warm-up task is stopped again.
    eprintln!("warming up: one start each way");
    let mut warm = Measured::default();
    for way in [Way::Berth, Way::DockerRun, Way::EngineApi] {
        warm.start(way, &client, &engine, &run, poll).await?;
    }
    stop_tasks(&client, &warm.arns).await?;
    remove_labelled(&format!("{BENCH_LABEL}={pid}"));

    let mut m = Measured::default();
    let ways = [Way::Berth, Way::DockerRun, Way::EngineApi];
    for i in 0..args.tasks {
        // Rotate who goes first, so that none always follows the same one.
        for k in 0..ways.len() {
            let way = ways[(i + k) % ways.len()];
            m.start(way, &client, &engine, &run, poll).await?;
        }
        if (i + 1) % 10 == 0 || i + 1 == args.tasks {
            eprintln!("started {} of {} each way", i + 1, args.tasks);
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let agent_busy = procfs::rss_mib(agent.pid());
    let server_rss = server.rss_mib();
    let agent_cpu = procfs::cpu_seconds(agent.pid());
    let running = running_containers(&berth_label);
    let tasks = describe(&client, &m.arns).await?;
    let stages = stages(&tasks, &m.berth, &m.arns);

    eprintln!("stopping the {} tasks", m.arns.len());
    let stopped = stop_tasks(&client, &m.arns).await;
    drop(agent);
    drop(server);
    drop(containers);

    println!();
    println!(
        "Task start: Berth RunTask -> RUNNING beside Docker {docker}, image {} (on the host), {} starts each way, one at a time, interleaved",
        args.image, args.tasks
    );
    println!(
        "berth: `berth server` + `berth agent` children; RunTask, then DescribeTasks every {} ms until lastStatus is RUNNING",
        poll.as_millis()
    );
    println!("docker run -d: the CLI, timed until it returns (the container has started)");
    println!(
        "engine API: POST /containers/create + /containers/{{id}}/start on the unix socket (what the agent calls)"
    );
    if args.tasks < 100 {
        println!("(with fewer than 100 starts, p99 is the slowest one)");
    }
    for (peer, samples) in [
        ("docker run -d", &m.docker_run),
        ("engine API", &m.engine_api),
    ] {
        println!();
        let rows = [
            ms_row("start p50 (ms)", &m.berth, samples, Some(0.5)),
            ms_row("start p99 (ms)", &m.berth, samples, Some(0.99)),
            ms_row("start mean (ms)", &m.berth, samples, None),
        ];
        print!("{}", versus_table(peer, &rows, true));
    }
    println!();
    println!("Where Berth's time goes (from each task's timestamps):");
    println!("{:<52} {:>8} {:>8}", "STAGE", "P50 MS", "P99 MS");
    let run_task = ("RunTask call (inside the first stage)", m.run_task);
    for (stage, samples) in stages.iter().chain(std::iter::once(&run_task)) {
        let q = |q| {
            samples
                .quantile_ms(q)
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
        };
        println!("{stage:<52} {:>8} {:>8}", q(0.5), q(0.99));
    }
    println!();
    let mib = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} MiB"));
    println!(
        "agent memory: {} RSS with {} tasks running ({} containers of its instance running); {} before the first task; CPU used {}",
        mib(agent_busy),
        m.arns.len(),
        running.map_or_else(|| "?".to_owned(), |n| n.to_string()),
        mib(agent_idle),
        agent_cpu.map_or_else(|| "-".to_owned(), |s| format!("{s:.2} s")),
    );
    println!("server memory: {}", mib(server_rss));
    if let Err(e) = stopped {
        println!("note: {e:#}; the containers were removed anyway");
    }
    Ok(())
}

/// How many running containers carry `label`.
fn running_containers(label: &str) -> Option<usize> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-q", "--filter", &format!("label={label}")])
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .count(),
    )
}
