//! `berth`: the one binary. Parses the command line and the config file, sets up logging and
//! starts the parts a command asks for. It is the composition root: it picks the store backend
//! and wires the server; it holds no domain logic of its own.

mod aws_profile;
mod bench;
mod settings;

use anyhow::Context;

/// The control plane allocates many small, short-lived records per request; mimalloc keeps
/// that from dominating its profile (glibc's malloc took over half the CPU under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use berth_server::config::AuthMode;
use clap::{Parser, Subcommand};
use settings::ServerArgs;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A self-hosted container service that speaks the Amazon ECS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start Berth on this machine: the control plane on an embedded store, and write an AWS CLI
    /// profile `berth` that points at it.
    Up {
        #[command(flatten)]
        server: ServerArgs,
        /// Do not write the `berth` profile into the AWS config and credentials files.
        #[arg(long, env = "BERTH_NO_PROFILE")]
        no_profile: bool,
    },
    /// Start the control plane alone (what multi-host and HA set-ups run).
    Server {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Benchmarks that print throughput and latency (not tests: they assert nothing).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Up { server, no_profile } => run_server(server, !no_profile).await,
            Command::Server { server } => run_server(server, false).await,
            Command::Bench(command) => bench::run(command).await,
        }
    })
}

async fn run_server(args: ServerArgs, write_profile: bool) -> anyhow::Result<()> {
    let config = args.resolve()?;
    if config.auth == AuthMode::Off {
        tracing::warn!(
            "authentication is OFF: anyone who can reach {} can do anything; use this only for throwaway set-ups",
            config.listen
        );
    }
    let store = berth_server::open_sqlite(&config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "could not listen on {}; is another Berth running? pick another with --listen",
                config.listen
            )
        })?;
    let local = listener.local_addr()?;
    let region = config.default_region.clone();
    let data_dir = config.data_dir.clone();
    let (app, root) = berth_server::App::open(config, store).await?;
    let endpoint = format!("http://{local}");
    println!("Berth is listening on {endpoint}");
    println!("  data directory : {}", data_dir.display());
    println!("  region         : {region}");
    println!("  access key id  : {}", root.access_key_id);
    println!("  secret key     : {}", root.secret_access_key);
    if write_profile {
        let written = aws_profile::write(
            &endpoint,
            &region,
            &root.access_key_id,
            &root.secret_access_key,
        )?;
        println!(
            "  AWS CLI profile 'berth' written to {} and {}",
            written.config.display(),
            written.credentials.display()
        );
        println!("Try: aws --profile berth ecs list-clusters");
    } else {
        println!("Try: aws --endpoint-url {endpoint} --region {region} ecs list-clusters");
    }
    berth_server::serve(app, listener, shutdown_signal()).await?;
    println!("Berth stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
