//! AWS Systems Manager Parameter Store request and response shapes (JSON 1.1, target prefix
//! `AmazonSSM`, SigV4 service `ssm`), named as in botocore's model, for the part Berth serves:
//! PutParameter, GetParameter, GetParameters, GetParametersByPath, DeleteParameter,
//! DeleteParameters, DescribeParameters, GetParameterHistory, LabelParameterVersion,
//! UnlabelParameterVersion, AddTagsToResource, RemoveTagsFromResource and ListTagsForResource,
//! with Parameter Store's error codes. The checks here are the pure ones (names, selectors,
//! labels, tags, lengths); what depends on stored parameters is the server's.
//!
//! Parameter Store answers malformed input with `ValidationException` (not ECS's
//! `InvalidParameterException`): use [`decode`] for its request bodies.

use crate::ApiError;
use berth_model::Timestamp;
use serde::{Deserialize, Serialize};

crate::error::client_errors! {
    ssm_validation => "ValidationException",
    ssm_parameter_not_found => "ParameterNotFound",
    ssm_parameter_already_exists => "ParameterAlreadyExists",
    ssm_version_not_found => "ParameterVersionNotFound",
    ssm_invalid_key_id => "InvalidKeyId",
    ssm_hierarchy_level_limit => "HierarchyLevelLimitExceededException",
    ssm_parameter_limit => "ParameterLimitExceeded",
    ssm_max_version_limit => "ParameterMaxVersionLimitExceeded",
    ssm_pattern_mismatch => "ParameterPatternMismatchException",
    ssm_invalid_allowed_pattern => "InvalidAllowedPatternException",
    ssm_invalid_filter_key => "InvalidFilterKey",
    ssm_invalid_filter_option => "InvalidFilterOption",
    ssm_invalid_filter_value => "InvalidFilterValue",
    ssm_invalid_next_token => "InvalidNextToken",
    ssm_invalid_resource_id => "InvalidResourceId",
    ssm_invalid_resource_type => "InvalidResourceType",
    ssm_too_many_tags => "TooManyTagsError",
    ssm_label_limit => "ParameterVersionLabelLimitExceeded",
}

impl ApiError {
    /// `InternalServerError` (HTTP 500): Parameter Store's name for a fault of the service.
    pub fn ssm_internal(message: impl Into<String>) -> Self {
        Self::new("InternalServerError", 500, message)
    }
}

/// The longest parameter name.
pub const MAX_NAME_CHARS: usize = 2048;
/// The most levels of a hierarchy (`/a/b/c` has three).
pub const MAX_LEVELS: usize = 15;
/// The longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// The longest `AllowedPattern`.
pub const MAX_PATTERN_CHARS: usize = 1024;
/// The most tags a parameter may carry.
pub const MAX_TAGS: usize = 50;
/// The most labels one version may carry.
pub const MAX_LABELS: usize = 10;
/// The most versions a parameter keeps.
pub const MAX_VERSIONS: usize = 100;
/// The only KMS key Berth knows: SecureStrings are sealed with the server's own key.
pub const DEFAULT_KEY_ID: &str = "alias/aws/ssm";
/// The only data type Berth serves.
pub const TEXT: &str = "text";

