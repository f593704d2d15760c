//! The Berth control plane: one HTTP port that serves the AWS APIs Berth speaks, backed by the
//! store through a watch-fed in-memory view.
//!
//! Contract: this is the only crate that writes to the store. Handlers validate input through
//! `berth-model`, read the [`view`], and write with revision-guarded transactions ([`db`]), so a
//! request either applies entirely or not at all. Wire shapes and error codes come from
//! `berth-api`, signatures are checked with `berth-sigv4`, placement comes from
//! `berth-scheduler`. The clock and identifiers come from [`clock`].

pub mod acm;
mod agent_api;
mod applier;
pub mod auth;
mod background;
pub mod clock;
pub mod config;
pub mod db;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod fleets;
pub mod front_door;
pub mod history;
pub mod instance_health;
pub mod janitor;
mod join_tokens;
pub mod leader;
pub mod records;
pub mod registry;
pub mod seal;
pub mod secretsmanager;
pub mod service_controller;
mod service_targets;
pub mod ssm;
pub mod tally;
pub mod tls;
pub mod view;
mod work_signals;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, RegistryStore, RootKey, StoreBackend};
use crate::db::Db;
use axum::Router;
use axum::routing::{any, post};
use berth_model::Timestamp;
use berth_store::{Election, SoleLeader, Store};
use std::sync::Arc;
use std::time::Duration;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// Where registry blob bytes live.
    pub blobs: Arc<dyn registry::blobs::BlobStore>,
    /// The key that seals secret values (`secrets.key` in the data directory).
    pub secrets_key: Arc<seal::SecretsKey>,
    /// The HTTP port's TLS certificate and pin.
    pub tls: Arc<tls::Identity>,
    /// RunTask calls waiting to be planned together (see `ecs/run_desk.rs`).
    pub run_desk: Arc<ecs::RunDesk>,
}

/// The caller and moment of one request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub region: String,
    pub account: String,
    pub principal: String,
    pub now: Timestamp,
}

impl Ctx {
    /// A request of `principal` in `region`, now.
    pub fn new(app: &App, region: String, principal: String) -> Ctx {
        Ctx {
            region,
            account: app.config.account_id.clone(),
            principal,
            now: app.clock.now(),
        }
    }

