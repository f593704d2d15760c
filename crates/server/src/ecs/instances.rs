//! RegisterContainerInstance, DeregisterContainerInstance, DescribeContainerInstances,
//! ListContainerInstances, UpdateContainerInstancesState.
//!
//! An instance's `remainingResources` is kept in its record and changes in the same
//! transaction as the tasks placed on it or released from it, so two placements can never both
//! take the last of a resource. Until the agent channel exists, an instance registered through
//! the API counts as connected.

use super::paging::{after_key, page_size, paginate};
use super::resolve::{active_cluster, cluster_name, existing_active_cluster, resource_id};
use crate::clock::new_id;
use crate::db::{Db, Versioned, Writes};
use crate::records::{Heartbeat, keys};
use crate::tally::Tally;
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::ecs::instances::*;
use berth_model::ResourceKind;
use berth_model::common::{Attribute, Failure, validate_attribute, validate_tags};
use berth_model::container_instance::{
    ContainerInstance, ContainerInstanceStatus, validate_total_resources,
};
use berth_model::task_definition::berth_capabilities;

/// Running and pending tasks placed on an instance.
pub fn task_counts(db: &Db, instance_arn: &str) -> (i32, i32) {
    let t = db.tally(instance_arn);
    (Tally::count(t.running), Tally::count(t.pending))
}

fn present(db: &Db, mut instance: ContainerInstance, include_tags: bool) -> ContainerInstance {
    (instance.running_tasks_count, instance.pending_tasks_count) =
        task_counts(db, &instance.container_instance_arn);
    if !include_tags {
        instance.tags = None;
    }
    instance
}

/// The ACTIVE-or-DRAINING instance a reference names, inside `cluster`.
pub fn find(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    member: &str,
    reference: &str,
) -> Result<Option<Versioned<ContainerInstance>>, ApiError> {
    let id = resource_id(
        ctx,
        ResourceKind::ContainerInstance,
        member,
        reference,
        cluster,
    )?;
    Ok(db.get::<ContainerInstance>(&keys::instance(&ctx.region, cluster, &id)))
}

/// The instance id in an EC2 instance identity document, if one was sent.
fn identity_instance_id(document: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(document) = document else {
        return Ok(None);
    };
    let parsed: serde_json::Value = serde_json::from_str(document).map_err(|_| {
        ApiError::invalid_parameter("instanceIdentityDocument: is not a JSON document")
    })?;
    Ok(parsed
        .get("instanceId")
        .and_then(|v| v.as_str())
        .map(str::to_string))
}

pub async fn register(
    app: App,
    ctx: Ctx,
    input: RegisterContainerInstanceRequest,
) -> Result<ContainerInstanceResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref()).await?;
    let cluster_name = cluster.value.cluster_name.clone();
    let total = input.total_resources.as_deref().ok_or_else(|| {
        ApiError::invalid_parameter("totalResources: is required to register a container instance")
    })?;
    let registered = validate_total_resources(total)?;
    let attributes = input.attributes.clone().unwrap_or_default();
    for (i, a) in attributes.iter().enumerate() {
        validate_attribute(&format!("attributes[{i}]"), a)?;
    }
    if let Some(tags) = &input.tags {
        validate_tags("tags", tags)?;
    }
    let ec2_instance_id = identity_instance_id(input.instance_identity_document.as_deref())?;
    let existing_id = match &input.container_instance_arn {
        Some(arn) => Some(resource_id(
            &ctx,
            ResourceKind::ContainerInstance,
            "containerInstanceArn",
            arn,
            &cluster_name,
        )?),
        None => None,
    };
    let instance = app
        .db
        .transact(|db| {
            let cluster = existing_active_cluster(db, &ctx, &cluster_name)?;
            let id = existing_id.clone().unwrap_or_else(new_id);
            let key = keys::instance(&ctx.region, &cluster_name, &id);
            let previous = db.get::<ContainerInstance>(&key);
            if existing_id.is_some() && previous.as_ref().is_none_or(|p| p.value.status == ContainerInstanceStatus::Inactive) {
                return Err(ApiError::invalid_parameter(format!("containerInstanceArn: container instance '{id}' is not registered in cluster '{cluster_name}'")));
            }
            let arn = ctx.arn(ResourceKind::ContainerInstance, format!("{cluster_name}/{id}"));
            let mut instance = ContainerInstance::new(arn, &registered, ctx.now);
            if let Some(previous) = &previous {
                // Re-registration keeps what the tasks placed there still use.
                instance.remaining_resources = previous.value.remaining_resources.clone();
                instance.version = previous.value.version + 1;
                instance.registered_at = previous.value.registered_at;
            }
            instance.ec2_instance_id = Some(ec2_instance_id.clone().unwrap_or_else(|| format!("i-{}", &id[..17.min(id.len())])));
            instance.version_info = input.version_info.clone();
            instance.attributes = merge_attributes(default_attributes(), &attributes);
            instance.tags = input.tags.clone().filter(|t| !t.is_empty());
            let writes = Writes::new().expect_unchanged(&cluster).expect(&key, previous.map_or(0, |p| p.revision)).put(&key, instance.clone());
            Ok((writes, instance))
        })
        .await?;
    Ok(ContainerInstanceResponse {
        container_instance: present(&app.db, instance, true),
    })
}

