//! TagResource, UntagResource, ListTagsForResource for clusters, container instances, tasks,
//! services and task definitions.

use super::task_definitions::parse_reference;
use crate::db::{Db, Writes};
use crate::records::{Kind, StoredTaskDefinition, keys};
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::ecs::tags::*;
use berth_model::cluster::{Cluster, ClusterStatus};
use berth_model::common::{Tag, validate_tags};
use berth_model::container_instance::ContainerInstance;
use berth_model::service::Service;
use berth_model::task::Task;
use berth_model::{Arn, ResourceKind};

/// Where a taggable resource is stored.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Cluster(String),
    Instance { cluster: String, key: String },
    Task { cluster: String, key: String },
    Service { cluster: String, key: String },
    TaskDefinition(String),
}

fn not_found() -> ApiError {
    ApiError::resource_not_found("The specified resource is not found.")
}

fn target(ctx: &Ctx, reference: &str) -> Result<Target, ApiError> {
    let arn = Arn::parse(reference).ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "resourceArn: '{reference}' is not a valid ECS resource ARN"
        ))
    })?;
    if arn.region != ctx.region || arn.account != ctx.account {
        return Err(ApiError::invalid_parameter(format!(
            "resourceArn: '{reference}' belongs to another account or region"
        )));
    }
    let in_cluster = |kind: &str| -> Result<(String, String), ApiError> {
        match arn.resource.split_once('/') {
            Some((cluster, id)) if !cluster.is_empty() && !id.is_empty() && !id.contains('/') => {
                Ok((cluster.to_string(), id.to_string()))
            }
            _ => Err(ApiError::invalid_parameter(format!(
                "resourceArn: '{reference}' is not a long-format {kind} ARN; long arn format must be used for tagging operations"
            ))),
        }
    };
    Ok(match arn.kind {
        ResourceKind::Cluster => Target::Cluster(arn.resource.clone()),
        ResourceKind::ContainerInstance => {
            let (cluster, id) = in_cluster("container instance")?;
            let key = keys::instance(&ctx.region, &cluster, &id);
            Target::Instance { cluster, key }
        }
        ResourceKind::Task => {
            let (cluster, id) = in_cluster("task")?;
            let key = keys::task(&ctx.region, &cluster, &id);
            Target::Task { cluster, key }
        }
        ResourceKind::Service => {
            let (cluster, name) = in_cluster("service")?;
            let key = keys::service(&ctx.region, &cluster, &name);
            Target::Service { cluster, key }
        }
        ResourceKind::TaskDefinition => {
            let (family, revision) = parse_reference(ctx, "resourceArn", reference)?;
            let revision = revision.ok_or_else(|| {
                ApiError::invalid_parameter(format!("resourceArn: '{reference}' names no revision"))
            })?;
            Target::TaskDefinition(keys::task_definition(&ctx.region, &family, revision))
        }
    })
}

fn check_cluster(db: &Db, ctx: &Ctx, cluster: &str) -> Result<(), ApiError> {
    match db.get::<Cluster>(&keys::cluster(&ctx.region, cluster)) {
        Some(c) if c.value.status == ClusterStatus::Active => Ok(()),
        _ => Err(ApiError::cluster_not_found("Cluster not found.")),
    }
}

/// Reads the resource, lets `update` edit it, and returns the write.
fn edit<T: Kind>(
    db: &Db,
    key: &str,
    update: impl Fn(&mut T) -> Result<(), ApiError>,
) -> Result<Writes, ApiError> {
    let current = db.get::<T>(key).ok_or_else(not_found)?;
    let mut value = current.value.clone();
    update(&mut value)?;
    Ok(Writes::new().expect_unchanged(&current).put(key, value))
}

