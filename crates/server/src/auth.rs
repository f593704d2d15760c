//! Who is calling: SigV4 verification against the access keys in the store, and the root key
//! that exists from the first start.

use crate::clock::Clock;
use crate::config::{AuthMode, RootKey};
use crate::db::{Db, Writes};
use crate::records::{AccessKey, keys};
use berth_api::ApiError;
use berth_sigv4::{AuthErrorKind, RequestParts};
use rand::Rng;
use rand::distr::Alphanumeric;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The region of the request's credential scope.
    pub region: String,
    pub principal_arn: String,
    /// The access key that signed the request (`None` when auth is off and nothing was signed).
    pub access_key_id: Option<String>,
}

/// Verifies a request's signature and names its caller.
pub async fn authenticate(
    db: &Db,
    mode: AuthMode,
    clock: &dyn Clock,
    default_region: &str,
    account: &str,
    req: &RequestParts<'_>,
) -> Result<Caller, ApiError> {
    let root = format!("arn:aws:iam::{account}:root");
    let parsed = match berth_sigv4::parse(req) {
        Ok(parsed) => parsed,
        Err(e) if mode == AuthMode::Off => {
            tracing::trace!(error = %e, "unsigned request accepted: auth is off");
            return Ok(Caller {
                region: default_region.to_string(),
                principal_arn: root,
                access_key_id: None,
            });
        }
        Err(e) => return Err(map_error(e)),
    };
    let region = valid_region(parsed.region())?;
    if mode == AuthMode::Off {
        return Ok(Caller {
            region,
            principal_arn: root,
            access_key_id: Some(parsed.access_key_id().to_string()),
        });
    }
    let key = db
        .get::<AccessKey>(&keys::access_key(parsed.access_key_id()))
        .ok_or_else(|| {
            ApiError::unrecognized_client("The security token included in the request is invalid.")
        })?;
    berth_sigv4::verify(
        &parsed,
        req,
        &key.value.secret_access_key,
        clock.now().system_time(),
    )
    .map_err(map_error)?;
    Ok(Caller {
        region,
        principal_arn: key.value.principal_arn,
        access_key_id: Some(key.value.access_key_id),
    })
}

fn valid_region(region: &str) -> Result<String, ApiError> {
    let ok = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(region.to_string())
    } else {
        Err(ApiError::incomplete_signature(format!(
            "the credential scope names an invalid region '{region}'"
        )))
    }
}

fn map_error(e: berth_sigv4::AuthError) -> ApiError {
    let message = e.to_string();
    match e.kind() {
        AuthErrorKind::Missing => ApiError::missing_authentication_token(message),
        AuthErrorKind::Incomplete => ApiError::incomplete_signature(message),
        AuthErrorKind::Mismatch | AuthErrorKind::Expired => ApiError::invalid_signature(message),
    }
}

/// Makes sure the root key exists: the given one, or the stored one, or a new one. Returns it.
pub async fn ensure_root_key(
    db: &Db,
    clock: &dyn Clock,
    account: &str,
    given: Option<RootKey>,
) -> Result<RootKey, ApiError> {
    let principal_arn = format!("arn:aws:iam::{account}:root");
    if let Some(given) = given {
        let key = keys::access_key(&given.access_key_id);
        let record = AccessKey {
            access_key_id: given.access_key_id.clone(),
            secret_access_key: given.secret_access_key.clone(),
            principal_arn,
            created_at: clock.now(),
        };
        let unchanged = db
            .get::<AccessKey>(&key)
            .is_some_and(|k| k.value.secret_access_key == given.secret_access_key);
        if !unchanged {
            db.commit(Writes::new().put(&key, record)).await?;
        }
        return Ok(given);
    }
    if let Some(existing) = db
        .list::<AccessKey>("/iam/access-keys/")
        .into_iter()
        .find(|k| k.value.principal_arn == principal_arn)
    {
        return Ok(RootKey {
            access_key_id: existing.value.access_key_id,
            secret_access_key: existing.value.secret_access_key,
        });
    }
    let mut rng = rand::rng();
    let suffix: String = (&mut rng)
        .sample_iter(&Alphanumeric)
        .take(16)
        .map(|c| (c as char).to_ascii_uppercase())
        .collect();
    let secret: String = (&mut rng)
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let root = RootKey {
        access_key_id: format!("AKIA{suffix}"),
        secret_access_key: secret,
    };
    let key = keys::access_key(&root.access_key_id);
    let record = AccessKey {
        access_key_id: root.access_key_id.clone(),
        secret_access_key: root.secret_access_key.clone(),
        principal_arn,
        created_at: clock.now(),
    };
    db.commit(Writes::new().expect(&key, 0).put(&key, record))
        .await?;
    Ok(root)
}
