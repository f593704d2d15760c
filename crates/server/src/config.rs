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

/// Where the server keeps its state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreBackend {
    /// The embedded SQLite file `berth.db` in the data directory: one server.
    #[default]
    Sqlite,
    /// An etcd cluster, at these `HOST:PORT` client endpoints: several servers can share it,
    /// and one elected leader runs the controllers.
    Etcd { endpoints: Vec<String> },
}

impl std::str::FromStr for StoreBackend {
    type Err = String;

    /// `sqlite`, or `etcd://HOST:PORT[,HOST:PORT...]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "sqlite" {
            return Ok(StoreBackend::Sqlite);
        }
        let Some(list) = s.strip_prefix("etcd://") else {
            return Err(format!(
                "--store must be 'sqlite' or etcd://HOST:PORT[,HOST:PORT], got '{s}'"
            ));
        };
        let endpoints: Vec<String> = list
            .trim_end_matches('/')
            .split(',')
            .map(str::to_owned)
            .collect();
        for endpoint in &endpoints {
            let valid = endpoint.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if !valid {
                return Err(format!("--store: '{endpoint}' in '{s}' is not HOST:PORT"));
            }
        }
        Ok(StoreBackend::Etcd { endpoints })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP port listens.
    pub listen: SocketAddr,
    /// Where the SQLite store (with the default backend) and registry blobs live.
    pub data_dir: PathBuf,
    /// The store backend (default: SQLite in `data_dir`).
    pub store: StoreBackend,
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
            store: StoreBackend::Sqlite,
            account_id: "000000000000".into(),
            default_region: "us-east-1".into(),
            auth: AuthMode::SigV4,
            root_key: None,
            max_body_bytes: 4 * 1024 * 1024,
            registry_sweep: RegistrySweep::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_settings_parse_or_name_what_is_wrong() {
        assert_eq!("sqlite".parse(), Ok(StoreBackend::Sqlite));
        assert_eq!(
            "etcd://10.0.0.1:2379,etcd-2:2379".parse(),
            Ok(StoreBackend::Etcd {
                endpoints: vec!["10.0.0.1:2379".into(), "etcd-2:2379".into()]
            })
        );
        for bad in [
            "etcd://",
            "etcd://host",
            "etcd://:2379",
            "etcd://h:99999",
            "mysql://x:1",
        ] {
            let err = bad.parse::<StoreBackend>().unwrap_err();
            assert!(err.contains("--store"), "{bad}: {err}");
        }
    }
}
