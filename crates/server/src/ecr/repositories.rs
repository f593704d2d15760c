//! CreateRepository, DescribeRepositories, DeleteRepository.

use super::Call;
use crate::App;
use crate::db::{Db, Writes};
use crate::ecs::paging::{after_key, page_size, paginate};
use crate::records::keys;
use crate::registry::meta::{
    BlobLink, ImageRecord, ImageTag, LifecyclePolicyRecord, LifecyclePreviewRecord,
    RepositoryRecord, UploadSession,
};
use berth_api::ApiError;
use berth_api::ecr::*;

const MAX_TAGS: usize = 200;

/// The repository as ECR shows it, its URI on the address the client reached.
pub fn present(c: &Call, record: &RepositoryRecord) -> Repository {
    Repository {
        repository_arn: format!(
            "arn:aws:ecr:{}:{}:repository/{}",
            c.ctx.region, c.ctx.account, record.name
        ),
        registry_id: c.ctx.account.clone(),
        repository_name: record.name.clone(),
        repository_uri: format!("{}/{}", c.origin.host, record.name),
        created_at: record.created_at,
        image_tag_mutability: record.image_tag_mutability,
        image_scanning_configuration: ImageScanningConfiguration {
            scan_on_push: record.scan_on_push,
        },
        encryption_configuration: EncryptionConfiguration {
            encryption_type: "AES256".into(),
            kms_key: None,
        },
    }
}

fn validate_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::too_many_tags(format!(
            "tags: {} tags given, at most {MAX_TAGS} are allowed",
            tags.len()
        )));
    }
    for (i, tag) in tags.iter().enumerate() {
        if tag.key.is_empty() || tag.key.len() > 128 {
            return Err(ApiError::invalid_tag_parameter(format!(
                "tags[{i}].Key must be 1 to 128 characters"
            )));
        }
        if tag.value.len() > 256 {
            return Err(ApiError::invalid_tag_parameter(format!(
                "tags[{i}].Value must be at most 256 characters"
            )));
        }
    }
    Ok(())
}

pub async fn create(
    app: App,
    c: Call,
    input: CreateRepositoryRequest,
) -> Result<RepositoryResponse, ApiError> {
    c.registry(input.registry_id.as_deref())?;
    validate_repository_name("repositoryName", &input.repository_name)?;
    let mutability = input.image_tag_mutability.unwrap_or_default();
    if !matches!(
        mutability,
        ImageTagMutability::Mutable | ImageTagMutability::Immutable
    ) || input.image_tag_mutability_exclusion_filters.is_some()
    {
        return Err(ApiError::invalid_parameter(
            "imageTagMutability: only MUTABLE and IMMUTABLE are supported by Berth (no exclusion filters)",
        ));
    }
    if let Some(encryption) = &input.encryption_configuration
        && encryption.encryption_type != "AES256"
    {
        return Err(ApiError::invalid_parameter(format!(
            "encryptionConfiguration.encryptionType: '{}' is not supported by Berth (only AES256)",
            encryption.encryption_type
        )));
    }
    let tags = input.tags.unwrap_or_default();
    validate_tags(&tags)?;
    let key = keys::repository(&c.ctx.region, &input.repository_name);
    let record = RepositoryRecord {
        name: input.repository_name.clone(),
        created_at: c.ctx.now,
        image_tag_mutability: mutability,
        scan_on_push: input
            .image_scanning_configuration
            .is_some_and(|s| s.scan_on_push),
        tags,
    };
    let created = app
        .db
        .transact(|db| {
            if db.get::<RepositoryRecord>(&key).is_some() {
                return Ok((Writes::new(), false));
            }
            Ok((
                Writes::new().expect(&key, 0).put(&key, record.clone()),
                true,
            ))
        })
        .await?;
    if !created {
        return Err(ApiError::repository_already_exists(format!(
            "The repository with name '{}' already exists in the registry with id '{}'",
            input.repository_name, c.ctx.account
        )));
    }
    Ok(RepositoryResponse {
        repository: present(&c, &record),
    })
}

