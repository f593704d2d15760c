//! `berth lb`'s flags and environment variables, and the data plane settings `berth up` uses.

use std::net::IpAddr;
use std::time::Duration;

use crate::control_plane_args::ControlPlaneArgs;
use berth_client::Client;
use clap::Args;

/// How often the data plane asks the control plane for its configuration.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Args, Debug, Clone)]
pub struct LbArgs {
    #[command(flatten)]
    control_plane: ControlPlaneArgs,
    /// The address listener ports are opened on.
    #[arg(long, env = "BERTH_LB_BIND", default_value = "0.0.0.0")]
    bind: IpAddr,
}

impl LbArgs {
    pub fn resolve(self) -> anyhow::Result<(Client, berth_lb::Options)> {
        Ok((self.control_plane.client()?, options(self.bind)))
    }
}

pub fn options(bind: IpAddr) -> berth_lb::Options {
    berth_lb::Options {
        bind,
        poll_interval: POLL_INTERVAL,
    }
}
