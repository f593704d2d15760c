//! `berth bench cluster`: the issue's end-to-end scheduler benchmark, in the shape of Nomad's
//! C1M, through the public API and the durable store, with simulated agents and no containers.
//!
//! 1. Registers `--instances` container instances in one cluster as the agent does
//!    (RegisterContainerInstance with CPU, MEMORY and PORTS, and `ecs.*` attributes over three
//!    availability zones) from `--clients` concurrent clients. From then on every instance
//!    calls in with DiscoverPollEndpoint every `--heartbeat-secs`, as the agent's heartbeat
//!    does (at most [`HEARTBEATS_IN_FLIGHT`] waiting for an answer at once); the table says
//!    how long the longest silence was, against the server's 30 s.
//! 2. Places `--tasks` tasks of one small task definition (no ports) with RunTask, ten a call,
//!    spread by zone then binpack on memory, from `--clients` clients; every call carries a
//!    `clientToken`, so a retried call never places twice.
//! 3. Meanwhile the simulated agents (`--agents` clients) report the placed tasks RUNNING with
//!    SubmitTaskStateChange, one call per task with its container, as the agent sends it; each
//!    RunTask answer's tasks reach them grouped by instance. They learn their tasks from those
//!    answers, not from the agent's ListTasks by instance, which reads through the cluster's
//!    tasks (step 5 times it). `--report-running` reports only a fraction of them.
//! 4. Checks that nothing was lost or duplicated: DescribeClusters' and the instances' running
//!    and pending counts add up to the placed count, and ListTasks lists exactly the placed
//!    tasks, each once.
//! 5. Times ListTasks as an agent calls it to find its tasks, on a few instances with tasks.
//!
//! A failed call is retried a few times with a growing pause when the failure may pass; every
//! failed attempt is counted and the first is printed, and what could not be done in the end is
//! counted apart from RunTask's `failures`. Progress goes to stderr every five seconds; the
//! table at the end goes to stdout. It asserts nothing about speed, but fails when the final
//! check finds a task lost or duplicated.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use berth_agent::control::{ContainerStateChange, TaskStateChange};
use berth_agent::register::{Registration, register};
use berth_agent::resources::HostResources;
use berth_client::{Client, ClientError};
use berth_model::task::{ContainerStatus, HealthStatus, TaskStatus};
use berth_model::time::Timestamp;
use clap::Args;
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use super::procfs;
use super::stats::Samples;

#[derive(Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    target: super::Target,
    /// Simulated container instances to register.
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    /// Tasks to place with RunTask, ten a call.
    #[arg(long, default_value_t = 1_000_000)]
    tasks: usize,
    /// Concurrent clients registering instances and calling RunTask.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Concurrent clients of the simulated agents, reporting tasks RUNNING. Each instance's
    /// agent reports on its own, so a cluster of thousands has thousands of reports in flight;
    /// 64 connections keep the server busy without the load generator taking its cores.
    #[arg(long, default_value_t = 64)]
    agents: usize,
    /// The fraction of placed tasks the simulated agents report RUNNING, 0 to 1.
    #[arg(long, default_value_t = 1.0)]
    report_running: f64,
    /// How often each simulated agent calls in (DiscoverPollEndpoint), in seconds; 0: never,
    /// and then the server does not watch the instances at all.
    #[arg(long, default_value_t = 10)]
    heartbeat_secs: u64,
}

const FAMILY: &str = "bench-cluster-app";
/// Every simulated instance: a host with two vCPUs and 3,840 MiB for tasks.
const INSTANCE_CPU: i64 = 2048;
const INSTANCE_MEMORY_MIB: i64 = 3840;
/// Every task: small enough that 120 fit on an instance (memory is the bound).
const TASK_CPU: i64 = 16;
const TASK_MEMORY_MIB: i64 = 32;
const ZONES: [char; 3] = ['a', 'b', 'c'];
/// RunTask's most tasks a call.
const BATCH: usize = 10;
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Attempts at a call whose failure may pass (transport, timeout, throttling, server fault).
const ATTEMPTS: u32 = 5;
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The heartbeats are sent in slots this long, spread evenly over the interval.
const HEARTBEAT_SLOT: Duration = Duration::from_millis(100);
/// Agents call in whether or not others are waiting for an answer: only this many heartbeats
/// (and connections) wait at once, so that a stalled server does not exhaust descriptors.
const HEARTBEATS_IN_FLIGHT: usize = 4096;
/// How many instances' ListTasks, as the agent calls it, are timed at the end.
const AGENT_LIST_SAMPLE: usize = 20;

/// The counters the progress line reads.
#[derive(Default)]
struct Counters {
    placed: AtomicUsize,
    reported: AtomicUsize,
}

/// One line of the result table: `items` done with the `calls` sampled, in `elapsed`.
struct Phase {
    name: &'static str,
    items: usize,
    calls: Samples,
    elapsed: Duration,
}

