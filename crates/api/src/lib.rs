//! AWS wire protocols for Berth: how a request names its service and operation, how its body
//! decodes into typed input, and how an error is put on the wire.
//!
//! Contract: pure functions over bytes and header values — no async, no store, no clock. The
//! HTTP server calls [`route`] on every request to pick the service, decodes the body with
//! [`json::decode`], and renders failures with [`ApiError`]. Query-protocol APIs (ELBv2) are
//! routed with [`route_query`], decode with [`query`] and answer with [`xml`]. Depends only on `berth-model`.

pub mod acm;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod error;
pub mod json;
pub mod query;
pub mod route;
pub mod secretsmanager;
pub mod ssm;
pub mod xml;

pub use error::ApiError;
pub use route::{Route, Service, route, route_query};
