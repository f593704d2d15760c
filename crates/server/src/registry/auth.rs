//! Registry credentials: the token GetAuthorizationToken hands out, and the check of the HTTP
//! Basic credentials (`AWS` and that token) that `docker login` sends.
//!
//! A token is `b1.<access key id>.<region>.<expiry ms>.<mac>`: the MAC is HMAC-SHA256 under a key
//! derived from the access key's secret, so a token is bound to the key that asked for it,
//! expires after 12 hours like ECR's, and dies with its key. No token state is stored.

use crate::db::Db;
use crate::records::{AccessKey, keys};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_model::Timestamp;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a token is valid, as ECR's.
pub const TOKEN_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;

const VERSION: &str = "b1";

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub access_key_id: String,
    pub region: String,
}

fn mac(secret: &str, message: &str) -> Hmac<Sha256> {
    let mut derive =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    derive.update(b"berth registry token");
    let key = derive.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    mac
}

/// A token for `key` in `region`, valid until `now` + 12 h; returns it and its expiry.
pub fn issue(key: &AccessKey, region: &str, now: Timestamp) -> (String, Timestamp) {
    let expires = now.plus_millis(TOKEN_LIFETIME_MS);
    let message = format!(
        "{VERSION}.{}.{region}.{}",
        key.access_key_id,
        expires.millis()
    );
    let signature = hex::encode(
        mac(&key.secret_access_key, &message)
            .finalize()
            .into_bytes(),
    );
    (format!("{message}.{signature}"), expires)
}

/// `authorizationToken` as ECR returns it: base64 of `AWS:<token>`.
pub fn basic_credentials(token: &str) -> String {
    STANDARD.encode(format!("AWS:{token}"))
}

/// Why credentials were refused (the message never repeats the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("authentication required: log in with the token from aws ecr get-authorization-token")]
    Missing,
    #[error("the credentials are not HTTP Basic with user AWS and a registry token")]
    Malformed,
    #[error("the registry token has expired: get a new one with aws ecr get-authorization-token")]
    Expired,
    #[error("the registry token is not valid")]
    Invalid,
}

/// Checks a token against the access keys in the store.
pub fn verify(db: &Db, token: &str, now: Timestamp) -> Result<Grant, Refusal> {
    let parts: Vec<&str> = token.split('.').collect();
    let [version, akid, region, expires, signature] = parts[..] else {
        return Err(Refusal::Invalid);
    };
    if version != VERSION {
        return Err(Refusal::Invalid);
    }
    let expires: i64 = expires.parse().map_err(|_| Refusal::Invalid)?;
    let signature = hex::decode(signature).map_err(|_| Refusal::Invalid)?;
    let key = db
        .get::<AccessKey>(&keys::access_key(akid))
        .ok_or(Refusal::Invalid)?;
    let message = format!("{version}.{akid}.{region}.{expires}");
    mac(&key.value.secret_access_key, &message)
        .verify_slice(&signature)
        .map_err(|_| Refusal::Invalid)?;
    if now.millis() >= expires {
        return Err(Refusal::Expired);
    }
    Ok(Grant {
        access_key_id: akid.to_string(),
        region: region.to_string(),
    })
}

/// Reads `Authorization: Basic base64(AWS:token)` and verifies the token.
pub fn verify_basic(
    db: &Db,
    authorization: Option<&str>,
    now: Timestamp,
) -> Result<Grant, Refusal> {
    let value = authorization.ok_or(Refusal::Missing)?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or(Refusal::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Refusal::Malformed);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(Refusal::Malformed)?;
    let (user, token) = decoded.split_once(':').ok_or(Refusal::Malformed)?;
    if user != "AWS" {
        return Err(Refusal::Malformed);
    }
    verify(db, token, now)
}