fn check_args(args: &ClusterArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(args.agents > 0, "--agents must be at least 1");
    anyhow::ensure!(args.instances > 0, "--instances must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.report_running),
        "--report-running is a fraction, 0 to 1"
    );
    Ok(())
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    check_args(&args)?;
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for figures worth quoting");
    }
    let (server, endpoint, credentials) = args.target.connect()?;
    let server_pid = server.as_ref().map(|s| s.pid());
    let region = &args.target.region;
    let new_client = || Client::new(&endpoint, credentials.clone(), region);
    let clients: Vec<Client> = (0..args.clients)
        .map(|_| new_client())
        .collect::<Result<_, _>>()?;
    let agents: Vec<Client> = (0..args.agents)
        .map(|_| new_client())
        .collect::<Result<_, _>>()?;
    let cluster = format!("bench-cluster-{}", std::process::id());
    set_up(&clients[0], &cluster).await?;
    print_plan(&args, &cluster);

    eprintln!("registering {} instances", thousands(args.instances));
    let (fleet, registered) = register_fleet(&clients, &cluster, region, args.instances).await?;
    let fleet = Arc::new(fleet);
    let heartbeats = match args.heartbeat_secs {
        0 => None,
        secs => {
            let every = Duration::from_secs(secs);
            Some(Heartbeats::start(
                new_client()?,
                &cluster,
                fleet.clone(),
                every,
            ))
        }
    };

    eprintln!("placing {} tasks", thousands(args.tasks));
    let cpu_before = server_pid.and_then(procfs::cpu_seconds);
    let (placement, reports) =
        place_and_report(&args, &clients, &agents, &cluster, &fleet, server_pid).await?;
    let cpu_after = server_pid.and_then(procfs::cpu_seconds);

    eprintln!("checking the cluster's counts and listing its tasks");
    let check = verify(&clients[0], &cluster, &fleet.arns, &placement.arns).await?;
    // Instances with tasks, as most agents' are once the cluster is in use.
    let sampled = if check.busy.is_empty() {
        &fleet.arns
    } else {
        &check.busy
    };
    let agent_list = time_agent_list_tasks(&clients[0], &cluster, sampled).await;
    let heartbeat = heartbeats.map(Heartbeats::stop);
    let mut usage = Usage::of(server_pid);
    usage.server_cpu_placing = cpu_after.zip(cpu_before).map(|(a, b)| a - b);
    drop(server);

    let summary = Summary {
        registered,
        placement,
        reports,
        heartbeat,
        agent_list,
        check,
        usage,
    };
    summary.print(&args);
    summary
        .check
        .verdict(summary.placement.arns.len(), summary.reports.done)
}

/// Places the tasks while the simulated agents report them RUNNING; returns once both are done.
async fn place_and_report(
    args: &ClusterArgs,
    clients: &[Client],
    agents: &[Client],
    cluster: &str,
    fleet: &Arc<Fleet>,
    server_pid: Option<u32>,
) -> anyhow::Result<(Placement, Reports)> {
    let counters = Arc::new(Counters::default());
    let progress = spawn_progress(counters.clone(), args.tasks, server_pid);
    let started = Instant::now();
    let (batches, inbox) = unbounded_channel();
    let reporting = spawn_agents(agents, cluster, inbox, counters.clone(), started);
    let selection = Selection::new(args.report_running);
    let placement = place_all(
        clients, cluster, fleet, args.tasks, selection, batches, counters,
    )
    .await?;
    eprintln!(
        "placed {} tasks in {:.1?}; waiting for the RUNNING reports",
        thousands(placement.arns.len()),
        placement.phase.elapsed
    );
    let reports = reporting.await.context("a simulated agent panicked")?;
    progress.abort();
    Ok((placement, reports))
}

fn print_plan(args: &ClusterArgs, cluster: &str) {
    let per_instance = (INSTANCE_CPU / TASK_CPU).min(INSTANCE_MEMORY_MIB / TASK_MEMORY_MIB);
    eprintln!(
        "cluster {cluster:?}: {} instances of {INSTANCE_CPU} CPU units and {INSTANCE_MEMORY_MIB} MiB over {} zones, room for {} tasks of cpu {TASK_CPU}, memory {TASK_MEMORY_MIB} MiB ({per_instance} an instance)",
        thousands(args.instances),
        ZONES.len(),
        thousands(args.instances * usize::try_from(per_instance).unwrap_or(0)),
    );
}

async fn set_up(client: &Client, cluster: &str) -> anyhow::Result<()> {
    client
        .ecs::<_, Value>("CreateCluster", &json!({ "clusterName": cluster }))
        .await?;
    client
        .ecs::<_, Value>(
            "RegisterTaskDefinition",
            &json!({
                "family": FAMILY,
                "containerDefinitions": [{
                    "name": "app",
                    "image": "busybox",
                    "cpu": TASK_CPU,
                    "memory": TASK_MEMORY_MIB,
                    "essential": true,
                    "command": ["sleep", "3600"]
                }]
            }),
        )
        .await?;
    Ok(())
}

/// Whether a failed call may succeed if made again.
fn may_pass(e: &ClientError) -> bool {
    match e {
        ClientError::Transport { .. } => true,
        ClientError::Api { status, code, .. } => *status >= 500 || code == "ThrottlingException",
        _ => false,
    }
}

fn timed_out(client: &Client) -> ClientError {
    ClientError::Transport {
        endpoint: client.endpoint_authority(),
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer in {CALL_TIMEOUT:?}"),
        )),
    }
}

