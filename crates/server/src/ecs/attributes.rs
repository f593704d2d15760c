//! PutAttributes, DeleteAttributes, ListAttributes: name/value attributes on container
//! instances, kept in the instance record.

use super::instances::find;
use super::paging::{after_key, page_size, paginate};
use super::resolve::active_cluster;
use crate::db::Writes;
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::ecs::instances::*;
use berth_model::common::{Attribute, TargetType, validate_attribute};
use berth_model::container_instance::{ContainerInstance, ContainerInstanceStatus};

/// Custom attributes (not `ecs.` or `com.amazonaws.ecs.`) allowed on one instance.
const MAX_CUSTOM_ATTRIBUTES: usize = 10;

fn is_custom(a: &Attribute) -> bool {
    !(a.name.starts_with("ecs.") || a.name.starts_with("com.amazonaws.ecs."))
}

fn check_batch(attributes: &[Attribute]) -> Result<(), ApiError> {
    if attributes.is_empty() || attributes.len() > 10 {
        return Err(ApiError::invalid_parameter(
            "attributes: give between 1 and 10 attributes",
        ));
    }
    for (i, a) in attributes.iter().enumerate() {
        validate_attribute(&format!("attributes[{i}]"), a)?;
        if a.target_id.is_none() {
            return Err(ApiError::invalid_parameter(format!(
                "attributes[{i}].targetId: is required: name the container instance (its id or ARN)"
            )));
        }
    }
    Ok(())
}

/// Applies `change` to each attribute's target instance; every target must exist.
async fn change_each(
    app: &App,
    ctx: &Ctx,
    cluster: &str,
    attributes: &[Attribute],
    change: impl Fn(&mut Vec<Attribute>, &Attribute) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    app.db
        .transact(|db| {
            let mut writes = Writes::new();
            let mut edited: Vec<(String, i64, ContainerInstance)> = Vec::new();
            for (i, a) in attributes.iter().enumerate() {
                let member = format!("attributes[{i}].targetId");
                let target = a.target_id.as_deref().unwrap_or_default();
                let current = find(db, ctx, cluster, &member, target)?
                    .filter(|c| c.value.status != ContainerInstanceStatus::Inactive)
                    .ok_or_else(|| ApiError::target_not_found(format!("{member}: container instance '{target}' was not found in cluster '{cluster}'")))?;
                let slot = match edited.iter().position(|(k, _, _)| *k == current.key) {
                    Some(p) => p,
                    None => {
                        edited.push((current.key.clone(), current.revision, current.value.clone()));
                        edited.len() - 1
                    }
                };
                change(&mut edited[slot].2.attributes, a)?;
            }
            for (key, revision, instance) in edited {
                writes = writes.expect(&key, revision).put(&key, instance);
            }
            Ok((writes, ()))
        })
        .await
}

pub async fn put(
    app: App,
    ctx: Ctx,
    input: AttributesRequest,
) -> Result<AttributesResponse, ApiError> {
    check_batch(&input.attributes)?;
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    change_each(&app, &ctx, &cluster, &input.attributes, |attrs, a| {
        let plain = Attribute {
            target_type: None,
            target_id: None,
            ..a.clone()
        };
        match attrs.iter_mut().find(|x| x.name == a.name) {
            Some(existing) => *existing = plain,
            None => attrs.push(plain),
        }
        if attrs.iter().filter(|x| is_custom(x)).count() > MAX_CUSTOM_ATTRIBUTES {
            return Err(ApiError::attribute_limit_exceeded(format!(
                "a container instance can carry at most {MAX_CUSTOM_ATTRIBUTES} custom attributes"
            )));
        }
        Ok(())
    })
    .await?;
    Ok(AttributesResponse {
        attributes: input.attributes,
    })
}

pub async fn delete(
    app: App,
    ctx: Ctx,
    input: AttributesRequest,
) -> Result<AttributesResponse, ApiError> {
    check_batch(&input.attributes)?;
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    change_each(&app, &ctx, &cluster, &input.attributes, |attrs, a| {
        attrs.retain(|x| x.name != a.name);
        Ok(())
    })
    .await?;
    Ok(AttributesResponse {
        attributes: input.attributes,
    })
}

pub async fn list(
    app: App,
    ctx: Ctx,
    input: ListAttributesRequest,
) -> Result<ListAttributesResponse, ApiError> {
    if input.target_type != "container-instance" {
        return Err(ApiError::invalid_parameter(format!(
            "targetType: '{}' is not supported; use container-instance",
            input.target_type
        )));
    }
    if input.attribute_value.is_some() && input.attribute_name.is_none() {
        return Err(ApiError::invalid_parameter(
            "attributeValue: can only be given together with attributeName",
        ));
    }
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    let size = page_size(input.max_results, 100)?;
    let after = after_key(input.next_token.as_deref())?;
    let mut out = Vec::new();
    for instance in app
        .db
        .list::<ContainerInstance>(&keys::instances(&ctx.region, &cluster))
    {
        if instance.value.status == ContainerInstanceStatus::Inactive {
            continue;
        }
        for a in &instance.value.attributes {
            let name_ok = input.attribute_name.as_ref().is_none_or(|n| *n == a.name);
            let value_ok = input
                .attribute_value
                .as_ref()
                .is_none_or(|v| a.value.as_ref() == Some(v));
            if name_ok && value_ok {
                let listed = Attribute {
                    target_type: Some(TargetType::ContainerInstance),
                    target_id: Some(instance.value.container_instance_arn.clone()),
                    ..a.clone()
                };
                out.push((format!("{}\u{0}{}", instance.key, a.name), listed));
            }
        }
    }
    let page = paginate(out, after.as_deref(), size);
    Ok(ListAttributesResponse {
        attributes: page.items,
        next_token: page.next_token,
    })
}
