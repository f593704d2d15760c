//! The flags every host process (`berth agent`, `berth lb`) and `berth token` use to reach the
//! control plane: its endpoint, whom to take for it, the key pair to sign with, and the region.

use berth_client::{Client, Credentials, ServerPin, Trust};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct ControlPlaneArgs {
    /// The control plane's endpoint, e.g. https://10.0.0.5:9180 (its port answers http://
    /// too).
    #[arg(long, env = "BERTH_SERVER")]
    pub server: String,
    /// The server's identity over https://: the SHA-256 of its certificate's public key, as
    /// `berth server` prints it (64 hex digits, optionally after sha256:). Without it, an
    /// https:// server needs a certificate from the system's roots.
    #[arg(long, env = "BERTH_SERVER_PIN", value_parser = parse_pin)]
    pub server_pin: Option<ServerPin>,
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

fn parse_pin(s: &str) -> Result<ServerPin, String> {
    s.parse()
}

impl ControlPlaneArgs {
    /// A client for the server, signing with the key pair this command cannot do without.
    pub fn client(&self) -> anyhow::Result<Client> {
        let trust = self.server_pin.map(Trust::Pin).unwrap_or_default();
        Ok(Client::with_trust(
            &self.server,
            self.required_credentials()?,
            self.region.clone(),
            &trust,
        )?)
    }

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