/// Attributes every registered instance carries unless the registration overrides them: the
/// OS and the capabilities of a Berth agent (an agent that allows privileged containers adds
/// that one).
fn default_attributes() -> Vec<Attribute> {
    berth_capabilities(false)
        .into_iter()
        .map(|name| Attribute::new(name, None))
        .chain([
            Attribute::new("ecs.os-type", Some("linux".into())),
            Attribute::new("ecs.os-family", Some("LINUX".into())),
        ])
        .collect()
}

fn merge_attributes(mut current: Vec<Attribute>, updates: &[Attribute]) -> Vec<Attribute> {
    for u in updates {
        let plain = Attribute {
            target_type: None,
            target_id: None,
            ..u.clone()
        };
        match current.iter_mut().find(|a| a.name == u.name) {
            Some(existing) => *existing = plain,
            None => current.push(plain),
        }
    }
    current
}

pub async fn deregister(
    app: App,
    ctx: Ctx,
    input: DeregisterContainerInstanceRequest,
) -> Result<ContainerInstanceResponse, ApiError> {
    let cluster = cluster_name(&ctx, input.cluster.as_deref())?;
    let instance = app
        .db
        .transact(|db| {
            existing_active_cluster(db, &ctx, &cluster)?;
            let current = find(db, &ctx, &cluster, "containerInstance", &input.container_instance)?
                .filter(|i| i.value.status != ContainerInstanceStatus::Inactive)
                .ok_or_else(|| ApiError::invalid_parameter(format!("containerInstance: '{}' is not registered in cluster '{cluster}'", input.container_instance)))?;
            let (running, pending) = task_counts(db, &current.value.container_instance_arn);
            if running + pending > 0 && input.force != Some(true) {
                return Err(ApiError::invalid_parameter(format!(
                    "Found running tasks on the instance: {running} running and {pending} pending. Stop them first or pass --force to deregister anyway"
                )));
            }
            let mut instance = current.value.clone();
            instance.status = ContainerInstanceStatus::Inactive;
            instance.agent_connected = false;
            Ok((Writes::new().expect_unchanged(&current).put(&current.key, instance.clone()), instance))
        })
        .await?;
    Ok(ContainerInstanceResponse {
        container_instance: present(&app.db, instance, true),
    })
}

pub async fn describe(
    app: App,
    ctx: Ctx,
    input: DescribeContainerInstancesRequest,
) -> Result<ContainerInstancesResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    if input.container_instances.is_empty() || input.container_instances.len() > 100 {
        return Err(ApiError::invalid_parameter(
            "containerInstances: give between 1 and 100 container instances",
        ));
    }
    let include_tags =
        super::resolve::includes_tags(input.include.as_deref(), &["CONTAINER_INSTANCE_HEALTH"])?;
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for (i, reference) in input.container_instances.iter().enumerate() {
        match find(
            &app.db,
            &ctx,
            &cluster,
            &format!("containerInstances[{i}]"),
            reference,
        )? {
            Some(instance) => found.push(present(&app.db, instance.value, include_tags)),
            None => failures.push(Failure::missing(ctx.arn_of_reference(
                ResourceKind::ContainerInstance,
                &cluster,
                reference,
            ))),
        }
    }
    Ok(ContainerInstancesResponse {
        container_instances: found,
        failures,
    })
}

pub async fn list(
    app: App,
    ctx: Ctx,
    input: ListContainerInstancesRequest,
) -> Result<ListContainerInstancesResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    let size = page_size(input.max_results, 100)?;
    let after = after_key(input.next_token.as_deref())?;
    let status = match input.status.as_deref() {
        None => None,
        Some(s) => Some(ContainerInstanceStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_parameter(format!("status: '{s}' is not one of ACTIVE, DRAINING, REGISTERING, DEREGISTERING, REGISTRATION_FAILED"))
        })?),
    };
    let filter = match input.filter.as_deref() {
        Some(f) => Some(
            berth_model::query::parse(f)
                .map_err(|e| ApiError::invalid_parameter(format!("filter: {e}")))?,
        ),
        None => None,
    };
    let mut matching = Vec::new();
    for i in app
        .db
        .list::<ContainerInstance>(&keys::instances(&ctx.region, &cluster))
    {
        let wanted = match status {
            Some(s) => i.value.status == s,
            None => i.value.status != ContainerInstanceStatus::Inactive,
        };
        if !wanted {
            continue;
        }
        if let Some(filter) = &filter {
            let instance = present(&app.db, i.value.clone(), true);
            if !filter.evaluate(|subject: &str| instance_subject(&instance, subject)) {
                continue;
            }
        }
        matching.push((i.key, i.value.container_instance_arn));
    }
    let page = paginate(matching, after.as_deref(), size);
    Ok(ListContainerInstancesResponse {
        container_instance_arns: page.items,
        next_token: page.next_token,
    })
}

