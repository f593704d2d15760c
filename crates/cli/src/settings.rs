//! Server settings from three layers, strongest first: command-line flags, `BERTH_*`
//! environment variables (clap reads them), then the TOML file named by `--config`.
//!
//! Every field of the TOML file (all optional):
//!
//! ```toml
//! listen = "127.0.0.1:9180"          # address of the one HTTP port
//! data_dir = "/var/lib/berth"        # where the SQLite store and registry blobs live
//! store = "sqlite"                   # or "etcd://HOST:PORT[,HOST:PORT]" for several servers (HA)
//! registry_store = "s3://bucket/pre" # registry blobs: s3://BUCKET[/PREFIX] or file:///PATH
//!                                    # (default: registry/ in data_dir)
//! account_id = "000000000000"        # 12 digits, used in every ARN
//! region = "us-east-1"               # region for requests without a SigV4 scope
//! auth = "sigv4"                     # or "off" for throwaway set-ups
//! root_access_key_id = "AKIA..."     # the root key pair; created at first start if absent
//! root_secret_access_key = "..."
//! max_body_bytes = 4194304           # largest request body accepted
//! ```

use anyhow::{Context, bail};
use berth_server::config::{AuthMode, Config, RootKey, TlsSource};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9180";

#[derive(Args, Debug, Clone, Default)]
pub struct ServerArgs {
    /// A TOML file with the settings below (flags and BERTH_* variables override it).
    #[arg(long, env = "BERTH_CONFIG")]
    config: Option<PathBuf>,
    /// Address and port of the HTTP port [default: 127.0.0.1:9180].
    #[arg(long, env = "BERTH_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory that holds the store [default: the user's data directory, e.g. ~/.local/share/berth].
    #[arg(long, env = "BERTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where the state lives: `sqlite` (a file in the data directory, one server) or
    /// `etcd://HOST:PORT[,HOST:PORT]` (several servers share it; one elected leader runs the
    /// controllers) [default: sqlite].
    #[arg(long, env = "BERTH_STORE")]
    store: Option<String>,
    /// Where registry blobs live: `s3://BUCKET[/PREFIX]` (an S3 or S3-compatible bucket;
    /// endpoint, region and keys from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP...) or `file:///ABSOLUTE/PATH` [default: files in
    /// the data directory].
    #[arg(long, env = "BERTH_REGISTRY_STORE")]
    registry_store: Option<String>,
    /// The 12-digit account id used in ARNs [default: 000000000000].
    #[arg(long, env = "BERTH_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Region for requests that carry no SigV4 credential scope [default: us-east-1].
    #[arg(long, env = "BERTH_REGION")]
    region: Option<String>,
    /// `sigv4` (every request signed by a stored key) or `off` (throwaway set-ups) [default: sigv4].
    #[arg(long, env = "BERTH_AUTH")]
    auth: Option<String>,
    /// Root access key id to use instead of a generated one.
    #[arg(long, env = "BERTH_ROOT_ACCESS_KEY_ID")]
    root_access_key: Option<String>,
    /// Root secret access key, with --root-access-key.
    #[arg(long, env = "BERTH_ROOT_SECRET_ACCESS_KEY", hide_env_values = true)]
    root_secret_key: Option<String>,
    /// The port's TLS certificate chain, PEM, leaf first (with --tls-key) [default: a
    /// self-signed one made at first start in DATA_DIR/tls/].
    #[arg(long, env = "BERTH_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, PEM.
    #[arg(long, env = "BERTH_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A further DNS name or IP address the self-signed certificate is made for; may be
    /// repeated (to re-issue it for new names, delete DATA_DIR/tls/cert.pem: the key, and so
    /// the pin, stays).
    #[arg(long = "tls-name", value_name = "NAME")]
    tls_names: Vec<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    store: Option<String>,
    registry_store: Option<String>,
    account_id: Option<String>,
    region: Option<String>,
    auth: Option<String>,
    root_access_key_id: Option<String>,
    root_secret_access_key: Option<String>,
    max_body_bytes: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    tls_names: Vec<String>,
}

