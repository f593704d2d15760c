//! The ECR API (`AmazonEC2ContainerRegistry_V20150921`, SigV4 service `ecr`): repositories,
//! images, lifecycle policies and their previews, and registry tokens. It manages the same
//! records the OCI registry (`crate::registry`) serves to docker. Repository policies, image
//! scanning, replication and ECR's tag operations are not implemented yet.

mod images;
mod lifecycle;
mod repositories;
mod token;

use crate::{App, Ctx};
use axum::http::HeaderMap;
use berth_api::{ApiError, json};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;

/// What ECR answers depend on besides the caller: the address clients reach the server at
/// (the `Host` header, as it goes into repository URIs and the proxy endpoint) and the access
/// key that signed the call (registry tokens are bound to it).
#[derive(Debug, Clone)]
pub struct Origin {
    pub host: String,
    pub access_key_id: Option<String>,
}

impl Origin {
    pub fn new(app: &App, headers: &HeaderMap, access_key_id: Option<String>) -> Origin {
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
            })
            .map(str::to_string)
            .unwrap_or_else(|| app.config.listen.to_string());
        Origin {
            host,
            access_key_id,
        }
    }
}

/// One ECR call: who, when, and from where.
pub struct Call {
    pub ctx: Ctx,
    pub origin: Origin,
}

impl Call {
    /// Refuses a `registryId` that is not this registry's (the account id).
    fn registry(&self, registry_id: Option<&str>) -> Result<(), ApiError> {
        match registry_id {
            Some(id) if id != self.ctx.account => Err(ApiError::invalid_parameter(format!(
                "registryId: '{id}' is not this registry's id '{}'",
                self.ctx.account
            ))),
            _ => Ok(()),
        }
    }

    fn repository_not_found(&self, name: &str) -> ApiError {
        ApiError::repository_not_found(format!(
            "The repository with name '{name}' does not exist in the registry with id '{}'",
            self.ctx.account
        ))
    }
}

async fn call<I, O, F, Fut>(
    handler: F,
    app: App,
    call: Call,
    body: &[u8],
) -> Result<Vec<u8>, ApiError>
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(App, Call, I) -> Fut,
    Fut: Future<Output = Result<O, ApiError>>,
{
    let input: I = json::decode(body)?;
    let output = handler(app, call, input).await?;
    json::encode(&output)
}

/// Runs the ECR operation named `op`.
pub async fn dispatch(
    app: App,
    ctx: Ctx,
    origin: Origin,
    op: &str,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let c = Call { ctx, origin };
    macro_rules! operations {
        ($($name:literal => $handler:path),* $(,)?) => {
            match op {
                $($name => call($handler, app, c, body).await,)*
                _ => Err(ApiError::unknown_operation(format!("ECR operation '{op}' is not supported by Berth"))),
            }
        };
    }
    operations! {
        "CreateRepository" => repositories::create,
        "DescribeRepositories" => repositories::describe,
        "DeleteRepository" => repositories::delete,
        "GetAuthorizationToken" => token::get,
        "DescribeImages" => images::describe,
        "ListImages" => images::list,
        "BatchGetImage" => images::batch_get,
        "BatchDeleteImage" => images::batch_delete,
        "PutImage" => images::put,
        "PutLifecyclePolicy" => lifecycle::put,
        "GetLifecyclePolicy" => lifecycle::get,
        "DeleteLifecyclePolicy" => lifecycle::delete,
        "StartLifecyclePolicyPreview" => lifecycle::start_preview,
        "GetLifecyclePolicyPreview" => lifecycle::get_preview,
    }
}
