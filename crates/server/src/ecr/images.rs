//! DescribeImages, ListImages, BatchGetImage, BatchDeleteImage, PutImage.

use super::Call;
use crate::App;
use crate::db::{Db, Versioned, Writes};
use crate::ecs::paging::{after_key, page_size, paginate};
use crate::records::keys;
use crate::registry::images::{self, Put, PutError, tags_by_digest};
use crate::registry::meta::{ImageRecord, ImageTag, RepositoryRecord};
use berth_api::ApiError;
use berth_api::ecr::failure_codes::*;
use berth_api::ecr::*;
use std::collections::BTreeSet;

fn repository(db: &Db, c: &Call, registry_id: Option<&str>, name: &str) -> Result<(), ApiError> {
    c.registry(registry_id)?;
    validate_repository_name("repositoryName", name)?;
    db.get::<RepositoryRecord>(&keys::repository(&c.ctx.region, name))
        .map(|_| ())
        .ok_or_else(|| c.repository_not_found(name))
}

fn failure(id: &ImageIdentifier, code: &'static str, reason: impl Into<String>) -> ImageFailure {
    ImageFailure {
        image_id: id.clone(),
        failure_code: code,
        failure_reason: reason.into(),
    }
}

/// The image an identifier names, or why none.
fn lookup(
    db: &Db,
    region: &str,
    repo: &str,
    id: &ImageIdentifier,
) -> Result<Versioned<ImageRecord>, ImageFailure> {
    if let Some(digest) = &id.image_digest
        && !is_valid_digest(digest)
    {
        return Err(failure(
            id,
            INVALID_IMAGE_DIGEST,
            format!("Invalid request parameters: image digest '{digest}' is not a sha256 digest"),
        ));
    }
    if let Some(tag) = &id.image_tag
        && !is_valid_image_tag(tag)
    {
        return Err(failure(
            id,
            INVALID_IMAGE_TAG,
            format!("Invalid request parameters: '{tag}' is not a valid image tag"),
        ));
    }
    let not_found = || failure(id, IMAGE_NOT_FOUND, "Requested image not found");
    let digest = match (&id.image_tag, &id.image_digest) {
        (None, None) => {
            return Err(failure(
                id,
                MISSING_DIGEST_AND_TAG,
                "Invalid request parameters: both tag and digest cannot be null",
            ));
        }
        (Some(tag), given) => {
            let tagged = db
                .get::<ImageTag>(&keys::image_tag(region, repo, tag))
                .ok_or_else(not_found)?
                .value
                .digest;
            if given.as_ref().is_some_and(|d| *d != tagged) {
                return Err(failure(
                    id,
                    IMAGE_TAG_DOES_NOT_MATCH_DIGEST,
                    "Invalid request parameters: given tag and digest do not match",
                ));
            }
            tagged
        }
        (None, Some(digest)) => digest.clone(),
    };
    db.get::<ImageRecord>(&keys::image(region, repo, &digest))
        .ok_or_else(not_found)
}

fn wanted(filter: Option<&ImageFilter>, tagged: bool) -> bool {
    match filter.and_then(|f| f.tag_status) {
        Some(TagStatus::Tagged) => tagged,
        Some(TagStatus::Untagged) => !tagged,
        Some(TagStatus::Any) | None => true,
    }
}

fn page_len(max_results: Option<i32>) -> Result<usize, ApiError> {
    match max_results {
        None => Ok(100),
        n => page_size(n, 1000),
    }
}