/// Makes the call `attempt` gives, again while its failure may pass, up to [`ATTEMPTS`] times
/// with a growing pause. Records every success's latency and every failed attempt in `samples`.
async fn retried<T, F, Fut>(
    client: &Client,
    what: &str,
    samples: &mut Samples,
    mut attempt: F,
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut pause = Duration::from_millis(100);
    let mut tries = 0;
    loop {
        tries += 1;
        let t = Instant::now();
        let result = tokio::time::timeout(CALL_TIMEOUT, attempt())
            .await
            .unwrap_or_else(|_| Err(timed_out(client)));
        match result {
            Ok(out) => {
                samples.ok(t.elapsed());
                return Ok(out);
            }
            Err(e) => {
                samples.failed(format!("{what}: {e}"));
                if tries >= ATTEMPTS || !may_pass(&e) {
                    return Err(e);
                }
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
}

/// The registered instances: their ARNs, and each ARN's index.
struct Fleet {
    arns: Vec<String>,
    index: HashMap<String, usize>,
}

/// The `ecs.*` attributes the agent registers, for instance `i`.
fn attributes(region: &str, i: usize) -> Vec<(String, String)> {
    let zone = ZONES[i % ZONES.len()];
    let [_, a, b, c] = u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes();
    vec![
        ("ecs.os-type".into(), "linux".into()),
        ("ecs.cpu-architecture".into(), "x86_64".into()),
        ("ecs.instance-type".into(), "bench.sim".into()),
        ("ecs.availability-zone".into(), format!("{region}{zone}")),
        (
            berth_model::elbv2::data_plane::HOST_ADDRESS_ATTRIBUTE.into(),
            format!("10.{a}.{b}.{c}"),
        ),
    ]
}

/// Registers `count` instances from all `clients` at once, with the agent's own call.
async fn register_fleet(
    clients: &[Client],
    cluster: &str,
    region: &str,
    count: usize,
) -> anyhow::Result<(Fleet, Phase)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for client in clients {
        let (client, next) = (client.clone(), next.clone());
        let (cluster, region) = (cluster.to_owned(), region.to_owned());
        workers.push(tokio::spawn(async move {
            let resources = HostResources {
                cpu: INSTANCE_CPU,
                memory_mib: INSTANCE_MEMORY_MIB,
                ports: berth_agent::ports::DEFAULT_RESERVED.to_vec(),
                ports_udp: Vec::new(),
            };
            let mut samples = Samples::default();
            let mut arns = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok((samples, arns));
                }
                let attributes = attributes(&region, i);
                let registration = Registration {
                    cluster: &cluster,
                    resources: &resources,
                    attributes: &attributes,
                    docker_version: "DockerVersion: simulated",
                };
                let what = "RegisterContainerInstance";
                let arn = retried(&client, what, &mut samples, || {
                    register(&client, &registration, None)
                })
                .await;
                arns.push((i, arn?));
            }
        }));
    }
    let mut samples = Samples::default();
    let mut arns = Vec::new();
    for worker in workers {
        let result: Result<_, ClientError> = worker.await.context("a client panicked")?;
        let (s, a) = result.context("could not register an instance")?;
        samples.merge(s);
        arns.extend(a);
    }
    let elapsed = started.elapsed();
    arns.sort_unstable();
    let arns: Vec<String> = arns.into_iter().map(|(_, arn)| arn).collect();
    let index = arns
        .iter()
        .enumerate()
        .map(|(i, a)| (a.clone(), i))
        .collect();
    let phase = Phase {
        name: "register-container-instance",
        items: arns.len(),
        calls: samples,
        elapsed,
    };
    Ok((Fleet { arns, index }, phase))
}

/// The agents' calls-in: DiscoverPollEndpoint for every instance once an interval, spread
/// evenly over it, a bounded number in flight.
struct Heartbeats {
    samples: Arc<Mutex<Samples>>,
    /// When each instance's last answered call-in was sent, in ms since `since`; 0: not yet.
    last_ok: Arc<Vec<AtomicU64>>,
    longest_silence_ms: Arc<AtomicU64>,
    most_waiting: Arc<AtomicUsize>,
    since: Instant,
    interval: Duration,
    task: JoinHandle<()>,
}

/// What the heartbeats did.
struct HeartbeatReport {
    phase: Phase,
    interval: Duration,
    longest_silence: Duration,
    /// The most heartbeats that waited for an answer at once.
    most_waiting: usize,
}

impl Heartbeats {
    fn start(client: Client, cluster: &str, fleet: Arc<Fleet>, interval: Duration) -> Heartbeats {
        let since = Instant::now();
        let samples = Arc::new(Mutex::new(Samples::default()));
        let last_ok: Arc<Vec<AtomicU64>> =
            Arc::new(fleet.arns.iter().map(|_| AtomicU64::new(0)).collect());
        let longest_silence_ms = Arc::new(AtomicU64::new(0));
        let most_waiting = Arc::new(AtomicUsize::new(0));
        let beat = Beat {
            client,
            cluster: cluster.to_owned(),
            samples: samples.clone(),
            last_ok: last_ok.clone(),
            longest_silence_ms: longest_silence_ms.clone(),
            most_waiting: most_waiting.clone(),
            since,
        };
        let task = tokio::spawn(beat.run(fleet, interval));
        Heartbeats {
            samples,
            last_ok,
            longest_silence_ms,
            most_waiting,
            since,
            interval,
            task,
        }
    }

    fn stop(self) -> HeartbeatReport {
        self.task.abort();
        let now = ms_since(self.since);
        let still_silent = self
            .last_ok
            .iter()
            .map(|at| now.saturating_sub(at.load(Ordering::Relaxed)))
            .max()
            .unwrap_or(0);
        let longest = self
            .longest_silence_ms
            .load(Ordering::Relaxed)
            .max(still_silent);
        let calls = std::mem::take(&mut *self.samples.lock().expect("heartbeat samples"));
        HeartbeatReport {
            phase: Phase {
                name: "discover-poll-endpoint (heartbeat)",
                items: calls.count(),
                calls,
                elapsed: self.since.elapsed(),
            },
            interval: self.interval,
            longest_silence: Duration::from_millis(longest),
            most_waiting: self.most_waiting.load(Ordering::Relaxed),
        }
    }
}

