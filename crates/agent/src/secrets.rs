//! A task's `secrets` and `repositoryCredentials`, fetched from Berth's Secrets Manager before
//! any of the task's containers is created, as the ECS agent does.
//!
//! - `secrets: [{name, valueFrom}]`: `valueFrom` is a Secrets Manager secret ARN, optionally
//!   followed by ECS's `:json-key:version-stage:version-id` (each part may be left empty). The
//!   container gets the variable `name` holding the secret's `SecretString` — or, with a JSON
//!   key, that member of the string read as a JSON object (a string as it is, any other value
//!   as JSON text). A secret's variable replaces one of the same name from `environment` or an
//!   environment file.
//! - `repositoryCredentials.credentialsParameter`: the ARN or name of a secret whose
//!   `SecretString` is `{"username": …, "password": …}`; the container's image is pulled with
//!   those credentials instead of any Berth would give.
//! - Systems Manager parameters (a name, or `arn:…:ssm:…`) are refused: Berth has no Parameter
//!   Store. `SecretBinary` values are refused too.
//! - Any failure is the task's stoppedReason, ECS's `ResourceInitializationError: unable to
//!   pull secrets or registry auth: …`, naming the container, the secret and why.
//!
//! Secrets are read with GetSecretValue, signed with the agent's own key (Berth has no execution
//! roles), in the region the ARN names (a name: the agent's). One task reads each secret version
//! once, however many containers and variables use it.

use std::collections::HashMap;

use berth_model::task_definition::ContainerDefinition;
use serde::Deserialize;

use crate::control::{ControlPlane, SecretRequest};
use crate::runtime::{RegistryAuth, registry_of};

/// The start of every reason a task fails with here (ECS's words).
pub const FAILED: &str = "ResourceInitializationError: unable to pull secrets or registry auth";

/// Where Docker Hub's credentials are kept, for images that name no registry.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// What one container gets from Secrets Manager.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// Variables, in the order of the container's `secrets`.
    pub environment: Vec<(String, String)>,
    /// The credentials its image is pulled with (`repositoryCredentials`).
    pub registry_auth: Option<RegistryAuth>,
}

/// A `valueFrom` read: the secret version to ask for and the JSON key to take from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueFrom {
    pub request: SecretRequest,
    pub json_key: Option<String>,
}

/// Reads a secret's `valueFrom` (ECS's syntax: `ARN[:json-key[:version-stage[:version-id]]]`).
pub fn parse_value_from(value_from: &str) -> Result<ValueFrom, String> {
    let parts: Vec<&str> = value_from.split(':').collect();
    let is_asm = parts.len() >= 7
        && parts[0] == "arn"
        && parts[2] == "secretsmanager"
        && parts[5] == "secret"
        && !parts[6].is_empty();
    if !is_asm {
        let ssm = !value_from.starts_with("arn:") || parts.get(2) == Some(&"ssm");
        return Err(if ssm {
            "it names a Systems Manager parameter; Berth supports only Secrets Manager secrets (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)".into()
        } else {
            "it is not a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)".into()
        });
    }
    if parts.len() > 10 {
        return Err(
            "after the secret's ARN only json-key, version-stage and version-id may follow".into(),
        );
    }
    let part = |i: usize| {
        parts
            .get(i)
            .filter(|p| !p.is_empty())
            .map(|p| (*p).to_owned())
    };
    Ok(ValueFrom {
        request: SecretRequest {
            region: part(3),
            secret_id: parts[..7].join(":"),
            version_stage: part(8),
            version_id: part(9),
        },
        json_key: part(7),
    })
}

/// Reads a `credentialsParameter`: a Secrets Manager ARN, or a secret's name.
fn parse_credentials_parameter(parameter: &str) -> Result<SecretRequest, String> {
    if !parameter.starts_with("arn:") {
        return Ok(SecretRequest {
            region: None,
            secret_id: parameter.to_owned(),
            version_stage: None,
            version_id: None,
        });
    }
    let parsed = parse_value_from(parameter)?;
    if parsed.json_key.is_some() || parsed.request.secret_id != parameter {
        return Err("give the secret's ARN alone".into());
    }
    Ok(parsed.request)
}

/// The member `key` of a secret string read as a JSON object.
fn json_member(text: &str, key: &str) -> Result<String, String> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|_| format!("the secret is not a JSON object, so it has no json key '{key}'"))?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!(
            "retrieved secret from Secrets Manager did not contain json key '{key}'"
        )),
    }
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// The secrets one task reads, each version once.
struct Fetcher<'a> {
    control: &'a dyn ControlPlane,
    fetched: HashMap<SecretRequest, String>,
}

impl Fetcher<'_> {
    async fn string(&mut self, request: &SecretRequest) -> Result<String, String> {
        if let Some(found) = self.fetched.get(request) {
            return Ok(found.clone());
        }
        let value = self
            .control
            .secret_string(request)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                "the secret holds a SecretBinary; only SecretString values can be used".to_owned()
            })?;
        self.fetched.insert(request.clone(), value.clone());
        Ok(value)
    }
}

