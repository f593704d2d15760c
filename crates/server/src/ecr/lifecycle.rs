//! PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy, StartLifecyclePolicyPreview,
//! GetLifecyclePolicyPreview. The policy's rules and how they apply are in
//! `crate::registry::lifecycle`; the background sweep applies them. A preview is evaluated
//! when it is started, so it is complete at once.

use super::Call;
use crate::App;
use crate::db::{Db, Writes};
use crate::ecs::paging::{after_key, page_size, paginate};
use crate::records::keys;
use crate::registry::lifecycle::{self, Policy, parse_policy};
use crate::registry::meta::{
    LifecyclePolicyRecord, LifecyclePreviewRecord, PreviewedImage, RepositoryRecord,
};
use berth_api::ApiError;
use berth_api::ecr::*;

/// The repository exists (its name and registry checked first).
fn repository(db: &Db, c: &Call, registry_id: Option<&str>, name: &str) -> Result<(), ApiError> {
    c.registry(registry_id)?;
    validate_repository_name("repositoryName", name)?;
    db.get::<RepositoryRecord>(&keys::repository(&c.ctx.region, name))
        .map(|_| ())
        .ok_or_else(|| c.repository_not_found(name))
}

/// Checks a policy text: its length as the model bounds it, then its rules.
fn checked_policy(text: &str) -> Result<Policy, ApiError> {
    let len = text.chars().count();
    if !LIFECYCLE_POLICY_TEXT_LENGTH.contains(&len) {
        return Err(ApiError::invalid_parameter(format!(
            "lifecyclePolicyText: must be {} to {} characters, got {len}",
            LIFECYCLE_POLICY_TEXT_LENGTH.start(),
            LIFECYCLE_POLICY_TEXT_LENGTH.end()
        )));
    }
    parse_policy(text).map_err(|e| {
        ApiError::invalid_parameter(format!(
            "lifecyclePolicyText: lifecycle policy validation failure: {e}"
        ))
    })
}

fn policy_not_found(c: &Call, repo: &str) -> ApiError {
    ApiError::lifecycle_policy_not_found(format!(
        "Lifecycle policy does not exist for the repository with name '{repo}' in the registry with id '{}'",
        c.ctx.account
    ))
}

pub async fn put(
    app: App,
    c: Call,
    input: PutLifecyclePolicyRequest,
) -> Result<PutLifecyclePolicyResponse, ApiError> {
    let (region, repo) = (c.ctx.region.as_str(), input.repository_name.as_str());
    repository(&app.db, &c, input.registry_id.as_deref(), repo)?;
    checked_policy(&input.lifecycle_policy_text)?;
    let repo_key = keys::repository(region, repo);
    let key = keys::lifecycle_policy(region, repo);
    app.db
        .transact(|db| {
            let Some(repository) = db.get::<RepositoryRecord>(&repo_key) else {
                return Err(c.repository_not_found(repo));
            };
            let current = db.get::<LifecyclePolicyRecord>(&key);
            // The same policy again keeps its evaluation time; a new one has not run yet.
            let last_evaluated_at = current
                .as_ref()
                .filter(|p| p.value.text == input.lifecycle_policy_text)
                .and_then(|p| p.value.last_evaluated_at);
            let writes = Writes::new()
                .expect_unchanged(&repository)
                .expect(&key, current.map_or(0, |p| p.revision))
                .put(
                    &key,
                    LifecyclePolicyRecord {
                        repository: repo.to_string(),
                        text: input.lifecycle_policy_text.clone(),
                        last_evaluated_at,
                    },
                );
            Ok((writes, ()))
        })
        .await?;
    Ok(PutLifecyclePolicyResponse {
        registry_id: c.ctx.account.clone(),
        repository_name: input.repository_name,
        lifecycle_policy_text: input.lifecycle_policy_text,
    })
}

fn present(c: &Call, repo: &str, policy: LifecyclePolicyRecord) -> LifecyclePolicyResponse {
    LifecyclePolicyResponse {
        registry_id: c.ctx.account.clone(),
        repository_name: repo.to_string(),
        lifecycle_policy_text: policy.text,
        last_evaluated_at: policy.last_evaluated_at,
    }
}

pub async fn get(
    app: App,
    c: Call,
    input: LifecyclePolicyRequest,
) -> Result<LifecyclePolicyResponse, ApiError> {
    let (region, repo) = (c.ctx.region.as_str(), input.repository_name.as_str());
    repository(&app.db, &c, input.registry_id.as_deref(), repo)?;
    let policy = app
        .db
        .get::<LifecyclePolicyRecord>(&keys::lifecycle_policy(region, repo))
        .ok_or_else(|| policy_not_found(&c, repo))?;
    Ok(present(&c, repo, policy.value))
}

pub async fn delete(
    app: App,
    c: Call,
    input: LifecyclePolicyRequest,
) -> Result<LifecyclePolicyResponse, ApiError> {
    let (region, repo) = (c.ctx.region.as_str(), input.repository_name.as_str());
    repository(&app.db, &c, input.registry_id.as_deref(), repo)?;
    let key = keys::lifecycle_policy(region, repo);
    let deleted = app
        .db
        .transact(|db| {
            let policy = db
                .get::<LifecyclePolicyRecord>(&key)
                .ok_or_else(|| policy_not_found(&c, repo))?;
            Ok((
                Writes::new().expect_unchanged(&policy).delete(&key),
                policy.value,
            ))
        })
        .await?;
    Ok(present(&c, repo, deleted))
}

