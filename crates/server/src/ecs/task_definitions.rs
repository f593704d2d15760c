//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions.
//!
//! Revisions count up per family from 1 and are never reused, even after deletion: the family
//! record holds the counter and every registration compares it.

use super::paging::{after_key, page_size, paginate, paginate_ordered};
use crate::db::{Db, Versioned, Writes};
use crate::records::{Family, StoredTaskDefinition, keys};
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::ecs::task_definitions::*;
use berth_model::common::{Failure, Tag, validate_tags};
use berth_model::task_definition::{
    TaskDefinition, TaskDefinitionSpec, TaskDefinitionStatus, validate,
};
use berth_model::{Arn, ResourceKind};
use std::collections::BTreeMap;

/// The family and optional revision a task definition reference names: `family`,
/// `family:revision` or a task-definition ARN.
pub fn parse_reference(
    ctx: &Ctx,
    member: &str,
    reference: &str,
) -> Result<(String, Option<i32>), ApiError> {
    let short = if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)
            .filter(|a| a.kind == ResourceKind::TaskDefinition)
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "{member}: '{reference}' is not a task definition ARN"
                ))
            })?;
        if arn.region != ctx.region || arn.account != ctx.account {
            return Err(ApiError::client(format!(
                "{member}: task definition '{reference}' belongs to another account or region"
            )));
        }
        arn.resource
    } else {
        reference.to_string()
    };
    let (family, revision) = match short.split_once(':') {
        Some((family, rev)) => {
            let rev: i32 = rev.parse().ok().filter(|r| *r >= 1).ok_or_else(|| {
                ApiError::client(format!(
                    "{member}: '{rev}' in '{reference}' is not a revision number"
                ))
            })?;
            (family.to_string(), Some(rev))
        }
        None => (short, None),
    };
    let valid = !family.is_empty()
        && family.len() <= 255
        && family
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(ApiError::client(format!(
            "{member}: '{reference}' is not a valid task definition family, family:revision or ARN"
        )));
    }
    Ok((family, revision))
}

/// The task definition a reference names; a bare family means its latest ACTIVE revision.
pub fn find(
    db: &Db,
    ctx: &Ctx,
    member: &str,
    reference: &str,
) -> Result<Versioned<StoredTaskDefinition>, ApiError> {
    let (family, revision) = parse_reference(ctx, member, reference)?;
    let found = match revision {
        Some(rev) => {
            db.get::<StoredTaskDefinition>(&keys::task_definition(&ctx.region, &family, rev))
        }
        None => db
            .list::<StoredTaskDefinition>(&keys::task_definitions_of(&ctx.region, &family))
            .into_iter()
            .rev()
            .find(|t| t.value.definition.status == TaskDefinitionStatus::Active),
    };
    found.ok_or_else(|| {
        ApiError::client(format!(
            "Unable to describe task definition '{reference}': it does not exist"
        ))
    })
}

/// Like [`find`], for starting tasks: the revision must be ACTIVE.
pub fn find_runnable(
    db: &Db,
    ctx: &Ctx,
    member: &str,
    reference: &str,
) -> Result<Versioned<StoredTaskDefinition>, ApiError> {
    let found = find(db, ctx, member, reference)?;
    if found.value.definition.status != TaskDefinitionStatus::Active {
        return Err(ApiError::client(format!(
            "{member}: task definition '{}' is {}; register a new revision or name an ACTIVE one",
            found.value.definition.family_revision(),
            status_name(found.value.definition.status)
        )));
    }
    Ok(found)
}

fn status_name(s: TaskDefinitionStatus) -> &'static str {
    match s {
        TaskDefinitionStatus::Active => "ACTIVE",
        TaskDefinitionStatus::Inactive => "INACTIVE",
        TaskDefinitionStatus::DeleteInProgress => "DELETE_IN_PROGRESS",
    }
}

/// RegisterTaskDefinition reads its body itself: the spec is the body minus `tags`.
#[derive(Debug)]
pub struct RegisterInput {
    spec: TaskDefinitionSpec,
    tags: Vec<Tag>,
}

