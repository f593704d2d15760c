//! GetAuthorizationToken: a registry token bound to the caller's access key, for
//! `docker login -u AWS`.

use super::Call;
use crate::App;
use crate::records::{AccessKey, keys};
use crate::registry::auth;
use berth_api::ApiError;
use berth_api::ecr::{
    AuthorizationData, GetAuthorizationTokenRequest, GetAuthorizationTokenResponse,
};

pub async fn get(
    app: App,
    c: Call,
    input: GetAuthorizationTokenRequest,
) -> Result<GetAuthorizationTokenResponse, ApiError> {
    let registries = input.registry_ids.unwrap_or_default();
    for (i, id) in registries.iter().enumerate() {
        if *id != c.ctx.account {
            return Err(ApiError::invalid_parameter(format!(
                "registryIds[{i}]: '{id}' is not this registry's id '{}'",
                c.ctx.account
            )));
        }
    }
    // With auth off the request may be unsigned: the token is then the root key's.
    let signed = c
        .origin
        .access_key_id
        .as_deref()
        .and_then(|akid| app.db.get::<AccessKey>(&keys::access_key(akid)));
    let key = match signed {
        Some(key) => key.value,
        None => app
            .db
            .list::<AccessKey>(&keys::access_key(""))
            .into_iter()
            .map(|k| k.value)
            .find(|k| k.principal_arn == c.ctx.principal)
            .ok_or_else(|| ApiError::server("no access key can sign a registry token"))?,
    };
    let (token, expires_at) = auth::issue(&key, &c.ctx.region, c.ctx.now);
    let data = AuthorizationData {
        authorization_token: auth::basic_credentials(&token),
        expires_at,
        proxy_endpoint: format!("http://{}", c.origin.host),
    };
    Ok(GetAuthorizationTokenResponse {
        authorization_data: vec![data],
    })
}