fn ms_since(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What every heartbeat call shares.
#[derive(Clone)]
struct Beat {
    client: Client,
    cluster: String,
    samples: Arc<Mutex<Samples>>,
    last_ok: Arc<Vec<AtomicU64>>,
    longest_silence_ms: Arc<AtomicU64>,
    most_waiting: Arc<AtomicUsize>,
    since: Instant,
}

impl Beat {
    async fn run(self, fleet: Arc<Fleet>, interval: Duration) {
        let slots = (interval.as_millis() / HEARTBEAT_SLOT.as_millis()).max(1);
        let per_slot = fleet
            .arns
            .len()
            .div_ceil(usize::try_from(slots).unwrap_or(1));
        let permits = Arc::new(tokio::sync::Semaphore::new(HEARTBEATS_IN_FLIGHT));
        let mut ticker = tokio::time::interval(HEARTBEAT_SLOT);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next = 0;
        loop {
            ticker.tick().await;
            for _ in 0..per_slot {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let waiting = HEARTBEATS_IN_FLIGHT - permits.available_permits();
                self.most_waiting.fetch_max(waiting, Ordering::Relaxed);
                let (beat, arn) = (self.clone(), fleet.arns[next].clone());
                let i = next;
                tokio::spawn(async move {
                    beat.once(i, &arn).await;
                    drop(permit);
                });
                next = (next + 1) % fleet.arns.len();
            }
        }
    }

    /// One call-in. An instance's silence runs from when its last answered call was sent
    /// (the server's `lastSeen`) until the next answer, the longest the server could have
    /// gone without its record.
    async fn once(&self, i: usize, arn: &str) {
        let t = Instant::now();
        // Never 0, which stands for "not yet".
        let sent = ms_since(self.since).max(1);
        let input = json!({"cluster": self.cluster, "containerInstance": arn});
        let call = self.client.ecs::<_, Value>("DiscoverPollEndpoint", &input);
        let result = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| Err(timed_out(&self.client)));
        let mut samples = self.samples.lock().expect("heartbeat samples");
        match result {
            Ok(_) => {
                samples.ok(t.elapsed());
                let before = self.last_ok[i].swap(sent, Ordering::Relaxed);
                if before > 0 {
                    let silence = ms_since(self.since).saturating_sub(before);
                    self.longest_silence_ms
                        .fetch_max(silence, Ordering::Relaxed);
                }
            }
            Err(e) => samples.failed(format!("DiscoverPollEndpoint: {e}")),
        }
    }
}

/// Which placed tasks the simulated agents report RUNNING: an even share `fraction` of them.
#[derive(Clone)]
struct Selection {
    fraction: f64,
    seen: Arc<AtomicU64>,
}

impl Selection {
    fn new(fraction: f64) -> Selection {
        Selection {
            fraction,
            seen: Arc::default(),
        }
    }

    /// Whether the next placed task is reported.
    fn next(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.fraction).floor() > (n * self.fraction).floor()
    }
}

/// The tasks one RunTask call placed on one instance, for its simulated agent to report.
struct Batch {
    tasks: Vec<String>,
}

/// What placement did.
struct Placement {
    phase: Phase,
    /// Every task placed.
    arns: Vec<String>,
    /// Tasks RunTask answered with a `failures` entry for.
    failed: usize,
    first_failure: Option<String>,
    /// Tasks asked for in calls that failed even after retries.
    lost_to_errors: usize,
}

/// What one RunTask client did.
#[derive(Default)]
struct Placer {
    samples: Samples,
    arns: Vec<String>,
    failed: usize,
    first_failure: Option<String>,
    lost_to_errors: usize,
}

/// What the RunTask clients share.
#[derive(Clone)]
struct PlaceJob {
    cluster: String,
    fleet: Arc<Fleet>,
    target: usize,
    claimed: Arc<AtomicUsize>,
    /// Set when a call placed nothing: the cluster is full (or unusable), stop asking.
    full: Arc<AtomicBool>,
    selection: Selection,
    batches: UnboundedSender<Batch>,
    counters: Arc<Counters>,
}

/// Places `target` tasks from all `clients` at once, ten a call.
async fn place_all(
    clients: &[Client],
    cluster: &str,
    fleet: &Arc<Fleet>,
    target: usize,
    selection: Selection,
    batches: UnboundedSender<Batch>,
    counters: Arc<Counters>,
) -> anyhow::Result<Placement> {
    let job = PlaceJob {
        cluster: cluster.to_owned(),
        fleet: fleet.clone(),
        target,
        claimed: Arc::default(),
        full: Arc::default(),
        selection,
        batches,
        counters,
    };
    let started = Instant::now();
    let workers: Vec<_> = clients
        .iter()
        .map(|client| tokio::spawn(job.clone().work(client.clone())))
        .collect();
    // The agents stop once every sender is gone: the workers' and this one.
    drop(job);
    let mut all = Placer::default();
    for worker in workers {
        let p = worker.await.context("a RunTask client panicked")?;
        all.samples.merge(p.samples);
        all.arns.extend(p.arns);
        all.failed += p.failed;
        all.lost_to_errors += p.lost_to_errors;
        all.first_failure = all.first_failure.or(p.first_failure);
    }
    Ok(Placement {
        phase: Phase {
            name: "run-task (count 10)",
            items: all.arns.len(),
            calls: all.samples,
            elapsed: started.elapsed(),
        },
        arns: all.arns,
        failed: all.failed,
        first_failure: all.first_failure,
        lost_to_errors: all.lost_to_errors,
    })
}

impl PlaceJob {
    fn input(&self, start: usize, count: usize) -> Value {
        json!({
            "cluster": self.cluster,
            "taskDefinition": FAMILY,
            "count": count,
            "placementStrategy": [
                {"type": "spread", "field": "attribute:ecs.availability-zone"},
                {"type": "binpack", "field": "memory"}
            ],
            // Unique per call and run: a retry of this call returns what it placed.
            "clientToken": format!("{}-{start}", self.cluster),
        })
    }

