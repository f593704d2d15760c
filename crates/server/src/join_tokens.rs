//! Join tokens: how a new host's agent gets credentials of its own instead of the root key.
//!
//! The account's root creates a token (`berth token create`); an agent started with
//! `--token` trades it, once, for an access key whose principal names the token
//! (`arn:aws:iam::ACCOUNT:user/berth-agent/TOKEN-ID`) and keeps that key. A token is
//! `bjt.ID.SECRET.PIN` ([`TokenParts`]; PIN is the server's TLS identity, [`crate::tls`]); the
//! store holds only a SHA-256 of the secret. It may be used by any
//! number of hosts until it expires, and only for its cluster when it names one.

use crate::db::Writes;
use crate::records::{AccessKey, JoinToken, keys};
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_model::agent_channel::{
    CreateTokenAnswer, CreateTokenRequest, JoinAnswer, JoinRequest, MAX_TOKEN_TTL_SECONDS,
    TokenParts,
};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

fn random(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a token; only the account's root may.
pub async fn create(
    app: &App,
    ctx: &Ctx,
    request: &CreateTokenRequest,
) -> Result<CreateTokenAnswer, ApiError> {
    if ctx.principal != format!("arn:aws:iam::{}:root", ctx.account) {
        return Err(ApiError::access_denied(format!(
            "{} may not create join tokens; only the account's root key may",
            ctx.principal
        )));
    }
    if !(60..=MAX_TOKEN_TTL_SECONDS).contains(&request.ttl_seconds) {
        return Err(ApiError::invalid_parameter(format!(
            "ttlSeconds {} is outside 60..={MAX_TOKEN_TTL_SECONDS}",
            request.ttl_seconds
        )));
    }
    let id = random(12).to_ascii_lowercase();
    let secret = random(32);
    let ttl_ms = i64::try_from(request.ttl_seconds * 1000).unwrap_or(i64::MAX);
    let record = JoinToken {
        id: id.clone(),
        secret_sha256: digest(&secret),
        cluster: request.cluster.clone(),
        created_at: ctx.now,
        expires_at: ctx.now.plus_millis(ttl_ms),
    };
    let key = keys::join_token(&id);
    app.db
        .commit(Writes::new().expect(&key, 0).put(&key, record.clone()))
        .await?;
    Ok(CreateTokenAnswer {
        token: TokenParts {
            id: &id,
            secret: &secret,
            server_pin: Some(&app.tls.pin),
        }
        .to_string(),
        expires_at: record.expires_at,
    })
}

/// Trades a valid token for a new access key.
pub async fn join(app: &App, ctx: &Ctx, request: &JoinRequest) -> Result<JoinAnswer, ApiError> {
    let refused = || {
        ApiError::access_denied(
            "the join token is not valid: it is malformed, unknown or expired; create a new one with `berth token create`",
        )
    };
    let TokenParts { id, secret, .. } = TokenParts::parse(&request.token).ok_or_else(refused)?;
    let token = app
        .db
        .get::<JoinToken>(&keys::join_token(id))
        .ok_or_else(refused)?
        .value;
    if token.secret_sha256 != digest(secret) || token.expires_at.millis() <= ctx.now.millis() {
        return Err(refused());
    }
    if let Some(cluster) = token.cluster.as_deref().filter(|c| *c != request.cluster) {
        return Err(ApiError::access_denied(format!(
            "this join token is for cluster '{cluster}', not '{}'",
            request.cluster
        )));
    }
    let suffix = random(16).to_ascii_uppercase();
    let key = AccessKey {
        access_key_id: format!("AKIA{suffix}"),
        secret_access_key: random(40),
        principal_arn: format!("arn:aws:iam::{}:user/berth-agent/{id}", ctx.account),
        created_at: ctx.now,
    };
    let path = keys::access_key(&key.access_key_id);
    app.db
        .commit(Writes::new().expect(&path, 0).put(&path, key.clone()))
        .await?;
    Ok(JoinAnswer {
        access_key_id: key.access_key_id,
        secret_access_key: key.secret_access_key,
    })
}
