//! AWS Secrets Manager request and response shapes (JSON 1.1, target prefix `secretsmanager`,
//! SigV4 service `secretsmanager`), named as in botocore's model, for the part Berth serves:
//! CreateSecret, GetSecretValue, PutSecretValue, UpdateSecret, DescribeSecret, ListSecrets,
//! DeleteSecret, RestoreSecret, TagResource and UntagResource, with Secrets Manager's error
//! codes. `SecretBinary` travels base64-encoded, as the JSON protocol sends blobs. The checks
//! here are the pure ones (names, tags, tokens, value sizes); what depends on stored secrets is
//! the server's.

use crate::ApiError;
use berth_model::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// `ResourceNotFoundException` and `InvalidParameterException` are ECS's constructors too.
crate::error::client_errors! {
    sm_resource_exists => "ResourceExistsException",
    sm_invalid_request => "InvalidRequestException",
    sm_invalid_next_token => "InvalidNextTokenException",
    sm_limit_exceeded => "LimitExceededException",
    sm_decryption_failure => "DecryptionFailure",
}

impl ApiError {
    /// `InternalServiceError` (HTTP 500): Secrets Manager's name for a fault of the service.
    pub fn sm_internal(message: impl Into<String>) -> Self {
        Self::new("InternalServiceError", 500, message)
    }
}

/// The staging label of the current version.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The staging label of the version before it.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// The most bytes a secret value may have (either kind).
pub const MAX_VALUE_BYTES: usize = 65_536;
/// The longest secret name.
pub const MAX_NAME_CHARS: usize = 512;
/// The longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 2048;
/// The most tags a secret may carry.
pub const MAX_TAGS: usize = 50;

/// Secrets Manager's tags are capitalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecretRequest {
    pub name: String,
    pub client_request_token: Option<String>,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    /// Base64 of the bytes.
    pub secret_binary: Option<String>,
    pub secret_string: Option<String>,
    pub tags: Option<Vec<Tag>>,
    pub add_replica_regions: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct CreateSecretResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "VersionId", skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// DescribeSecret and RestoreSecret name one secret.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretIdRequest {
    pub secret_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSecretValueRequest {
    pub secret_id: String,
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct GetSecretValueResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "VersionId")]
    pub version_id: String,
    #[serde(rename = "SecretBinary", skip_serializing_if = "Option::is_none")]
    pub secret_binary: Option<String>,
    #[serde(rename = "SecretString", skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<String>,
    #[serde(rename = "VersionStages")]
    pub version_stages: Vec<String>,
    #[serde(rename = "CreatedDate")]
    pub created_date: Timestamp,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutSecretValueRequest {
    pub secret_id: String,
    pub client_request_token: Option<String>,
    pub secret_binary: Option<String>,
    pub secret_string: Option<String>,
    pub version_stages: Option<Vec<String>>,
    pub rotation_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PutSecretValueResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "VersionId")]
    pub version_id: String,
    #[serde(rename = "VersionStages")]
    pub version_stages: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSecretRequest {
    pub secret_id: String,
    pub client_request_token: Option<String>,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub secret_binary: Option<String>,
    pub secret_string: Option<String>,
}

/// UpdateSecret's answer: `VersionId` only when it made a new version.
pub type UpdateSecretResponse = CreateSecretResponse;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecretRequest {
    pub secret_id: String,
    pub recovery_window_in_days: Option<i64>,
    pub force_delete_without_recovery: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct DeleteSecretResponse {
    #[serde(rename = "ARN", skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "DeletionDate")]
    pub deletion_date: Timestamp,
}

#[derive(Debug, Serialize)]
pub struct RestoreSecretResponse {
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(rename = "Name")]
    pub name: String,
}

/// What DescribeSecret and ListSecrets tell of a secret alike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretMetadata {
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "LastChangedDate")]
    pub last_changed_date: Timestamp,
    /// When DeleteSecret was called, while the secret waits for its deletion.
    #[serde(rename = "DeletedDate", skip_serializing_if = "Option::is_none")]
    pub deleted_date: Option<Timestamp>,
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(rename = "CreatedDate")]
    pub created_date: Timestamp,
}

