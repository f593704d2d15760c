//! The referrers API of OCI Distribution 1.1: `GET /v2/<name>/referrers/<digest>` answers an
//! image index of the manifests in the repository whose `subject` names that digest,
//! optionally only those of one `artifactType` (then `OCI-Filters-Applied: artifactType`
//! says the filter was applied). A digest nothing refers to, stored or not, has an empty
//! index. The subject of each manifest is recorded when it is pushed (`ImageRecord::subject`).

use super::errors::OciError;
use super::images::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use super::meta::ImageRecord;
use super::{Req, query, respond};
use crate::records::keys;
use axum::body::Body;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use berth_api::ecr::is_valid_digest;
use serde_json::{Map, Value, json};

/// The descriptor of a referrer in the index: its media type, size and digest, its artifact
/// type (the manifest's `artifactType`, else an image manifest's config media type) and its
/// annotations.
fn descriptor(image: &ImageRecord) -> Value {
    let manifest: Value = serde_json::from_str(&image.manifest).unwrap_or(Value::Null);
    let mut d = Map::new();
    d.insert("mediaType".into(), json!(image.media_type));
    d.insert("size".into(), json!(image.manifest.len()));
    d.insert("digest".into(), json!(image.digest));
    let artifact_type = match manifest.get("artifactType").and_then(Value::as_str) {
        Some(t) => Some(t.to_string()),
        None if matches!(image.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST) => {
            image.artifact_media_type.clone()
        }
        None => None,
    };
    if let Some(t) = artifact_type {
        d.insert("artifactType".into(), json!(t));
    }
    if let Some(annotations) = manifest.get("annotations").filter(|a| a.is_object()) {
        d.insert("annotations".into(), annotations.clone());
    }
    Value::Object(d)
}

pub fn list(r: &Req<'_>, digest: &str, uri: &Uri) -> Result<Response, OciError> {
    if !is_valid_digest(digest) {
        return Err(
            OciError::digest_invalid(format!("'{digest}' is not a sha256 digest"))
                .with_detail(json!({ "digest": digest })),
        );
    }
    let artifact_type = query(uri, "artifactType").filter(|t| !t.is_empty());
    let mut manifests = Vec::new();
    r.app
        .db
        .scan::<ImageRecord>(&keys::images(&r.region, &r.name), |_, image| {
            if image.subject.as_deref() == Some(digest) {
                let d = descriptor(image);
                if artifact_type
                    .as_deref()
                    .is_none_or(|wanted| d["artifactType"] == wanted)
                {
                    manifests.push(d);
                }
            }
            true
        });
    let mut headers = vec![("content-type", OCI_INDEX.to_string())];
    if artifact_type.is_some() {
        headers.push(("oci-filters-applied", "artifactType".to_string()));
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    Ok(respond(
        StatusCode::OK,
        headers,
        Body::from(body.to_string()),
    ))
}
