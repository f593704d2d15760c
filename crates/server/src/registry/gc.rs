//! Garbage collection of the registry ([`collect_garbage`], run by the background sweep
//! after the lifecycle policies): abandoned uploads, links no manifest needs, and blob files
//! no repository links.
//!
//! 1. An upload session with no activity (no bytes staged, no start) for
//!    `upload_idle` is removed with its staged bytes; staged bytes no session owns (an
//!    interrupted monolithic push) go once they are as old.
//! 2. A repository's link to a blob that none of its manifests names is removed once it is
//!    older than `blob_grace` (a push uploads its layers first and its manifest last).
//! 3. A blob file that no link of any repository names is removed once it has not been
//!    committed for `blob_grace`.
//!
//! Why this never removes a blob a push is about to use — mark and sweep with links as the
//! marks, and a grace period on both:
//! - A manifest PUT names blobs through links, and compares their revisions in the same
//!   applier that deletes links (step 2 compares them too, and re-reads the repository's
//!   manifests in its plan), so either the manifest sees the link and the link stays, or the
//!   link is gone first and the manifest is refused as naming an unknown blob.
//! - A link is written only after its blob was committed, and a commit marks the blob fresh
//!   under the same lock with which [`super::blobs::BlobStore::remove_idle`] checks
//!   freshness and removes, so a blob committed since the cutoff is never removed even
//!   though its link is not written yet (the link follows within the grace period).
//! - A cross-repository mount writes its link only while the link it copies still stands,
//!   so the blob was linked when step 3 listed the links.
//!
//! With several servers on one store a manifest put on another server could still meet a
//! link removed in the same instant; the grace period (a link unreferenced for an hour)
//! makes that a client's retry, never a served manifest with a missing blob.

use super::images;
use super::meta::{BlobLink, ImageRecord, RepositoryRecord, UploadSession};
use crate::App;
use crate::config::RegistrySweep;
use crate::db::{Db, Writes};
use crate::records::keys;
use berth_api::ApiError;
use berth_model::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What one collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Upload sessions abandoned, with their staged bytes.
    pub uploads: usize,
    /// Staged bytes no session owned.
    pub staged: usize,
    /// Links of repositories to blobs none of their manifests names.
    pub links: usize,
    /// Blob files no repository linked.
    pub blobs: usize,
}

impl GcReport {
    pub fn is_empty(&self) -> bool {
        *self == GcReport::default()
    }
}

fn before(now: Timestamp, age: Duration) -> Timestamp {
    now.plus_millis(-i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

fn blob_error(e: super::blobs::BlobError) -> ApiError {
    ApiError::server(e.to_string())
}

/// The last segment of a key: an upload id, or a link's digest.
fn last_segment(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// The blobs the manifests of a repository name; `None` if a stored manifest does not parse
/// (then none of the repository's links may be judged unused).
fn referenced(db: &Db, region: &str, repository: &str) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for image in db.list::<ImageRecord>(&keys::images(region, repository)) {
        let image = image.value;
        let parsed = images::parse(image.manifest.as_bytes(), Some(&image.media_type)).ok()?;
        out.extend(parsed.blobs);
    }
    Some(out)
}

/// Removes abandoned uploads, unused links and unlinked blobs as of `now`.
pub async fn collect_garbage(
    app: &App,
    now: Timestamp,
    sweep: &RegistrySweep,
) -> Result<GcReport, ApiError> {
    let mut report = GcReport::default();

    // 1. Uploads.
    let idle_since = before(now, sweep.upload_idle);
    let staged: BTreeMap<String, Timestamp> = app
        .blobs
        .staged_uploads()
        .await
        .map_err(blob_error)?
        .into_iter()
        .map(|s| (s.name, s.modified))
        .collect();
    let mut sessions = Vec::new();
    app.db
        .scan::<UploadSession>(&keys::all_ecr(), |key, session| {
            sessions.push((key.to_string(), session.started_at));
            true
        });
    let session_ids: BTreeSet<String> = sessions
        .iter()
        .map(|(key, _)| last_segment(key).to_string())
        .collect();
    for (key, started_at) in &sessions {
        let id = last_segment(key);
        let last_activity = staged
            .get(id)
            .map_or(*started_at, |modified| (*modified).max(*started_at));
        if last_activity >= idle_since {
            continue;
        }
        let removed = app
            .db
            .transact(|db| {
                Ok(match db.get::<UploadSession>(key) {
                    Some(session) if session.value.started_at == *started_at => {
                        (Writes::new().expect_unchanged(&session).delete(key), true)
                    }
                    _ => (Writes::new(), false),
                })
            })
            .await?;
        if removed {
            app.blobs.abort(id).await.map_err(blob_error)?;
            report.uploads += 1;
        }
    }
    for (id, modified) in &staged {
        if !session_ids.contains(id) && *modified < idle_since {
            app.blobs.abort(id).await.map_err(blob_error)?;
            report.staged += 1;
        }
    }

    // 2. Links no manifest of their repository names.
    let grace_since = before(now, sweep.blob_grace);
    let mut repositories = Vec::new();
    app.db
        .scan::<RepositoryRecord>(&keys::all_ecr(), |key, repository| {
            // `/ecr/{region}/repositories/{repo}`
            if let Some(region) = key.split('/').nth(2) {
                repositories.push((region.to_string(), repository.name.clone()));
            }
            true
        });
    for (region, name) in &repositories {
        report.links += app
            .db
            .transact(|db| {
                let old: Vec<_> = db
                    .list::<BlobLink>(&keys::blob_links(region, name))
                    .into_iter()
                    .filter(|link| link.value.linked_at < grace_since)
                    .collect();
                if old.is_empty() {
                    return Ok((Writes::new(), 0));
                }
                let Some(referenced) = referenced(db, region, name) else {
                    return Ok((Writes::new(), 0));
                };
                let mut writes = Writes::new();
                let mut removed = 0;
                for link in old {
                    if !referenced.contains(last_segment(&link.key)) {
                        writes = writes.expect_unchanged(&link).delete(&link.key);
                        removed += 1;
                    }
                }
                Ok((writes, removed))
            })
            .await?;
    }

    // 3. Blob files no link names.
    let mut linked = BTreeSet::new();
    app.db.scan::<BlobLink>(&keys::all_ecr(), |key, _| {
        linked.insert(last_segment(key).to_string());
        true
    });
    for blob in app.blobs.blobs().await.map_err(blob_error)? {
        if blob.modified < grace_since
            && !linked.contains(&blob.name)
            && app
                .blobs
                .remove_idle(&blob.name, grace_since)
                .await
                .map_err(blob_error)?
        {
            report.blobs += 1;
        }
    }
    Ok(report)
}