/// Fetches what each container of `containers` for which `needed` holds gets from Secrets
/// Manager (the others get nothing); `Err` is the reason the task cannot start.
pub async fn resolve(
    control: &dyn ControlPlane,
    containers: &[ContainerDefinition],
    needed: impl Fn(usize) -> bool,
) -> Result<Vec<Resolved>, String> {
    let mut fetcher = Fetcher {
        control,
        fetched: HashMap::new(),
    };
    let mut out = vec![Resolved::default(); containers.len()];
    for (i, container) in containers.iter().enumerate() {
        if !needed(i) {
            continue;
        }
        let name = container.name.as_deref().unwrap_or_default();
        for secret in container.secrets.iter().flatten() {
            let failed = |why: String| {
                format!(
                    "{FAILED}: secret '{}' ({}) of container '{name}': {why}",
                    secret.name, secret.value_from
                )
            };
            let parsed = parse_value_from(&secret.value_from).map_err(failed)?;
            let text = fetcher.string(&parsed.request).await.map_err(failed)?;
            let value = match &parsed.json_key {
                Some(key) => json_member(&text, key).map_err(failed)?,
                None => text,
            };
            out[i].environment.push((secret.name.clone(), value));
        }
        if let Some(rc) = &container.repository_credentials {
            let parameter = &rc.credentials_parameter;
            let failed = |why: String| {
                format!(
                    "{FAILED}: repositoryCredentials '{parameter}' of container '{name}': {why}"
                )
            };
            let request = parse_credentials_parameter(parameter).map_err(failed)?;
            let text = fetcher.string(&request).await.map_err(failed)?;
            let credentials: Credentials = serde_json::from_str(&text).map_err(|_| {
                failed(
                    "the secret must be a JSON object with the strings \"username\" and \"password\""
                        .into(),
                )
            })?;
            let image = container.image.as_deref().unwrap_or_default();
            out[i].registry_auth = Some(RegistryAuth {
                server: registry_of(image).unwrap_or(DOCKER_HUB).to_owned(),
                username: credentials.username,
                password: credentials.password,
            });
        }
    }
    Ok(out)
}

/// Sets the secrets' variables in `environment` (`NAME=VALUE` entries), replacing any of the
/// same name.
pub fn merge_over(environment: &mut Vec<String>, variables: &[(String, String)]) {
    for (name, value) in variables {
        environment.retain(|kv| kv.split_once('=').is_none_or(|(n, _)| n != name));
        environment.push(format!("{name}={value}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:db-AbCdEf";

    #[test]
    fn value_from_takes_ecs_suffixes() {
        let plain = parse_value_from(ARN).unwrap();
        assert_eq!(plain.request.secret_id, ARN);
        assert_eq!(plain.request.region.as_deref(), Some("eu-west-1"));
        assert_eq!(plain.json_key, None);
        let keyed = parse_value_from(&format!("{ARN}:password::")).unwrap();
        assert_eq!(keyed.request.secret_id, ARN);
        assert_eq!(keyed.json_key.as_deref(), Some("password"));
        assert_eq!(keyed.request.version_stage, None);
        let staged = parse_value_from(&format!("{ARN}::AWSPREVIOUS:")).unwrap();
        assert_eq!(staged.json_key, None);
        assert_eq!(staged.request.version_stage.as_deref(), Some("AWSPREVIOUS"));
        let by_id = parse_value_from(&format!("{ARN}:user::v-1")).unwrap();
        assert_eq!(by_id.request.version_id.as_deref(), Some("v-1"));
        assert!(parse_value_from(&format!("{ARN}:a:b:c:d")).is_err());
    }

    #[test]
    fn parameters_are_refused_with_the_reason() {
        for ssm in [
            "db-password",
            "/prod/db",
            "arn:aws:ssm:us-east-1:000000000000:parameter/db",
        ] {
            let why = parse_value_from(ssm).unwrap_err();
            assert!(why.contains("only Secrets Manager"), "{ssm}: {why}");
        }
        assert!(
            parse_value_from("arn:aws:s3:::bucket/key")
                .unwrap_err()
                .contains("not a Secrets Manager")
        );
        assert_eq!(
            parse_credentials_parameter("dockerhub").unwrap().secret_id,
            "dockerhub"
        );
        assert!(parse_credentials_parameter(&format!("{ARN}:username::")).is_err());
    }

    #[test]
    fn json_members_and_merging() {
        let text = r#"{"user":"app","port":5432,"nested":{"a":1}}"#;
        assert_eq!(json_member(text, "user").unwrap(), "app");
        assert_eq!(json_member(text, "port").unwrap(), "5432");
        assert_eq!(json_member(text, "nested").unwrap(), r#"{"a":1}"#);
        assert!(
            json_member(text, "password")
                .unwrap_err()
                .contains("json key 'password'")
        );
        assert!(
            json_member("plain", "user")
                .unwrap_err()
                .contains("not a JSON object")
        );
        let mut env = vec!["A=1".to_owned(), "B=2".to_owned()];
        merge_over(
            &mut env,
            &[("B".into(), "secret".into()), ("C".into(), "x=y".into())],
        );
        assert_eq!(env, ["A=1", "B=secret", "C=x=y"]);
    }
}
