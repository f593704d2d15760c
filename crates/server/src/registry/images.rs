//! Manifests and tags in the store, shared by the OCI endpoints and the ECR API: parsing a
//! pushed manifest, storing it (with every blob and child manifest it names present), resolving
//! a tag or digest, and planning deletions.

use super::meta::{BlobLink, ImageRecord, ImageTag, RepositoryRecord};
use crate::db::{Db, Versioned, Writes};
use crate::records::keys;
use berth_api::ApiError;
use berth_api::ecr::{ImageTagMutability, is_valid_digest};
use berth_model::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Manifests are at most 4 MiB, as ECR's `imageManifest`.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// What a manifest names.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub media_type: String,
    /// Config and layer digests of an image manifest.
    pub blobs: Vec<String>,
    /// Manifest digests of an index / manifest list.
    pub children: Vec<String>,
    pub size: i64,
    pub artifact_media_type: Option<String>,
    /// The manifest digest its `subject` names (it refers to that manifest).
    pub subject: Option<String>,
}

/// `sha256:` of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn descriptor(v: &Value, at: &str) -> Result<(String, i64), String> {
    let digest = v["digest"]
        .as_str()
        .ok_or_else(|| format!("{at}.digest is missing"))?;
    if !is_valid_digest(digest) {
        return Err(format!("{at}.digest '{digest}' is not a sha256 digest"));
    }
    let size = v["size"]
        .as_i64()
        .filter(|s| *s >= 0)
        .ok_or_else(|| format!("{at}.size is missing or negative"))?;
    Ok((digest.to_string(), size))
}

/// Parses a manifest; `content_type` is the media type the client declared, if any.
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Parsed, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    if v["schemaVersion"].as_i64() != Some(2) {
        return Err("schemaVersion must be 2 (schema 1 manifests are not supported)".into());
    }
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let inner = v["mediaType"].as_str();
    let media_type = match (inner, declared) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "the manifest's mediaType '{a}' differs from the declared type '{b}'"
            ));
        }
        (Some(a), _) | (None, Some(a)) => a.to_string(),
        (None, None) if v.get("manifests").is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    let subject = match v.get("subject") {
        None | Some(Value::Null) => None,
        Some(subject) => Some(descriptor(subject, "subject")?.0),
    };
    match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let (config, config_size) = descriptor(&v["config"], "config")?;
            let mut blobs = vec![config];
            let mut size = config_size;
            let layers = v["layers"]
                .as_array()
                .ok_or("layers is missing or not a list")?;
            for (i, layer) in layers.iter().enumerate() {
                let (digest, layer_size) = descriptor(layer, &format!("layers[{i}]"))?;
                size += layer_size;
                // Foreign layers (with urls) are fetched from elsewhere, never pushed here.
                if layer.get("urls").is_none() && !blobs.contains(&digest) {
                    blobs.push(digest);
                }
            }
            Ok(Parsed {
                media_type,
                blobs,
                children: Vec::new(),
                size,
                artifact_media_type: v["config"]["mediaType"].as_str().map(str::to_string),
                subject,
            })
        }
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            let manifests = v["manifests"]
                .as_array()
                .ok_or("manifests is missing or not a list")?;
            let mut children = Vec::new();
            for (i, m) in manifests.iter().enumerate() {
                let (digest, _) = descriptor(m, &format!("manifests[{i}]"))?;
                if !children.contains(&digest) {
                    children.push(digest);
                }
            }
            Ok(Parsed {
                media_type,
                blobs: Vec::new(),
                children,
                size: body.len() as i64,
                artifact_media_type: None,
                subject,
            })
        }
        other => Err(format!("manifest media type '{other}' is not supported")),
    }
}

/// Why a manifest was not stored.
#[derive(Debug)]
pub enum PutError {
    RepositoryUnknown,
    Invalid(String),
    BlobsUnknown(Vec<String>),
    ManifestsUnknown(Vec<String>),
    DigestMismatch { given: String, computed: String },
    TagImmutable { tag: String },
    Store(ApiError),
}