impl<'de> serde::Deserialize<'de> for RegisterInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut body = serde_json::Value::deserialize(d)?;
        let tags = match body.as_object_mut().and_then(|o| o.remove("tags")) {
            Some(tags) => {
                serde_json::from_value(tags).map_err(|e| D::Error::custom(format!("tags: {e}")))?
            }
            None => Vec::new(),
        };
        let spec = TaskDefinitionSpec::from_json(&body).map_err(|e| D::Error::custom(e.message))?;
        Ok(RegisterInput { spec, tags })
    }
}

pub async fn register(
    app: App,
    ctx: Ctx,
    input: RegisterInput,
) -> Result<TaskDefinitionResponse, ApiError> {
    validate(&input.spec)?;
    validate_tags("tags", &input.tags)?;
    let family = input.spec.family.clone();
    let family_key = keys::family(&ctx.region, &family);
    let stored = app
        .db
        .transact(|db| {
            let counter = db.get::<Family>(&family_key);
            let revision = counter.as_ref().map_or(0, |f| f.value.latest_revision) + 1;
            let arn = ctx.arn(ResourceKind::TaskDefinition, format!("{family}:{revision}"));
            let definition = TaskDefinition::from_spec(
                input.spec.clone(),
                arn,
                revision,
                ctx.now,
                Some(ctx.principal.clone()),
            );
            let stored = StoredTaskDefinition {
                definition,
                tags: input.tags.clone(),
            };
            let writes = Writes::new()
                .expect(&family_key, counter.map_or(0, |f| f.revision))
                .put(
                    &family_key,
                    Family {
                        latest_revision: revision,
                    },
                )
                .put(
                    &keys::task_definition(&ctx.region, &family, revision),
                    stored.clone(),
                );
            Ok((writes, stored))
        })
        .await?;
    Ok(TaskDefinitionResponse {
        task_definition: stored.definition,
        tags: Some(stored.tags),
    })
}

pub async fn describe(
    app: App,
    ctx: Ctx,
    input: DescribeTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, ApiError> {
    let include_tags = super::resolve::includes_tags(input.include.as_deref(), &[])?;
    let found = find(&app.db, &ctx, "taskDefinition", &input.task_definition)?;
    Ok(TaskDefinitionResponse {
        task_definition: found.value.definition,
        tags: include_tags.then_some(found.value.tags),
    })
}

fn parse_status(member: &str, status: Option<&str>) -> Result<TaskDefinitionStatus, ApiError> {
    match status {
        None | Some("ACTIVE") => Ok(TaskDefinitionStatus::Active),
        Some("INACTIVE") => Ok(TaskDefinitionStatus::Inactive),
        Some("DELETE_IN_PROGRESS") => Ok(TaskDefinitionStatus::DeleteInProgress),
        Some(other) => Err(ApiError::invalid_parameter(format!(
            "{member}: '{other}' is not one of ACTIVE, INACTIVE, DELETE_IN_PROGRESS"
        ))),
    }
}

pub async fn list(
    app: App,
    ctx: Ctx,
    input: ListTaskDefinitionsRequest,
) -> Result<ListTaskDefinitionsResponse, ApiError> {
    let status = parse_status("status", input.status.as_deref())?;
    let descending = match input.sort.as_deref() {
        None | Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "sort: '{other}' is not ASC or DESC"
            )));
        }
    };
    let size = page_size(input.max_results, 100)?;
    let after = after_key(input.next_token.as_deref())?;
    let prefix = match &input.family_prefix {
        // A family prefix matches the family exactly, as ECS does.
        Some(family) => keys::task_definitions_of(&ctx.region, family),
        None => keys::task_definitions(&ctx.region),
    };
    let mut items: Vec<(String, String)> = Vec::new();
    app.db.scan::<StoredTaskDefinition>(&prefix, |key, t| {
        if t.definition.status == status {
            items.push((key.to_string(), t.definition.task_definition_arn.clone()));
        }
        true
    });
    if descending {
        items.reverse();
    }
    let page = paginate_ordered(items, after.as_deref(), size, descending);
    Ok(ListTaskDefinitionsResponse {
        task_definition_arns: page.items,
        next_token: page.next_token,
    })
}

