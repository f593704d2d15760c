//! How the agent gets the key pair it signs with, and whom it takes for the server.
//!
//! The key is one given to it, or one it obtained by trading a join token (`--token`) with the
//! server, kept in its state file (readable by its owner only) so that a restart needs no
//! token. The server's identity is a pin ([`ServerPin`]): from `--server-pin`, else the one
//! kept in the state file, else the one the join token carries. With a pin the agent talks to
//! the server only over `https://`, and only to a server that shows the pinned key, from the
//! join on; without one, an `https://` server needs a certificate from the system's roots.

use std::time::Duration;

use berth_client::{Client, ClientError, Credentials, ServerPin, Trust};
use berth_model::agent_channel::{JOIN_PATH, JoinAnswer, JoinRequest, SIGNING_SERVICE, TokenParts};
use serde::{Deserialize, Serialize};

use crate::AgentError;

/// A key pair the agent obtained with a join token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinedKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for JoinedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinedKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl From<JoinedKey> for Credentials {
    fn from(k: JoinedKey) -> Credentials {
        Credentials {
            access_key_id: k.access_key_id,
            secret_access_key: k.secret_access_key,
        }
    }
}

/// A join token's parts, or why it is not one.
pub fn parse_token(token: &str) -> Result<TokenParts<'_>, AgentError> {
    TokenParts::parse(token).ok_or_else(|| {
        AgentError::Config(
            "the join token is malformed: it should read bjt.ID.SECRET.PIN, as `berth token create` prints it".into(),
        )
    })
}

/// The pin the agent holds the server to: `explicit` (`--server-pin`), else `kept` (the state
/// file's), else the join token's.
pub fn server_pin(
    explicit: Option<ServerPin>,
    kept: Option<ServerPin>,
    token: Option<&TokenParts<'_>>,
) -> Result<Option<ServerPin>, AgentError> {
    let from_token = match token.and_then(|t| t.server_pin) {
        Some(pin) => Some(
            pin.parse::<ServerPin>()
                .map_err(|e| AgentError::Config(format!("the join token's server pin: {e}")))?,
        ),
        None => None,
    };
    Ok(explicit.or(kept).or(from_token))
}

/// How the agent trusts the server at `endpoint`: refuses plain `http://` when it holds a pin.
pub fn trust(endpoint: &str, pin: Option<ServerPin>) -> Result<Trust, AgentError> {
    match pin {
        Some(pin) if endpoint.starts_with("http://") => Err(AgentError::Config(format!(
            "the agent holds the server's identity (pin {pin}) but --server {endpoint} is plain HTTP, which cannot prove it; give the same address with https:// (Berth's port answers TLS too)"
        ))),
        Some(pin) => Ok(Trust::Pin(pin)),
        None => Ok(Trust::SystemRoots),
    }
}

/// Trades `token` for a key of the agent's own, retrying while the server cannot be reached.
pub async fn join(
    endpoint: &str,
    region: &str,
    trust: &Trust,
    token: &TokenParts<'_>,
    cluster: &str,
) -> Result<JoinedKey, AgentError> {
    // The join call is not signed (the token is the credential); the client wants a key anyway.
    let anonymous = Credentials {
        access_key_id: String::new(),
        secret_access_key: String::new(),
    };
    let client = Client::with_trust(endpoint, anonymous, region, trust)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let request = JoinRequest {
        token: token.credential(),
        cluster: cluster.to_owned(),
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        match client
            .berth_json::<_, JoinAnswer>(SIGNING_SERVICE, JOIN_PATH, &request)
            .await
        {
            Ok(answer) => {
                return Ok(JoinedKey {
                    access_key_id: answer.access_key_id,
                    secret_access_key: answer.secret_access_key,
                });
            }
            Err(e @ ClientError::Transport { .. }) => {
                tracing::warn!("{e}; retrying the join in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(crate::MAX_BACKOFF);
            }
            Err(e) => {
                return Err(AgentError::Config(format!(
                    "the server at {endpoint} refused the join token: {e}"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_comes_from_the_flag_then_the_state_then_the_token() {
        let [a, b, c] = ["0a", "0b", "0c"].map(|d| d.repeat(32));
        let pin = |hex: &str| hex.parse::<ServerPin>().unwrap();
        let token_text = format!("bjt.id.secret.{c}");
        let token = parse_token(&token_text).unwrap();
        let chosen = |explicit, kept, token| server_pin(explicit, kept, token).unwrap();
        assert_eq!(
            chosen(Some(pin(&a)), Some(pin(&b)), Some(&token)),
            Some(pin(&a))
        );
        assert_eq!(chosen(None, Some(pin(&b)), Some(&token)), Some(pin(&b)));
        assert_eq!(chosen(None, None, Some(&token)), Some(pin(&c)));
        assert_eq!(chosen(None, None, None), None);
        let bad = parse_token("bjt.id.secret.nothex").unwrap();
        let err = server_pin(None, None, Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("server pin"), "{err}");
        assert!(parse_token("bjt.only").is_err());
    }

    #[test]
    fn a_pinned_server_is_never_reached_in_the_clear() {
        let pin: ServerPin = "0a".repeat(32).parse().unwrap();
        let err = trust("http://10.0.0.5:9180", Some(pin))
            .unwrap_err()
            .to_string();
        assert!(err.contains("https://"), "{err}");
        assert_eq!(
            trust("https://10.0.0.5:9180", Some(pin)).unwrap(),
            Trust::Pin(pin)
        );
        assert_eq!(
            trust("http://10.0.0.5:9180", None).unwrap(),
            Trust::SystemRoots
        );
    }
}