/// Version ids and their staging labels.
pub type VersionsToStages = BTreeMap<String, Vec<String>>;

#[derive(Debug, Serialize)]
pub struct DescribeSecretResponse {
    #[serde(flatten)]
    pub metadata: SecretMetadata,
    #[serde(
        rename = "VersionIdsToStages",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub version_ids_to_stages: VersionsToStages,
}

#[derive(Debug, Serialize)]
pub struct SecretListEntry {
    #[serde(flatten)]
    pub metadata: SecretMetadata,
    #[serde(
        rename = "SecretVersionsToStages",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub secret_versions_to_stages: VersionsToStages,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretsRequest {
    pub include_planned_deletion: Option<bool>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub filters: Option<Vec<Filter>>,
    pub sort_order: Option<String>,
    pub sort_by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ListSecretsResponse {
    #[serde(rename = "SecretList")]
    pub secret_list: Vec<SecretListEntry>,
    #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceRequest {
    pub secret_id: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceRequest {
    pub secret_id: String,
    pub tag_keys: Vec<String>,
}

/// Checks a secret name: 1 to 512 ASCII letters, digits and `/_+=.@-`.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
    if name.is_empty() || name.len() > MAX_NAME_CHARS || !name.chars().all(allowed) {
        return Err(ApiError::invalid_parameter(format!(
            "Name: '{name}' is not a valid secret name: use 1 to {MAX_NAME_CHARS} ASCII letters, digits and /_+=.@-"
        )));
    }
    Ok(())
}

/// Checks a description's length.
pub fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::invalid_parameter(format!(
            "Description: longer than {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(())
}

/// Checks a `ClientRequestToken` (it becomes the version id): 32 to 64 characters.
pub fn check_token(token: &str) -> Result<(), ApiError> {
    let len = token.chars().count();
    if !(32..=64).contains(&len) || token.chars().any(|c| c.is_control() || c == '/') {
        return Err(ApiError::invalid_parameter(format!(
            "ClientRequestToken: '{token}' must be 32 to 64 printable characters (a UUID, for example)"
        )));
    }
    Ok(())
}

/// Checks a tag list as Secrets Manager does: at most 50, keys of 1 to 128 characters not
/// beginning with `aws:`, values up to 256.
pub fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid_parameter(format!(
            "Tags: a secret can have at most {MAX_TAGS} tags"
        )));
    }
    for t in tags {
        let key_len = t.key.chars().count();
        if !(1..=128).contains(&key_len) || t.key.starts_with("aws:") {
            return Err(ApiError::invalid_parameter(format!(
                "Tags: key '{}' must have 1 to 128 characters and not begin with 'aws:'",
                t.key
            )));
        }
        if t.value.chars().count() > 256 {
            return Err(ApiError::invalid_parameter(format!(
                "Tags: the value of '{}' is longer than 256 characters",
                t.key
            )));
        }
    }
    Ok(())
}

/// A secret value: text or bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    String(String),
    Binary(Vec<u8>),
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretValue::String(_) => f.write_str("SecretValue::String(<redacted>)"),
            SecretValue::Binary(_) => f.write_str("SecretValue::Binary(<redacted>)"),
        }
    }
}