#[derive(Debug, Clone)]
pub struct PutOutcome {
    pub digest: String,
    pub media_type: String,
    /// The manifest was stored and the tag pointed at it before: nothing changed.
    pub unchanged: bool,
    /// The digest the manifest's `subject` names, if it has one.
    pub subject: Option<String>,
}

/// A manifest to store, and under which tag (if any).
pub struct Put<'a> {
    pub region: &'a str,
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    /// The digest the client named; the manifest must hash to it.
    pub digest: Option<&'a str>,
    pub body: &'a [u8],
    pub content_type: Option<&'a str>,
    pub now: Timestamp,
}

/// Stores a manifest once every blob and child manifest it names is in the repository.
pub async fn put(db: &Db, put: Put<'_>) -> Result<PutOutcome, PutError> {
    let text = std::str::from_utf8(put.body)
        .map_err(|_| PutError::Invalid("the manifest is not UTF-8 JSON".into()))?;
    let parsed = parse(put.body, put.content_type).map_err(PutError::Invalid)?;
    let computed = digest_of(put.body);
    if let Some(given) = put.digest
        && given != computed
    {
        return Err(PutError::DigestMismatch {
            given: given.to_string(),
            computed,
        });
    }
    let region = put.region;
    let repository = put.repository;
    db.transact(|db| {
        let refuse = |e| Ok((Writes::new(), Err(e)));
        let Some(repo) = db.get::<RepositoryRecord>(&keys::repository(region, repository)) else {
            return refuse(PutError::RepositoryUnknown);
        };
        let mut writes = Writes::new().expect_unchanged(&repo);
        let mut missing = Vec::new();
        for blob in &parsed.blobs {
            match db.get::<BlobLink>(&keys::blob_link(region, repository, blob)) {
                Some(link) => writes = writes.expect_unchanged(&link),
                None => missing.push(blob.clone()),
            }
        }
        if !missing.is_empty() {
            return refuse(PutError::BlobsUnknown(missing));
        }
        for child in &parsed.children {
            match db.get::<ImageRecord>(&keys::image(region, repository, child)) {
                Some(image) => writes = writes.expect_unchanged(&image),
                None => missing.push(child.clone()),
            }
        }
        if !missing.is_empty() {
            return refuse(PutError::ManifestsUnknown(missing));
        }
        let image_key = keys::image(region, repository, &computed);
        let mut unchanged = true;
        match db.get::<ImageRecord>(&image_key) {
            Some(existing) => writes = writes.expect_unchanged(&existing),
            None => {
                unchanged = false;
                writes = writes.expect(&image_key, 0).put(
                    &image_key,
                    ImageRecord {
                        digest: computed.clone(),
                        media_type: parsed.media_type.clone(),
                        manifest: text.to_string(),
                        artifact_media_type: parsed.artifact_media_type.clone(),
                        size: parsed.size,
                        pushed_at: put.now,
                        subject: parsed.subject.clone(),
                    },
                );
            }
        }
        if let Some(tag) = put.tag {
            let tag_key = keys::image_tag(region, repository, tag);
            let record = ImageTag {
                digest: computed.clone(),
                tagged_at: put.now,
            };
            match db.get::<ImageTag>(&tag_key) {
                Some(current) if current.value.digest == computed => {
                    writes = writes.expect_unchanged(&current);
                }
                Some(_) if repo.value.image_tag_mutability == ImageTagMutability::Immutable => {
                    return refuse(PutError::TagImmutable {
                        tag: tag.to_string(),
                    });
                }
                Some(current) => {
                    unchanged = false;
                    writes = writes.expect_unchanged(&current).put(&tag_key, record);
                }
                None => {
                    unchanged = false;
                    writes = writes.expect(&tag_key, 0).put(&tag_key, record);
                }
            }
        }
        Ok((
            writes,
            Ok(PutOutcome {
                digest: computed.clone(),
                media_type: parsed.media_type.clone(),
                unchanged,
                subject: parsed.subject.clone(),
            }),
        ))
    })
    .await
    .map_err(PutError::Store)?
}

