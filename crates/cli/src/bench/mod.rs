//! `berth bench api`: the control plane's benchmark. N concurrent clients, each a signed
//! HTTP client of its own, call describe/list/register/run-task against a store that already
//! holds `--tasks` tasks, and the table reports requests per second and p50/p99 latency per
//! operation. By default it starts a throwaway `berth server` child on a temporary data
//! directory; `--endpoint` benchmarks a running Berth instead (it creates a `bench` cluster).
//! `berth bench scheduler` times placement alone; `berth bench cluster` (`cluster.rs`) places
//! a million tasks on ten thousand simulated instances end to end, through the API and the
//! store, with simulated agents reporting them RUNNING; `berth bench registry` (`registry.rs`) and
//! `berth bench task-start` (`task_start.rs`) put Berth beside a peer, docker-registry and
//! plain Docker, in the same run.
//!
//! These are benchmarks, not tests: they assert nothing about speed, they print what they saw.

mod agent_process;
mod busybox_image;
mod cluster;
mod docker_engine;
mod lb;
mod oci;
mod peer_registry;
mod procfs;
mod registry;
mod scheduler;
mod server_process;
mod stats;
mod task_start;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_client::{Client, ClientError, Credentials};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use stats::{Row, Samples};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The ECS API: concurrent clients on describe/list/register/run/stop with a full store.
    Api(ApiArgs),
    /// The placement function alone: placements per second on 1k, 5k and 10k instances.
    Scheduler(scheduler::SchedulerArgs),
    /// End to end: 1,000,000 tasks onto 10,000 simulated instances, with simulated agents.
    Cluster(cluster::ClusterArgs),
    /// The load balancer beside nginx under wrk: req/s and p99, keep-alive and not.
    Lb(lb::LbArgs),
    /// The image registry beside Debian's docker-registry: push/pull MB/s, manifest GETs.
    Registry(registry::RegistryArgs),
    /// RunTask to RUNNING for a pulled image, beside `docker run -d` and the Engine API.
    TaskStart(task_start::TaskStartArgs),
}

/// Where a benchmark sends its calls: a throwaway `berth server` child, or `--endpoint`.
#[derive(Args)]
pub struct Target {
    /// Benchmark this running Berth (http://HOST:PORT) instead of starting a throwaway server.
    #[arg(long)]
    endpoint: Option<String>,
    /// Access key id for --endpoint.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", requires = "endpoint")]
    access_key_id: Option<String>,
    /// Secret access key for --endpoint.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        requires = "endpoint"
    )]
    secret_access_key: Option<String>,
    /// Region to sign requests for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

impl Target {
    /// The throwaway server (none with `--endpoint`), the endpoint and the key to sign with.
    fn connect(
        &self,
    ) -> anyhow::Result<(Option<server_process::ServerProcess>, String, Credentials)> {
        match &self.endpoint {
            Some(endpoint) => {
                let credentials = Credentials {
                    access_key_id: self
                        .access_key_id
                        .clone()
                        .context("--endpoint needs --access-key-id (or AWS_ACCESS_KEY_ID)")?,
                    secret_access_key: self.secret_access_key.clone().context(
                        "--endpoint needs --secret-access-key (or AWS_SECRET_ACCESS_KEY)",
                    )?,
                };
                Ok((None, endpoint.clone(), credentials))
            }
            None => {
                let server = server_process::ServerProcess::start()?;
                let (endpoint, credentials) = (server.endpoint.clone(), server.credentials.clone());
                Ok((Some(server), endpoint, credentials))
            }
        }
    }
}

#[derive(Args)]
pub struct ApiArgs {
    #[command(flatten)]
    target: Target,
    /// Concurrent clients in every measured phase.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Tasks to put in the store (through RunTask) before measuring.
    #[arg(long, default_value_t = 100_000)]
    tasks: usize,
    /// Container instances the tasks are placed on.
    #[arg(long, default_value_t = 100)]
    instances: usize,
    /// How long each operation is measured, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

const CLUSTER: &str = "bench";
const FAMILY: &str = "bench-app";

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Api(args) => api(args).await,
        BenchCommand::Scheduler(args) => scheduler::run(args),
        BenchCommand::Cluster(args) => cluster::run(args).await,
        BenchCommand::Lb(args) => lb::run(args).await,
        BenchCommand::Registry(args) => registry::run(args).await,
        BenchCommand::TaskStart(args) => task_start::run(args).await,
    }
}

