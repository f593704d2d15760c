//! CreateService, UpdateService, DeleteService, DescribeServices, ListServices.
//!
//! A service's tasks carry the group `service:NAME` and are started by the id of the
//! deployment that wanted them; running and pending counts are computed from those tasks when
//! a service is shown. Starting and stopping tasks to match `desiredCount` is the service
//! controller's job; DeleteService stops the service's tasks itself.

use super::paging::{after_key, page_size, paginate};
use super::resolve::{active_cluster, existing_active_cluster};
use super::task_definitions::find_runnable;
use super::tasks::request_stop;
use super::tokens;
use crate::db::{Db, Versioned, Writes};
use crate::records::{StoredTaskDefinition, keys};
use crate::tally::{self, Tally};
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::ecs::services::*;
use berth_model::common::{CapacityProviderStrategyItem, Failure, LaunchType, PropagateTags};
use berth_model::service::{
    Deployment, DeploymentConfiguration, DeploymentController, DeploymentControllerType,
    DeploymentStatus, LoadBalancer, SchedulingStrategy, Service, ServiceRequestMembers,
    ServiceStatus, validate_create_service, validate_update_service,
};
use berth_model::task::{DesiredStatus, Task, TaskStatus, TaskStopCode};
use berth_model::{Arn, ResourceKind};
use rand::Rng;

/// The task group of a service's tasks.
pub fn group_of(service_name: &str) -> String {
    format!("service:{service_name}")
}

/// A new deployment id in ECS's shape: `ecs-svc/` and 19 digits.
pub fn new_deployment_id() -> String {
    let n: u64 = rand::rng().random_range(1_000_000_000_000_000_000..10_000_000_000_000_000_000);
    format!("ecs-svc/{n}")
}

fn check_launch_type(launch_type: Option<LaunchType>) -> Result<LaunchType, ApiError> {
    match launch_type {
        None | Some(LaunchType::Ec2) => Ok(LaunchType::Ec2),
        Some(LaunchType::External) => Ok(LaunchType::External),
        Some(other) => Err(ApiError::invalid_parameter(format!(
            "launchType: '{}' is not supported; Berth runs tasks on container instances (EC2 or EXTERNAL)",
            other.as_str()
        ))),
    }
}

fn refuse_capacity_providers(
    strategy: Option<&[CapacityProviderStrategyItem]>,
) -> Result<(), ApiError> {
    if let Some(item) = strategy.and_then(|s| s.first()) {
        return Err(ApiError::invalid_parameter(format!(
            "capacityProviderStrategy: capacity provider '{}' does not exist (Berth has no capacity providers)",
            item.capacity_provider
        )));
    }
    Ok(())
}

/// Each load balancer's container must be in the task definition and expose the port.
fn check_load_balancers(
    db: &Db,
    ctx: &Ctx,
    lbs: &[LoadBalancer],
    definition: &StoredTaskDefinition,
) -> Result<(), ApiError> {
    let in_use = crate::elbv2::usage(db, ctx);
    for (i, lb) in lbs.iter().enumerate() {
        let Some(arn) = lb.target_group_arn.as_deref().filter(|a| !a.is_empty()) else {
            return Err(ApiError::invalid_parameter(format!(
                "loadBalancers[{i}].targetGroupArn: is required (Berth's load balancers are application load balancers with target groups)"
            )));
        };
        let member = format!("loadBalancers[{i}].targetGroupArn");
        let group = crate::elbv2::find_target_group(db, ctx, &member, arn)
            .map_err(|e| ApiError::invalid_parameter(e.message))?
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "{member}: target group '{arn}' does not exist"
                ))
            })?;
        if !in_use.contains_key(&group.value.arn) {
            return Err(ApiError::invalid_parameter(format!(
                "The target group with targetGroupArn {arn} does not have an associated load balancer."
            )));
        }
        let name = lb.container_name.as_deref().unwrap_or_default();
        let port = lb.container_port.unwrap_or_default();
        let Some(container) = definition.definition.container(name) else {
            return Err(ApiError::invalid_parameter(format!(
                "The container {name} does not exist in the task definition."
            )));
        };
        let exposed = container
            .port_mappings
            .iter()
            .flatten()
            .any(|m| m.container_port == Some(port));
        if !exposed {
            return Err(ApiError::invalid_parameter(format!(
                "The container {name} did not have a container port {port} defined."
            )));
        }
    }
    Ok(())
}

