//! ECR request and response shapes (JSON 1.1, `AmazonEC2ContainerRegistry_V20150921`), named as
//! in botocore's model, ECR's error codes, and the pure checks of repository names, image tags
//! and digests that both the ECR API and the OCI registry apply.

use crate::ApiError;
use berth_model::Timestamp;
use serde::{Deserialize, Serialize};

crate::error::client_errors! {
    repository_not_found => "RepositoryNotFoundException",
    repository_already_exists => "RepositoryAlreadyExistsException",
    repository_not_empty => "RepositoryNotEmptyException",
    image_not_found => "ImageNotFoundException",
    image_already_exists => "ImageAlreadyExistsException",
    image_tag_already_exists => "ImageTagAlreadyExistsException",
    image_digest_does_not_match => "ImageDigestDoesNotMatchException",
    layers_not_found => "LayersNotFoundException",
    referenced_images_not_found => "ReferencedImagesNotFoundException",
    invalid_tag_parameter => "InvalidTagParameterException",
    too_many_tags => "TooManyTagsException",
    lifecycle_policy_not_found => "LifecyclePolicyNotFoundException",
    lifecycle_policy_preview_not_found => "LifecyclePolicyPreviewNotFoundException",
}

/// `ImageFailure.failureCode` values.
pub mod failure_codes {
    pub const INVALID_IMAGE_DIGEST: &str = "InvalidImageDigest";
    pub const INVALID_IMAGE_TAG: &str = "InvalidImageTag";
    pub const IMAGE_TAG_DOES_NOT_MATCH_DIGEST: &str = "ImageTagDoesNotMatchDigest";
    pub const IMAGE_NOT_FOUND: &str = "ImageNotFound";
    pub const MISSING_DIGEST_AND_TAG: &str = "MissingDigestAndTag";
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImageTagMutability {
    #[default]
    Mutable,
    Immutable,
    ImmutableWithExclusion,
    MutableWithExclusion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

/// ECR's tags are capitalised, unlike ECS's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageScanningConfiguration {
    #[serde(default)]
    pub scan_on_push: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionConfiguration {
    pub encryption_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub repository_arn: String,
    pub registry_id: String,
    pub repository_name: String,
    pub repository_uri: String,
    pub created_at: Timestamp,
    pub image_tag_mutability: ImageTagMutability,
    pub image_scanning_configuration: ImageScanningConfiguration,
    pub encryption_configuration: EncryptionConfiguration,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRepositoryRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub tags: Option<Vec<Tag>>,
    pub image_tag_mutability: Option<ImageTagMutability>,
    pub image_tag_mutability_exclusion_filters: Option<Vec<serde_json::Value>>,
    pub image_scanning_configuration: Option<ImageScanningConfiguration>,
    pub encryption_configuration: Option<EncryptionConfiguration>,
}

/// The answer of CreateRepository and DeleteRepository.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryResponse {
    pub repository: Repository,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRepositoriesRequest {
    pub registry_id: Option<String>,
    pub repository_names: Option<Vec<String>>,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRepositoriesResponse {
    pub repositories: Vec<Repository>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRepositoryRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub force: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenRequest {
    pub registry_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationData {
    /// base64 of `AWS:<token>`.
    pub authorization_token: String,
    pub expires_at: Timestamp,
    pub proxy_endpoint: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenResponse {
    pub authorization_data: Vec<AuthorizationData>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIdentifier {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
}

/// `ListImagesFilter` and `DescribeImagesFilter` (Berth reads `tagStatus` only).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFilter {
    pub tag_status: Option<TagStatus>,
    pub image_status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Option<Vec<ImageIdentifier>>,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
    pub filter: Option<ImageFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDetail {
    pub registry_id: String,
    pub repository_name: String,
    pub image_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_tags: Option<Vec<String>>,
    pub image_size_in_bytes: i64,
    pub image_pushed_at: Timestamp,
    pub image_manifest_media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_media_type: Option<String>,
    pub image_status: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesResponse {
    pub image_details: Vec<ImageDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
    pub filter: Option<ImageFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesResponse {
    pub image_ids: Vec<ImageIdentifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Vec<ImageIdentifier>,
    pub accepted_media_types: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub registry_id: String,
    pub repository_name: String,
    pub image_id: ImageIdentifier,
    pub image_manifest: String,
    pub image_manifest_media_type: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFailure {
    pub image_id: ImageIdentifier,
    pub failure_code: &'static str,
    pub failure_reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetImageResponse {
    pub images: Vec<Image>,
    pub failures: Vec<ImageFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Vec<ImageIdentifier>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteImageResponse {
    pub image_ids: Vec<ImageIdentifier>,
    pub failures: Vec<ImageFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_manifest: String,
    pub image_manifest_media_type: Option<String>,
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageResponse {
    pub image: Image,
}

/// `LifecyclePolicyText`: 100 to 30720 characters.
pub const LIFECYCLE_POLICY_TEXT_LENGTH: std::ops::RangeInclusive<usize> = 100..=30720;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLifecyclePolicyRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLifecyclePolicyResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
}

/// The input of GetLifecyclePolicy and DeleteLifecyclePolicy.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
}

/// The answer of GetLifecyclePolicy and DeleteLifecyclePolicy.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
    /// When the policy was last applied; absent until it has been.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evaluated_at: Option<Timestamp>,
}

/// `LifecyclePolicyPreviewStatus`. The model also has `IN_PROGRESS`, `EXPIRED` and `FAILED`;
/// Berth evaluates a preview when it starts, so it is always complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecyclePolicyPreviewStatus {
    Complete,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartLifecyclePolicyPreviewRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    /// The policy to preview; the repository's own policy when absent.
    pub lifecycle_policy_text: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartLifecyclePolicyPreviewResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
    pub status: LifecyclePolicyPreviewStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyPreviewFilter {
    pub tag_status: Option<TagStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLifecyclePolicyPreviewRequest {
    pub registry_id: Option<String>,
    pub repository_name: String,
    pub image_ids: Option<Vec<ImageIdentifier>>,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
    pub filter: Option<LifecyclePolicyPreviewFilter>,
}

/// `ImageActionType`: what a lifecycle rule does to the images it selects (the model's
/// `TRANSITION`, to archive storage, is not offered by Berth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImageActionType {
    Expire,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyRuleAction {
    #[serde(rename = "type")]
    pub action_type: ImageActionType,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyPreviewResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_tags: Option<Vec<String>>,
    pub image_digest: String,
    pub image_pushed_at: Timestamp,
    pub action: LifecyclePolicyRuleAction,
    pub applied_rule_priority: i32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyPreviewSummary {
    pub expiring_image_total_count: i32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLifecyclePolicyPreviewResponse {
    pub registry_id: String,
    pub repository_name: String,
    pub lifecycle_policy_text: String,
    pub status: LifecyclePolicyPreviewStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub preview_results: Vec<LifecyclePolicyPreviewResult>,
    pub summary: LifecyclePolicyPreviewSummary,
}

/// Checks a repository name against ECR's (and the OCI distribution spec's) rule: 2 to 256
/// characters, `/`-separated components of lowercase letters and digits joined by `.`, `_`,
/// `__` or runs of `-`.
pub fn validate_repository_name(field: &str, name: &str) -> Result<(), ApiError> {
    if is_valid_repository_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!(
            "{field}: '{name}' is not a valid repository name (2-256 characters: lowercase letters and digits, separated by '.', '_', '__', '-' or '/')"
        )))
    }
}

pub fn is_valid_repository_name(name: &str) -> bool {
    (2..=256).contains(&name.len()) && name.split('/').all(valid_component)
}

fn valid_component(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes: Vec<char> = component.chars().collect();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(*first) || !alnum(*last) {
        return false;
    }
    let mut separator = String::new();
    for c in bytes {
        if alnum(c) {
            let ok = separator.is_empty()
                || separator == "."
                || separator == "_"
                || separator == "__"
                || separator.chars().all(|s| s == '-');
            if !ok {
                return false;
            }
            separator.clear();
        } else if matches!(c, '.' | '_' | '-') {
            separator.push(c);
        } else {
            return false;
        }
    }
    true
}

/// A tag as docker and the OCI distribution spec allow it: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_image_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    tag.len() <= 128
        && (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A `sha256:` digest of 64 lowercase hex digits (the only algorithm Berth stores).
pub fn is_valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecr_rule() {
        for ok in ["ab", "team/app", "a.b_c__d---e/f0", "berth-test/busybox"] {
            assert!(is_valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "a", "A/b", "a//b", "-a", "a-", "a___b", "a._b", "/ab", "ab/", "a b",
        ] {
            assert!(!is_valid_repository_name(bad), "{bad}");
        }
        let e = validate_repository_name("repositoryName", "Bad").unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(
            e.message.starts_with("repositoryName: 'Bad'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn tags_and_digests() {
        assert!(is_valid_image_tag("v1.0_rc-1"));
        assert!(!is_valid_image_tag(".x"));
        assert!(!is_valid_image_tag(""));
        assert!(!is_valid_image_tag(&"a".repeat(129)));
        assert!(is_valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_valid_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_valid_digest("sha512:00"));
    }

    #[test]
    fn errors_carry_ecr_codes() {
        let e = ApiError::repository_not_found("x");
        assert_eq!((e.code, e.status), ("RepositoryNotFoundException", 400));
    }
}