async fn api(args: ApiArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(args.instances > 0, "--instances must be at least 1");
    let (server, endpoint, credentials) = args.target.connect()?;
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for figures worth quoting");
    }
    // One client (and so one connection pool) per simulated user.
    let clients: Vec<Client> = (0..args.clients)
        .map(|_| Client::new(&endpoint, credentials.clone(), &args.target.region))
        .collect::<Result<_, _>>()?;
    let first = &clients[0];

    eprintln!(
        "setting up: cluster {CLUSTER:?}, {} instances, task definition {FAMILY:?}",
        args.instances
    );
    set_up(first, args.instances).await?;
    let seeded = seed(&clients, args.tasks).await?;
    let memory = server.as_ref().and_then(|s| s.rss_mib());

    let seconds = Duration::from_secs(args.seconds);
    let arns = Arc::new(seeded.arns);
    let mut rows = vec![seeded.row];
    let reads: [(&'static str, Op); 4] = [
        ("describe-clusters", Op::DescribeClusters),
        ("list-tasks", Op::ListTasks),
        ("describe-tasks (10)", Op::DescribeTasks),
        ("describe-task-definition", Op::DescribeTaskDefinition),
    ];
    let writes: [(&'static str, Op); 3] = [
        ("register-task-definition", Op::RegisterTaskDefinition),
        ("run-task", Op::RunTask),
        ("stop-task", Op::StopTask),
    ];
    let next_arn = Arc::new(AtomicUsize::new(0));
    for (kind, ops) in [("read", &reads[..]), ("write", &writes[..])] {
        for (name, op) in ops {
            eprintln!(
                "measuring {name} with {} clients for {seconds:?}",
                args.clients
            );
            let arns = arns.clone();
            let next_arn = next_arn.clone();
            let op = *op;
            let row = measure(name, kind, &clients, seconds, move |client, i| {
                call(client, op, i, arns.clone(), next_arn.clone())
            })
            .await;
            rows.push(row);
        }
    }

    println!();
    println!(
        "Berth control plane, {} tasks in the store, {} instances, {} clients, {}s per operation",
        seeded.total, args.instances, args.clients, args.seconds
    );
    if let Some(mib) = memory {
        println!("server memory after seeding: {mib:.0} MiB resident");
    }
    print!("{}", stats::table(&rows));
    for row in &rows {
        if let Some(e) = &row.samples.first_error {
            println!("first error of {}: {e}", row.operation);
        }
    }
    drop(server);
    Ok(())
}

#[derive(Clone, Copy)]
enum Op {
    DescribeClusters,
    ListTasks,
    DescribeTasks,
    DescribeTaskDefinition,
    RegisterTaskDefinition,
    RunTask,
    StopTask,
}

async fn call(
    client: Client,
    op: Op,
    iteration: usize,
    arns: Arc<Vec<String>>,
    next_arn: Arc<AtomicUsize>,
) -> Option<Result<(), ClientError>> {
    let (operation, input) = match op {
        Op::DescribeClusters => (
            "DescribeClusters",
            json!({"clusters": [CLUSTER], "include": ["STATISTICS"]}),
        ),
        Op::ListTasks => ("ListTasks", json!({"cluster": CLUSTER, "maxResults": 100})),
        Op::DescribeTasks => {
            let start = iteration.wrapping_mul(7919) % arns.len().max(1);
            let tasks: Vec<&String> = arns.iter().cycle().skip(start).take(10).collect();
            ("DescribeTasks", json!({"cluster": CLUSTER, "tasks": tasks}))
        }
        Op::DescribeTaskDefinition => ("DescribeTaskDefinition", json!({"taskDefinition": FAMILY})),
        Op::RegisterTaskDefinition => (
            "RegisterTaskDefinition",
            task_definition("bench-register", iteration),
        ),
        Op::RunTask => (
            "RunTask",
            json!({"cluster": CLUSTER, "taskDefinition": FAMILY, "count": 1}),
        ),
        Op::StopTask => {
            let i = next_arn.fetch_add(1, Ordering::Relaxed);
            // Every seeded task stopped: this client is done.
            let task = arns.get(i)?;
            (
                "StopTask",
                json!({"cluster": CLUSTER, "task": task, "reason": "benchmark"}),
            )
        }
    };
    Some(client.ecs::<_, Value>(operation, &input).await.map(drop))
}

fn task_definition(family: &str, variant: usize) -> Value {
    json!({
        "family": family,
        "containerDefinitions": [{
            "name": "app",
            "image": "busybox",
            "cpu": 1,
            "memory": 8,
            "essential": true,
            "command": ["httpd", "-f", "-p", "8080"],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
            "environment": [{"name": "VARIANT", "value": variant.to_string()}]
        }]
    })
}

async fn set_up(client: &Client, instances: usize) -> anyhow::Result<()> {
    client
        .ecs::<_, Value>("CreateCluster", &json!({"clusterName": CLUSTER}))
        .await?;
    let huge = 1_000_000_000;
    for _ in 0..instances {
        client
            .ecs::<_, Value>(
                "RegisterContainerInstance",
                &json!({
                    "cluster": CLUSTER,
                    "totalResources": [
                        {"name": "CPU", "type": "INTEGER", "integerValue": huge},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": huge}
                    ]
                }),
            )
            .await?;
    }
    client
        .ecs::<_, Value>("RegisterTaskDefinition", &task_definition(FAMILY, 0))
        .await?;
    Ok(())
}

struct Seeded {
    row: Row,
    arns: Vec<String>,
    total: usize,
}

/// Fills the store with `target` tasks through RunTask (10 a call), showing progress.
async fn seed(clients: &[Client], target: usize) -> anyhow::Result<Seeded> {
    let placed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let progress = {
        let placed = placed.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = placed.load(Ordering::Relaxed).min(target);
                eprint!("\rseeding: {n:>7} / {target} tasks");
            }
        })
    };
    let mut workers = Vec::new();
    for client in clients {
        let client = client.clone();
        let placed = placed.clone();
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut arns = Vec::new();
            while placed.load(Ordering::Relaxed) < target {
                let t = Instant::now();
                let out = client
                    .ecs::<_, Value>(
                        "RunTask",
                        &json!({"cluster": CLUSTER, "taskDefinition": FAMILY, "count": 10}),
                    )
                    .await;
                match out {
                    Ok(out) => {
                        samples.ok(t.elapsed());
                        let tasks = out["tasks"].as_array().cloned().unwrap_or_default();
                        if tasks.is_empty() {
                            samples.failed(format!("RunTask placed nothing: {}", out["failures"]));
                            break;
                        }
                        placed.fetch_add(tasks.len(), Ordering::Relaxed);
                        arns.extend(
                            tasks
                                .iter()
                                .filter_map(|t| t["taskArn"].as_str().map(str::to_owned)),
                        );
                    }
                    Err(e) => {
                        samples.failed(e.to_string());
                        if samples.errors > 100 {
                            break;
                        }
                    }
                }
            }
            (samples, arns)
        }));
    }
    let mut samples = Samples::default();
    let mut arns = Vec::new();
    for worker in workers {
        let (s, a) = worker.await.context("a seeding client panicked")?;
        samples.merge(s);
        arns.extend(a);
    }
    progress.abort();
    eprintln!(
        "\rseeding: {} tasks in {:.1?}",
        arns.len(),
        started.elapsed()
    );
    if let Some(e) = &samples.first_error {
        anyhow::ensure!(
            arns.len() >= target,
            "seeding stopped at {} of {target} tasks: {e}",
            arns.len()
        );
    }
    let total = arns.len();
    // Task ids are random: sorted, consecutive indexes name tasks of different clients.
    arns.sort_unstable();
    Ok(Seeded {
        row: Row {
            operation: "run-task (seed, count 10)",
            kind: "write",
            clients: clients.len(),
            elapsed: started.elapsed(),
            samples,
        },
        arns,
        total,
    })
}

/// Runs `call` from every client in a loop for `duration` (or until it has nothing left to
/// do: `None`) and gathers the latencies.
async fn measure<F, Fut>(
    operation: &'static str,
    kind: &'static str,
    clients: &[Client],
    duration: Duration,
    call: F,
) -> Row
where
    F: Fn(Client, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Option<Result<(), ClientError>>> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let counter = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for client in clients {
        let client = client.clone();
        let call = call.clone();
        let counter = counter.clone();
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                match call(client.clone(), i).await {
                    Some(Ok(())) => samples.ok(t.elapsed()),
                    Some(Err(e)) => samples.failed(e.to_string()),
                    None => break,
                }
            }
            samples
        }));
    }
    let mut samples = Samples::default();
    for worker in workers {
        if let Ok(s) = worker.await {
            samples.merge(s);
        }
    }
    Row {
        operation,
        kind,
        clients: clients.len(),
        elapsed: started.elapsed(),
        samples,
    }
}
