//! Berth's domain model: pure data types for ECS resources, their lifecycle enums and their
//! validation.
//!
//! The records serialize with serde in the exact JSON shape ECS uses on the wire (camelCase
//! member names, absent optionals omitted, timestamps as epoch seconds), so the same value is
//! what the store keeps and what the API echoes. Validation follows the botocore model and
//! ECS's documented rules and reports the member that failed.
//!
//! Contract: no I/O, no async, no clock, no randomness — callers pass `now` and identifiers in.
//! Depends on no other Berth crate.

pub mod agent_channel;
pub mod arn;
pub mod cluster;
pub mod common;
pub mod container_instance;
pub mod elbv2;
pub mod error;
pub mod placement;
pub mod query;
pub mod service;
pub mod task;
pub mod task_definition;
pub mod time;

pub use arn::{Arn, ResourceKind};
pub use error::{ErrorKind, ValidationError};
pub use time::Timestamp;
