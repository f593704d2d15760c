//! Pushing blobs: `POST /v2/<name>/blobs/uploads/` (monolithic with `?digest=`, a session, or a
//! cross-repository mount with `?mount=&from=`), `PATCH` chunks, `PUT ?digest=` to finish,
//! `GET` the progress, `DELETE` to cancel. Bytes are staged in the blob store and become a blob
//! only once their digest checks out; the repository's link to the blob is written after.

use super::blobs::ByteStream;
use super::errors::OciError;
use super::meta::{BlobLink, RepositoryRecord, UploadSession};
use super::{Req, query, respond};
use crate::db::Writes;
use crate::records::keys;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_api::ecr::{is_valid_digest, is_valid_repository_name};
use futures::StreamExt;
use serde_json::json;

fn stream(body: Body) -> ByteStream {
    Box::pin(
        body.into_data_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other)),
    )
}

/// `Range` of an upload: the bytes received so far, `0-0` when none.
fn received(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn location(r: &Req<'_>, id: &str) -> String {
    format!("/v2/{}/blobs/uploads/{id}", r.name)
}

fn progress(r: &Req<'_>, status: StatusCode, id: &str, size: u64) -> Response {
    respond(
        status,
        vec![
            ("location", location(r, id)),
            ("range", received(size)),
            ("docker-upload-uuid", id.to_string()),
            ("content-length", "0".to_string()),
        ],
        Body::empty(),
    )
}

fn created(r: &Req<'_>, digest: &str) -> Response {
    respond(
        StatusCode::CREATED,
        vec![
            ("location", format!("/v2/{}/blobs/{digest}", r.name)),
            ("docker-content-digest", digest.to_string()),
            ("content-length", "0".to_string()),
        ],
        Body::empty(),
    )
}

fn checked_digest(digest: Option<String>) -> Result<String, OciError> {
    let digest = digest.ok_or_else(|| {
        OciError::digest_invalid("the digest query parameter is required to finish an upload")
    })?;
    if is_valid_digest(&digest) {
        Ok(digest)
    } else {
        Err(
            OciError::digest_invalid(format!("'{digest}' is not a sha256 digest"))
                .with_detail(json!({ "digest": digest })),
        )
    }
}

/// What [`link`] did.
#[derive(Debug, PartialEq, Eq)]
enum Linked {
    Done,
    /// The repository a mount takes the blob from no longer holds it.
    SourceGone,
}

/// Links `digest` (of `size` bytes) into the repository, ending `session` if given. A mount
/// names the link it copies (`source`): the copy is written only while that link stands, so
/// garbage collection, which removes a blob only once no link names it, never removes a
/// blob a mount is linking.
async fn link(
    r: &Req<'_>,
    digest: &str,
    size: u64,
    session: Option<&str>,
    source: Option<&str>,
) -> Result<Linked, OciError> {
    let repo_key = keys::repository(&r.region, &r.name);
    let link_key = keys::blob_link(&r.region, &r.name, digest);
    let linked = r
        .app
        .db
        .transact(|db| {
            let Some(repo) = db.get::<RepositoryRecord>(&repo_key) else {
                return Ok((Writes::new(), None));
            };
            let mut writes = Writes::new().expect_unchanged(&repo);
            if let Some(source) = source {
                match db.get::<BlobLink>(source) {
                    Some(link) => writes = writes.expect_unchanged(&link),
                    None => return Ok((Writes::new(), Some(Linked::SourceGone))),
                }
            }
            if let Some(id) = session {
                writes = writes.delete(&keys::upload(&r.region, id));
            }
            match db.get::<BlobLink>(&link_key) {
                Some(existing) => writes = writes.expect_unchanged(&existing),
                None => {
                    writes = writes.expect(&link_key, 0).put(
                        &link_key,
                        BlobLink {
                            size,
                            linked_at: r.now,
                        },
                    )
                }
            }
            Ok((writes, Some(Linked::Done)))
        })
        .await?;
    linked.ok_or_else(|| {
        OciError::name_unknown(format!(
            "the repository '{}' was deleted during the upload",
            r.name
        ))
    })
}

/// Verifies and stores the staged bytes of `id` as `digest`, then links the blob.
async fn complete(
    r: &Req<'_>,
    id: &str,
    digest: &str,
    session: Option<&str>,
) -> Result<Response, OciError> {
    let size = match r.app.blobs.commit(id, digest).await {
        Ok(size) => size,
        Err(e) => {
            if let Some(id) = session {
                let key = keys::upload(&r.region, id);
                r.app.db.commit(Writes::new().delete(&key)).await?;
            }
            return Err(OciError::from(e).with_detail(json!({ "digest": digest })));
        }
    };
    link(r, digest, size, session, None).await?;
    Ok(created(r, digest))
}

/// Links a blob another repository holds; `None` when it cannot, so an upload starts instead.
async fn mount(r: &Req<'_>, digest: &str, from: &str) -> Result<Option<Response>, OciError> {
    if !is_valid_digest(digest) || !is_valid_repository_name(from) {
        return Ok(None);
    }
    let source_key = keys::blob_link(&r.region, from, digest);
    let Some(source) = r.app.db.get::<BlobLink>(&source_key) else {
        return Ok(None);
    };
    if r.app.blobs.size(digest).await?.is_none() {
        return Ok(None);
    }
    match link(r, digest, source.value.size, None, Some(&source_key)).await? {
        Linked::Done => Ok(Some(created(r, digest))),
        Linked::SourceGone => Ok(None),
    }
}

pub async fn start(r: &Req<'_>, uri: &axum::http::Uri, body: Body) -> Result<Response, OciError> {
    if let (Some(digest), Some(from)) = (query(uri, "mount"), query(uri, "from"))
        && let Some(done) = mount(r, &digest, &from).await?
    {
        return Ok(done);
    }
    let id = crate::clock::new_id();
    if let Some(digest) = query(uri, "digest") {
        let digest = checked_digest(Some(digest))?;
        if let Err(e) = r.app.blobs.append(&id, stream(body)).await {
            r.app.blobs.abort(&id).await?;
            return Err(e.into());
        }
        return complete(r, &id, &digest, None).await;
    }
    let key = keys::upload(&r.region, &id);
    r.app
        .db
        .commit(Writes::new().expect(&key, 0).put(
            &key,
            UploadSession {
                repository: r.name.clone(),
                started_at: r.now,
            },
        ))
        .await?;
    Ok(progress(r, StatusCode::ACCEPTED, &id, 0))
}

/// The session `id` of this repository, or BLOB_UPLOAD_UNKNOWN.
fn session(r: &Req<'_>, id: &str) -> Result<(), OciError> {
    match r.app.db.get::<UploadSession>(&keys::upload(&r.region, id)) {
        Some(s) if s.value.repository == r.name => Ok(()),
        _ => Err(OciError::blob_upload_unknown(format!(
            "upload '{id}' is not in progress in repository '{}'",
            r.name
        ))
        .with_detail(json!({ "uuid": id }))),
    }
}

pub async fn patch(
    r: &Req<'_>,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, OciError> {
    session(r, id)?;
    let staged = r.app.blobs.staged(id).await?;
    if let Some(range) = headers.get("content-range").and_then(|v| v.to_str().ok()) {
        let start = range
            .trim()
            .trim_start_matches("bytes ")
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if start != Some(staged) {
            return Err(OciError::blob_upload_invalid(format!(
                "Content-Range '{range}' does not continue the {staged} bytes received"
            ))
            .unsatisfiable(staged));
        }
    }
    let size = r.app.blobs.append(id, stream(body)).await?;
    Ok(progress(r, StatusCode::ACCEPTED, id, size))
}

pub async fn finish(
    r: &Req<'_>,
    id: &str,
    uri: &axum::http::Uri,
    body: Body,
) -> Result<Response, OciError> {
    session(r, id)?;
    let digest = checked_digest(query(uri, "digest"))?;
    r.app.blobs.append(id, stream(body)).await?;
    complete(r, id, &digest, Some(id)).await
}

pub async fn status(r: &Req<'_>, id: &str) -> Result<Response, OciError> {
    session(r, id)?;
    let size = r.app.blobs.staged(id).await?;
    Ok(progress(r, StatusCode::NO_CONTENT, id, size))
}

pub async fn cancel(r: &Req<'_>, id: &str) -> Result<Response, OciError> {
    session(r, id)?;
    r.app.blobs.abort(id).await?;
    r.app
        .db
        .commit(Writes::new().delete(&keys::upload(&r.region, id)))
        .await?;
    Ok(respond(StatusCode::NO_CONTENT, Vec::new(), Body::empty()))
}