/// The value a request gives in `SecretString` or `SecretBinary` (base64): `None` when it gives
/// neither; both, an empty value or one past 64 KiB are refused.
pub fn value_of(
    secret_string: Option<String>,
    secret_binary: Option<String>,
) -> Result<Option<SecretValue>, ApiError> {
    use base64::Engine;
    let value = match (secret_string, secret_binary) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_parameter(
                "SecretString, SecretBinary: give one of them, not both",
            ));
        }
        (None, None) => return Ok(None),
        (Some(s), None) => SecretValue::String(s),
        (None, Some(b)) => SecretValue::Binary(
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .map_err(|e| {
                    ApiError::invalid_parameter(format!("SecretBinary: not base64 ({e})"))
                })?,
        ),
    };
    let (member, len) = match &value {
        SecretValue::String(s) => ("SecretString", s.len()),
        SecretValue::Binary(b) => ("SecretBinary", b.len()),
    };
    if len == 0 || len > MAX_VALUE_BYTES {
        return Err(ApiError::invalid_parameter(format!(
            "{member}: must be 1 to {MAX_VALUE_BYTES} bytes"
        )));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn requests_decode_with_pascal_case_members() {
        let r: CreateSecretRequest = json::decode(
            br#"{"Name":"db/password","SecretString":"s3cret","Tags":[{"Key":"team","Value":"web"}],"ClientRequestToken":"0123456789abcdef0123456789abcdef"}"#,
        )
        .unwrap();
        assert_eq!(r.name, "db/password");
        assert_eq!(r.secret_string.as_deref(), Some("s3cret"));
        assert_eq!(r.tags.unwrap()[0].value, "web");
        let missing = json::decode::<GetSecretValueRequest>(br#"{"VersionStage":"AWSCURRENT"}"#);
        assert_eq!(missing.unwrap_err().code, "InvalidParameterException");
    }

    #[test]
    fn responses_serialize_as_secrets_manager_does() {
        let metadata = SecretMetadata {
            arn: "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf".into(),
            name: "db".into(),
            description: None,
            last_changed_date: Timestamp(2_000),
            deleted_date: None,
            tags: Vec::new(),
            created_date: Timestamp(1_000),
        };
        let described = DescribeSecretResponse {
            metadata: metadata.clone(),
            version_ids_to_stages: [("v1".to_string(), vec![AWSCURRENT.to_string()])].into(),
        };
        let v = serde_json::to_value(&described).unwrap();
        assert_eq!(v["ARN"], metadata.arn);
        assert_eq!(v["CreatedDate"], 1.0);
        assert_eq!(v["VersionIdsToStages"]["v1"][0], "AWSCURRENT");
        assert!(v.get("Tags").is_none() && v.get("DeletedDate").is_none());
        let listed = serde_json::to_value(SecretListEntry {
            metadata,
            secret_versions_to_stages: VersionsToStages::new(),
        })
        .unwrap();
        assert!(listed.get("SecretVersionsToStages").is_none(), "{listed}");
    }

    #[test]
    fn names_tags_tokens_and_values_are_checked() {
        assert!(check_name("prod/db-password_1+=.@").is_ok());
        for bad in ["", "has space", "semi;colon", &"n".repeat(513)] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.code, "InvalidParameterException");
            assert!(e.message.starts_with("Name:"), "{}", e.message);
        }
        assert!(check_token("0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_token("short").is_err());
        let tag = |k: &str| Tag {
            key: k.into(),
            value: String::new(),
        };
        assert!(check_tags(&[tag("team")]).is_ok());
        assert!(check_tags(&[tag("aws:x")]).is_err());
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"))).collect();
        assert!(check_tags(&many).unwrap_err().message.contains("50"));

        assert_eq!(value_of(None, None).unwrap(), None);
        assert_eq!(
            value_of(Some("x".into()), None).unwrap(),
            Some(SecretValue::String("x".into()))
        );
        assert_eq!(
            value_of(None, Some("AAE=".into())).unwrap(),
            Some(SecretValue::Binary(vec![0, 1]))
        );
        for (s, b, member) in [
            (Some("x"), Some("AA=="), "SecretString, SecretBinary"),
            (Some(""), None, "SecretString"),
            (None, Some("%%"), "SecretBinary"),
        ] {
            let e = value_of(s.map(str::to_owned), b.map(str::to_owned)).unwrap_err();
            assert!(e.message.starts_with(member), "{}", e.message);
        }
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(value_of(Some(big), None).is_err());
    }
}