/// What a cluster-query-language subject means for a container instance.
pub fn instance_subject(instance: &ContainerInstance, subject: &str) -> Option<String> {
    if let Some(name) = subject.strip_prefix("attribute:") {
        return instance
            .attribute(name)
            .map(|v| v.unwrap_or_default().to_string());
    }
    match subject {
        "ec2InstanceId" => instance.ec2_instance_id.clone(),
        "agentConnected" => Some(instance.agent_connected.to_string()),
        "agentVersion" => instance
            .version_info
            .as_ref()
            .and_then(|v| v.agent_version.clone()),
        "runningTasksCount" => Some(instance.running_tasks_count.to_string()),
        "pendingTasksCount" => Some(instance.pending_tasks_count.to_string()),
        "registeredAt" => instance.registered_at.map(|t| t.seconds().to_string()),
        "status" => Some(instance.status.as_str().to_string()),
        "containerInstanceArn" | "instanceId" => Some(instance.container_instance_arn.clone()),
        _ => None,
    }
}

pub async fn update_state(
    app: App,
    ctx: Ctx,
    input: UpdateContainerInstancesStateRequest,
) -> Result<ContainerInstancesResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    let status = ContainerInstanceStatus::parse(&input.status)
        .filter(|s| s.settable_by_user())
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "status: '{}' cannot be set; use ACTIVE or DRAINING",
                input.status
            ))
        })?;
    if input.container_instances.is_empty() || input.container_instances.len() > 10 {
        return Err(ApiError::invalid_parameter(
            "containerInstances: give between 1 and 10 container instances",
        ));
    }
    let mut updated = Vec::new();
    let mut failures = Vec::new();
    for (i, reference) in input.container_instances.iter().enumerate() {
        let member = format!("containerInstances[{i}]");
        let outcome = app
            .db
            .transact(|db| {
                let Some(current) = find(db, &ctx, &cluster, &member, reference)?
                    .filter(|c| c.value.status != ContainerInstanceStatus::Inactive)
                else {
                    return Ok((Writes::new(), None));
                };
                let mut instance = current.value.clone();
                if !instance.status.can_transition_to(status) {
                    return Err(ApiError::invalid_parameter(format!(
                        "{member}: cannot move from {} to {}",
                        instance.status.as_str(),
                        status.as_str()
                    )));
                }
                instance.status = status;
                Ok((
                    Writes::new()
                        .expect_unchanged(&current)
                        .put(&current.key, instance.clone()),
                    Some(instance),
                ))
            })
            .await?;
        match outcome {
            Some(instance) => updated.push(instance),
            None => failures.push(Failure::missing(ctx.arn_of_reference(
                ResourceKind::ContainerInstance,
                &cluster,
                reference,
            ))),
        }
    }
    let container_instances = updated
        .into_iter()
        .map(|i| present(&app.db, i, false))
        .collect();
    Ok(ContainerInstancesResponse {
        container_instances,
        failures,
    })
}

/// The agent's call-in (DiscoverPollEndpoint, which the ECS agent makes): the instance's agent
/// is alive. Records when, marks the instance connected again if it was not, and answers with
/// the endpoint to poll (this server).
pub async fn discover_poll_endpoint(
    app: App,
    ctx: Ctx,
    input: DiscoverPollEndpointRequest,
) -> Result<DiscoverPollEndpointResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    let reference = input
        .container_instance
        .as_deref()
        .ok_or_else(|| ApiError::invalid_parameter("containerInstance: is required"))?;
    app.db
        .transact(|db| {
            let instance = find(db, &ctx, &cluster, "containerInstance", reference)?
                .filter(|i| i.value.status != ContainerInstanceStatus::Inactive)
                .ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "containerInstance: '{reference}' is not registered in cluster '{cluster}'"
                    ))
                })?;
            let id = resource_id(
                &ctx,
                ResourceKind::ContainerInstance,
                "containerInstance",
                &instance.value.container_instance_arn,
                &cluster,
            )?;
            let mut writes = Writes::new().put(
                &keys::heartbeat(&ctx.region, &cluster, &id),
                Heartbeat { last_seen: ctx.now },
            );
            if !instance.value.agent_connected {
                let mut back = instance.value.clone();
                back.agent_connected = true;
                back.version += 1;
                writes = writes.expect_unchanged(&instance).put(&instance.key, back);
            }
            Ok((writes, ()))
        })
        .await?;
    let endpoint = format!("http://{}", app.config.listen);
    Ok(DiscoverPollEndpointResponse {
        endpoint: endpoint.clone(),
        telemetry_endpoint: endpoint.clone(),
        service_connect_endpoint: endpoint,
    })
}
