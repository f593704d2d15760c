//! Manifests and tags: `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>` (a PUT
//! of a manifest with a `subject` answers `OCI-Subject`) and `GET /v2/<name>/tags/list` with
//! `n`/`last` pagination and a `Link` to the next page.

use super::errors::OciError;
use super::images::{self, MAX_MANIFEST_BYTES, Put, PutError};
use super::meta::ImageTag;
use super::{Req, query, respond};
use crate::db::Writes;
use crate::records::keys;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use berth_api::ecr::{is_valid_digest, is_valid_image_tag};
use http_body_util::{BodyExt, Limited};
use serde_json::json;

fn unknown(r: &Req<'_>, reference: &str) -> OciError {
    OciError::manifest_unknown(format!(
        "manifest '{reference}' is not in repository '{}'",
        r.name
    ))
    .with_detail(json!({ "reference": reference }))
}

pub fn get(r: &Req<'_>, reference: &str, head: bool) -> Result<Response, OciError> {
    let image = images::resolve(&r.app.db, &r.region, &r.name, reference)
        .ok_or_else(|| unknown(r, reference))?
        .value;
    let headers = vec![
        ("content-type", image.media_type),
        ("content-length", image.manifest.len().to_string()),
        ("docker-content-digest", image.digest.clone()),
        ("etag", format!("\"{}\"", image.digest)),
    ];
    let body = if head {
        Body::empty()
    } else {
        Body::from(image.manifest)
    };
    Ok(respond(StatusCode::OK, headers, body))
}

pub async fn put(
    r: &Req<'_>,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, OciError> {
    let (tag, digest) = if images::is_digest_reference(reference) {
        if !is_valid_digest(reference) {
            return Err(OciError::digest_invalid(format!(
                "'{reference}' is not a sha256 digest"
            )));
        }
        (None, Some(reference))
    } else {
        if !is_valid_image_tag(reference) {
            return Err(OciError::tag_invalid(format!(
                "'{reference}' is not a valid tag"
            )));
        }
        (Some(reference), None)
    };
    let bytes = Limited::new(body, MAX_MANIFEST_BYTES)
        .collect()
        .await
        .map_err(|e| {
            OciError::size_invalid(format!(
                "the manifest could not be read (at most {MAX_MANIFEST_BYTES} bytes): {e}"
            ))
        })?
        .to_bytes();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let outcome = images::put(
        &r.app.db,
        Put {
            region: &r.region,
            repository: &r.name,
            tag,
            digest,
            body: &bytes,
            content_type,
            now: r.now,
        },
    )
    .await
    .map_err(|e| match e {
        PutError::RepositoryUnknown => OciError::name_unknown(format!(
            "the repository '{}' does not exist",
            r.name
        )),
        PutError::Invalid(message) => OciError::manifest_invalid(message),
        PutError::BlobsUnknown(missing) | PutError::ManifestsUnknown(missing) => {
            OciError::manifest_blob_unknown(format!(
                "the manifest names {} not in repository '{}': {}",
                if missing.len() == 1 { "a blob" } else { "blobs" },
                r.name,
                missing.join(", ")
            ))
            .with_detail(json!({ "digest": missing[0] }))
        }
        PutError::DigestMismatch { given, computed } => OciError::digest_invalid(format!(
            "the manifest's digest is {computed}, not {given}"
        )),
        PutError::TagImmutable { tag } => OciError::tag_invalid(format!(
            "the image tag '{tag}' already exists in the '{}' repository and cannot be overwritten because the repository is immutable",
            r.name
        )),
        PutError::Store(e) => e.into(),
    })?;
    let mut headers = vec![
        (
            "location",
            format!("/v2/{}/manifests/{}", r.name, outcome.digest),
        ),
        ("docker-content-digest", outcome.digest),
        ("content-length", "0".to_string()),
    ];
    // Tells the client this registry keeps the referrers of the subject itself (OCI 1.1).
    if let Some(subject) = outcome.subject {
        headers.push(("oci-subject", subject));
    }
    Ok(respond(StatusCode::CREATED, headers, Body::empty()))
}

pub async fn delete(r: &Req<'_>, reference: &str) -> Result<Response, OciError> {
    let (region, name) = (r.region.as_str(), r.name.as_str());
    let deleted = r
        .app
        .db
        .transact(|db| {
            if images::is_digest_reference(reference) {
                return Ok(match images::resolve(db, region, name, reference) {
                    Some(image) => (
                        images::plan_delete_image(db, region, name, &image, Writes::new()),
                        true,
                    ),
                    None => (Writes::new(), false),
                });
            }
            let key = keys::image_tag(region, name, reference);
            Ok(match db.get::<ImageTag>(&key) {
                Some(tag) => (Writes::new().expect_unchanged(&tag).delete(&key), true),
                None => (Writes::new(), false),
            })
        })
        .await?;
    if !deleted {
        return Err(unknown(r, reference));
    }
    Ok(respond(StatusCode::ACCEPTED, Vec::new(), Body::empty()))
}

pub fn tags_list(r: &Req<'_>, uri: &axum::http::Uri) -> Result<Response, OciError> {
    let n = match query(uri, "n") {
        None => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            OciError::pagination_number_invalid(format!("n '{n}' is not a number"))
        })?),
    };
    let last = query(uri, "last");
    let prefix = keys::image_tags(&r.region, &r.name);
    let after = last.as_ref().map(|l| format!("{prefix}{l}"));
    let limit = n.unwrap_or(usize::MAX);
    let mut tags = Vec::new();
    let mut more = false;
    r.app
        .db
        .scan_after::<ImageTag>(&prefix, after.as_deref(), |key, _| {
            if tags.len() == limit {
                more = true;
                return false;
            }
            tags.push(key[prefix.len()..].to_string());
            true
        });
    let mut headers = vec![("content-type", "application/json".to_string())];
    if more && let Some(last) = tags.last() {
        headers.push((
            "link",
            format!(
                "</v2/{}/tags/list?n={limit}&last={last}>; rel=\"next\"",
                r.name
            ),
        ));
    }
    let body = json!({ "name": r.name, "tags": tags }).to_string();
    Ok(respond(StatusCode::OK, headers, Body::from(body)))
}
