//! Blob reads and deletes: `GET`/`HEAD /v2/<name>/blobs/<digest>` (with `Range`) and
//! `DELETE`. A repository serves only the blobs it holds (pushed to it or mounted into it).

use super::errors::OciError;
use super::meta::BlobLink;
use super::{Req, respond};
use crate::db::Writes;
use crate::records::keys;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use berth_api::ecr::is_valid_digest;
use serde_json::json;

fn unknown(r: &Req<'_>, digest: &str) -> OciError {
    OciError::blob_unknown(format!("blob {digest} is not in repository '{}'", r.name))
        .with_detail(json!({ "digest": digest }))
}

fn checked(digest: &str) -> Result<(), OciError> {
    if is_valid_digest(digest) {
        Ok(())
    } else {
        Err(
            OciError::digest_invalid(format!("'{digest}' is not a sha256 digest"))
                .with_detail(json!({ "digest": digest })),
        )
    }
}

/// The inclusive byte range a `Range: bytes=…` header asks for, within `size` bytes.
fn byte_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 {
                return None;
            }
            (size.saturating_sub(n), size.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, size.checked_sub(1)?),
        (start, end) => {
            let end: u64 = end.parse().ok()?;
            (start.parse().ok()?, end.min(size.checked_sub(1)?))
        }
    };
    (start <= end && end < size).then_some((start, end))
}

pub async fn get(
    r: &Req<'_>,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, OciError> {
    checked(digest)?;
    if r.app
        .db
        .get::<BlobLink>(&keys::blob_link(&r.region, &r.name, digest))
        .is_none()
    {
        return Err(unknown(r, digest));
    }
    let size = r
        .app
        .blobs
        .size(digest)
        .await?
        .ok_or_else(|| unknown(r, digest))?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, len, mut extra) = match range {
        None => (StatusCode::OK, 0, size, Vec::new()),
        Some(value) => {
            let (start, end) = byte_range(value, size).ok_or_else(|| {
                OciError::blob_unknown(format!(
                    "range '{value}' is outside blob {digest} of {size} bytes"
                ))
                .unsatisfiable(size)
            })?;
            (
                StatusCode::PARTIAL_CONTENT,
                start,
                end - start + 1,
                vec![("content-range", format!("bytes {start}-{end}/{size}"))],
            )
        }
    };
    extra.extend([
        ("content-type", "application/octet-stream".to_string()),
        ("content-length", len.to_string()),
        ("docker-content-digest", digest.to_string()),
        ("accept-ranges", "bytes".to_string()),
        ("etag", format!("\"{digest}\"")),
    ]);
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(r.app.blobs.read(digest, start, len).await?)
    };
    Ok(respond(status, extra, body))
}

pub async fn delete(r: &Req<'_>, digest: &str) -> Result<Response, OciError> {
    checked(digest)?;
    let key = keys::blob_link(&r.region, &r.name, digest);
    let removed = r
        .app
        .db
        .transact(|db| {
            Ok(match db.get::<BlobLink>(&key) {
                Some(link) => (Writes::new().expect_unchanged(&link).delete(&key), true),
                None => (Writes::new(), false),
            })
        })
        .await?;
    if !removed {
        return Err(unknown(r, digest));
    }
    Ok(respond(StatusCode::ACCEPTED, Vec::new(), Body::empty()))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges_stay_inside_the_blob() {
        assert_eq!(byte_range("bytes=0-3", 10), Some((0, 3)));
        assert_eq!(byte_range("bytes=4-", 10), Some((4, 9)));
        assert_eq!(byte_range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(byte_range("bytes=5-100", 10), Some((5, 9)));
        assert_eq!(byte_range("bytes=10-", 10), None);
        assert_eq!(byte_range("bytes=3-2", 10), None);
        assert_eq!(byte_range("bytes=0-1,3-4", 10), None);
        assert_eq!(byte_range("items=0-1", 10), None);
        assert_eq!(byte_range("bytes=0-0", 0), None);
    }
}