    async fn work(self, client: Client) -> Placer {
        let mut placer = Placer::default();
        while !self.full.load(Ordering::Relaxed) {
            let start = self.claimed.fetch_add(BATCH, Ordering::Relaxed);
            if start >= self.target {
                break;
            }
            let count = BATCH.min(self.target - start);
            let input = self.input(start, count);
            let out = retried(&client, "RunTask", &mut placer.samples, || {
                client.ecs::<_, Value>("RunTask", &input)
            })
            .await;
            match out {
                Ok(out) => self.placed(&mut placer, count, &out),
                Err(_) => placer.lost_to_errors += count,
            }
        }
        placer
    }

    /// Takes in one RunTask answer: the tasks go to their instances' agents.
    fn placed(&self, placer: &mut Placer, count: usize, out: &Value) {
        let tasks = out["tasks"].as_array().map_or(&[][..], Vec::as_slice);
        let mut by_instance: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for task in tasks {
            let arn = task["taskArn"].as_str().unwrap_or_default().to_owned();
            let instance = task["containerInstanceArn"].as_str().unwrap_or_default();
            if self.selection.next() {
                let i = self
                    .fleet
                    .index
                    .get(instance)
                    .copied()
                    .unwrap_or(usize::MAX);
                by_instance.entry(i).or_default().push(arn.clone());
            }
            placer.arns.push(arn);
        }
        self.counters
            .placed
            .fetch_add(tasks.len(), Ordering::Relaxed);
        for tasks in by_instance.into_values() {
            // The agents are gone only if they panicked; run() reports that.
            let _ = self.batches.send(Batch { tasks });
        }
        let failed = count.saturating_sub(tasks.len());
        if failed > 0 {
            placer.failed += failed;
            placer
                .first_failure
                .get_or_insert_with(|| out["failures"].to_string());
        }
        if tasks.is_empty() {
            self.full.store(true, Ordering::Relaxed);
        }
    }
}

/// What the simulated agents did.
struct Reports {
    phase: Phase,
    done: usize,
    /// Reports that failed even after retries.
    lost_to_errors: usize,
}

/// What one simulated agent client did.
#[derive(Default)]
struct Reporter {
    samples: Samples,
    done: usize,
    lost_to_errors: usize,
}

/// The simulated agents: `agents` clients take the batches as they come and report each task
/// RUNNING, until placement is over and every batch is reported.
fn spawn_agents(
    agents: &[Client],
    cluster: &str,
    inbox: UnboundedReceiver<Batch>,
    counters: Arc<Counters>,
    started: Instant,
) -> JoinHandle<Reports> {
    let inbox = Arc::new(tokio::sync::Mutex::new(inbox));
    let workers: Vec<_> = agents
        .iter()
        .map(|client| {
            let (client, cluster) = (client.clone(), cluster.to_owned());
            let (inbox, counters) = (inbox.clone(), counters.clone());
            tokio::spawn(report_batches(client, cluster, inbox, counters))
        })
        .collect();
    tokio::spawn(async move {
        let mut all = Reporter::default();
        for worker in workers {
            // A panicked agent's reports show as missing in the final check.
            if let Ok(r) = worker.await {
                all.samples.merge(r.samples);
                all.done += r.done;
                all.lost_to_errors += r.lost_to_errors;
            }
        }
        Reports {
            phase: Phase {
                name: "submit-task-state-change (RUNNING)",
                items: all.done,
                calls: all.samples,
                elapsed: started.elapsed(),
            },
            done: all.done,
            lost_to_errors: all.lost_to_errors,
        }
    })
}

async fn report_batches(
    client: Client,
    cluster: String,
    inbox: Arc<tokio::sync::Mutex<UnboundedReceiver<Batch>>>,
    counters: Arc<Counters>,
) -> Reporter {
    let mut reporter = Reporter::default();
    loop {
        let batch = inbox.lock().await.recv().await;
        let Some(batch) = batch else {
            return reporter;
        };
        for arn in batch.tasks {
            let input = running(&cluster, arn);
            let what = "SubmitTaskStateChange";
            let out = retried(&client, what, &mut reporter.samples, || {
                client.ecs::<_, Value>(what, &input)
            })
            .await;
            match out {
                Ok(_) => {
                    reporter.done += 1;
                    counters.reported.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => reporter.lost_to_errors += 1,
            }
        }
    }
}

fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Timestamp::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The SubmitTaskStateChange the agent sends once a task's container runs.
fn running(cluster: &str, task: String) -> Value {
    let at = now();
    let change = TaskStateChange {
        task,
        status: TaskStatus::Running,
        reason: None,
        containers: vec![ContainerStateChange {
            container_name: "app".into(),
            runtime_id: Some(format!("sim-{}", at.millis())),
            status: ContainerStatus::Running,
            exit_code: None,
            reason: None,
            network_bindings: Vec::new(),
            health_status: HealthStatus::Unknown,
        }],
        pull_started_at: Some(at),
        pull_stopped_at: Some(at),
        execution_stopped_at: None,
        health_status: HealthStatus::Unknown,
    };
    let mut body = serde_json::to_value(&change).unwrap_or_default();
    body["cluster"] = json!(cluster);
    body
}

/// Every five seconds: tasks placed, the rate now and overall, RUNNING reports, and the
/// server's memory and CPU.
fn spawn_progress(counters: Arc<Counters>, target: usize, server: Option<u32>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut last = (0, server.and_then(procfs::cpu_seconds), Instant::now());
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            let placed = counters.placed.load(Ordering::Relaxed);
            let reported = counters.reported.load(Ordering::Relaxed);
            let cpu = server.and_then(procfs::cpu_seconds);
            let seconds = last.2.elapsed().as_secs_f64().max(1e-9);
            let now = (placed - last.0) as f64 / seconds;
            let overall = placed as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let busy = cpu
                .zip(last.1)
                .map_or_else(dash, |(c, l)| format!("{:.0}%", (c - l) / seconds * 100.0));
            let rss = server
                .and_then(procfs::rss_mib)
                .map_or_else(dash, |m| format!("{m:.0} MiB"));
            eprintln!(
                "[{:>5.0} s] placed {} / {} ({:.0}/s now, {:.0}/s overall), RUNNING reported {}; server {rss} resident, CPU {busy}",
                started.elapsed().as_secs_f64(),
                thousands(placed),
                thousands(target),
                now,
                overall,
                thousands(reported),
            );
            last = (placed, cpu, Instant::now());
        }
    })
}

