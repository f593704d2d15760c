//! `berth bench registry`: Berth's registry beside Debian's `docker-registry` (Docker
//! distribution 2.8), in one run, on the same disk, driven by the same client. Each round
//! pushes a fresh random (incompressible) image to both, once with monolithic uploads and
//! once with chunked ones, pulls it back (manifest, then every blob), and times manifest
//! `GET`s from concurrent clients; the table gives the medians of the rounds and the ratio
//! Berth/docker-registry, with the CPU time each server used.
//!
//! Berth runs with authentication on by default (every request carries `Basic AWS:<token>`
//! from ECR's GetAuthorizationToken), as users run it; docker-registry runs without.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_client::Client;
use bytes::Bytes;
use clap::Args;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::oci::OciClient;
use super::peer_registry::PeerRegistry;
use super::procfs;
use super::server_process::ServerProcess;
use super::stats::{Samples, Versus, versus_table};

#[derive(Args)]
pub struct RegistryArgs {
    /// The docker-registry binary to compare with.
    #[arg(long, default_value = "/usr/bin/docker-registry")]
    peer: PathBuf,
    /// Layers in each pushed image.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Size of each layer, in MB (10^6 bytes), random.
    #[arg(long, default_value_t = 50)]
    layer_mb: usize,
    /// Size of each PATCH of the chunked push, in MiB.
    #[arg(long, default_value_t = 8)]
    chunk_mib: usize,
    /// Manifest GETs timed in each round.
    #[arg(long, default_value_t = 1000)]
    manifest_gets: usize,
    /// Concurrent clients (each with its own connection) for the manifest GETs.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Rounds; the table shows the median of each figure.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Run Berth with --auth off (anonymous registry access) instead of ECR tokens.
    #[arg(long)]
    auth_off: bool,
}

const REPO: &str = "bench/app";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ECR_TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";
const MB: f64 = 1_000_000.0;

/// A pushable image: its blobs (config first) and its manifest.
struct Image {
    blobs: Vec<(String, Bytes)>,
    manifest: Bytes,
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

impl Image {
    /// `layers` random layers of `layer_bytes` each, a config naming them and an OCI manifest.
    fn random(seed: u64, layers: usize, layer_bytes: usize) -> Image {
        let mut rng = SmallRng::seed_from_u64(seed);
        let layers: Vec<(String, Bytes)> = (0..layers)
            .map(|_| {
                let mut data = vec![0u8; layer_bytes];
                rng.fill_bytes(&mut data);
                (digest_of(&data), Bytes::from(data))
            })
            .collect();
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(d, _)| d).collect::<Vec<_>>()},
        })
        .to_string();
        let config = Bytes::from(config);
        let config_digest = digest_of(&config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": layers.iter().map(|(digest, data)| json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest,
                "size": data.len(),
            })).collect::<Vec<_>>(),
        })
        .to_string();
        let mut blobs = vec![(config_digest, config)];
        blobs.extend(layers);
        Image {
            blobs,
            manifest: Bytes::from(manifest),
        }
    }

    fn blob_bytes(&self) -> usize {
        self.blobs.iter().map(|(_, b)| b.len()).sum()
    }
}

/// A registry under test: its clients and its process.
struct Target {
    name: &'static str,
    clients: Vec<OciClient>,
    pid: u32,
    results: Results,
}

/// What one registry measured, a figure per round.
#[derive(Default)]
struct Results {
    push_monolithic: Vec<f64>,
    push_chunked: Vec<f64>,
    pull: Vec<f64>,
    cpu_push_monolithic: Vec<f64>,
    cpu_push_chunked: Vec<f64>,
    cpu_pull: Vec<f64>,
    cpu_gets: Vec<f64>,
    gets: Samples,
    gets_elapsed: Duration,
}

#[derive(Clone, Copy)]
enum Upload {
    Monolithic,
    Chunked(usize),
}