    /// The server's own work in `region` (controllers), as the account's root.
    pub fn internal(app: &App, region: String) -> Ctx {
        let root = format!("arn:aws:iam::{}:root", app.config.account_id);
        Ctx::new(app, region, root)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("store: {0}")]
    Store(#[from] berth_store::StoreError),
    #[error("could not prepare the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("could not listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("could not open the registry store {store}: {source}")]
    RegistryStore {
        store: String,
        source: registry::blobs::BlobError,
    },
    #[error("could not open the secrets key {path}: {detail}")]
    SecretsKey { path: String, detail: String },
    #[error("the server's TLS identity: {0}")]
    Tls(String),
    #[error("{0}")]
    Api(#[from] berth_api::ApiError),
    #[error("server stopped with an error: {0}")]
    Serve(std::io::Error),
}

impl App {
    /// Opens the store view and makes sure a root key exists; returns the app and that key.
    pub async fn open(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<(App, RootKey), ServerError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let db = Db::open(store).await?;
        let root = auth::ensure_root_key(
            &db,
            clock.as_ref(),
            &config.account_id,
            config.root_key.clone(),
        )
        .await?;
        let blobs = open_blobs(&config)?;
        let key_path = config.data_dir.join(seal::KEY_FILE);
        let secrets_key = seal::SecretsKey::open_or_create(&key_path).map_err(|detail| {
            ServerError::SecretsKey {
                path: key_path.display().to_string(),
                detail,
            }
        })?;
        let tls = Arc::new(tls::load(&config).map_err(ServerError::Tls)?);
        let app = App {
            db,
            config: Arc::new(config),
            clock,
            blobs,
            secrets_key: Arc::new(secrets_key),
            tls,
            run_desk: Arc::default(),
        };
        warn_of_foreign_seals(&app);
        Ok((app, root))
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(front_door::aws_api).get(front_door::aws_api))
            .route("/_berth/lb/v1/{call}", post(front_door::berth_call))
            .route("/_berth/agent/v1/{call}", post(front_door::berth_call))
            .route("/v2", any(registry::serve))
            .route("/v2/", any(registry::serve))
            .route("/v2/{*path}", any(registry::serve))
            .fallback(front_door::not_found)
            .with_state(self.clone())
    }
}

/// Warns when stored secret values (Secrets Manager's, Parameter Store's SecureStrings) were
/// sealed with another key than this server's: servers that share a store must share the file.
fn warn_of_foreign_seals(app: &App) {
    let mine = app.secrets_key.fingerprint();
    let foreign =
        secretsmanager::sealed_with_other_keys(app, mine) + ssm::sealed_with_other_keys(app, mine);
    if foreign > 0 {
        tracing::warn!(
            versions = foreign,
            key = mine,
            "stored secret values were encrypted with another key than this server's {}: servers that share a store must share that file",
            seal::KEY_FILE
        );
    }
}

/// Opens the configured registry store: files in the data directory, an S3 bucket (endpoint and
/// credentials from the `AWS_*` environment) or a directory through the object store.
fn open_blobs(config: &Config) -> Result<Arc<dyn registry::blobs::BlobStore>, ServerError> {
    use registry::object_blobs::ObjectBlobStore;
    let opened = match &config.registry_store {
        RegistryStore::DataDir => {
            let root = config.data_dir.join("registry");
            return Ok(Arc::new(registry::blobs::FsBlobStore::new(root)));
        }
        RegistryStore::S3 { bucket, prefix } => ObjectBlobStore::s3(bucket, prefix),
        RegistryStore::Local { path } => ObjectBlobStore::local(path),
    };
    match opened {
        Ok(store) => Ok(Arc::new(store)),
        Err(source) => Err(ServerError::RegistryStore {
            store: config.registry_store.to_string(),
            source,
        }),
    }
}

/// Opens the SQLite store in the configured data directory.
pub fn open_sqlite(config: &Config) -> Result<Arc<dyn Store>, ServerError> {
    create_data_dir(config)?;
    let store = berth_store::sqlite::SqliteStore::open(&config.data_dir.join("berth.db"))?;
    Ok(Arc::new(store))
}

fn create_data_dir(config: &Config) -> Result<(), ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })
}

/// The configured store and the election among the servers that share it.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub election: Arc<dyn Election>,
}

/// Opens the configured store: SQLite in the data directory (this server always leads), or
/// an etcd cluster (servers on it elect a leader, see [`leader`]). The data directory is made
/// either way: registry blobs live there unless `config.registry_store` says otherwise.
pub async fn open_store(config: &Config) -> Result<Backend, ServerError> {
    match &config.store {
        StoreBackend::Sqlite => Ok(Backend {
            store: open_sqlite(config)?,
            election: Arc::new(SoleLeader),
        }),
        StoreBackend::Etcd { endpoints } => {
            create_data_dir(config)?;
            let store = berth_store::etcd::EtcdStore::connect(endpoints).await?;
            let election = store.election(leader::LEADER_KEY, leader::LEADER_TTL);
            Ok(Backend {
                store: Arc::new(store),
                election: Arc::new(election),
            })
        }
    }
}

/// Serves `app` on a bound listener, TLS and plain HTTP alike ([`tls`]), until `shutdown`
/// resolves, then drains in-flight requests.
/// The controllers run only while this server leads (`election`; see [`leader`]); on shutdown
/// they stop and the leadership is given up.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    election: Arc<dyn Election>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let candidate = match listener.local_addr() {
        Ok(addr) => format!("http://{addr} (pid {})", std::process::id()),
        Err(_) => format!("pid {}", std::process::id()),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let mut leading = tokio::spawn(leader::run(app.clone(), election, candidate, stopped));
    let db = app.db.clone();
    // Agents' long polls would hold a graceful shutdown up for their whole wait.
    let shutdown = async move {
        shutdown.await;
        db.release_work_waiters();
    };
    let listener = tls::DualListener::new(listener, &app.tls).map_err(ServerError::Serve)?;
    let served = axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Serve);
    let _ = stop.send(());
    if tokio::time::timeout(Duration::from_secs(5), &mut leading)
        .await
        .is_err()
    {
        tracing::warn!("the controllers did not stop within 5 s; leaving them");
        leading.abort();
    }
    served
}
