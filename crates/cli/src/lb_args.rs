//! `berth lb`'s flags and environment variables, and the data plane settings `berth up` uses.

use std::net::IpAddr;
use std::time::Duration;

use berth_client::{Client, Credentials};
use clap::Args;

/// How often the data plane asks the control plane for its configuration.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Args, Debug, Clone)]
pub struct LbArgs {
    /// The control plane's endpoint, e.g. http://10.0.0.5:9180.
    #[arg(long, env = "BERTH_SERVER")]
    server: String,
    /// Access key id the load balancer signs its requests with.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key_id: String,
    /// Secret access key, with --access-key-id.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: String,
    /// The region whose load balancers this host serves.
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    region: String,
    /// The address listener ports are opened on.
    #[arg(long, env = "BERTH_LB_BIND", default_value = "0.0.0.0")]
    bind: IpAddr,
}

impl LbArgs {
    pub fn resolve(self) -> anyhow::Result<(Client, berth_lb::Options)> {
        let client = Client::new(
            &self.server,
            Credentials {
                access_key_id: self.access_key_id,
                secret_access_key: self.secret_access_key,
            },
            self.region,
        )?;
        Ok((client, options(self.bind)))
    }
}

pub fn options(bind: IpAddr) -> berth_lb::Options {
    berth_lb::Options {
        bind,
        poll_interval: POLL_INTERVAL,
    }
}