fn dash() -> String {
    "-".to_owned()
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// What the cluster says once the run is over.
#[derive(Default)]
struct Check {
    cluster_running: u64,
    cluster_pending: u64,
    instances_running: u64,
    instances_pending: u64,
    instances_seen: usize,
    /// The instances with tasks on them.
    busy: Vec<String>,
    disconnected: usize,
    listed: usize,
    listed_twice: usize,
    placed_twice: usize,
    missing: usize,
    unexpected: usize,
    elapsed: Duration,
}

fn count(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or(0)
}

/// An ECS call made with retries; fails with the call's last error.
async fn ask(client: &Client, operation: &str, input: Value) -> anyhow::Result<Value> {
    let mut samples = Samples::default();
    retried(client, operation, &mut samples, || {
        client.ecs::<_, Value>(operation, &input)
    })
    .await
    .with_context(|| format!("{operation} failed"))
}

/// DescribeClusters, DescribeContainerInstances for every instance, and ListTasks for the
/// whole cluster, against the tasks placed.
async fn verify(
    client: &Client,
    cluster: &str,
    instances: &[String],
    placed: &[String],
) -> anyhow::Result<Check> {
    let started = Instant::now();
    let mut check = Check::default();
    let out = ask(client, "DescribeClusters", json!({"clusters": [cluster]})).await?;
    check.cluster_running = count(&out["clusters"][0], "runningTasksCount");
    check.cluster_pending = count(&out["clusters"][0], "pendingTasksCount");
    for chunk in instances.chunks(100) {
        let input = json!({"cluster": cluster, "containerInstances": chunk});
        let out = ask(client, "DescribeContainerInstances", input).await?;
        for instance in out["containerInstances"].as_array().into_iter().flatten() {
            check.instances_seen += 1;
            let (running, pending) = (
                count(instance, "runningTasksCount"),
                count(instance, "pendingTasksCount"),
            );
            check.instances_running += running;
            check.instances_pending += pending;
            if running + pending > 0 {
                let arn = instance["containerInstanceArn"]
                    .as_str()
                    .unwrap_or_default();
                check.busy.push(arn.to_owned());
            }
            check.disconnected += usize::from(instance["agentConnected"] == false);
        }
    }
    let listed = list_cluster_tasks(client, cluster, &mut check).await?;
    let mut expected = HashSet::with_capacity(placed.len());
    for arn in placed {
        check.placed_twice += usize::from(!expected.insert(arn.as_str()));
    }
    check.missing = expected.iter().filter(|a| !listed.contains(**a)).count();
    check.unexpected = listed
        .iter()
        .filter(|a| !expected.contains(a.as_str()))
        .count();
    check.elapsed = started.elapsed();
    Ok(check)
}

/// Every task of the cluster whose desired status is RUNNING, page by page.
async fn list_cluster_tasks(
    client: &Client,
    cluster: &str,
    check: &mut Check,
) -> anyhow::Result<HashSet<String>> {
    let mut listed = HashSet::new();
    let mut next_token: Option<String> = None;
    loop {
        let input = json!({"cluster": cluster, "maxResults": 100, "nextToken": next_token});
        let page = ask(client, "ListTasks", input).await?;
        for arn in page["taskArns"].as_array().into_iter().flatten() {
            check.listed += 1;
            let arn = arn.as_str().unwrap_or_default().to_owned();
            check.listed_twice += usize::from(!listed.insert(arn));
        }
        match page["nextToken"].as_str() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => return Ok(listed),
        }
    }
}

impl Check {
    /// What does not add up, given the tasks placed and reported RUNNING.
    fn problems(&self, placed: usize, reported: usize) -> Vec<String> {
        let (placed, reported) = (placed as u64, reported as u64);
        let mut problems = Vec::new();
        let mut expect = |what: &str, seen: u64, wanted: u64| {
            if seen != wanted {
                problems.push(format!("{what}: {seen}, expected {wanted}"));
            }
        };
        expect(
            "DescribeClusters running + pending",
            self.cluster_running + self.cluster_pending,
            placed,
        );
        expect("DescribeClusters running", self.cluster_running, reported);
        expect(
            "the instances' running + pending",
            self.instances_running + self.instances_pending,
            placed,
        );
        expect("the instances' running", self.instances_running, reported);
        expect(
            "ListTasks' distinct tasks",
            (self.listed - self.listed_twice) as u64,
            placed,
        );
        expect("tasks ListTasks listed twice", self.listed_twice as u64, 0);
        expect("tasks RunTask returned twice", self.placed_twice as u64, 0);
        expect("placed tasks ListTasks missed", self.missing as u64, 0);
        expect("tasks listed but not placed", self.unexpected as u64, 0);
        problems
    }

    fn verdict(&self, placed: usize, reported: usize) -> anyhow::Result<()> {
        let problems = self.problems(placed, reported);
        anyhow::ensure!(
            problems.is_empty(),
            "the cluster does not add up: {}",
            problems.join("; ")
        );
        Ok(())
    }
}