/// Applies `change` to an optional tag list, leaving it absent when it ends up empty.
fn on_optional(
    tags: &mut Option<Vec<Tag>>,
    change: &dyn Fn(&mut Vec<Tag>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let mut list = tags.take().unwrap_or_default();
    change(&mut list)?;
    *tags = (!list.is_empty()).then_some(list);
    Ok(())
}

fn apply(
    db: &Db,
    ctx: &Ctx,
    target: &Target,
    change: &dyn Fn(&mut Vec<Tag>) -> Result<(), ApiError>,
) -> Result<Writes, ApiError> {
    match target {
        Target::Cluster(name) => {
            check_cluster(db, ctx, name)?;
            edit::<Cluster>(db, &keys::cluster(&ctx.region, name), |c| {
                on_optional(&mut c.tags, change)
            })
        }
        Target::Instance { cluster, key } => {
            check_cluster(db, ctx, cluster)?;
            edit::<ContainerInstance>(db, key, |i| on_optional(&mut i.tags, change))
        }
        Target::Task { cluster, key } => {
            check_cluster(db, ctx, cluster)?;
            edit::<Task>(db, key, |t| on_optional(&mut t.tags, change))
        }
        Target::Service { cluster, key } => {
            check_cluster(db, ctx, cluster)?;
            edit::<Service>(db, key, |s| on_optional(&mut s.tags, change))
        }
        Target::TaskDefinition(key) => {
            edit::<StoredTaskDefinition>(db, key, |d| change(&mut d.tags))
        }
    }
}

fn read(db: &Db, ctx: &Ctx, target: &Target) -> Result<Vec<Tag>, ApiError> {
    let tags = match target {
        Target::Cluster(name) => {
            check_cluster(db, ctx, name)?;
            db.get::<Cluster>(&keys::cluster(&ctx.region, name))
                .ok_or_else(not_found)?
                .value
                .tags
        }
        Target::Instance { cluster, key } => {
            check_cluster(db, ctx, cluster)?;
            db.get::<ContainerInstance>(key)
                .ok_or_else(not_found)?
                .value
                .tags
        }
        Target::Task { cluster, key } => {
            check_cluster(db, ctx, cluster)?;
            db.get::<Task>(key).ok_or_else(not_found)?.value.tags
        }
        Target::Service { cluster, key } => {
            check_cluster(db, ctx, cluster)?;
            db.get::<Service>(key).ok_or_else(not_found)?.value.tags
        }
        Target::TaskDefinition(key) => Some(
            db.get::<StoredTaskDefinition>(key)
                .ok_or_else(not_found)?
                .value
                .tags,
        ),
    };
    Ok(tags.unwrap_or_default())
}

pub async fn tag(app: App, ctx: Ctx, input: TagResourceRequest) -> Result<EmptyResponse, ApiError> {
    validate_tags("tags", &input.tags)?;
    let target = target(&ctx, &input.resource_arn)?;
    let change = |tags: &mut Vec<Tag>| -> Result<(), ApiError> {
        for t in &input.tags {
            match tags.iter_mut().find(|e| e.key == t.key) {
                Some(existing) => existing.value = t.value.clone(),
                None => tags.push(t.clone()),
            }
        }
        validate_tags("tags", tags).map_err(|_| {
            ApiError::invalid_parameter(format!(
                "tags: the resource would have {} tags; at most {} are allowed",
                tags.len(),
                berth_model::common::MAX_TAGS
            ))
        })
    };
    app.db
        .transact(|db| Ok((apply(db, &ctx, &target, &change)?, ())))
        .await?;
    Ok(EmptyResponse {})
}

pub async fn untag(
    app: App,
    ctx: Ctx,
    input: UntagResourceRequest,
) -> Result<EmptyResponse, ApiError> {
    if input.tag_keys.len() > berth_model::common::MAX_TAGS {
        return Err(ApiError::invalid_parameter(
            "tagKeys: at most 50 keys can be removed in one call",
        ));
    }
    for (i, k) in input.tag_keys.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(ApiError::invalid_parameter(format!(
                "tagKeys[{i}]: must be 1 to 128 characters long"
            )));
        }
    }
    let target = target(&ctx, &input.resource_arn)?;
    let change = |tags: &mut Vec<Tag>| -> Result<(), ApiError> {
        tags.retain(|t| !input.tag_keys.contains(&t.key));
        Ok(())
    };
    app.db
        .transact(|db| Ok((apply(db, &ctx, &target, &change)?, ())))
        .await?;
    Ok(EmptyResponse {})
}

pub async fn list(
    app: App,
    ctx: Ctx,
    input: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, ApiError> {
    let target = target(&ctx, &input.resource_arn)?;
    let tags = read(&app.db, &ctx, &target).map_err(|e| {
        if e.code == "ResourceNotFoundException" {
            ApiError::invalid_parameter("The specified resource is not found.")
        } else {
            e
        }
    })?;
    Ok(ListTagsForResourceResponse { tags })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            principal: "arn:aws:iam::123456789012:root".into(),
            now: Default::default(),
        }
    }

    #[test]
    fn arns_resolve_to_keys() {
        let c = ctx();
        assert_eq!(
            target(&c, "arn:aws:ecs:us-east-1:123456789012:cluster/web").unwrap(),
            Target::Cluster("web".into())
        );
        assert_eq!(
            target(&c, "arn:aws:ecs:us-east-1:123456789012:service/web/api").unwrap(),
            Target::Service {
                cluster: "web".into(),
                key: keys::service("us-east-1", "web", "api")
            }
        );
        assert_eq!(
            target(
                &c,
                "arn:aws:ecs:us-east-1:123456789012:task-definition/app:3"
            )
            .unwrap(),
            Target::TaskDefinition(keys::task_definition("us-east-1", "app", 3))
        );
        assert_eq!(
            target(&c, "arn:aws:ecs:us-east-1:123456789012:service/api")
                .unwrap_err()
                .code,
            "InvalidParameterException"
        );
        assert_eq!(
            target(&c, "arn:aws:ecs:eu-west-1:123456789012:cluster/web")
                .unwrap_err()
                .code,
            "InvalidParameterException"
        );
        assert_eq!(
            target(&c, "nonsense").unwrap_err().code,
            "InvalidParameterException"
        );
    }
}
