//! The flags every host process (`berth agent`, `berth lb`) uses to reach the control plane:
//! its endpoint, the key pair it signs with, and the region.

use berth_client::Credentials;
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct ControlPlaneArgs {
    /// The control plane's endpoint, e.g. http://10.0.0.5:9180.
    #[arg(long, env = "BERTH_SERVER")]
    pub server: String,
    /// Access key id this host signs its requests with.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", requires = "secret_access_key")]
    access_key_id: Option<String>,
    /// Secret access key, with --access-key-id.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    /// The region this host serves.
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    pub region: String,
}

impl ControlPlaneArgs {
    /// The key pair, when one was given.
    pub fn credentials(&self) -> Option<Credentials> {
        Some(Credentials {
            access_key_id: self.access_key_id.clone()?,
            secret_access_key: self.secret_access_key.clone()?,
        })
    }

    /// The key pair, which this command cannot do without.
    pub fn required_credentials(&self) -> anyhow::Result<Credentials> {
        self.credentials().ok_or_else(|| {
            anyhow::anyhow!(
                "no credentials: pass --access-key-id and --secret-access-key (or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            )
        })
    }
}