/// Times ListTasks as the agent calls it to find its tasks (by container instance, desired
/// RUNNING, every page) on a few of `instances`, spread over them.
async fn time_agent_list_tasks(client: &Client, cluster: &str, instances: &[String]) -> Phase {
    let started = Instant::now();
    let mut samples = Samples::default();
    let mut items = 0;
    let step = (instances.len() / AGENT_LIST_SAMPLE).max(1);
    for arn in instances.iter().step_by(step).take(AGENT_LIST_SAMPLE) {
        let mut next_token: Option<String> = None;
        loop {
            let input = json!({
                "cluster": cluster,
                "containerInstance": arn,
                "desiredStatus": "RUNNING",
                "nextToken": next_token,
            });
            let page = retried(client, "ListTasks", &mut samples, || {
                client.ecs::<_, Value>("ListTasks", &input)
            })
            .await;
            let Ok(page) = page else { break };
            items += page["taskArns"].as_array().map_or(0, Vec::len);
            match page["nextToken"].as_str() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
    }
    Phase {
        name: "list-tasks by instance (as agents)",
        items,
        calls: samples,
        elapsed: started.elapsed(),
    }
}

/// What the processes used, from /proc.
struct Usage {
    server_peak_rss: Option<f64>,
    server_cpu: Option<f64>,
    /// Server CPU from the first RunTask to the last RUNNING report.
    server_cpu_placing: Option<f64>,
    data_dir_bytes: Option<u64>,
    /// The data directory's entries of a MiB or more on disk, largest first.
    data_dir_entries: Vec<(String, u64)>,
    own_peak_rss: Option<f64>,
    own_cpu: Option<f64>,
}

impl Usage {
    fn of(server: Option<u32>) -> Usage {
        let me = std::process::id();
        let dir = server.and_then(data_dir);
        Usage {
            server_peak_rss: server.and_then(procfs::peak_rss_mib),
            server_cpu: server.and_then(procfs::cpu_seconds),
            server_cpu_placing: None,
            data_dir_bytes: dir.as_deref().map(disk_usage),
            data_dir_entries: dir.as_deref().map_or_else(Vec::new, entries),
            own_peak_rss: procfs::peak_rss_mib(me),
            own_cpu: procfs::cpu_seconds(me),
        }
    }
}

/// The server's `--data-dir`, from its command line.
fn data_dir(pid: u32) -> Option<std::path::PathBuf> {
    let args = procfs::cmdline(pid)?;
    let at = args.iter().position(|a| a == "--data-dir")?;
    args.get(at + 1).map(Into::into)
}

/// The bytes the files under `path` take on disk (allocated blocks).
fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let entries = std::fs::read_dir(path).into_iter().flatten().flatten();
    own + entries.map(|e| disk_usage(&e.path())).sum::<u64>()
}

/// The entries of `dir` that take a MiB or more on disk, largest first.
fn entries(dir: &Path) -> Vec<(String, u64)> {
    let mut found: Vec<(String, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                disk_usage(&e.path()),
            )
        })
        .filter(|(_, bytes)| *bytes >= 1 << 20)
        .collect();
    found.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    found
}

/// Everything the run measured.
struct Summary {
    registered: Phase,
    placement: Placement,
    reports: Reports,
    heartbeat: Option<HeartbeatReport>,
    agent_list: Phase,
    check: Check,
    usage: Usage,
}

/// The result table: one line per phase.
fn table(phases: &[&Phase]) -> String {
    let mut out = format!(
        "{:<36} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8}\n",
        "PHASE", "ITEMS", "CALLS", "ERRORS", "SECONDS", "ITEMS/S", "P50 MS", "P99 MS"
    );
    for phase in phases {
        let ms = |q| {
            phase
                .calls
                .quantile_ms(q)
                .map_or_else(dash, |v| format!("{v:.2}"))
        };
        let seconds = phase.elapsed.as_secs_f64();
        out.push_str(&format!(
            "{:<36} {:>9} {:>9} {:>7} {:>8.1} {:>8.0} {:>8} {:>8}\n",
            phase.name,
            phase.items,
            phase.calls.count(),
            phase.calls.errors,
            seconds,
            phase.items as f64 / seconds.max(1e-9),
            ms(0.50),
            ms(0.99),
        ));
    }
    out
}

impl Summary {
    fn phases(&self) -> Vec<&Phase> {
        let mut phases = vec![&self.registered, &self.placement.phase, &self.reports.phase];
        phases.extend(self.heartbeat.as_ref().map(|h| &h.phase));
        phases.push(&self.agent_list);
        phases
    }

    fn print(&self, args: &ClusterArgs) {
        println!();
        println!(
            "Berth cluster benchmark: {} simulated instances ({INSTANCE_CPU} CPU, {INSTANCE_MEMORY_MIB} MiB, 3 zones), {} tasks asked for (cpu {TASK_CPU}, memory {TASK_MEMORY_MIB}, no ports)",
            thousands(args.instances),
            thousands(args.tasks)
        );
        println!(
            "RunTask count 10, spread by zone then binpack on memory, from {} clients; {} simulated-agent clients report {} of the placed tasks RUNNING (one SubmitTaskStateChange each, beside placement, timed from the first RunTask)",
            args.clients,
            args.agents,
            share(args.report_running)
        );
        match &self.heartbeat {
            Some(h) => println!(
                "every instance calls in (DiscoverPollEndpoint) every {} s, as agents do",
                h.interval.as_secs()
            ),
            None => println!(
                "the instances never call in (--heartbeat-secs 0): the server does not watch them"
            ),
        }
        println!();
        print!("{}", table(&self.phases()));
        println!();
        self.print_outcome();
        self.print_usage();
        self.print_check();
        for phase in self.phases() {
            if let Some(e) = &phase.calls.first_error {
                println!("first error of {}: {e}", phase.name);
            }
        }
    }

