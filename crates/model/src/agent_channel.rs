//! The channel the control plane uses to tell an agent that its work changed: Berth's own JSON
//! API under `/_berth/agent/v1/`, not an AWS one.
//!
//! `wait` is a long poll. The server keeps a generation number per container instance that
//! grows whenever a task is placed on it or a task's desired status there changes. The agent
//! sends the generation it last saw; the answer comes as soon as the server's differs (at once
//! on the first call, after a server restart, or when something changed while the agent was
//! busy), or with the same number after `waitSeconds` as a heartbeat. Either way the agent then
//! reconciles through the public ECS API, so the channel carries no task state of its own and
//! a lost answer costs at most one wait.

use serde::{Deserialize, Serialize};

/// `POST /_berth/agent/v1/wait`.
pub const WAIT_PATH: &str = "/_berth/agent/v1/wait";
/// The SigV4 service name of these calls, as of all of Berth's own APIs.
pub use crate::elbv2::data_plane::SIGNING_SERVICE;
/// The longest wait a caller may ask for.
pub const MAX_WAIT_SECONDS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitRequest {
    /// The container instance whose work the caller runs.
    pub container_instance: String,
    /// The generation the caller last saw; none on its first call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// How long to hold the call when nothing changes (at most [`MAX_WAIT_SECONDS`]).
    pub wait_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitAnswer {
    pub generation: u64,
}

/// `POST /_berth/agent/v1/tokens`, signed by the account's root: a new join token.
pub const TOKENS_PATH: &str = "/_berth/agent/v1/tokens";
/// `POST /_berth/agent/v1/join`, unsigned (the token is the credential): an access key for the
/// joining agent.
pub const JOIN_PATH: &str = "/_berth/agent/v1/join";
/// The longest a join token may live: 30 days.
pub const MAX_TOKEN_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// The first part of every join token.
pub const TOKEN_PREFIX: &str = "bjt";

/// A join token as users hold it: `bjt.ID.SECRET.PIN`. ID and SECRET are what the server
/// checks; PIN is the server's identity, the hex SHA-256 of its TLS certificate's
/// SubjectPublicKeyInfo, which the agent requires of the server from then on. A token without
/// a PIN (`bjt.ID.SECRET`) pins nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenParts<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub server_pin: Option<&'a str>,
}

impl<'a> TokenParts<'a> {
    /// The parts of `token`; `None` when it is not a join token's shape.
    pub fn parse(token: &'a str) -> Option<Self> {
        let mut parts = token.split('.');
        let (Some(TOKEN_PREFIX), Some(id), Some(secret)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let server_pin = parts.next();
        let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if parts.next().is_some() || !plain(id) || !plain(secret) || !server_pin.is_none_or(plain) {
            return None;
        }
        Some(TokenParts {
            id,
            secret,
            server_pin,
        })
    }

    /// The part the server checks: `bjt.ID.SECRET`.
    pub fn credential(&self) -> String {
        format!("{TOKEN_PREFIX}.{}.{}", self.id, self.secret)
    }
}

impl std::fmt::Display for TokenParts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{TOKEN_PREFIX}.{}.{}", self.id, self.secret)?;
        match self.server_pin {
            Some(pin) => write!(f, ".{pin}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenRequest {
    /// How long the token may be used, in seconds.
    pub ttl_seconds: u64,
    /// Restricts the token to agents joining this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenAnswer {
    pub token: String,
    pub expires_at: crate::time::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    pub token: String,
    /// The cluster the agent will register in.
    pub cluster: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinAnswer {
    pub access_key_id: String,
    pub secret_access_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_tokens_read_with_and_without_a_pin() {
        let pinned = TokenParts::parse("bjt.abc123.S3cret.0f9e").unwrap();
        assert_eq!(
            pinned,
            TokenParts {
                id: "abc123",
                secret: "S3cret",
                server_pin: Some("0f9e")
            }
        );
        assert_eq!(pinned.credential(), "bjt.abc123.S3cret");
        assert_eq!(pinned.to_string(), "bjt.abc123.S3cret.0f9e");
        let plain = TokenParts::parse("bjt.abc123.S3cret").unwrap();
        assert_eq!(plain.server_pin, None);
        assert_eq!(plain.to_string(), "bjt.abc123.S3cret");
        for bad in [
            "",
            "bjt",
            "bjt.abc",
            "xyz.abc.def",
            "bjt..def",
            "bjt.abc.",
            "bjt.abc.def.",
            "bjt.abc.def.pin.more",
            "bjt.a/b.def",
            "bjt.abc.d f",
        ] {
            assert_eq!(TokenParts::parse(bad), None, "{bad}");
        }
    }
}
