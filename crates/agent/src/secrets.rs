//! A task's `secrets`, `logConfiguration.secretOptions` and `repositoryCredentials`, fetched
//! from Berth's Secrets Manager and Parameter Store before any of the task's containers is
//! created, as the ECS agent does.
//!
//! - `secrets: [{name, valueFrom}]` and `logConfiguration.secretOptions: [{name, valueFrom}]`:
//!   `valueFrom` is a Secrets Manager secret ARN, optionally followed by ECS's
//!   `:json-key:version-stage:version-id` (each part may be left empty), or a Systems Manager
//!   parameter: its name (`/app/db`, in the agent's region) or ARN
//!   (`arn:aws:ssm:REGION:ACCOUNT:parameter/app/db`), either optionally followed by
//!   `:VERSION` or `:LABEL`. A secret gives its `SecretString` — or, with a JSON key, that
//!   member of the string read as a JSON object (a string as it is, any other value as JSON
//!   text); a parameter gives its value, SecureStrings decrypted. `secrets` become the
//!   container's variables, replacing any of the same name from `environment` or an
//!   environment file; `secretOptions` become options of its log driver, beside `options`.
//! - `repositoryCredentials.credentialsParameter`: the ARN or name of a secret whose
//!   `SecretString` is `{"username": …, "password": …}`; the container's image is pulled with
//!   those credentials instead of any Berth would give.
//! - `SecretBinary` values are refused. Any failure is the task's stoppedReason, ECS's
//!   `ResourceInitializationError: unable to pull secrets or registry auth: …`, naming the
//!   container, the secret or parameter and why.
//!
//! Secrets are read with GetSecretValue and parameters with GetParameters `WithDecryption`,
//! signed with the agent's own key (Berth has no execution roles), in the region the ARN names
//! (a name: the agent's). One task reads each secret version and parameter once, however many
//! containers and variables use it.

use std::collections::HashMap;

use berth_model::task_definition::{ContainerDefinition, Secret};
use serde::Deserialize;

use crate::control::{ControlPlane, ParameterRequest, SecretRequest};
use crate::runtime::{RegistryAuth, registry_of};

/// The start of every reason a task fails with here (ECS's words).
pub const FAILED: &str = "ResourceInitializationError: unable to pull secrets or registry auth";

/// Where Docker Hub's credentials are kept, for images that name no registry.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// What one container gets from Secrets Manager and Parameter Store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// Variables, in the order of the container's `secrets`.
    pub environment: Vec<(String, String)>,
    /// Log driver options, in the order of its `logConfiguration.secretOptions`.
    pub log_options: Vec<(String, String)>,
    /// The credentials its image is pulled with (`repositoryCredentials`).
    pub registry_auth: Option<RegistryAuth>,
}

/// What a `valueFrom` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFrom {
    /// A Secrets Manager secret version, and the JSON key to take from it.
    Secret {
        request: SecretRequest,
        json_key: Option<String>,
    },
    /// A Parameter Store parameter.
    Parameter(ParameterRequest),
}

/// Reads a secret's `valueFrom`: ECS's `ARN[:json-key[:version-stage[:version-id]]]` for a
/// Secrets Manager secret, a parameter's name or ARN for Parameter Store.
pub fn parse_value_from(value_from: &str) -> Result<ValueFrom, String> {
    let parts: Vec<&str> = value_from.split(':').collect();
    if !value_from.starts_with("arn:") {
        return Ok(ValueFrom::Parameter(ParameterRequest {
            region: None,
            name: value_from.to_owned(),
        }));
    }
    let part = |i: usize| {
        parts
            .get(i)
            .filter(|p| !p.is_empty())
            .map(|p| (*p).to_owned())
    };
    if parts.len() >= 6 && parts[2] == "ssm" && parts[5].starts_with("parameter/") {
        return Ok(ValueFrom::Parameter(ParameterRequest {
            region: part(3),
            name: value_from.to_owned(),
        }));
    }
    let is_asm = parts.len() >= 7
        && parts[2] == "secretsmanager"
        && parts[5] == "secret"
        && !parts[6].is_empty();
    if !is_asm {
        return Err(
            "it is neither a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME) nor a Systems Manager parameter (a name, or arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)".into(),
        );
    }
    if parts.len() > 10 {
        return Err(
            "after the secret's ARN only json-key, version-stage and version-id may follow".into(),
        );
    }
    Ok(ValueFrom::Secret {
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
    match parse_value_from(parameter)? {
        ValueFrom::Secret {
            request,
            json_key: None,
        } if request.secret_id == parameter => Ok(request),
        ValueFrom::Secret { .. } => Err("give the secret's ARN alone".into()),
        ValueFrom::Parameter(_) => {
            Err("repository credentials come from a Secrets Manager secret only".into())
        }
    }
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

/// The secrets and parameters one task reads, each once.
struct Fetcher<'a> {
    control: &'a dyn ControlPlane,
    fetched: HashMap<SecretRequest, String>,
    parameters: HashMap<ParameterRequest, String>,
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

    async fn parameter(&mut self, request: &ParameterRequest) -> Result<String, String> {
        if let Some(found) = self.parameters.get(request) {
            return Ok(found.clone());
        }
        let value = self
            .control
            .parameter_value(request)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                "there is no such Systems Manager parameter (or version of it)".to_owned()
            })?;
        self.parameters.insert(request.clone(), value.clone());
        Ok(value)
    }

    /// The value `value_from` names.
    async fn value(&mut self, value_from: &str) -> Result<String, String> {
        match parse_value_from(value_from)? {
            ValueFrom::Secret { request, json_key } => {
                let text = self.string(&request).await?;
                match json_key {
                    Some(key) => json_member(&text, &key),
                    None => Ok(text),
                }
            }
            ValueFrom::Parameter(request) => self.parameter(&request).await,
        }
    }

    /// The values of `secrets` (`what` names them in failures) of the container `container`.
    async fn values(
        &mut self,
        what: &str,
        container: &str,
        secrets: &[Secret],
    ) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let value = self.value(&secret.value_from).await.map_err(|why| {
                format!(
                    "{FAILED}: {what} '{}' ({}) of container '{container}': {why}",
                    secret.name, secret.value_from
                )
            })?;
            out.push((secret.name.clone(), value));
        }
        Ok(out)
    }
}

