//! ECS request and response shapes (JSON 1.1, `AmazonEC2ContainerServiceV20141113`), named as
//! in botocore's model: `XRequest` / `XResponse` for operation `X`. Resource records themselves
//! live in `berth-model`; these are the envelopes around them.

pub mod account_settings;
pub mod clusters;
pub mod instances;
pub mod services;
pub mod tags;
pub mod task_definitions;
pub mod tasks;
