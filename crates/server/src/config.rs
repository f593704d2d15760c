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

/// Where the registry keeps blob bytes (`crate::registry::blobs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RegistryStore {
    /// Files under `registry/` in the data directory.
    #[default]
    DataDir,
    /// An S3 bucket, or a bucket of an S3-compatible server, under an optional key prefix
    /// (no leading or trailing `/`). Credentials, region and endpoint come from the `AWS_*`
    /// environment variables.
    S3 { bucket: String, prefix: String },
    /// A directory, through the object store's local filesystem.
    Local { path: PathBuf },
}

const REGISTRY_STORE_FORMS: &str = "s3://BUCKET[/PREFIX] or file:///ABSOLUTE/PATH";

impl std::str::FromStr for RegistryStore {
    type Err = String;

    /// `s3://BUCKET[/PREFIX]` or `file:///ABSOLUTE/PATH` (percent-encoded as in any URL).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |why: &str| {
            format!("--registry-store must be {REGISTRY_STORE_FORMS}, got '{s}': {why}")
        };
        if s.contains(['?', '#']) {
            return Err(refuse("a query or fragment is not accepted"));
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_end_matches('/');
            let bucket_ok = !bucket.is_empty()
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
                });
            if !bucket_ok {
                return Err(refuse(
                    "the bucket name must be lowercase letters, digits, '-', '.' or '_'",
                ));
            }
            let prefix_ok = prefix.is_empty()
                || (!prefix.starts_with('/') && object_store::path::Path::parse(prefix).is_ok());
            if !prefix_ok {
                return Err(refuse(
                    "the prefix must be '/'-separated names, none empty, '.' or '..'",
                ));
            }
            return Ok(RegistryStore::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if let Some(path) = s.strip_prefix("file://") {
            let path = percent_encoding::percent_decode_str(path)
                .decode_utf8()
                .map_err(|_| refuse("the path is not UTF-8"))?;
            if !path.starts_with('/') {
                return Err(refuse("the path must be absolute (file:///...)"));
            }
            if path.split('/').any(|segment| segment == "..") {
                return Err(refuse("the path must not contain '..'"));
            }
            return Ok(RegistryStore::Local {
                path: PathBuf::from(path.as_ref()),
            });
        }
        Err(refuse("unknown scheme"))
    }
}

impl std::fmt::Display for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryStore::DataDir => f.write_str("registry/ in the data directory"),
            RegistryStore::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            RegistryStore::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            RegistryStore::Local { path } => write!(f, "file://{}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP port listens.
    pub listen: SocketAddr,
    /// Where the SQLite store (with the default backend) and registry blobs (with the default
    /// registry store) live.
    pub data_dir: PathBuf,
    /// The store backend (default: SQLite in `data_dir`).
    pub store: StoreBackend,
    /// Where registry blob bytes live (default: files in `data_dir`).
    pub registry_store: RegistryStore,
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
    /// The HTTP port's TLS identity (`crate::tls`).
    pub tls: TlsSource,
}

/// Where the server's TLS certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// A self-signed certificate made at first start and kept in `tls/` in the data directory,
    /// valid for localhost, this host's name, the listen address and these extra names.
    Generated { names: Vec<String> },
    /// The user's PEM files: the certificate chain (leaf first) and its private key.
    Files { certificate: PathBuf, key: PathBuf },
}

impl Default for TlsSource {
    fn default() -> Self {
        TlsSource::Generated { names: Vec::new() }
    }
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
            registry_store: RegistryStore::DataDir,
            account_id: "000000000000".into(),
            default_region: "us-east-1".into(),
            auth: AuthMode::SigV4,
            root_key: None,
            max_body_bytes: 4 * 1024 * 1024,
            registry_sweep: RegistrySweep::default(),
            tls: TlsSource::default(),
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

    #[test]
    fn registry_stores_parse_or_name_what_is_accepted() {
        let s3 = |bucket: &str, prefix: &str| RegistryStore::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        };
        assert_eq!("s3://blobs".parse(), Ok(s3("blobs", "")));
        assert_eq!("s3://blobs/".parse(), Ok(s3("blobs", "")));
        assert_eq!(
            "s3://my.blobs-1/berth/registry/".parse(),
            Ok(s3("my.blobs-1", "berth/registry"))
        );
        assert_eq!(
            "file:///srv/berth%20blobs".parse(),
            Ok(RegistryStore::Local {
                path: PathBuf::from("/srv/berth blobs")
            })
        );
        for good in ["s3://blobs/a/b", "file:///srv/blobs"] {
            let parsed: RegistryStore = good.parse().unwrap();
            assert_eq!(parsed.to_string(), good);
        }
        for bad in [
            "s3://",
            "s3:///prefix",
            "s3://Blobs",
            "s3://blobs//x",
            "s3://blobs/a/../b",
            "s3://blobs?region=x",
            "file://relative/path",
            "file://",
            "file:///srv/../etc",
            "/srv/blobs",
            "gs://blobs",
            "",
        ] {
            let err = bad.parse::<RegistryStore>().unwrap_err();
            assert!(err.contains("--registry-store"), "{bad}: {err}");
            assert!(err.contains("s3://BUCKET[/PREFIX]"), "{bad}: {err}");
            assert!(err.contains("file:///ABSOLUTE/PATH"), "{bad}: {err}");
        }
    }
}