/// Fetches what each container of `containers` for which `needed` holds gets from Secrets
/// Manager and Parameter Store (the others get nothing); `Err` is the reason the task cannot
/// start.
pub async fn resolve(
    control: &dyn ControlPlane,
    containers: &[ContainerDefinition],
    needed: impl Fn(usize) -> bool,
) -> Result<Vec<Resolved>, String> {
    let mut fetcher = Fetcher {
        control,
        fetched: HashMap::new(),
        parameters: HashMap::new(),
    };
    let mut out = vec![Resolved::default(); containers.len()];
    for (i, container) in containers.iter().enumerate() {
        if !needed(i) {
            continue;
        }
        let name = container.name.as_deref().unwrap_or_default();
        let secrets = container.secrets.as_deref().unwrap_or_default();
        out[i].environment = fetcher.values("secret", name, secrets).await?;
        let log_secrets = container
            .log_configuration
            .as_ref()
            .and_then(|l| l.secret_options.as_deref())
            .unwrap_or_default();
        out[i].log_options = fetcher
            .values("logConfiguration secretOption", name, log_secrets)
            .await?;
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

    /// The secret a `valueFrom` names, and its JSON key.
    fn secret(value_from: &str) -> (SecretRequest, Option<String>) {
        match parse_value_from(value_from).unwrap() {
            ValueFrom::Secret { request, json_key } => (request, json_key),
            other => panic!("{value_from}: {other:?}"),
        }
    }

    #[test]
    fn value_from_takes_ecs_suffixes() {
        let (plain, key) = secret(ARN);
        assert_eq!(plain.secret_id, ARN);
        assert_eq!(plain.region.as_deref(), Some("eu-west-1"));
        assert_eq!(key, None);
        let (keyed, key) = secret(&format!("{ARN}:password::"));
        assert_eq!(keyed.secret_id, ARN);
        assert_eq!(key.as_deref(), Some("password"));
        assert_eq!(keyed.version_stage, None);
        let (staged, key) = secret(&format!("{ARN}::AWSPREVIOUS:"));
        assert_eq!(key, None);
        assert_eq!(staged.version_stage.as_deref(), Some("AWSPREVIOUS"));
        let (by_id, _) = secret(&format!("{ARN}:user::v-1"));
        assert_eq!(by_id.version_id.as_deref(), Some("v-1"));
        assert!(parse_value_from(&format!("{ARN}:a:b:c:d")).is_err());
    }

    #[test]
    fn parameters_are_named_or_given_by_arn() {
        let parameter = |value_from: &str| match parse_value_from(value_from).unwrap() {
            ValueFrom::Parameter(p) => p,
            other => panic!("{value_from}: {other:?}"),
        };
        for name in ["db-password", "/prod/db", "/prod/db:3", "db:stable"] {
            assert_eq!(
                parameter(name),
                ParameterRequest {
                    region: None,
                    name: name.into()
                }
            );
        }
        let arn = "arn:aws:ssm:eu-west-1:000000000000:parameter/prod/db";
        assert_eq!(parameter(arn).region.as_deref(), Some("eu-west-1"));
        assert_eq!(parameter(arn).name, arn);
        for bad in ["arn:aws:s3:::bucket/key", "arn:aws:ssm:r:a:document/x"] {
            assert!(
                parse_value_from(bad).unwrap_err().contains("neither"),
                "{bad}"
            );
        }
        assert_eq!(
            parse_credentials_parameter("dockerhub").unwrap().secret_id,
            "dockerhub"
        );
        assert!(parse_credentials_parameter(&format!("{ARN}:username::")).is_err());
        assert!(
            parse_credentials_parameter(arn)
                .unwrap_err()
                .contains("Secrets Manager")
        );
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