/// The name a `service` member names (a name, or a short or long service ARN).
pub fn service_name(
    ctx: &Ctx,
    cluster: &str,
    member: &str,
    reference: &str,
) -> Result<Option<String>, ApiError> {
    let name = if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)
            .filter(|a| a.kind == ResourceKind::Service)
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "{member}: '{reference}' is not a service name or service ARN"
                ))
            })?;
        if arn.region != ctx.region || arn.account != ctx.account {
            return Ok(None);
        }
        if let Some((c, _)) = arn.resource.split_once('/')
            && c != cluster
        {
            return Ok(None);
        }
        arn.id().to_string()
    } else {
        reference.to_string()
    };
    let valid = (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    Ok(valid.then_some(name))
}

fn find_service(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    reference: &str,
) -> Result<Option<Versioned<Service>>, ApiError> {
    let Some(name) = service_name(ctx, cluster, "service", reference)? else {
        return Ok(None);
    };
    Ok(db.get::<Service>(&keys::service(&ctx.region, cluster, &name)))
}

/// The live tasks of a service: not yet STOPPED.
fn live_tasks(db: &Db, ctx: &Ctx, cluster: &str, service: &str) -> Vec<Versioned<Task>> {
    let group = group_of(service);
    db.list::<Task>(&keys::tasks(&ctx.region, cluster))
        .into_iter()
        .filter(|t| {
            t.value.group.as_deref() == Some(group.as_str())
                && t.value.last_status != TaskStatus::Stopped
        })
        .collect()
}

/// The service as the API shows it: counts from the view's counters of each deployment's
/// tasks (those meant to run), tags only when asked for.
pub fn present(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    mut service: Service,
    include_tags: bool,
) -> Service {
    let prefix = keys::tasks(&ctx.region, cluster);
    let (mut running, mut pending) = (0, 0);
    for d in &mut service.deployments {
        let t = db.tally(&tally::started_by(&prefix, "started-by", &d.id));
        d.running_count = Tally::count(t.running);
        d.pending_count = Tally::count(t.pending);
        d.failed_tasks = Tally::count(
            db.tally(&tally::started_by(&prefix, "failed", &d.id))
                .failed,
        );
        running += d.running_count;
        pending += d.pending_count;
    }
    (service.running_count, service.pending_count) = (running, pending);
    if !include_tags {
        service.tags = None;
    }
    service
}

fn new_deployment(ctx: &Ctx, service: &Service, launch_type: LaunchType) -> Deployment {
    let mut d = Deployment::new(
        new_deployment_id(),
        service.task_definition.clone().unwrap_or_default(),
        service.desired_count,
        ctx.now,
    );
    d.launch_type = Some(launch_type);
    d.network_configuration = service.network_configuration.clone();
    d
}