pub async fn list_families(
    app: App,
    ctx: Ctx,
    input: ListTaskDefinitionFamiliesRequest,
) -> Result<ListTaskDefinitionFamiliesResponse, ApiError> {
    #[derive(PartialEq)]
    enum Wanted {
        Active,
        Inactive,
        All,
    }
    let wanted = match input.status.as_deref() {
        None | Some("ACTIVE") => Wanted::Active,
        Some("INACTIVE") => Wanted::Inactive,
        Some("ALL") => Wanted::All,
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "status: '{other}' is not one of ACTIVE, INACTIVE, ALL"
            )));
        }
    };
    let size = page_size(input.max_results, 100)?;
    let after = after_key(input.next_token.as_deref())?;
    let mut has_active: BTreeMap<String, bool> = BTreeMap::new();
    app.db
        .scan::<StoredTaskDefinition>(&keys::task_definitions(&ctx.region), |_, t| {
            let d = &t.definition;
            if input
                .family_prefix
                .as_ref()
                .is_none_or(|p| d.family.starts_with(p.as_str()))
            {
                *has_active.entry(d.family.clone()).or_default() |=
                    d.status == TaskDefinitionStatus::Active;
            }
            true
        });
    let families = has_active.into_iter().filter(|(_, active)| match wanted {
        Wanted::Active => *active,
        Wanted::Inactive => !*active,
        Wanted::All => true,
    });
    let page = paginate(
        families.map(|(f, _)| (f.clone(), f)),
        after.as_deref(),
        size,
    );
    Ok(ListTaskDefinitionFamiliesResponse {
        families: page.items,
        next_token: page.next_token,
    })
}

pub async fn deregister(
    app: App,
    ctx: Ctx,
    input: DeregisterTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, ApiError> {
    let (_, revision) = parse_reference(&ctx, "taskDefinition", &input.task_definition)?;
    if revision.is_none() {
        return Err(ApiError::client(
            "taskDefinition: name a revision to deregister, as family:revision or its full ARN",
        ));
    }
    let definition = app
        .db
        .transact(|db| {
            let current = find(db, &ctx, "taskDefinition", &input.task_definition)?;
            let mut stored = current.value.clone();
            if stored.definition.status != TaskDefinitionStatus::Active {
                return Ok((Writes::new(), stored.definition));
            }
            stored.definition.status = TaskDefinitionStatus::Inactive;
            stored.definition.deregistered_at = Some(ctx.now);
            Ok((
                Writes::new()
                    .expect_unchanged(&current)
                    .put(&current.key, stored.clone()),
                stored.definition,
            ))
        })
        .await?;
    Ok(TaskDefinitionResponse {
        task_definition: definition,
        tags: None,
    })
}

pub async fn delete(
    app: App,
    ctx: Ctx,
    input: DeleteTaskDefinitionsRequest,
) -> Result<DeleteTaskDefinitionsResponse, ApiError> {
    if input.task_definitions.is_empty() || input.task_definitions.len() > 10 {
        return Err(ApiError::invalid_parameter(
            "taskDefinitions: give between 1 and 10 task definitions",
        ));
    }
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for (i, reference) in input.task_definitions.iter().enumerate() {
        let member = format!("taskDefinitions[{i}]");
        if parse_reference(&ctx, &member, reference)?.1.is_none() {
            failures.push(
                Failure::new(reference.clone(), "INVALID_PARAMETER")
                    .with_detail("name a revision, as family:revision or its full ARN"),
            );
            continue;
        }
        let outcome = app
            .db
            .transact(|db| {
                let Ok(current) = find(db, &ctx, &member, reference) else {
                    return Ok((Writes::new(), Err(Failure::missing(reference.clone()))));
                };
                let mut stored = current.value.clone();
                match stored.definition.status {
                    TaskDefinitionStatus::Active => Ok((
                        Writes::new(),
                        Err(Failure::new(stored.definition.task_definition_arn.clone(), "The specified task definition is still in ACTIVE status. Please deregister the target and try again.")),
                    )),
                    TaskDefinitionStatus::DeleteInProgress => Ok((Writes::new(), Ok(stored.definition))),
                    TaskDefinitionStatus::Inactive => {
                        stored.definition.status = TaskDefinitionStatus::DeleteInProgress;
                        stored.definition.delete_requested_at = Some(ctx.now);
                        Ok((Writes::new().expect_unchanged(&current).put(&current.key, stored.clone()), Ok(stored.definition)))
                    }
                }
            })
            .await?;
        match outcome {
            Ok(d) => deleted.push(d),
            Err(f) => failures.push(f),
        }
    }
    Ok(DeleteTaskDefinitionsResponse {
        task_definitions: deleted,
        failures,
    })
}