/// Decodes a Parameter Store request body: as [`crate::json::decode`], a member of the wrong
/// type or a missing one being a `ValidationException` that names it.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::json::decode(body).map_err(|e| match e.code {
        "InvalidParameterException" => ApiError::ssm_validation(e.message),
        _ => e,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterType {
    String,
    StringList,
    SecureString,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterTier {
    Standard,
    Advanced,
    #[serde(rename = "Intelligent-Tiering")]
    IntelligentTiering,
}

impl ParameterTier {
    /// The longest value a parameter of this tier may hold.
    pub fn max_value_chars(self) -> usize {
        match self {
            ParameterTier::Standard | ParameterTier::IntelligentTiering => 4096,
            ParameterTier::Advanced => 8192,
        }
    }
}

/// Parameter Store's tags are capitalised; both members are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutParameterRequest {
    pub name: String,
    pub description: Option<String>,
    pub value: String,
    pub r#type: Option<ParameterType>,
    pub key_id: Option<String>,
    pub overwrite: Option<bool>,
    pub allowed_pattern: Option<String>,
    pub tags: Option<Vec<Tag>>,
    pub tier: Option<ParameterTier>,
    pub policies: Option<String>,
    pub data_type: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PutParameterResult {
    #[serde(rename = "Version")]
    pub version: i64,
    #[serde(rename = "Tier")]
    pub tier: ParameterTier,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParameterRequest {
    pub name: String,
    pub with_decryption: Option<bool>,
}

/// A parameter's value as GetParameter, GetParameters and GetParametersByPath return it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameter {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Type")]
    pub r#type: ParameterType,
    #[serde(rename = "Value")]
    pub value: String,
    #[serde(rename = "Version")]
    pub version: i64,
    /// `:VERSION` or `:LABEL`, when the name asked with one.
    #[serde(rename = "Selector", skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(rename = "LastModifiedDate")]
    pub last_modified_date: Timestamp,
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(rename = "DataType")]
    pub data_type: String,
}

