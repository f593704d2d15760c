//! Berth's own API for agents, under `/_berth/agent/v1/` (shapes in
//! `berth_model::agent_channel`): `wait`, the long poll that tells an agent at once when its
//! work changed, so a task placed on an instance starts without a polling delay; `tokens` and
//! `join`, how a new host gets credentials of its own ([`crate::join_tokens`]).

use crate::front_door::{decode_own as decode, encode_own as encode};
use crate::{App, Ctx, join_tokens};
use berth_api::ApiError;
use berth_model::agent_channel::{
    JOIN_PATH, MAX_WAIT_SECONDS, TOKENS_PATH, WAIT_PATH, WaitAnswer, WaitRequest,
};
use std::time::Duration;

/// Runs the call at `path` with the JSON `body`; returns the JSON answer.
pub async fn dispatch(app: &App, ctx: &Ctx, path: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    match path {
        WAIT_PATH => {
            let request: WaitRequest = decode(body)?;
            encode(&wait(app, ctx, &request).await?)
        }
        TOKENS_PATH => encode(&join_tokens::create(app, ctx, &decode(body)?).await?),
        JOIN_PATH => encode(&join_tokens::join(app, ctx, &decode(body)?).await?),
        _ => Err(ApiError::unknown_operation(format!(
            "nothing is served at POST {path}"
        ))),
    }
}

async fn wait(app: &App, ctx: &Ctx, request: &WaitRequest) -> Result<WaitAnswer, ApiError> {
    let prefix = format!(
        "arn:aws:ecs:{}:{}:container-instance/",
        ctx.region, ctx.account
    );
    if !request.container_instance.starts_with(&prefix) {
        return Err(ApiError::invalid_parameter(format!(
            "containerInstance '{}' is not a container instance ARN of this account in {}",
            request.container_instance, ctx.region
        )));
    }
    if request.wait_seconds > MAX_WAIT_SECONDS {
        return Err(ApiError::invalid_parameter(format!(
            "waitSeconds {} is more than the most, {MAX_WAIT_SECONDS}",
            request.wait_seconds
        )));
    }
    let mut signal = app.db.work_signal(&request.container_instance);
    let changed = |generation: &u64| Some(*generation) != request.after;
    let woken = tokio::time::timeout(
        Duration::from_secs(request.wait_seconds),
        signal.wait_for(changed),
    )
    .await
    .ok()
    .and_then(|answer| answer.ok().map(|generation| *generation));
    // Timed out (or the view is gone): a heartbeat with the generation as it stands.
    let generation = woken.unwrap_or_else(|| *signal.borrow());
    Ok(WaitAnswer { generation })
}