async fn push(client: &OciClient, image: &Image, tag: &str, upload: Upload) -> anyhow::Result<()> {
    for (digest, data) in &image.blobs {
        match upload {
            Upload::Monolithic => client.push_monolithic(REPO, digest, data.clone()).await?,
            Upload::Chunked(chunk) => {
                client
                    .push_chunked(REPO, digest, data.clone(), chunk)
                    .await?
            }
        }
    }
    client
        .put_manifest(REPO, tag, OCI_MANIFEST, image.manifest.clone())
        .await
}

/// Gets the manifest and every blob it names (counting the bytes, keeping none); returns the
/// manifest and the blob bytes received.
async fn pull(client: &OciClient, tag: &str) -> anyhow::Result<(Bytes, u64)> {
    let manifest = client.get_manifest(REPO, tag).await?;
    let parsed: Value = serde_json::from_slice(&manifest).context("the manifest is not JSON")?;
    let mut digests = vec![parsed["config"]["digest"].as_str().unwrap_or_default()];
    digests.extend(
        parsed["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["digest"].as_str().unwrap_or_default()),
    );
    let mut received = 0;
    for digest in digests {
        received += client.get_blob(REPO, digest, |_| {}).await?;
    }
    Ok((manifest, received))
}

/// Checks, off the clock, that the registry serves exactly the pushed image: the manifest, and
/// every blob downloaded again and hashed.
async fn check_pull(client: &OciClient, image: &Image, manifest: &Bytes) -> anyhow::Result<()> {
    anyhow::ensure!(
        *manifest == image.manifest,
        "the pulled manifest differs from the pushed one"
    );
    for (digest, _) in &image.blobs {
        let mut hasher = Sha256::new();
        client
            .get_blob(REPO, digest, |piece| hasher.update(piece))
            .await?;
        let got = format!("sha256:{}", hex::encode(hasher.finalize()));
        anyhow::ensure!(got == *digest, "blob {digest} came back as {got}");
    }
    Ok(())
}

/// `count` manifest GETs spread over the clients (one request in flight per client).
async fn manifest_gets(
    clients: &[OciClient],
    tag: &str,
    count: usize,
) -> anyhow::Result<(Samples, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for client in clients {
        let (client, next, tag) = (client.clone(), next.clone(), tag.to_owned());
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let t = Instant::now();
                match client.get_manifest(REPO, &tag).await {
                    Ok(_) => samples.ok(t.elapsed()),
                    Err(e) => samples.failed(format!("{e:#}")),
                }
            }
            samples
        }));
    }
    let mut samples = Samples::default();
    for worker in workers {
        samples.merge(worker.await.context("a manifest client panicked")?);
    }
    Ok((samples, started.elapsed()))
}

/// Runs `work` against the target and returns how long it took and the CPU the server used.
async fn timed<F, Fut, T>(pid: u32, work: F) -> anyhow::Result<(T, Duration, f64)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let cpu = procfs::cpu_seconds(pid).unwrap_or(0.0);
    let started = Instant::now();
    let out = work().await?;
    let elapsed = started.elapsed();
    let used = procfs::cpu_seconds(pid).unwrap_or(0.0) - cpu;
    Ok((out, elapsed, used))
}

fn mb_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / MB / elapsed.as_secs_f64().max(1e-9)
}

