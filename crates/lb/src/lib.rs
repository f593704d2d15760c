//! `berth-lb`: the application load balancer data plane that `berth lb` (and `berth up`) runs.
//!
//! Contract: it serves the listeners of a region's active load balancers on this host — rules in
//! priority order ([`router`]), target selection ([`balancer`]), proxying with ALB's status codes
//! and its refusal of malformed requests ([`proxy`], [`guard`]), upgraded connections such as
//! WebSockets ([`tunnel`]) — from a configuration it polls
//! from the control plane ([`config`]) and swaps in atomically without disturbing requests in
//! flight. It health-checks every target continuously and reports the verdicts back
//! ([`health`]). It keeps no state of its own and reaches the control plane only through
//! `berth-client` over HTTP (Berth's `/_berth/lb/v1/` API): never the store, never the server
//! crate. Nothing in it panics on input from the network.

pub mod balancer;
pub mod config;
pub mod guard;
pub mod health;
pub mod proxy;
pub mod router;
pub mod sticky;
pub mod tls;
pub mod tunnel;
pub mod upstream;

use berth_client::Client;
use berth_model::elbv2::data_plane::{HEALTH_PATH, HealthAnswer, HealthReports, SIGNING_SERVICE};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How `berth lb` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The address listener ports are opened on (0.0.0.0 for every interface).
    pub bind: IpAddr,
    /// How often the configuration is asked for.
    pub poll_interval: Duration,
}

/// Runs the data plane against the control plane `client` talks to, until dropped.
pub async fn run(client: Client, options: Options) {
    let shared = Arc::new(config::Shared::default());
    let (verdicts, verdicts_rx) = tokio::sync::mpsc::unbounded_channel();
    let poster = client.clone();
    let post = move |reports| {
        let client = poster.clone();
        async move {
            client
                .berth_json::<_, HealthAnswer>(
                    SIGNING_SERVICE,
                    HEALTH_PATH,
                    &HealthReports { reports },
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    };
    tokio::join!(
        config::poll(client, shared.clone(), options.poll_interval),
        health::run(shared.clone(), verdicts),
        health::report(shared.clone(), verdicts_rx, post),
        proxy::run(shared, options.bind),
    );
}
