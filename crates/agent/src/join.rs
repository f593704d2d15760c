//! How the agent gets the key pair it signs with: a key given to it, or one it obtained by
//! trading a join token (`--token`) with the server, kept in its state file (readable by its
//! owner only) so that a restart needs no token.

use std::time::Duration;

use berth_client::{Client, ClientError, Credentials};
use berth_model::agent_channel::{JOIN_PATH, JoinAnswer, JoinRequest, SIGNING_SERVICE};
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

/// Trades `token` for a key of the agent's own, retrying while the server cannot be reached.
pub async fn join(
    endpoint: &str,
    region: &str,
    token: &str,
    cluster: &str,
) -> Result<JoinedKey, AgentError> {
    // The join call is not signed (the token is the credential); the client wants a key anyway.
    let anonymous = Credentials {
        access_key_id: String::new(),
        secret_access_key: String::new(),
    };
    let client =
        Client::new(endpoint, anonymous, region).map_err(|e| AgentError::Config(e.to_string()))?;
    let request = JoinRequest {
        token: token.to_owned(),
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
