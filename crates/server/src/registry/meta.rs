//! The registry's records in the store (their keys are in [`crate::records::keys`]): what a
//! repository is, which manifests and tags it holds and which blobs it may serve. Blob bytes
//! are not here; they live in the [`super::blobs::BlobStore`].

use berth_api::ecr::{ImageTagMutability, Tag};
use berth_model::Timestamp;
use serde::{Deserialize, Serialize};

/// An ECR repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRecord {
    pub name: String,
    pub created_at: Timestamp,
    pub image_tag_mutability: ImageTagMutability,
    #[serde(default)]
    pub scan_on_push: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A manifest (an image, or an image index) stored in a repository under its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub digest: String,
    pub media_type: String,
    /// The manifest exactly as it was pushed (manifests are JSON, so UTF-8).
    pub manifest: String,
    /// The config's media type, for image manifests.
    pub artifact_media_type: Option<String>,
    /// The config and layer sizes summed (an index: its own size), as ECR reports it.
    pub size: i64,
    pub pushed_at: Timestamp,
    /// The digest the manifest's `subject` names: it is one of that manifest's referrers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// A tag of a repository, pointing at a manifest digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageTag {
    pub digest: String,
    pub tagged_at: Timestamp,
}

/// A blob a repository holds: pushed to it or mounted from another repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobLink {
    pub size: u64,
    pub linked_at: Timestamp,
}

/// A repository's lifecycle policy, as it was put, and when it was last applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyRecord {
    pub repository: String,
    pub text: String,
    pub last_evaluated_at: Option<Timestamp>,
}

/// The last lifecycle policy preview of a repository: what the policy would have expired
/// when the preview was started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePreviewRecord {
    pub text: String,
    pub started_at: Timestamp,
    pub expiring: Vec<PreviewedImage>,
}

/// An image a previewed policy would expire, as it was at the preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewedImage {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Timestamp,
    pub rule_priority: i32,
}

/// An upload in progress; its bytes are staged in the blob store under the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadSession {
    pub repository: String,
    pub started_at: Timestamp,
}
