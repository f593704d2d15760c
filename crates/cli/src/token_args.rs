//! `berth token create`: a join token for new hosts' agents, made with the root key.

use std::time::Duration;

use crate::agent_args::parse_duration;
use crate::control_plane_args::ControlPlaneArgs;
use berth_model::agent_channel::{
    CreateTokenAnswer, CreateTokenRequest, SIGNING_SERVICE, TOKENS_PATH,
};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a join token: `berth agent --token TOKEN` trades it for a key of its own.
    Create(CreateArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    control_plane: ControlPlaneArgs,
    /// How long the token may be used, e.g. 24h, 30m (at most 30 days).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    ttl: Duration,
    /// Only agents joining this cluster may use the token.
    #[arg(long)]
    cluster: Option<String>,
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Create(args) = command;
    let cp = &args.control_plane;
    let client = cp.client()?;
    let request = CreateTokenRequest {
        ttl_seconds: args.ttl.as_secs(),
        cluster: args.cluster.clone(),
    };
    let answer: CreateTokenAnswer = client
        .berth_json(SIGNING_SERVICE, TOKENS_PATH, &request)
        .await?;
    println!("{}", answer.token);
    // The token pins the server's identity, which only TLS can show.
    let server = match cp.server.strip_prefix("http://") {
        Some(rest) => format!("https://{rest}"),
        None => cp.server.clone(),
    };
    eprintln!(
        "Valid until {} (epoch seconds). On a new host:\n  berth agent --server {} --cluster {} --token {}",
        answer.expires_at.seconds(),
        server,
        args.cluster.as_deref().unwrap_or("CLUSTER"),
        answer.token
    );
    Ok(())
}