pub async fn describe(
    app: App,
    c: Call,
    input: DescribeRepositoriesRequest,
) -> Result<DescribeRepositoriesResponse, ApiError> {
    c.registry(input.registry_id.as_deref())?;
    if let Some(names) = &input.repository_names {
        if input.max_results.is_some() || input.next_token.is_some() {
            return Err(ApiError::invalid_parameter(
                "maxResults and nextToken cannot be used with repositoryNames",
            ));
        }
        let mut repositories = Vec::new();
        for (i, name) in names.iter().enumerate() {
            validate_repository_name(&format!("repositoryNames[{i}]"), name)?;
            let record = app
                .db
                .get::<RepositoryRecord>(&keys::repository(&c.ctx.region, name))
                .ok_or_else(|| c.repository_not_found(name))?;
            repositories.push(present(&c, &record.value));
        }
        return Ok(DescribeRepositoriesResponse {
            repositories,
            next_token: None,
        });
    }
    let size = match input.max_results {
        None => 100,
        n => page_size(n, 1000)?,
    };
    let after = after_key(input.next_token.as_deref())?;
    let all = app
        .db
        .list::<RepositoryRecord>(&keys::repositories(&c.ctx.region))
        .into_iter()
        .map(|r| (r.key, r.value));
    let page = paginate(all, after.as_deref(), size);
    Ok(DescribeRepositoriesResponse {
        repositories: page.items.iter().map(|r| present(&c, r)).collect(),
        next_token: page.next_token,
    })
}

/// Adds the removal of everything a repository holds to `writes`.
fn plan_empty(db: &Db, region: &str, name: &str, mut writes: Writes) -> Writes {
    for image in db.list::<ImageRecord>(&keys::images(region, name)) {
        writes = writes.expect_unchanged(&image).delete(&image.key);
    }
    for tag in db.list::<ImageTag>(&keys::image_tags(region, name)) {
        writes = writes.expect_unchanged(&tag).delete(&tag.key);
    }
    for link in db.list::<BlobLink>(&keys::blob_links(region, name)) {
        writes = writes.delete(&link.key);
    }
    for upload in db.list::<UploadSession>(&keys::uploads(region)) {
        if upload.value.repository == name {
            writes = writes.delete(&upload.key);
        }
    }
    let policy = keys::lifecycle_policy(region, name);
    if let Some(p) = db.get::<LifecyclePolicyRecord>(&policy) {
        writes = writes.expect_unchanged(&p).delete(&policy);
    }
    let preview = keys::lifecycle_preview(region, name);
    if db.get::<LifecyclePreviewRecord>(&preview).is_some() {
        writes = writes.delete(&preview);
    }
    writes
}

pub async fn delete(
    app: App,
    c: Call,
    input: DeleteRepositoryRequest,
) -> Result<RepositoryResponse, ApiError> {
    c.registry(input.registry_id.as_deref())?;
    validate_repository_name("repositoryName", &input.repository_name)?;
    let region = c.ctx.region.clone();
    let name = input.repository_name.clone();
    let key = keys::repository(&region, &name);
    let force = input.force.unwrap_or(false);
    let deleted = app
        .db
        .transact(|db| {
            let Some(repo) = db.get::<RepositoryRecord>(&key) else {
                return Err(c.repository_not_found(&name));
            };
            let mut has_images = false;
            db.scan::<ImageRecord>(&keys::images(&region, &name), |_, _| {
                has_images = true;
                false
            });
            if has_images && !force {
                return Err(ApiError::repository_not_empty(format!(
                    "The repository with name '{name}' in registry with id '{}' cannot be deleted because it still contains images",
                    c.ctx.account
                )));
            }
            let writes = Writes::new().expect_unchanged(&repo).delete(&key);
            Ok((plan_empty(db, &region, &name, writes), repo.value))
        })
        .await?;
    Ok(RepositoryResponse {
        repository: present(&c, &deleted),
    })
}