impl ServerArgs {
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("could not read the config file {}", path.display())
                })?;
                toml::from_str::<FileSettings>(&text)
                    .with_context(|| format!("config file {} is not valid", path.display()))?
            }
            None => FileSettings::default(),
        };
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("default address parses"));
        let data_dir = match self.data_dir.or(file.data_dir) {
            Some(dir) => dir,
            None => dirs::data_dir()
                .map(|d| d.join("berth"))
                .context("no user data directory is known here; pass --data-dir")?,
        };
        let mut config = Config::new(listen, data_dir);
        if let Some(store) = self.store.or(file.store) {
            config.store = store.parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(registry_store) = self.registry_store.or(file.registry_store) {
            config.registry_store = registry_store.parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(account) = self.account_id.or(file.account_id) {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--account-id must be 12 digits, got '{account}'");
            }
            config.account_id = account;
        }
        if let Some(region) = self.region.or(file.region) {
            if region.is_empty()
                || !region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                bail!("--region must look like us-east-1, got '{region}'");
            }
            config.default_region = region;
        }
        config.auth = match self.auth.or(file.auth).as_deref() {
            None | Some("sigv4") => AuthMode::SigV4,
            Some("off") => AuthMode::Off,
            Some(other) => bail!("--auth must be 'sigv4' or 'off', got '{other}'"),
        };
        config.root_key = match (
            self.root_access_key.or(file.root_access_key_id),
            self.root_secret_key.or(file.root_secret_access_key),
        ) {
            (Some(access_key_id), Some(secret_access_key)) => Some(RootKey {
                access_key_id,
                secret_access_key,
            }),
            (None, None) => None,
            _ => bail!("give both --root-access-key and --root-secret-key, or neither"),
        };
        config.tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(certificate), Some(key)) => TlsSource::Files { certificate, key },
            (None, None) => TlsSource::Generated {
                names: if self.tls_names.is_empty() {
                    file.tls_names
                } else {
                    self.tls_names
                },
            },
            _ => bail!("give both --tls-cert and --tls-key, or neither"),
        };
        if let Some(max) = file.max_body_bytes {
            config.max_body_bytes = max;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_server::config::RegistryStore;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1234\"\naccount_id = \"111122223333\"\ndata_dir = \"/tmp/x\"\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(path),
            listen: Some("127.0.0.1:5678".parse().unwrap()),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.listen.port(), 5678);
        assert_eq!(config.account_id, "111122223333");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.registry_store, RegistryStore::DataDir);
    }

    #[test]
    fn the_registry_store_comes_from_the_flag_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.toml");
        std::fs::write(
            &path,
            "data_dir = \"/tmp/x\"\nregistry_store = \"file:///srv/blobs\"\n",
        )
        .unwrap();
        let from_file = ServerArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        assert_eq!(
            from_file.resolve().unwrap().registry_store,
            RegistryStore::Local {
                path: PathBuf::from("/srv/blobs")
            }
        );
        let flagged = ServerArgs {
            config: Some(path),
            registry_store: Some("s3://blobs/berth".into()),
            ..Default::default()
        };
        assert_eq!(
            flagged.resolve().unwrap().registry_store,
            RegistryStore::S3 {
                bucket: "blobs".into(),
                prefix: "berth".into()
            }
        );
    }

    #[test]
    fn refuses_bad_values_by_name() {
        let bad = ServerArgs {
            account_id: Some("12".into()),
            data_dir: Some("/tmp".into()),
            ..Default::default()
        };
        assert!(
            bad.resolve()
                .unwrap_err()
                .to_string()
                .contains("--account-id")
        );
        let store = ServerArgs {
            store: Some("etcd://nohost".into()),
            data_dir: Some("/tmp".into()),
            ..Default::default()
        };
        assert!(store.resolve().unwrap_err().to_string().contains("--store"));
        let registry = ServerArgs {
            registry_store: Some("s3:/bucket".into()),
            data_dir: Some("/tmp".into()),
            ..Default::default()
        };
        let err = registry.resolve().unwrap_err().to_string();
        assert!(err.contains("--registry-store"), "{err}");
        assert!(
            err.contains("s3://BUCKET[/PREFIX] or file:///ABSOLUTE/PATH"),
            "{err}"
        );
        let half = ServerArgs {
            root_access_key: Some("AKIA".into()),
            data_dir: Some("/tmp".into()),
            ..Default::default()
        };
        assert!(
            half.resolve()
                .unwrap_err()
                .to_string()
                .contains("--root-secret-key")
        );
    }
}