#[derive(Debug, Serialize)]
pub struct GetParameterResult {
    #[serde(rename = "Parameter")]
    pub parameter: Parameter,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersRequest {
    pub names: Vec<String>,
    pub with_decryption: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct GetParametersResult {
    #[serde(rename = "Parameters")]
    pub parameters: Vec<Parameter>,
    #[serde(rename = "InvalidParameters")]
    pub invalid_parameters: Vec<String>,
}

/// One of `ParameterFilters`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterStringFilter {
    pub key: String,
    pub option: Option<String>,
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersByPathRequest {
    pub path: String,
    pub recursive: Option<bool>,
    pub parameter_filters: Option<Vec<ParameterStringFilter>>,
    pub with_decryption: Option<bool>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// A page of parameters (GetParametersByPath).
#[derive(Debug, Serialize)]
pub struct ParametersPage<T> {
    #[serde(rename = "Parameters")]
    pub parameters: Vec<T>,
    #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// DeleteParameter and GetParameterHistory's first member.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteParameterRequest {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteParametersRequest {
    pub names: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DeleteParametersResult {
    #[serde(rename = "DeletedParameters")]
    pub deleted_parameters: Vec<String>,
    #[serde(rename = "InvalidParameters")]
    pub invalid_parameters: Vec<String>,
}

/// One of DescribeParameters' older `Filters`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParametersFilter {
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeParametersRequest {
    pub filters: Option<Vec<ParametersFilter>>,
    pub parameter_filters: Option<Vec<ParameterStringFilter>>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub shared: Option<bool>,
}

/// What DescribeParameters and GetParameterHistory tell of a parameter (version) alike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParameterMetadata {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Type")]
    pub r#type: ParameterType,
    #[serde(rename = "KeyId", skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(rename = "LastModifiedDate")]
    pub last_modified_date: Timestamp,
    #[serde(rename = "LastModifiedUser")]
    pub last_modified_user: String,
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "AllowedPattern", skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    #[serde(rename = "Version")]
    pub version: i64,
    #[serde(rename = "Tier")]
    pub tier: ParameterTier,
    /// Always empty: Berth has no parameter policies.
    #[serde(rename = "Policies")]
    pub policies: Vec<serde_json::Value>,
    #[serde(rename = "DataType")]
    pub data_type: String,
}

/// DescribeParameters' entry: the metadata and the parameter's ARN.
#[derive(Debug, Serialize)]
pub struct DescribedParameter {
    #[serde(flatten)]
    pub metadata: ParameterMetadata,
    #[serde(rename = "ARN")]
    pub arn: String,
}

/// GetParameterHistory's entry: one version's metadata, value and labels.
#[derive(Debug, Serialize)]
pub struct ParameterHistory {
    #[serde(flatten)]
    pub metadata: ParameterMetadata,
    #[serde(rename = "Value")]
    pub value: String,
    #[serde(rename = "Labels")]
    pub labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParameterHistoryRequest {
    pub name: String,
    pub with_decryption: Option<bool>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

/// LabelParameterVersion's and UnlabelParameterVersion's input (the version is optional only
/// for LabelParameterVersion).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LabelParameterVersionRequest {
    pub name: String,
    pub parameter_version: Option<i64>,
    pub labels: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LabelParameterVersionResult {
    #[serde(rename = "InvalidLabels")]
    pub invalid_labels: Vec<String>,
    #[serde(rename = "ParameterVersion")]
    pub parameter_version: i64,
}

#[derive(Debug, Serialize)]
pub struct UnlabelParameterVersionResult {
    #[serde(rename = "RemovedLabels")]
    pub removed_labels: Vec<String>,
    #[serde(rename = "InvalidLabels")]
    pub invalid_labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddTagsToResourceRequest {
    pub resource_type: String,
    pub resource_id: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTagsFromResourceRequest {
    pub resource_type: String,
    pub resource_id: String,
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceRequest {
    pub resource_type: String,
    pub resource_id: String,
}

#[derive(Debug, Serialize)]
pub struct ListTagsForResourceResult {
    #[serde(rename = "TagList")]
    pub tag_list: Vec<Tag>,
}

/// The version or label a name asks for after a colon (`/app/db:3`, `/app/db:prod`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Version(i64),
    Label(String),
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Version(v) => write!(f, ":{v}"),
            Selector::Label(l) => write!(f, ":{l}"),
        }
    }
}

/// Splits `NAME[:VERSION|:LABEL]` (the name may be an ARN, whose own colons come before its
/// `parameter/`).
pub fn split_selector(name: &str) -> Result<(&str, Option<Selector>), ApiError> {
    let Some((base, tail)) = name.rsplit_once(':').filter(|(_, t)| !t.contains('/')) else {
        return Ok((name, None));
    };
    if name.starts_with("arn:") && !base.contains('/') {
        return Ok((name, None));
    }
    if tail.is_empty() {
        return Err(ApiError::ssm_validation(format!(
            "Name: '{name}' ends with ':' but names no version or label after it"
        )));
    }
    if tail.chars().all(|c| c.is_ascii_digit()) {
        let version = tail.parse().map_err(|_| {
            ApiError::ssm_validation(format!("Name: the version in '{name}' is too large"))
        })?;
        return Ok((base, Some(Selector::Version(version))));
    }
    Ok((base, Some(Selector::Label(tail.to_owned()))))
}

/// Whether a name or label begins with `aws` or `ssm`, which Parameter Store reserves.
fn reserved(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.starts_with("aws") || lower.starts_with("ssm")
}

/// Checks a parameter name: 1 to 2048 ASCII letters, digits and `_.-/`; a name with `/` is a
/// hierarchy, fully qualified (it begins with `/`), without empty levels, of at most 15
/// levels; it may not begin with `aws` or `ssm`.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-/".contains(c);
    if name.is_empty() || name.len() > MAX_NAME_CHARS || !name.chars().all(allowed) {
        return Err(ApiError::ssm_validation(format!(
            "Name: '{name}' is not a valid parameter name: use 1 to {MAX_NAME_CHARS} ASCII letters, digits and _.-/"
        )));
    }
    if reserved(name.trim_start_matches('/')) {
        return Err(ApiError::ssm_validation(format!(
            "Name: '{name}': parameter names beginning with 'aws' or 'ssm' (in any case) are reserved"
        )));
    }
    if name.contains('/') {
        if !name.starts_with('/') || name.ends_with('/') || name.contains("//") {
            return Err(ApiError::ssm_validation(format!(
                "Name: '{name}' is not a fully qualified hierarchy: it must begin with '/', have no empty level and not end with '/'"
            )));
        }
        check_levels(name)?;
    }
    Ok(())
}

/// Refuses a hierarchy of more than 15 levels.
pub fn check_levels(path: &str) -> Result<(), ApiError> {
    if path.matches('/').count() > MAX_LEVELS {
        return Err(ApiError::ssm_hierarchy_level_limit(format!(
            "'{path}': a hierarchy can have a maximum of {MAX_LEVELS} levels"
        )));
    }
    Ok(())
}

/// Whether `label` may label a version: 1 to 100 letters, digits, `.`, `-` and `_`, not
/// beginning with a digit, `aws` or `ssm`.
pub fn valid_label(label: &str) -> bool {
    let allowed = |c: char| c.is_alphanumeric() || ".-_".contains(c);
    (1..=100).contains(&label.chars().count())
        && label.chars().all(allowed)
        && !label.starts_with(|c: char| c.is_ascii_digit())
        && !reserved(label)
}

/// Checks the labels a request gives: 1 to 10 of them.
pub fn check_label_count(labels: &[String]) -> Result<(), ApiError> {
    if labels.is_empty() || labels.len() > MAX_LABELS {
        return Err(ApiError::ssm_validation(format!(
            "Labels: give 1 to {MAX_LABELS} labels"
        )));
    }
    Ok(())
}

/// Checks a tag list: keys of 1 to 128 characters not beginning with `aws:`, values up to
/// 256, both of letters, digits, spaces and `_.:/=+-@`.
pub fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    for t in tags {
        let key_len = t.key.chars().count();
        if !(1..=128).contains(&key_len) || t.key.starts_with("aws:") || !t.key.chars().all(allowed)
        {
            return Err(ApiError::ssm_validation(format!(
                "Tags: key '{}' must have 1 to 128 letters, digits, spaces or _.:/=+-@ and not begin with 'aws:'",
                t.key
            )));
        }
        if t.value.chars().count() > 256 || !t.value.chars().all(allowed) {
            return Err(ApiError::ssm_validation(format!(
                "Tags: the value of '{}' must have at most 256 letters, digits, spaces or _.:/=+-@",
                t.key
            )));
        }
    }
    Ok(())
}

/// Checks the number of tags a parameter ends up with.
pub fn check_tag_count(count: usize) -> Result<(), ApiError> {
    if count > MAX_TAGS {
        return Err(ApiError::ssm_too_many_tags(format!(
            "Tags: a parameter can have at most {MAX_TAGS} tags"
        )));
    }
    Ok(())
}

/// Checks a `Names` list (GetParameters, DeleteParameters): 1 to 10 names.
pub fn check_names_count(names: &[String]) -> Result<(), ApiError> {
    if names.is_empty() || names.len() > 10 {
        return Err(ApiError::ssm_validation(format!(
            "Names: give 1 to 10 names, not {}",
            names.len()
        )));
    }
    Ok(())
}

/// The page size `MaxResults` asks for: 1 to `max`, `max` when absent.
pub fn page_size(max_results: Option<i64>, max: usize) -> Result<usize, ApiError> {
    match max_results {
        None => Ok(max),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(n) => Err(ApiError::ssm_validation(format!(
            "MaxResults: {n} is not between 1 and {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_decode_with_validation_errors_naming_the_member() {
        let r: PutParameterRequest =
            decode(br#"{"Name":"/app/db","Value":"v","Type":"SecureString","Tier":"Standard"}"#)
                .unwrap();
        assert_eq!(r.r#type, Some(ParameterType::SecureString));
        assert_eq!(r.tier, Some(ParameterTier::Standard));
        let e = decode::<PutParameterRequest>(br#"{"Name":"a","Value":"v","Type":"Text"}"#)
            .unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(e.message.starts_with("Type:"), "{}", e.message);
        let e = decode::<GetParameterRequest>(b"{}").unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(e.message.contains("Name"), "{}", e.message);
        assert_eq!(
            decode::<GetParameterRequest>(b"{").unwrap_err().code,
            "SerializationException"
        );
    }

    #[test]
    fn results_serialize_as_parameter_store_does() {
        let metadata = ParameterMetadata {
            name: "/a".into(),
            r#type: ParameterType::StringList,
            key_id: None,
            last_modified_date: Timestamp(1_500),
            last_modified_user: "arn:aws:iam::0:root".into(),
            description: None,
            allowed_pattern: None,
            version: 2,
            tier: ParameterTier::IntelligentTiering,
            policies: Vec::new(),
            data_type: TEXT.into(),
        };
        let v = serde_json::to_value(DescribedParameter {
            metadata,
            arn: "arn:aws:ssm:us-east-1:0:parameter/a".into(),
        })
        .unwrap();
        assert_eq!(v["Type"], "StringList");
        assert_eq!(v["Tier"], "Intelligent-Tiering");
        assert_eq!(v["LastModifiedDate"], 1.5);
        assert_eq!(v["Policies"], serde_json::json!([]));
        assert!(v.get("KeyId").is_none() && v.get("Description").is_none());
    }

    #[test]
    fn selectors_follow_the_last_colon() {
        assert_eq!(split_selector("/a/b").unwrap(), ("/a/b", None));
        assert_eq!(
            split_selector("/a/b:3").unwrap(),
            ("/a/b", Some(Selector::Version(3)))
        );
        assert_eq!(
            split_selector("db:prod").unwrap(),
            ("db", Some(Selector::Label("prod".into())))
        );
        let arn = "arn:aws:ssm:us-east-1:000000000000:parameter/a/b";
        assert_eq!(split_selector(arn).unwrap(), (arn, None));
        let flat = "arn:aws:ssm:us-east-1:000000000000:parameter/db";
        assert_eq!(split_selector(flat).unwrap(), (flat, None));
        assert_eq!(
            split_selector(&format!("{arn}:7")).unwrap(),
            (arn, Some(Selector::Version(7)))
        );
        assert_eq!(Selector::Label("x".into()).to_string(), ":x");
        assert!(split_selector("db:").is_err());
        assert!(split_selector("db:99999999999999999999").is_err());
    }

    #[test]
    fn names_labels_and_tags_are_checked() {
        for good in ["db", "/app/prod/db-password_1.x", "a.b-c"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "has space",
            "semi;colon",
            "app/db",
            "/app/",
            "/app//db",
            "awsKey",
            "/SSM/x",
        ] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.code, "ValidationException", "{bad}");
            assert!(e.message.starts_with("Name:"), "{}", e.message);
        }
        let deep = "/l".repeat(16);
        assert_eq!(
            check_name(&deep).unwrap_err().code,
            "HierarchyLevelLimitExceededException"
        );
        assert!(check_name(&"/l".repeat(15)).is_ok());

        assert!(valid_label("prod") && valid_label("v1.2-rc_1"));
        for bad in ["", "1st", "awsx", "Ssm", "a/b", "a:b", &"l".repeat(101)] {
            assert!(!valid_label(bad), "{bad}");
        }
        let tag = |k: &str, v: &str| Tag {
            key: k.into(),
            value: v.into(),
        };
        assert!(check_tags(&[tag("team", "web app"), tag("a:b", "")]).is_ok());
        assert!(check_tags(&[tag("aws:x", "1")]).is_err());
        assert!(check_tags(&[tag("k", "semi;colon")]).is_err());
        assert_eq!(check_tag_count(51).unwrap_err().code, "TooManyTagsError");
        assert!(check_names_count(&[]).is_err());
        assert_eq!(page_size(None, 10).unwrap(), 10);
        assert!(
            page_size(Some(11), 10)
                .unwrap_err()
                .message
                .contains("MaxResults")
        );
    }
}