/// One round on one target: two pushes, a pull, the manifest GETs.
async fn round(
    target: &mut Target,
    round: usize,
    images: (&Image, &Image),
    args: &RegistryArgs,
) -> anyhow::Result<()> {
    let client = target.clients[0].clone();
    let (monolithic, chunked) = images;
    let mono_tag = format!("r{round}-monolithic");
    let chunked_tag = format!("r{round}-chunked");
    let bytes = monolithic.blob_bytes();

    let (_, elapsed, cpu) = timed(target.pid, || {
        push(&client, monolithic, &mono_tag, Upload::Monolithic)
    })
    .await
    .with_context(|| format!("{}: monolithic push", target.name))?;
    let r = &mut target.results;
    r.push_monolithic.push(mb_per_s(bytes, elapsed));
    r.cpu_push_monolithic.push(cpu);

    let upload = Upload::Chunked(args.chunk_mib.max(1) << 20);
    let (_, elapsed, cpu) = timed(target.pid, || push(&client, chunked, &chunked_tag, upload))
        .await
        .with_context(|| format!("{}: chunked push", target.name))?;
    let r = &mut target.results;
    r.push_chunked.push(mb_per_s(chunked.blob_bytes(), elapsed));
    r.cpu_push_chunked.push(cpu);

    let ((manifest, received), elapsed, cpu) = timed(target.pid, || pull(&client, &mono_tag))
        .await
        .with_context(|| format!("{}: pull", target.name))?;
    anyhow::ensure!(
        received == bytes as u64,
        "{}: the pull got {received} bytes of blobs, not {bytes}",
        target.name
    );
    check_pull(&client, monolithic, &manifest)
        .await
        .with_context(|| format!("{}: pull", target.name))?;
    let r = &mut target.results;
    r.pull.push(mb_per_s(bytes, elapsed));
    r.cpu_pull.push(cpu);

    // Warm-up: every client's connection open, the manifest in any cache.
    manifest_gets(&target.clients, &mono_tag, target.clients.len() * 5).await?;
    let ((samples, elapsed), _, cpu) = timed(target.pid, || {
        manifest_gets(&target.clients, &mono_tag, args.manifest_gets)
    })
    .await?;
    let r = &mut target.results;
    r.gets.merge(samples);
    r.gets_elapsed += elapsed;
    r.cpu_gets.push(cpu);
    eprintln!(
        "round {round}, {:<15}: push {:>6.0} / {:>6.0} MB/s (monolithic / chunked), pull {:>6.0} MB/s",
        target.name,
        r.push_monolithic.last().unwrap_or(&0.0),
        r.push_chunked.last().unwrap_or(&0.0),
        r.pull.last().unwrap_or(&0.0),
    );
    Ok(())
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

/// Berth's registry: a throwaway server, a repository, and the `Authorization` to send.
async fn start_berth(auth_off: bool) -> anyhow::Result<(ServerProcess, Option<String>)> {
    let server = if auth_off {
        ServerProcess::start_with(&["--auth", "off"])?
    } else {
        ServerProcess::start()?
    };
    let ecr = Client::new(&server.endpoint, server.credentials.clone(), "us-east-1")?;
    ecr.json_1_1::<_, Value>(
        "ecr",
        ECR_TARGET_PREFIX,
        "CreateRepository",
        &json!({ "repositoryName": REPO }),
    )
    .await
    .context("CreateRepository")?;
    if auth_off {
        return Ok((server, None));
    }
    let token: Value = ecr
        .json_1_1(
            "ecr",
            ECR_TARGET_PREFIX,
            "GetAuthorizationToken",
            &json!({}),
        )
        .await
        .context("GetAuthorizationToken")?;
    let basic = token["authorizationData"][0]["authorizationToken"]
        .as_str()
        .context("GetAuthorizationToken returned no token")?;
    Ok((server, Some(format!("Basic {basic}"))))
}

fn target(
    name: &'static str,
    endpoint: &str,
    authorization: Option<&str>,
    pid: u32,
    clients: usize,
) -> anyhow::Result<Target> {
    Ok(Target {
        name,
        clients: (0..clients.max(1))
            .map(|_| OciClient::new(endpoint, authorization))
            .collect::<anyhow::Result<_>>()?,
        pid,
        results: Results::default(),
    })
}

pub async fn run(args: RegistryArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    anyhow::ensure!(args.layers > 0, "--layers must be at least 1");
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for figures worth quoting");
    }
    let peer = PeerRegistry::start(&args.peer).await?;
    let (server, authorization) = start_berth(args.auth_off).await?;
    let mut targets = [
        target(
            "berth",
            &server.endpoint,
            authorization.as_deref(),
            server.pid(),
            args.clients,
        )?,
        target(
            "docker-registry",
            &peer.endpoint,
            None,
            peer.pid(),
            args.clients,
        )?,
    ];
    let layer_bytes = args.layer_mb * MB as usize;
    let mut image_bytes = 0;
    for r in 1..=args.rounds {
        let seed = u64::from(std::process::id()) << 16 | (r as u64) << 1;
        let monolithic = Image::random(seed, args.layers, layer_bytes);
        let chunked = Image::random(seed | 1, args.layers, layer_bytes);
        image_bytes = monolithic.blob_bytes();
        // Alternate who goes first, so that neither always meets a disk the other just filled.
        let order = if r % 2 == 1 { [0, 1] } else { [1, 0] };
        for i in order {
            round(&mut targets[i], r, (&monolithic, &chunked), &args).await?;
        }
    }
    let memory = [procfs::rss_mib(server.pid()), procfs::rss_mib(peer.pid())];
    let [berth, other] = &targets;
    let (b, p) = (&berth.results, &other.results);
    let m = |f: fn(&Results) -> &Vec<f64>| (median(f(b)), median(f(p)));
    let mut rows = Vec::new();
    let mut add = |metric: String, (berth, peer): (Option<f64>, Option<f64>)| {
        rows.push(Versus::new(metric, berth, peer));
    };
    add("push, monolithic (MB/s)".into(), m(|r| &r.push_monolithic));
    add(
        format!("push, {} MiB chunks (MB/s)", args.chunk_mib.max(1)),
        m(|r| &r.push_chunked),
    );
    add("pull (MB/s)".into(), m(|r| &r.pull));
    let per_second = |r: &Results| r.gets.count() as f64 / r.gets_elapsed.as_secs_f64().max(1e-9);
    add(
        format!("manifest GET, {} clients (req/s)", args.clients),
        (Some(per_second(b)), Some(per_second(p))),
    );
    add(
        "manifest GET p50 (ms)".into(),
        (b.gets.quantile_ms(0.5), p.gets.quantile_ms(0.5)),
    );
    add(
        "manifest GET p99 (ms)".into(),
        (b.gets.quantile_ms(0.99), p.gets.quantile_ms(0.99)),
    );
    add(
        "server CPU s, monolithic push".into(),
        m(|r| &r.cpu_push_monolithic),
    );
    add(
        "server CPU s, chunked push".into(),
        m(|r| &r.cpu_push_chunked),
    );
    add("server CPU s, pull".into(), m(|r| &r.cpu_pull));
    add(
        format!("server CPU s, {} manifest GETs", args.manifest_gets),
        m(|r| &r.cpu_gets),
    );
    add(
        "server memory at the end (MiB RSS)".into(),
        (memory[0], memory[1]),
    );

    println!();
    println!(
        "Registry: Berth vs docker-registry ({}), one run, both storing under {}, the same hyper client",
        peer.version,
        std::env::temp_dir().display()
    );
    println!(
        "image: {} random layers of {} MB + config + OCI manifest ({:.1} MB of blobs), pushed and pulled one blob at a time",
        args.layers,
        args.layer_mb,
        image_bytes as f64 / MB
    );
    println!(
        "{} rounds (fresh image each, order alternating), medians; pull right after push (warm page cache), bytes counted on the clock and hashed in a second, untimed download",
        args.rounds
    );
    println!(
        "manifest GETs: {} a round by tag, {} clients with a connection each, after {} untimed",
        args.manifest_gets,
        args.clients,
        args.clients * 5
    );
    println!(
        "auth: Berth {}; docker-registry none",
        if args.auth_off {
            "--auth off (anonymous)"
        } else {
            "on (Basic AWS:<GetAuthorizationToken token> on every request)"
        }
    );
    print!("{}", versus_table("docker-registry", &rows, false));
    for t in &targets {
        if let Some(e) = &t.results.gets.first_error {
            println!(
                "{} manifest GET errors: {} (first: {e})",
                t.name, t.results.gets.errors
            );
        }
    }
    drop(server);
    drop(peer);
    Ok(())
}
