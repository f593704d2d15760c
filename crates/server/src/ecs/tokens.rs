//! `clientToken` idempotency: within a cluster, for 24 hours, the same token with the same
//! parameters returns what the first call made; with other parameters it is a
//! `ConflictException`.

use crate::Ctx;
use crate::db::{Db, Writes};
use crate::records::{ClientToken, keys};
use berth_api::ApiError;
use sha2::{Digest, Sha256};

const TOKEN_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;

/// A digest of the parameters that make a request what it is.
pub fn fingerprint(parameters: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(parameters.to_string().as_bytes()))
}

pub fn validate(token: &str) -> Result<(), ApiError> {
    let ok = !token.is_empty()
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'/');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(
            "clientToken: must be 1 to 64 printable ASCII characters without '/'",
        ))
    }
}

/// What an earlier call with this token made, if it is a retry of the same request; the
/// revision to compare when remembering the token anew.
pub enum Seen {
    Retry(Vec<String>),
    New { revision: i64 },
}

pub fn check(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    token: &str,
    fingerprint: &str,
) -> Result<Seen, ApiError> {
    match db.get::<ClientToken>(&keys::client_token(&ctx.region, cluster, token)) {
        Some(t) if ctx.now.millis() - t.value.created_at.millis() < TOKEN_LIFETIME_MS => {
            if t.value.fingerprint == fingerprint {
                Ok(Seen::Retry(t.value.arns))
            } else {
                Err(ApiError::conflict(
                    format!("clientToken '{token}' was already used with different parameters"),
                    t.value.arns,
                ))
            }
        }
        Some(expired) => Ok(Seen::New {
            revision: expired.revision,
        }),
        None => Ok(Seen::New { revision: 0 }),
    }
}

/// Adds the token record to a write batch.
pub fn remember(
    writes: Writes,
    ctx: &Ctx,
    cluster: &str,
    token: &str,
    fingerprint: &str,
    revision: i64,
    arns: Vec<String>,
) -> Writes {
    let key = keys::client_token(&ctx.region, cluster, token);
    writes.expect(&key, revision).put(
        &key,
        ClientToken {
            fingerprint: fingerprint.to_string(),
            arns,
            created_at: ctx.now,
        },
    )
}