pub async fn describe(
    app: App,
    c: Call,
    input: DescribeImagesRequest,
) -> Result<DescribeImagesResponse, ApiError> {
    let (region, repo) = (c.ctx.region.as_str(), input.repository_name.as_str());
    repository(&app.db, &c, input.registry_id.as_deref(), repo)?;
    let tags = tags_by_digest(&app.db, region, repo);
    let detail = |image: &ImageRecord| ImageDetail {
        registry_id: c.ctx.account.clone(),
        repository_name: repo.to_string(),
        image_digest: image.digest.clone(),
        image_tags: tags.get(&image.digest).cloned(),
        image_size_in_bytes: image.size,
        image_pushed_at: image.pushed_at,
        image_manifest_media_type: image.media_type.clone(),
        artifact_media_type: image.artifact_media_type.clone(),
        image_status: "ACTIVE".into(),
    };
    if let Some(ids) = &input.image_ids {
        if input.max_results.is_some() || input.next_token.is_some() {
            return Err(ApiError::invalid_parameter(
                "maxResults and nextToken cannot be used with imageIds",
            ));
        }
        let mut seen = BTreeSet::new();
        let mut image_details = Vec::new();
        for id in ids {
            let image = lookup(&app.db, region, repo, id).map_err(|f| {
                ApiError::image_not_found(format!(
                    "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{repo}' in the registry with id '{}' ({})",
                    id.image_digest.as_deref().unwrap_or("null"),
                    id.image_tag.as_deref().unwrap_or("null"),
                    c.ctx.account,
                    f.failure_reason
                ))
            })?;
            if seen.insert(image.value.digest.clone()) {
                image_details.push(detail(&image.value));
            }
        }
        return Ok(DescribeImagesResponse {
            image_details,
            next_token: None,
        });
    }
    let size = page_len(input.max_results)?;
    let after = after_key(input.next_token.as_deref())?;
    let all = app
        .db
        .list::<ImageRecord>(&keys::images(region, repo))
        .into_iter()
        .filter(|i| wanted(input.filter.as_ref(), tags.contains_key(&i.value.digest)))
        .map(|i| (i.key, i.value));
    let page = paginate(all, after.as_deref(), size);
    Ok(DescribeImagesResponse {
        image_details: page.items.iter().map(detail).collect(),
        next_token: page.next_token,
    })
}

pub async fn list(
    app: App,
    c: Call,
    input: ListImagesRequest,
) -> Result<ListImagesResponse, ApiError> {
    let (region, repo) = (c.ctx.region.as_str(), input.repository_name.as_str());
    repository(&app.db, &c, input.registry_id.as_deref(), repo)?;
    let size = page_len(input.max_results)?;
    let after = after_key(input.next_token.as_deref())?;
    let tags = tags_by_digest(&app.db, region, repo);
    let mut all = Vec::new();
    for image in app.db.list::<ImageRecord>(&keys::images(region, repo)) {
        let digest = image.value.digest;
        match tags.get(&digest) {
            Some(names) if wanted(input.filter.as_ref(), true) => {
                for tag in names {
                    let id = ImageIdentifier {
                        image_digest: Some(digest.clone()),
                        image_tag: Some(tag.clone()),
                    };
                    all.push((format!("{}/{tag}", image.key), id));
                }
            }
            None if wanted(input.filter.as_ref(), false) => {
                let id = ImageIdentifier {
                    image_digest: Some(digest),
                    image_tag: None,
                };
                all.push((image.key, id));
            }
            _ => {}
        }
    }
    let page = paginate(all, after.as_deref(), size);
    Ok(ListImagesResponse {
        image_ids: page.items,
        next_token: page.next_token,
    })
}

fn check_batch(ids: &[ImageIdentifier]) -> Result<(), ApiError> {
    if ids.is_empty() || ids.len() > 100 {
        return Err(ApiError::invalid_parameter(format!(
            "imageIds: {} given, 1 to 100 are allowed",
            ids.len()
        )));
    }
    Ok(())
}

pub async fn batch_get(
    app: App,
    c: Call,
    input: BatchGetImageRequest,
) -> Result<BatchGetImageResponse, ApiError> {
    let (region, repo) = (c.ctx.region.as_str(), input.repository_name.as_str());
    repository(&app.db, &c, input.registry_id.as_deref(), repo)?;
    check_batch(&input.image_ids)?;
    let mut images = Vec::new();
    let mut failures = Vec::new();
    for id in &input.image_ids {
        match lookup(&app.db, region, repo, id) {
            Ok(image) => images.push(Image {
                registry_id: c.ctx.account.clone(),
                repository_name: repo.to_string(),
                image_id: ImageIdentifier {
                    image_digest: Some(image.value.digest),
                    image_tag: id.image_tag.clone(),
                },
                image_manifest: image.value.manifest,
                image_manifest_media_type: image.value.media_type,
            }),
            Err(f) => failures.push(f),
        }
    }
    Ok(BatchGetImageResponse { images, failures })
}