/// A tag or a digest.
pub fn is_digest_reference(reference: &str) -> bool {
    reference.contains(':')
}

/// The image a tag or digest names in a repository.
pub fn resolve(
    db: &Db,
    region: &str,
    repository: &str,
    reference: &str,
) -> Option<Versioned<ImageRecord>> {
    let digest = if is_digest_reference(reference) {
        reference.to_string()
    } else {
        db.get::<ImageTag>(&keys::image_tag(region, repository, reference))?
            .value
            .digest
    };
    db.get::<ImageRecord>(&keys::image(region, repository, &digest))
}

/// The tags of a repository, grouped by the digest they point at.
pub fn tags_by_digest(db: &Db, region: &str, repository: &str) -> BTreeMap<String, Vec<String>> {
    let prefix = keys::image_tags(region, repository);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    db.scan::<ImageTag>(&prefix, |key, tag| {
        let name = &key[prefix.len()..];
        out.entry(tag.digest.clone())
            .or_default()
            .push(name.to_string());
        true
    });
    out
}

/// Adds to `writes` the removal of an image and every tag that points at it.
pub fn plan_delete_image(
    db: &Db,
    region: &str,
    repository: &str,
    image: &Versioned<ImageRecord>,
    mut writes: Writes,
) -> Writes {
    let prefix = keys::image_tags(region, repository);
    for tag in db.list::<ImageTag>(&prefix) {
        if tag.value.digest == image.value.digest {
            writes = writes.expect_unchanged(&tag).delete(&tag.key);
        }
    }
    writes.expect_unchanged(image).delete(&image.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn parses_image_manifests_and_indexes() {
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d('a'), "size": 10},
            "layers": [{"digest": d('b'), "size": 100}, {"digest": d('c'), "size": 5, "urls": ["http://x"]}]
        });
        let p = parse(manifest.to_string().as_bytes(), None).unwrap();
        assert_eq!(p.media_type, DOCKER_MANIFEST);
        assert_eq!(p.blobs, vec![d('a'), d('b')]);
        assert_eq!(p.size, 115);
        assert_eq!(p.subject, None);
        let mut referrer = manifest.clone();
        referrer["subject"] = serde_json::json!({"digest": d('f'), "size": 7});
        let p = parse(referrer.to_string().as_bytes(), None).unwrap();
        assert_eq!(p.subject, Some(d('f')));
        referrer["subject"] = serde_json::json!({"digest": "sha256:nope", "size": 7});
        let e = parse(referrer.to_string().as_bytes(), None).unwrap_err();
        assert!(e.contains("subject.digest"), "{e}");
        let index =
            serde_json::json!({"schemaVersion": 2, "manifests": [{"digest": d('e'), "size": 3}]});
        let p = parse(index.to_string().as_bytes(), Some(OCI_INDEX)).unwrap();
        assert_eq!(
            (p.media_type.as_str(), p.children.clone()),
            (OCI_INDEX, vec![d('e')])
        );
    }

    #[test]
    fn refuses_what_it_cannot_store() {
        let bad = [
            (r#"{"schemaVersion": 1}"#, "schemaVersion"),
            (r#"{"schemaVersion": 2, "layers": []}"#, "config.digest"),
            (
                r#"{"schemaVersion": 2, "mediaType": "x/y"}"#,
                "'x/y' is not supported",
            ),
            ("nope", "not JSON"),
        ];
        for (body, expect) in bad {
            let e = parse(body.as_bytes(), None).unwrap_err();
            assert!(e.contains(expect), "{body}: {e}");
        }
        let e = parse(
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#).as_bytes(),
            Some(DOCKER_MANIFEST),
        )
        .unwrap_err();
        assert!(e.contains("differs"), "{e}");
    }
}