pub async fn start_preview(
    app: App,
    c: Call,
    input: StartLifecyclePolicyPreviewRequest,
) -> Result<StartLifecyclePolicyPreviewResponse, ApiError> {
    let (region, repo) = (c.ctx.region.as_str(), input.repository_name.as_str());
    repository(&app.db, &c, input.registry_id.as_deref(), repo)?;
    let text = match input.lifecycle_policy_text {
        Some(text) => text,
        None => {
            app.db
                .get::<LifecyclePolicyRecord>(&keys::lifecycle_policy(region, repo))
                .ok_or_else(|| policy_not_found(&c, repo))?
                .value
                .text
        }
    };
    let policy = checked_policy(&text)?;
    let repo_key = keys::repository(region, repo);
    let key = keys::lifecycle_preview(region, repo);
    let now = c.ctx.now;
    app.db
        .transact(|db| {
            let Some(repository) = db.get::<RepositoryRecord>(&repo_key) else {
                return Err(c.repository_not_found(repo));
            };
            let mut expiring: Vec<PreviewedImage> =
                lifecycle::expiring(db, region, repo, &policy, now)
                    .into_iter()
                    .map(|e| PreviewedImage {
                        digest: e.image.value.digest,
                        tags: e.tags,
                        pushed_at: e.image.value.pushed_at,
                        rule_priority: e.rule_priority,
                    })
                    .collect();
            expiring.sort_by(|a, b| {
                (a.rule_priority, a.pushed_at, &a.digest).cmp(&(
                    b.rule_priority,
                    b.pushed_at,
                    &b.digest,
                ))
            });
            let current = db.get::<LifecyclePreviewRecord>(&key);
            let writes = Writes::new()
                .expect_unchanged(&repository)
                .expect(&key, current.map_or(0, |p| p.revision))
                .put(
                    &key,
                    LifecyclePreviewRecord {
                        text: text.clone(),
                        started_at: now,
                        expiring,
                    },
                );
            Ok((writes, ()))
        })
        .await?;
    Ok(StartLifecyclePolicyPreviewResponse {
        registry_id: c.ctx.account.clone(),
        repository_name: input.repository_name,
        lifecycle_policy_text: text,
        status: LifecyclePolicyPreviewStatus::Complete,
    })
}

/// Whether a previewed image is one of `ids` (by digest or by one of its tags).
fn identified(image: &PreviewedImage, ids: &[ImageIdentifier]) -> bool {
    ids.iter().any(|id| {
        id.image_digest.as_ref().is_none_or(|d| *d == image.digest)
            && id.image_tag.as_ref().is_none_or(|t| image.tags.contains(t))
            && (id.image_digest.is_some() || id.image_tag.is_some())
    })
}

pub async fn get_preview(
    app: App,
    c: Call,
    input: GetLifecyclePolicyPreviewRequest,
) -> Result<GetLifecyclePolicyPreviewResponse, ApiError> {
    let (region, repo) = (c.ctx.region.as_str(), input.repository_name.as_str());
    repository(&app.db, &c, input.registry_id.as_deref(), repo)?;
    if let Some(ids) = &input.image_ids {
        if input.max_results.is_some() || input.next_token.is_some() {
            return Err(ApiError::invalid_parameter(
                "maxResults and nextToken cannot be used with imageIds",
            ));
        }
        if ids.is_empty() || ids.len() > 100 {
            return Err(ApiError::invalid_parameter(format!(
                "imageIds: {} given, 1 to 100 are allowed",
                ids.len()
            )));
        }
    }
    let size = page_size(input.max_results, 100)?;
    let after = after_key(input.next_token.as_deref())?;
    let preview = app
        .db
        .get::<LifecyclePreviewRecord>(&keys::lifecycle_preview(region, repo))
        .ok_or_else(|| {
            ApiError::lifecycle_policy_preview_not_found(format!(
                "There is no preview result for the lifecycle policy of the repository with name '{repo}' in the registry with id '{}'",
                c.ctx.account
            ))
        })?
        .value;
    let tag_status = input.filter.as_ref().and_then(|f| f.tag_status);
    let total = preview.expiring.len();
    let wanted = preview
        .expiring
        .into_iter()
        .enumerate()
        .filter(|(_, image)| match tag_status {
            Some(TagStatus::Tagged) => !image.tags.is_empty(),
            Some(TagStatus::Untagged) => image.tags.is_empty(),
            Some(TagStatus::Any) | None => true,
        })
        .filter(|(_, image)| {
            input
                .image_ids
                .as_deref()
                .is_none_or(|ids| identified(image, ids))
        })
        // The preview's order is fixed until the next one starts: positions are the keys.
        .map(|(i, image)| (format!("{i:010}"), image));
    let page = paginate(wanted, after.as_deref(), size);
    Ok(GetLifecyclePolicyPreviewResponse {
        registry_id: c.ctx.account.clone(),
        repository_name: input.repository_name,
        lifecycle_policy_text: preview.text,
        status: LifecyclePolicyPreviewStatus::Complete,
        next_token: page.next_token,
        preview_results: page
            .items
            .into_iter()
            .map(|image| LifecyclePolicyPreviewResult {
                image_tags: (!image.tags.is_empty()).then_some(image.tags),
                image_digest: image.digest,
                image_pushed_at: image.pushed_at,
                action: LifecyclePolicyRuleAction {
                    action_type: ImageActionType::Expire,
                },
                applied_rule_priority: image.rule_priority,
            })
            .collect(),
        summary: LifecyclePolicyPreviewSummary {
            expiring_image_total_count: i32::try_from(total).unwrap_or(i32::MAX),
        },
    })
}