pub async fn batch_delete(
    app: App,
    c: Call,
    input: BatchDeleteImageRequest,
) -> Result<BatchDeleteImageResponse, ApiError> {
    let (region, repo) = (c.ctx.region.as_str(), input.repository_name.as_str());
    repository(&app.db, &c, input.registry_id.as_deref(), repo)?;
    check_batch(&input.image_ids)?;
    app.db
        .transact(|db| {
            let mut writes = Writes::new();
            let mut gone: BTreeSet<String> = BTreeSet::new();
            let mut image_ids = Vec::new();
            let mut failures = Vec::new();
            let tags = tags_by_digest(db, region, repo);
            for id in &input.image_ids {
                let image = match lookup(db, region, repo, id) {
                    Ok(image) if !gone.contains(&image.key) => image,
                    Ok(_) => {
                        failures.push(failure(id, IMAGE_NOT_FOUND, "Requested image not found"));
                        continue;
                    }
                    Err(f) => {
                        failures.push(f);
                        continue;
                    }
                };
                let digest = image.value.digest.clone();
                match &id.image_tag {
                    Some(tag) => {
                        let key = keys::image_tag(region, repo, tag);
                        if !gone.insert(key.clone()) {
                            failures.push(failure(
                                id,
                                IMAGE_NOT_FOUND,
                                "Requested image not found",
                            ));
                            continue;
                        }
                        writes = writes.delete(&key);
                        // Untagging an image's last tag deletes the image, as in ECR.
                        let others_left = tags.get(&digest).is_some_and(|names| {
                            names
                                .iter()
                                .any(|n| !gone.contains(&keys::image_tag(region, repo, n)))
                        });
                        if !others_left {
                            gone.insert(image.key.clone());
                            writes = images::plan_delete_image(db, region, repo, &image, writes);
                        }
                    }
                    None => {
                        for name in tags.get(&digest).into_iter().flatten() {
                            gone.insert(keys::image_tag(region, repo, name));
                        }
                        gone.insert(image.key.clone());
                        writes = images::plan_delete_image(db, region, repo, &image, writes);
                    }
                }
                image_ids.push(ImageIdentifier {
                    image_digest: Some(digest),
                    image_tag: id.image_tag.clone(),
                });
            }
            Ok((
                writes,
                BatchDeleteImageResponse {
                    image_ids,
                    failures,
                },
            ))
        })
        .await
}

pub async fn put(app: App, c: Call, input: PutImageRequest) -> Result<PutImageResponse, ApiError> {
    let (region, repo) = (c.ctx.region.as_str(), input.repository_name.as_str());
    repository(&app.db, &c, input.registry_id.as_deref(), repo)?;
    if let Some(tag) = &input.image_tag
        && !is_valid_image_tag(tag)
    {
        return Err(ApiError::invalid_parameter(format!(
            "imageTag: '{tag}' is not a valid image tag"
        )));
    }
    if let Some(digest) = &input.image_digest
        && !is_valid_digest(digest)
    {
        return Err(ApiError::invalid_parameter(format!(
            "imageDigest: '{digest}' is not a sha256 digest"
        )));
    }
    let account = &c.ctx.account;
    let outcome = images::put(
        &app.db,
        Put {
            region,
            repository: repo,
            tag: input.image_tag.as_deref(),
            digest: input.image_digest.as_deref(),
            body: input.image_manifest.as_bytes(),
            content_type: input.image_manifest_media_type.as_deref(),
            now: c.ctx.now,
        },
    )
    .await
    .map_err(|e| match e {
        PutError::RepositoryUnknown => c.repository_not_found(repo),
        PutError::Invalid(message) => {
            ApiError::invalid_parameter(format!("imageManifest: {message}"))
        }
        PutError::BlobsUnknown(missing) => ApiError::layers_not_found(format!(
            "Layers with digests '{missing:?}' required for pushing image into repository with name '{repo}' in registry with id '{account}' do not exist"
        )),
        PutError::ManifestsUnknown(missing) => ApiError::referenced_images_not_found(format!(
            "Images with digests '{missing:?}' referenced by the manifest list do not exist in repository '{repo}'"
        )),
        PutError::DigestMismatch { given, computed } => {
            ApiError::image_digest_does_not_match(format!(
                "imageDigest: the manifest's digest is {computed}, not {given}"
            ))
        }
        PutError::TagImmutable { tag } => ApiError::image_tag_already_exists(format!(
            "The image tag '{tag}' already exists in the '{repo}' repository and cannot be overwritten because the repository is immutable."
        )),
        PutError::Store(e) => e,
    })?;
    if outcome.unchanged {
        return Err(ApiError::image_already_exists(format!(
            "Image with digest '{}' and tag '{}' already exists in the repository with name '{repo}' in registry with id '{account}'",
            outcome.digest,
            input.image_tag.as_deref().unwrap_or("null")
        )));
    }
    Ok(PutImageResponse {
        image: Image {
            registry_id: account.clone(),
            repository_name: repo.to_string(),
            image_id: ImageIdentifier {
                image_digest: Some(outcome.digest),
                image_tag: input.image_tag.clone(),
            },
            image_manifest: input.image_manifest,
            image_manifest_media_type: outcome.media_type,
        },
    })
}