pub async fn create(
    app: App,
    ctx: Ctx,
    input: CreateServiceRequest,
) -> Result<ServiceResponse, ApiError> {
    let scheduling = input.scheduling_strategy.unwrap_or_default();
    let controller = input
        .deployment_controller
        .map(|c| c.r#type)
        .unwrap_or_default();
    validate_create_service(&ServiceRequestMembers {
        service_name: Some(&input.service_name),
        desired_count: input.desired_count,
        scheduling_strategy: scheduling,
        deployment_controller: controller,
        launch_type: input.launch_type,
        capacity_provider_strategy: input.capacity_provider_strategy.as_deref(),
        deployment_configuration: input.deployment_configuration.as_ref(),
        placement_constraints: input.placement_constraints.as_deref(),
        placement_strategy: input.placement_strategy.as_deref(),
        network_configuration: input.network_configuration.as_ref(),
        health_check_grace_period_seconds: input.health_check_grace_period_seconds,
        load_balancers: input.load_balancers.as_deref(),
        service_registries: input.service_registries.as_deref(),
        tags: input.tags.as_deref(),
    })?;
    let launch_type = check_launch_type(input.launch_type)?;
    refuse_capacity_providers(input.capacity_provider_strategy.as_deref())?;
    if controller != DeploymentControllerType::Ecs {
        return Err(ApiError::invalid_parameter(
            "deploymentController: only the ECS deployment controller is supported by Berth",
        ));
    }
    let task_definition = input.task_definition.clone().ok_or_else(|| {
        ApiError::invalid_parameter(
            "taskDefinition: is required for services that use the ECS deployment controller",
        )
    })?;
    if let Some(t) = &input.client_token {
        tokens::validate(t)?;
    }
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    let name = input.service_name.clone();
    let key = keys::service(&ctx.region, &cluster, &name);
    let fingerprint = tokens::fingerprint(&serde_json::json!([
        name,
        task_definition,
        input.desired_count,
        format!("{scheduling:?}"),
        format!("{:?}", input.load_balancers),
        format!("{:?}", input.tags)
    ]));
    let service = app
        .db
        .transact(|db| {
            let cluster_record = existing_active_cluster(db, &ctx, &cluster)?;
            let existing = db.get::<Service>(&key);
            let seen = match &input.client_token {
                Some(token) => Some(tokens::check(db, &ctx, &cluster, token, &fingerprint)?),
                None => None,
            };
            if let Some(e) = &existing
                && matches!(
                    e.value.status,
                    ServiceStatus::Active | ServiceStatus::Draining
                )
            {
                if matches!(seen, Some(tokens::Seen::Retry(_))) {
                    return Ok((Writes::new(), e.value.clone()));
                }
                return Err(ApiError::invalid_parameter(
                    "Creation of service was not idempotent.",
                ));
            }
            let definition = find_runnable(db, &ctx, "taskDefinition", &task_definition)?;
            if let Some(lbs) = &input.load_balancers {
                check_load_balancers(db, &ctx, lbs, &definition.value)?;
            }
            let mut service = Service::new(
                ctx.arn(ResourceKind::Service, format!("{cluster}/{name}")),
                &name,
                ctx.cluster_arn(&cluster),
                ctx.now,
            );
            service.load_balancers = input.load_balancers.clone().unwrap_or_default();
            service.service_registries = input.service_registries.clone().unwrap_or_default();
            service.desired_count = input.desired_count.unwrap_or(0);
            service.launch_type = Some(launch_type);
            service.task_definition = Some(definition.value.definition.task_definition_arn.clone());
            service.deployment_configuration = Some(
                input
                    .deployment_configuration
                    .clone()
                    .unwrap_or_default()
                    .resolved(scheduling),
            );
            service.role_arn = input.role.clone().map(|r| {
                if r.starts_with("arn:") {
                    r
                } else {
                    format!("arn:aws:iam::{}:role/{r}", ctx.account)
                }
            });
            service.placement_constraints = input.placement_constraints.clone().unwrap_or_default();
            service.placement_strategy = input.placement_strategy.clone().unwrap_or_default();
            service.network_configuration = input.network_configuration.clone();
            service.health_check_grace_period_seconds = input
                .health_check_grace_period_seconds
                .or((!service.load_balancers.is_empty()).then_some(0));
            service.scheduling_strategy = scheduling;
            service.deployment_controller = Some(DeploymentController { r#type: controller });
            service.tags = input.tags.clone().filter(|t| !t.is_empty());
            service.created_by = Some(ctx.principal.clone());
            service.enable_ecs_managed_tags = input.enable_ecs_managed_tags.unwrap_or(false);
            service.propagate_tags = Some(input.propagate_tags.unwrap_or(PropagateTags::None));
            service.enable_execute_command = input.enable_execute_command.unwrap_or(false);
            service.availability_zone_rebalancing = input.availability_zone_rebalancing;
            let deployment = new_deployment(&ctx, &service, launch_type);
            service.deployments = vec![deployment];
            let mut writes = Writes::new()
                .expect_unchanged(&cluster_record)
                .expect(&key, existing.as_ref().map_or(0, |e| e.revision))
                .put(&key, service.clone());
            if let (Some(token), Some(tokens::Seen::New { revision })) = (&input.client_token, seen)
            {
                writes = tokens::remember(
                    writes,
                    &ctx,
                    &cluster,
                    token,
                    &fingerprint,
                    revision,
                    vec![service.service_arn.clone()],
                );
            }
            Ok((writes, service))
        })
        .await?;
    Ok(ServiceResponse {
        service: present(&app.db, &ctx, &cluster, service, true),
    })
}

pub async fn update(
    app: App,
    ctx: Ctx,
    input: UpdateServiceRequest,
) -> Result<ServiceResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    refuse_capacity_providers(input.capacity_provider_strategy.as_deref())?;
    let service = app
        .db
        .transact(|db| {
            let current = find_service(db, &ctx, &cluster, &input.service)?.ok_or_else(|| ApiError::service_not_found("Service not found."))?;
            if current.value.status != ServiceStatus::Active {
                return Err(ApiError::service_not_active("Service was not ACTIVE."));
            }
            let mut service = current.value.clone();
            let scheduling = service.scheduling_strategy;
            let controller = service.controller();
            if let Some(c) = input.deployment_controller
                && c.r#type != controller
            {
                return Err(ApiError::invalid_parameter("deploymentController: Berth cannot change a service's deployment controller"));
            }
            validate_update_service(&ServiceRequestMembers {
                service_name: None,
                desired_count: input.desired_count,
                scheduling_strategy: scheduling,
                deployment_controller: controller,
                launch_type: None,
                capacity_provider_strategy: input.capacity_provider_strategy.as_deref(),
                deployment_configuration: input.deployment_configuration.as_ref(),
                placement_constraints: input.placement_constraints.as_deref(),
                placement_strategy: input.placement_strategy.as_deref(),
                network_configuration: input.network_configuration.as_ref(),
                health_check_grace_period_seconds: input.health_check_grace_period_seconds,
                load_balancers: input.load_balancers.as_deref(),
                service_registries: input.service_registries.as_deref(),
                tags: None,
            })?;
            let mut redeploy = input.force_new_deployment.unwrap_or(false);
            let definition = match &input.task_definition {
                Some(reference) => {
                    let d = find_runnable(db, &ctx, "taskDefinition", reference)?;
                    if service.task_definition.as_deref() != Some(d.value.definition.task_definition_arn.as_str()) {
                        redeploy = true;
                    }
                    Some(d)
                }
                None => None,
            };
            if let Some(lbs) = &input.load_balancers {
                let checked = match &definition {
                    Some(d) => d.value.clone(),
                    None => find_runnable(db, &ctx, "taskDefinition", service.task_definition.as_deref().unwrap_or_default()).map(|d| d.value).map_err(|_| ApiError::invalid_parameter("loadBalancers: the service's task definition is no longer ACTIVE; give a taskDefinition too"))?,
                };
                check_load_balancers(db, &ctx, lbs, &checked)?;
                if *lbs != service.load_balancers {
                    redeploy = true;
                }
                service.load_balancers = lbs.clone();
            }
            if let Some(d) = &definition {
                service.task_definition = Some(d.value.definition.task_definition_arn.clone());
            }
            if let Some(n) = input.desired_count {
                service.desired_count = n;
            }
            if let Some(c) = &input.deployment_configuration {
                service.deployment_configuration = Some(merge_deployment_configuration(service.deployment_configuration.as_ref(), c).resolved(scheduling));
            }
            if let Some(c) = &input.placement_constraints {
                service.placement_constraints = c.clone();
            }
            if let Some(s) = &input.placement_strategy {
                service.placement_strategy = s.clone();
            }
            if let Some(n) = &input.network_configuration {
                if service.network_configuration.as_ref() != Some(n) {
                    redeploy = true;
                }
                service.network_configuration = Some(n.clone());
            }
            if let Some(g) = input.health_check_grace_period_seconds {
                service.health_check_grace_period_seconds = Some(g);
            }
            if let Some(r) = &input.service_registries {
                service.service_registries = r.clone();
            }
            if let Some(e) = input.enable_execute_command {
                service.enable_execute_command = e;
            }
            if let Some(e) = input.enable_ecs_managed_tags {
                service.enable_ecs_managed_tags = e;
            }
            if let Some(p) = input.propagate_tags {
                service.propagate_tags = Some(p);
            }
            if let Some(a) = input.availability_zone_rebalancing {
                service.availability_zone_rebalancing = Some(a);
            }
            let launch_type = service.launch_type.unwrap_or(LaunchType::Ec2);
            if redeploy {
                for d in &mut service.deployments {
                    if d.status == DeploymentStatus::Primary {
                        d.status = DeploymentStatus::Active;
                        d.updated_at = ctx.now;
                    }
                }
                let deployment = new_deployment(&ctx, &service, launch_type);
                service.deployments.insert(0, deployment);
            } else {
                let desired = service.desired_count;
                if let Some(primary) = service.primary_deployment_mut()
                    && primary.desired_count != desired
                {
                    primary.desired_count = desired;
                    primary.updated_at = ctx.now;
                }
            }
            Ok((Writes::new().expect_unchanged(&current).put(&current.key, service.clone()), service))
        })
        .await?;
    Ok(ServiceResponse {
        service: present(&app.db, &ctx, &cluster, service, true),
    })
}

/// UpdateService's `deploymentConfiguration` replaces the members it gives.
fn merge_deployment_configuration(
    current: Option<&DeploymentConfiguration>,
    given: &DeploymentConfiguration,
) -> DeploymentConfiguration {
    let mut out = current.cloned().unwrap_or_default();
    if given.maximum_percent.is_some() {
        out.maximum_percent = given.maximum_percent;
    }
    if given.minimum_healthy_percent.is_some() {
        out.minimum_healthy_percent = given.minimum_healthy_percent;
    }
    if given.deployment_circuit_breaker.is_some() {
        out.deployment_circuit_breaker = given.deployment_circuit_breaker.clone();
    }
    if given.alarms.is_some() {
        out.alarms = given.alarms.clone();
    }
    if given.strategy.is_some() {
        out.strategy = given.strategy;
    }
    if given.bake_time_in_minutes.is_some() {
        out.bake_time_in_minutes = given.bake_time_in_minutes;
    }
    if given.lifecycle_hooks.is_some() {
        out.lifecycle_hooks = given.lifecycle_hooks.clone();
    }
    if given.linear_configuration.is_some() {
        out.linear_configuration = given.linear_configuration.clone();
    }
    if given.canary_configuration.is_some() {
        out.canary_configuration = given.canary_configuration.clone();
    }
    if given.early_success_criteria.is_some() {
        out.early_success_criteria = given.early_success_criteria.clone();
    }
    out
}

pub async fn delete(
    app: App,
    ctx: Ctx,
    input: DeleteServiceRequest,
) -> Result<ServiceResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    let force = input.force.unwrap_or(false);
    let service = app
        .db
        .transact(|db| {
            let current = find_service(db, &ctx, &cluster, &input.service)?
                .filter(|s| s.value.status != ServiceStatus::Inactive)
                .ok_or_else(|| ApiError::service_not_found("Service not found."))?;
            let mut service = current.value.clone();
            if service.status == ServiceStatus::Draining {
                return Ok((Writes::new(), service));
            }
            if service.scheduling_strategy == SchedulingStrategy::Replica
                && service.desired_count > 0
                && !force
            {
                return Err(ApiError::invalid_parameter(
                    "The service cannot be stopped while it is scaled above 0.",
                ));
            }
            service.desired_count = 0;
            for d in &mut service.deployments {
                d.desired_count = 0;
                d.updated_at = ctx.now;
            }
            let live = !live_tasks(db, &ctx, &cluster, &service.service_name).is_empty();
            service.status = if live {
                ServiceStatus::Draining
            } else {
                ServiceStatus::Inactive
            };
            Ok((
                Writes::new()
                    .expect_unchanged(&current)
                    .put(&current.key, service.clone()),
                service,
            ))
        })
        .await?;
    if service.status != ServiceStatus::Draining {
        return Ok(ServiceResponse {
            service: present(&app.db, &ctx, &cluster, service, true),
        });
    }
    // Stop the service's tasks one transaction each: every stop may give resources back to an
    // instance, and two releases to one instance must not be computed from the same read.
    let name = service.service_name.clone();
    let reason = format!("Task stopped because service {name} was deleted.");
    let ids: Vec<String> = live_tasks(&app.db, &ctx, &cluster, &name)
        .into_iter()
        .map(|t| t.key)
        .collect();
    for key in ids {
        app.db
            .transact(|db| match db.get::<Task>(&key) {
                Some(task) if task.value.desired_status != DesiredStatus::Stopped => Ok((
                    request_stop(
                        db,
                        &ctx,
                        &cluster,
                        &task,
                        TaskStopCode::ServiceSchedulerInitiated,
                        &reason,
                    )
                    .0,
                    (),
                )),
                _ => Ok((Writes::new(), ())),
            })
            .await?;
    }
    let service = settle_draining(&app.db, &ctx, &cluster, &name)
        .await?
        .unwrap_or(service);
    Ok(ServiceResponse {
        service: present(&app.db, &ctx, &cluster, service, true),
    })
}

/// Makes a DRAINING service INACTIVE once none of its tasks is left; returns the service.
pub async fn settle_draining(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    name: &str,
) -> Result<Option<Service>, ApiError> {
    let key = keys::service(&ctx.region, cluster, name);
    db.transact(|db| {
        let Some(current) = db.get::<Service>(&key) else {
            return Ok((Writes::new(), None));
        };
        let mut service = current.value.clone();
        if service.status != ServiceStatus::Draining
            || !live_tasks(db, ctx, cluster, name).is_empty()
        {
            return Ok((Writes::new(), Some(service)));
        }
        service.status = ServiceStatus::Inactive;
        Ok((
            Writes::new()
                .expect_unchanged(&current)
                .put(&key, service.clone()),
            Some(service),
        ))
    })
    .await
}

pub async fn describe(
    app: App,
    ctx: Ctx,
    input: DescribeServicesRequest,
) -> Result<DescribeServicesResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    if input.services.is_empty() || input.services.len() > 10 {
        return Err(ApiError::invalid_parameter(
            "services: give between 1 and 10 services",
        ));
    }
    let include_tags = super::resolve::includes_tags(input.include.as_deref(), &[])?;
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for reference in &input.services {
        match find_service(&app.db, &ctx, &cluster, reference)? {
            Some(s) => services.push(present(&app.db, &ctx, &cluster, s.value, include_tags)),
            None => {
                failures.push(Failure::missing(ctx.arn_of_reference(
                    ResourceKind::Service,
                    &cluster,
                    reference,
                )));
            }
        }
    }
    Ok(DescribeServicesResponse { services, failures })
}