    fn print_outcome(&self) {
        let p = &self.placement;
        println!(
            "placed {} tasks; {} refused in RunTask failures{}; {} not placed because calls failed after retries",
            thousands(p.arns.len()),
            thousands(p.failed),
            p.first_failure
                .as_ref()
                .map_or_else(String::new, |f| format!(" (first: {f})")),
            thousands(p.lost_to_errors),
        );
        println!(
            "reported RUNNING: {}; {} reports failed after retries",
            thousands(self.reports.done),
            thousands(self.reports.lost_to_errors)
        );
        // The agents' phase runs from the first RunTask until the last report.
        let seconds = self.reports.phase.elapsed.as_secs_f64();
        println!(
            "end to end, first RunTask to last RUNNING report: {seconds:.1} s ({:.0} tasks/s); placement alone: {:.1} s ({:.0} tasks/s)",
            p.arns.len() as f64 / seconds.max(1e-9),
            p.phase.elapsed.as_secs_f64(),
            p.arns.len() as f64 / p.phase.elapsed.as_secs_f64().max(1e-9),
        );
        if let Some(h) = &self.heartbeat {
            println!(
                "longest an instance went without calling in: {:.1} s (the server counts it disconnected after 30 s); at most {} heartbeats waited for an answer at once (the cap is {HEARTBEATS_IN_FLIGHT})",
                h.longest_silence.as_secs_f64(),
                h.most_waiting
            );
        }
    }

    fn print_usage(&self) {
        let u = &self.usage;
        let mib = |v: Option<f64>| v.map_or_else(dash, |v| format!("{v:.0} MiB"));
        let cpu = |v: Option<f64>| v.map_or_else(dash, |v| format!("{v:.1} s"));
        let placing = self.reports.phase.elapsed.as_secs_f64().max(1e-9);
        let files: Vec<String> = u
            .data_dir_entries
            .iter()
            .map(|(name, bytes)| format!("{name} {}", mib(Some(*bytes as f64 / 1048576.0))))
            .collect();
        println!(
            "server: peak {} resident, data directory {} on disk ({}); CPU {} from the first RunTask to the last report ({} cores on average), {} in all",
            mib(u.server_peak_rss),
            mib(u.data_dir_bytes.map(|b| b as f64 / 1048576.0)),
            files.join(", "),
            cpu(u.server_cpu_placing),
            u.server_cpu_placing
                .map_or_else(dash, |c| format!("{:.2}", c / placing)),
            cpu(u.server_cpu),
        );
        println!(
            "load generator (this process, on the same machine): peak {} resident, CPU {}",
            mib(u.own_peak_rss),
            cpu(u.own_cpu)
        );
    }

    fn print_check(&self) {
        let c = &self.check;
        let (placed, reported) = (self.placement.arns.len(), self.reports.done);
        println!(
            "check ({:.1} s): DescribeClusters running {} + pending {}; {} instances described: running {} + pending {}, {} disconnected; ListTasks {} tasks ({} twice), {} placed but not listed, {} listed but not placed",
            c.elapsed.as_secs_f64(),
            c.cluster_running,
            c.cluster_pending,
            c.instances_seen,
            c.instances_running,
            c.instances_pending,
            c.disconnected,
            c.listed,
            c.listed_twice,
            c.missing,
            c.unexpected,
        );
        let problems = c.problems(placed, reported);
        if problems.is_empty() {
            println!(
                "check: OK, every placed task is counted and listed once, and every reported one is RUNNING"
            );
        }
        for problem in problems {
            println!("check: MISMATCH {problem}");
        }
    }
}

/// `1.0` as "all", else a percentage.
fn share(fraction: f64) -> String {
    if fraction >= 1.0 {
        "all".to_owned()
    } else {
        format!("{:.0}%", fraction * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn selection_reports_an_even_share() {
        let picked = |fraction| {
            let s = Selection::new(fraction);
            (0..100).filter(|_| s.next()).count()
        };
        assert_eq!(picked(1.0), 100);
        assert_eq!(picked(0.25), 25);
        assert_eq!(picked(0.0), 0);
    }

    #[test]
    fn instances_spread_over_three_zones() {
        let zone = |i| {
            attributes("us-east-1", i)
                .into_iter()
                .find(|(name, _)| name == "ecs.availability-zone")
                .map(|(_, zone)| zone)
        };
        assert_eq!(zone(0).as_deref(), Some("us-east-1a"));
        assert_eq!(zone(4).as_deref(), Some("us-east-1b"));
        assert_eq!(zone(8).as_deref(), Some("us-east-1c"));
        assert_ne!(attributes("r", 1)[4], attributes("r", 257)[4]);
    }

    #[test]
    fn running_is_what_the_agent_sends() {
        let body = running("c1", "arn:task".into());
        assert_eq!(body["cluster"], "c1");
        assert_eq!(body["task"], "arn:task");
        assert_eq!(body["status"], "RUNNING");
        assert_eq!(body["containers"][0]["containerName"], "app");
        assert_eq!(body["containers"][0]["status"], "RUNNING");
    }

    #[test]
    fn the_check_names_what_does_not_add_up() {
        let good = Check {
            cluster_running: 8,
            cluster_pending: 2,
            instances_running: 8,
            instances_pending: 2,
            listed: 10,
            ..Check::default()
        };
        assert!(good.problems(10, 8).is_empty());
        assert!(good.verdict(10, 8).is_ok());
        let lost = Check {
            listed: 9,
            missing: 1,
            ..good
        };
        let problems = lost.problems(10, 8);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("ListTasks"), "{problems:?}");
        assert!(lost.verdict(10, 8).is_err());
    }
}
