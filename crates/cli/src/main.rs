//! `berth`: the one binary. Parses the command line and the config file, sets up logging and
//! starts the parts a command asks for. It is the composition root: it picks the store backend
//! and wires the server, the agent and the load balancer; it holds no domain logic of its own.

mod agent_args;
mod aws_profile;
mod bench;
mod control_plane_args;
mod lb_args;
mod settings;
mod token_args;

use anyhow::Context;

/// The control plane allocates many small, short-lived records per request; mimalloc keeps
/// that from dominating its profile (glibc's malloc took over half the CPU under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use berth_server::config::{AuthMode, StoreBackend};
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
    /// Start Berth on this machine: the control plane on an embedded store, an agent that runs
    /// this machine's tasks in Docker (cluster `default`), and write an AWS CLI profile `berth`
    /// that points at it.
    Up {
        #[command(flatten)]
        server: ServerArgs,
        /// Do not write the `berth` profile into the AWS config and credentials files.
        #[arg(long, env = "BERTH_NO_PROFILE")]
        no_profile: bool,
        /// Run no agent (for machines without Docker): tasks cannot be placed here.
        #[arg(long, env = "BERTH_NO_AGENT")]
        no_agent: bool,
        /// Run no load balancer data plane: listeners of load balancers are not served here.
        #[arg(long, env = "BERTH_NO_LB")]
        no_lb: bool,
        /// The address the load balancer opens listener ports on.
        #[arg(long, env = "BERTH_LB_BIND", default_value = "0.0.0.0")]
        lb_bind: std::net::IpAddr,
    },
    /// Start the control plane alone (what multi-host and HA set-ups run).
    Server {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Join a cluster as a container instance and run its tasks in Docker on this host.
    Agent {
        #[command(flatten)]
        agent: agent_args::AgentArgs,
    },
    /// Serve the load balancers' listeners on this host (the ALB data plane), configured by the
    /// control plane.
    Lb {
        #[command(flatten)]
        lb: lb_args::LbArgs,
    },
    /// Join tokens for new hosts' agents.
    #[command(subcommand)]
    Token(token_args::TokenCommand),
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
    let mut runtime = match cli.command {
        // The data plane alone on one CPU: a runtime on this thread alone does its work with
        // fewer atomics and wake-ups than the work-stealing one.
        Command::Lb { .. } if std::thread::available_parallelism().is_ok_and(|n| n.get() == 1) => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = runtime
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Up {
                server,
                no_profile,
                no_agent,
                no_lb,
                lb_bind,
            } => {
                let lb = (!no_lb).then_some(lb_bind);
                run_server(server, !no_profile, !no_agent, lb).await
            }
            Command::Server { server } => run_server(server, false, false, None).await,
            Command::Lb { lb } => run_lb(lb).await,
            Command::Agent { agent } => run_agent(agent).await,
            Command::Bench(command) => bench::run(command).await,
            Command::Token(command) => token_args::run(command).await,
        }
    })
}

/// `lb`: where the in-process load balancer opens listener ports; `None` runs none.
async fn run_server(
    args: ServerArgs,
    write_profile: bool,
    with_agent: bool,
    lb: Option<std::net::IpAddr>,
) -> anyhow::Result<()> {
    let config = args.resolve()?;
    if config.auth == AuthMode::Off {
        tracing::warn!(
            "authentication is OFF: anyone who can reach {} can do anything; use this only for throwaway set-ups",
            config.listen
        );
    }
    let backend = berth_server::open_store(&config).await?;
    let store_line = match &config.store {
        StoreBackend::Sqlite => "SQLite in the data directory".to_owned(),
        StoreBackend::Etcd { endpoints } => format!(
            "etcd at {} (the elected leader runs the controllers)",
            endpoints.join(",")
        ),
    };
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
    let registry_line = config.registry_store.to_string();
    let (app, root) = berth_server::App::open(config, backend.store).await?;
    let endpoint = format!("http://{local}");
    println!("Berth is listening on {endpoint}");
    println!("  also over TLS  : https://{local}");
    println!(
        "  certificate    : {} (trust it with aws --ca-bundle)",
        app.tls.certificate_path.display()
    );
    println!("  server pin     : sha256:{}", app.tls.pin);
    println!("  data directory : {}", data_dir.display());
    println!("  store          : {store_line}");
    println!("  registry blobs : {registry_line}");
    println!("  region         : {region}");
    println!("  access key id  : {}", root.access_key_id);
    println!("  secret key     : {}", root.secret_access_key);
    if with_agent {
        println!("  agent          : this machine, in cluster 'default' (--no-agent to run none)");
    }
    if let Some(bind) = lb {
        println!("  load balancer  : listeners on {bind} (--no-lb to run none)");
    }
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
    // The agent and the load balancer reach the server through its address, as remote ones
    // would.
    let mut reachable = local;
    if reachable.ip().is_unspecified() {
        reachable.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let credentials = berth_client::Credentials {
        access_key_id: root.access_key_id.clone(),
        secret_access_key: root.secret_access_key.clone(),
    };
    let lb = match lb {
        Some(bind) => {
            let client = berth_client::Client::new(
                &format!("http://{reachable}"),
                credentials.clone(),
                region.clone(),
            )?;
            Some(tokio::spawn(berth_lb::run(client, lb_args::options(bind))))
        }
        None => None,
    };
    let agent = with_agent.then(|| {
        let config = agent_args::local(
            format!("http://{reachable}"),
            credentials,
            region.clone(),
            data_dir.clone(),
            local.port(),
        );
        tokio::spawn(async move {
            if let Err(e) = berth_agent::run(config).await {
                tracing::error!("the agent stopped: {e}");
            }
        })
    });
    berth_server::serve(app, listener, backend.election, shutdown_signal()).await?;
    // The agent stops with the server; its containers go on and are adopted on the next start.
    if let Some(agent) = agent {
        agent.abort();
    }
    if let Some(lb) = lb {
        lb.abort();
    }
    println!("Berth stopped");
    Ok(())
}

async fn run_agent(args: agent_args::AgentArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    println!(
        "Berth agent joining cluster '{}' at {}",
        config.cluster, config.endpoint
    );
    tokio::select! {
        result = berth_agent::run(config) => result.map_err(anyhow::Error::from),
        () = shutdown_signal() => {
            println!("Berth agent stopped; its containers keep running");
            Ok(())
        }
    }
}

async fn run_lb(args: lb_args::LbArgs) -> anyhow::Result<()> {
    let (client, options) = args.resolve()?;
    println!(
        "Berth load balancer serving region '{}' of {} on {}",
        client.region(),
        client.endpoint_authority(),
        options.bind
    );
    tokio::select! {
        () = berth_lb::run(client, options) => Ok(()),
        () = shutdown_signal() => {
            println!("Berth load balancer stopped");
            Ok(())
        }
    }
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
