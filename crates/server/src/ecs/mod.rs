//! The ECS API (`AmazonEC2ContainerServiceV20141113`): one handler per operation, grouped by
//! resource family. Each handler takes the decoded input and returns the output shape; the
//! dispatcher decodes, calls and encodes.

mod account_settings;
mod attributes;
pub(crate) mod candidates;
mod clusters;
mod instances;
pub(crate) mod paging;
mod resolve;
mod run_desk;
pub(crate) mod services;
mod tags;
pub(crate) mod task_definitions;
pub(crate) mod tasks;
mod tokens;

pub use run_desk::RunDesk;

use crate::{App, Ctx};
use berth_api::{ApiError, json};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;

async fn call<I, O, F, Fut>(
    handler: F,
    app: App,
    ctx: Ctx,
    body: &[u8],
) -> Result<Vec<u8>, ApiError>
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(App, Ctx, I) -> Fut,
    Fut: Future<Output = Result<O, ApiError>>,
{
    let input: I = json::decode(body)?;
    let output = handler(app, ctx, input).await?;
    json::encode(&output)
}

/// Runs the ECS operation named `op`.
pub async fn dispatch(app: App, ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    macro_rules! operations {
        ($($name:literal => $handler:path),* $(,)?) => {
            match op {
                $($name => call($handler, app, ctx, body).await,)*
                _ => Err(ApiError::unknown_operation(format!("ECS operation '{op}' is not supported by Berth"))),
            }
        };
    }
    operations! {
        "CreateCluster" => clusters::create,
        "DescribeClusters" => clusters::describe,
        "ListClusters" => clusters::list,
        "UpdateCluster" => clusters::update,
        "UpdateClusterSettings" => clusters::update_settings,
        "PutClusterCapacityProviders" => clusters::put_capacity_providers,
        "DeleteCluster" => clusters::delete,
        "RegisterTaskDefinition" => task_definitions::register,
        "DescribeTaskDefinition" => task_definitions::describe,
        "ListTaskDefinitions" => task_definitions::list,
        "ListTaskDefinitionFamilies" => task_definitions::list_families,
        "DeregisterTaskDefinition" => task_definitions::deregister,
        "DeleteTaskDefinitions" => task_definitions::delete,
        "RegisterContainerInstance" => instances::register,
        "DeregisterContainerInstance" => instances::deregister,
        "DescribeContainerInstances" => instances::describe,
        "ListContainerInstances" => instances::list,
        "UpdateContainerInstancesState" => instances::update_state,
        "DiscoverPollEndpoint" => instances::discover_poll_endpoint,
        "RunTask" => tasks::run,
        "StartTask" => tasks::start,
        "StopTask" => tasks::stop,
        "DescribeTasks" => tasks::describe,
        "ListTasks" => tasks::list,
        "SubmitTaskStateChange" => tasks::submit_task_state_change,
        "SubmitContainerStateChange" => tasks::submit_container_state_change,
        "PutAttributes" => attributes::put,
        "DeleteAttributes" => attributes::delete,
        "ListAttributes" => attributes::list,
        "CreateService" => services::create,
        "UpdateService" => services::update,
        "DeleteService" => services::delete,
        "DescribeServices" => services::describe,
        "ListServices" => services::list,
        "TagResource" => tags::tag,
        "UntagResource" => tags::untag,
        "ListTagsForResource" => tags::list,
        "PutAccountSetting" => account_settings::put,
        "PutAccountSettingDefault" => account_settings::put_default,
        "DeleteAccountSetting" => account_settings::delete,
        "ListAccountSettings" => account_settings::list,
    }
}
