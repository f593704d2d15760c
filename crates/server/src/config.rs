//! The server's configuration: what `berth server` and `berth up` pass in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every AWS API request must carry a valid SigV4 signature by a stored access key.
    SigV4,
    /// No signature is checked (throwaway set-ups only; the binary warns).
    Off,
}

/// A root access key pair given on the command line or in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP port listens.
    pub listen: SocketAddr,
    /// Where the SQLite store (and later registry blobs) live.
    pub data_dir: PathBuf,
    /// The 12-digit account id in every ARN.
    pub account_id: String,
    /// The region used when a request carries no SigV4 credential scope (auth off).
    pub default_region: String,
    pub auth: AuthMode,
    /// The root key to ensure at start; `None` creates one at first start and keeps it.
    pub root_key: Option<RootKey>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The registry's background sweep: lifecycle policies and garbage collection.
    pub registry_sweep: RegistrySweep,
}

/// When the registry applies lifecycle policies and collects garbage (`crate::registry::gc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySweep {
    /// How often a sweep runs.
    pub interval: Duration,
    /// An upload with no activity for this long is abandoned: its session and staged bytes
    /// are removed.
    pub upload_idle: Duration,
    /// A blob that no manifest references is removed only once nothing has linked, pushed or
    /// committed it for this long, so that a push in progress never loses its layers.
    pub blob_grace: Duration,
}

impl Default for RegistrySweep {
    fn default() -> Self {
        RegistrySweep {
            interval: Duration::from_secs(3600),
            upload_idle: Duration::from_secs(24 * 3600),
            blob_grace: Duration::from_secs(3600),
        }
    }
}

impl Config {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Config {
            listen,
            data_dir,
            account_id: "000000000000".into(),
            default_region: "us-east-1".into(),
            auth: AuthMode::SigV4,
            root_key: None,
            max_body_bytes: 4 * 1024 * 1024,
            registry_sweep: RegistrySweep::default(),
        }
    }
}