pub async fn list(
    app: App,
    ctx: Ctx,
    input: ListServicesRequest,
) -> Result<ListServicesResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    let size = page_size(Some(input.max_results.unwrap_or(10)), 100)?;
    let after = after_key(input.next_token.as_deref())?;
    let launch_type = match input.launch_type.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<LaunchType>(serde_json::Value::String(s.to_string()))
                .map_err(|_| {
                    ApiError::invalid_parameter(format!(
                        "launchType: '{s}' is not one of EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES"
                    ))
                })?,
        ),
    };
    let scheduling = match input.scheduling_strategy.as_deref() {
        None => None,
        Some("REPLICA") => Some(SchedulingStrategy::Replica),
        Some("DAEMON") => Some(SchedulingStrategy::Daemon),
        Some(s) => {
            return Err(ApiError::invalid_parameter(format!(
                "schedulingStrategy: '{s}' is not one of REPLICA, DAEMON"
            )));
        }
    };
    let mut matching = Vec::new();
    app.db
        .scan::<Service>(&keys::services(&ctx.region, &cluster), |key, s| {
            let wanted = s.status != ServiceStatus::Inactive
                && launch_type.is_none_or(|l| s.launch_type == Some(l))
                && scheduling.is_none_or(|x| s.scheduling_strategy == x);
            if wanted {
                matching.push((key.to_string(), s.service_arn.clone()));
            }
            true
        });
    let page = paginate(matching, after.as_deref(), size);
    Ok(ListServicesResponse {
        service_arns: page.items,
        next_token: page.next_token,
    })
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
    fn deployment_ids_have_nineteen_digits() {
        let id = new_deployment_id();
        let digits = id.strip_prefix("ecs-svc/").unwrap();
        assert_eq!(digits.len(), 19);
        assert!(digits.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn service_references() {
        let c = ctx();
        assert_eq!(
            service_name(&c, "web", "service", "api")
                .unwrap()
                .as_deref(),
            Some("api")
        );
        assert_eq!(
            service_name(
                &c,
                "web",
                "service",
                "arn:aws:ecs:us-east-1:123456789012:service/web/api"
            )
            .unwrap()
            .as_deref(),
            Some("api")
        );
        assert_eq!(
            service_name(
                &c,
                "web",
                "service",
                "arn:aws:ecs:us-east-1:123456789012:service/api"
            )
            .unwrap()
            .as_deref(),
            Some("api")
        );
        assert_eq!(
            service_name(
                &c,
                "web",
                "service",
                "arn:aws:ecs:us-east-1:123456789012:service/other/api"
            )
            .unwrap(),
            None
        );
        assert_eq!(
            service_name(&c, "web", "service", "bad name").unwrap(),
            None
        );
        assert!(
            service_name(
                &c,
                "web",
                "service",
                "arn:aws:ecs:us-east-1:123456789012:task/web/x"
            )
            .is_err()
        );
    }

    #[test]
    fn partial_deployment_configuration_keeps_the_rest() {
        let current = DeploymentConfiguration::with_ecs_defaults(SchedulingStrategy::Replica);
        let given = DeploymentConfiguration {
            minimum_healthy_percent: Some(50),
            ..Default::default()
        };
        let merged = merge_deployment_configuration(Some(&current), &given);
        assert_eq!(merged.minimum_healthy_percent, Some(50));
        assert_eq!(merged.maximum_percent, Some(200));
    }
}
