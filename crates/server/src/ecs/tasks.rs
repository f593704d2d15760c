//! RunTask, StartTask, StopTask, DescribeTasks, ListTasks, and the agent-facing
//! SubmitTaskStateChange and SubmitContainerStateChange.
//!
//! Placing a task and taking its resources from the instance happen in one transaction that
//! compares every instance it touches; releasing them happens in the transaction that makes the
//! task STOPPED. Until the agent channel exists, a task that no agent has started yet (still
//! PENDING) stops at once when asked to.

use super::candidates::{Candidates, Instance, candidates_of, cluster_candidates};
use super::instances::find as find_instance;
use super::paging::{after_key, page_size, paginate};
use super::resolve::{active_cluster, existing_active_cluster, resource_id};
use super::run_desk::{self, Order};
use super::task_definitions::{find_runnable, parse_reference};
use super::tokens;
use crate::clock::new_id;
use crate::db::{Db, Versioned, Writes};
use crate::records::{StoredTaskDefinition, keys};
use crate::{App, Ctx};
use berth_api::ApiError;
use berth_api::ecs::tasks::*;
use berth_model::ResourceKind;
use berth_model::common::{Failure, LaunchType, Tag, validate_tags};
use berth_model::container_instance::{ContainerInstance, ContainerInstanceStatus, Resources};
use berth_model::placement::{
    Constraint, Strategy, check_constraints, check_strategies, check_task_definition_constraints,
};
use berth_model::task::{
    Container, ContainerOverride, ContainerStatus, DesiredStatus, Task, TaskOverride, TaskStatus,
    TaskStopCode,
};
use berth_model::task_definition::TaskDefinition;
use berth_scheduler::{Plan, Request, place, place_on, run_task_default, task_demand};
use std::ops::Range;

/// What every new task of one request shares.
#[derive(Debug, Clone)]
pub struct TaskParams {
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub overrides: Option<TaskOverride>,
    pub tags: Vec<Tag>,
    pub enable_execute_command: bool,
    /// The request's checked `placementStrategy` (empty: ECS's RunTask default).
    pub strategies: Vec<Strategy>,
    /// The request's checked `placementConstraints`; the task definition's join them.
    pub constraints: Vec<Constraint>,
}

impl TaskParams {
    /// The tasks' group: the request's, else `family:FAMILY`.
    fn group_for(&self, definition: &TaskDefinition) -> String {
        self.group
            .clone()
            .unwrap_or_else(|| format!("family:{}", definition.family))
    }

    pub fn validate(&self, definition: &StoredTaskDefinition) -> Result<(), ApiError> {
        if let Some(s) = &self.started_by
            && (s.len() > 128
                || !s.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || b == b'-'
                        || b == b'_'
                        || b == b'/'
                        || b == b'.'
                        || b == b':'
                }))
        {
            return Err(ApiError::invalid_parameter(
                "startedBy: up to 128 letters, numbers, hyphens, underscores, periods, colons and slashes",
            ));
        }
        if let Some(g) = &self.group
            && (g.is_empty() || g.len() > 255)
        {
            return Err(ApiError::invalid_parameter(
                "group: must be 1 to 255 characters",
            ));
        }
        validate_tags("tags", &self.tags)?;
        for (i, o) in self
            .overrides
            .iter()
            .flat_map(|o| o.container_overrides.iter().flatten())
            .enumerate()
        {
            let name = o.name.as_deref().unwrap_or_default();
            if definition.definition.container(name).is_none() {
                return Err(ApiError::invalid_parameter(format!(
                    "overrides.containerOverrides[{i}].name: container '{name}' is not in task definition {}",
                    definition.definition.family_revision()
                )));
            }
        }
        Ok(())
    }
}

/// Where new tasks may go.
pub enum Targets {
    /// Anywhere in the cluster that has room (RunTask).
    Anywhere,
    /// One task on each of these instance ids (StartTask).
    Named(Vec<String>),
}

fn new_task(
    ctx: &Ctx,
    cluster: &str,
    instance: &ContainerInstance,
    definition: &StoredTaskDefinition,
    params: &TaskParams,
    demand: &Resources,
) -> Task {
    let d = &definition.definition;
    let id = new_id();
    let task_arn = ctx.arn(ResourceKind::Task, format!("{cluster}/{id}"));
    let mut task = Task::new(
        &task_arn,
        ctx.cluster_arn(cluster),
        &d.task_definition_arn,
        ctx.now,
    );
    task.container_instance_arn = Some(instance.container_instance_arn.clone());
    task.availability_zone = instance
        .attribute("ecs.availability-zone")
        .flatten()
        .map(str::to_string);
    task.last_status = TaskStatus::Pending;
    task.desired_status = DesiredStatus::Running;
    task.launch_type = Some(LaunchType::Ec2);
    task.cpu = Some(demand.cpu.to_string());
    task.memory = Some(demand.memory_mib.to_string());
    task.group = Some(params.group_for(d));
    task.started_by = params.started_by.clone();
    task.enable_execute_command = params.enable_execute_command;
    task.tags = (!params.tags.is_empty()).then(|| params.tags.clone());
    let mut overrides = params.overrides.clone().unwrap_or_default();
    let container_overrides = overrides.container_overrides.get_or_insert_with(Vec::new);
    for c in &d.container_definitions {
        let name = c.name.clone().unwrap_or_default();
        if !container_overrides
            .iter()
            .any(|o| o.name.as_deref() == Some(name.as_str()))
        {
            container_overrides.push(ContainerOverride {
                name: Some(name.clone()),
                ..Default::default()
            });
        }
        let container_arn = ctx
            .arn(ResourceKind::Task, format!("{cluster}/{id}/{}", new_id()))
            .replacen(":task/", ":container/", 1);
        let mut container = Container::new(
            container_arn,
            &task_arn,
            &name,
            c.image.clone().unwrap_or_default(),
        );
        container.last_status = ContainerStatus::Pending;
        container.cpu = Some(c.cpu.unwrap_or(0).to_string());
        container.memory = c.memory.map(|m| m.to_string());
        container.memory_reservation = c.memory_reservation.map(|m| m.to_string());
        task.containers.push(container);
    }
    overrides
        .inference_accelerator_overrides
        .get_or_insert_with(Vec::new);
    task.overrides = Some(overrides);
    task
}

/// A fresh seed for one plan's random choices, taken from the id generator.
fn plan_seed() -> u64 {
    u64::from_str_radix(&new_id()[..16], 16).unwrap_or_default()
}

/// Plans new tasks and the instance updates they need, against the current view: the
/// request's placement strategies and constraints plus the task definition's constraints,
/// through [`berth_scheduler`].
pub fn plan_tasks(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    definition: &StoredTaskDefinition,
    params: &TaskParams,
    count: usize,
    targets: &Targets,
) -> Result<(Writes, Vec<Task>, Vec<Failure>), ApiError> {
    let mut failures = Vec::new();
    let placement = place_tasks(
        db,
        ctx,
        cluster,
        definition,
        params,
        count,
        targets,
        &mut failures,
    )?;
    let tasks = placement.tasks(
        0..placement.len(),
        ctx,
        cluster,
        definition,
        params,
        &mut failures,
    );
    let writes = task_writes(
        ctx,
        cluster,
        &tasks,
        placement.instance_writes(Writes::new()),
    );
    Ok((writes, tasks, failures))
}

/// Where the tasks of one placement go: for each, the candidate it took or why none could,
/// with the candidates and what each task takes.
pub struct Placement {
    candidates: Candidates,
    plan: Plan,
    demand: Resources,
}

impl Placement {
    /// How many tasks were placed or refused.
    pub fn len(&self) -> usize {
        self.plan.placements.len()
    }

    /// The tasks of the placements in `range`, made for `params` at `ctx`; the placements in it
    /// that found no instance add their reasons to `failures` (each once).
    pub fn tasks(
        &self,
        range: Range<usize>,
        ctx: &Ctx,
        cluster: &str,
        definition: &StoredTaskDefinition,
        params: &TaskParams,
        failures: &mut Vec<Failure>,
    ) -> Vec<Task> {
        let mut fail = |failure: Failure| {
            if !failures
                .iter()
                .any(|f| f.arn == failure.arn && f.reason == failure.reason)
            {
                failures.push(failure);
            }
        };
        let mut tasks = Vec::new();
        for outcome in &self.plan.placements[range] {
            match outcome {
                Ok(i) => tasks.push(new_task(
                    ctx,
                    cluster,
                    &self.candidates.instance(*i).value,
                    definition,
                    params,
                    &self.demand,
                )),
                Err(miss) if miss.rejections.is_empty() => {
                    fail(Failure::new(ctx.cluster_arn(cluster), "RESOURCE:NONE"));
                }
                Err(miss) => {
                    for r in &miss.rejections {
                        fail(
                            Failure::new(
                                self.candidates.get(r.candidate).id.clone(),
                                r.reason.code(),
                            )
                            .with_detail(r.reason.to_string()),
                        );
                    }
                }
            }
        }
        tasks
    }

    /// Adds to `writes` what the instances that took tasks have left, each compared with the
    /// revision placement read.
    pub fn instance_writes(&self, mut writes: Writes) -> Writes {
        for (&i, remaining) in &self.plan.remaining {
            let instance = self.candidates.instance(i);
            let mut updated = ContainerInstance::clone(&instance.value);
            updated.remaining_resources = remaining.to_wire();
            updated.version += 1;
            writes = writes
                .expect_unchanged(instance)
                .put(&instance.key, updated);
        }
        writes
    }
}

/// Adds the new `tasks` to `writes`.
pub fn task_writes(ctx: &Ctx, cluster: &str, tasks: &[Task], mut writes: Writes) -> Writes {
    for task in tasks {
        writes = writes.put(
            &keys::task(&ctx.region, cluster, task_id(task)),
            task.clone(),
        );
    }
    writes
}

/// Places `count` tasks of `definition` with `params` on `targets`, against the view plus the
/// writes of plans not yet committed; named instances that cannot take tasks at all go to
/// `failures`.
#[allow(clippy::too_many_arguments)]
pub fn place_tasks(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    definition: &StoredTaskDefinition,
    params: &TaskParams,
    count: usize,
    targets: &Targets,
    failures: &mut Vec<Failure>,
) -> Result<Placement, ApiError> {
    let d = &definition.definition;
    let demand = task_demand(d, params.overrides.as_ref());
    let mut constraints = params.constraints.clone();
    constraints.extend(check_task_definition_constraints(
        params.constraints.len(),
        &d.placement_constraints,
    )?);
    let request = Request {
        demand: demand.clone(),
        group: params.group_for(d),
        strategies: if params.strategies.is_empty() {
            run_task_default()
        } else {
            params.strategies.clone()
        },
        constraints,
        required_attributes: d.requires_attributes.clone(),
        seed: plan_seed(),
    };
    let (candidates, named) = match targets {
        Targets::Anywhere => {
            let mut all = cluster_candidates(db, &ctx.region, cluster)?;
            if all
                .instances()
                .all(|i| i.value.status == ContainerInstanceStatus::Inactive)
            {
                return Err(ApiError::invalid_parameter(
                    "No Container Instances were found in your cluster.",
                ));
            }
            all.retain(|i| i.status.accepts_new_tasks());
            (all, None)
        }
        Targets::Named(ids) => {
            let mut found: Vec<Instance> = Vec::new();
            let mut indexes = Vec::new();
            for id in ids {
                match db.get_shared::<ContainerInstance>(&keys::instance(&ctx.region, cluster, id))
                {
                    Some(i) if i.value.status.accepts_new_tasks() => {
                        let at = match found.iter().position(|f| f.key == i.key) {
                            Some(at) => at,
                            None => {
                                found.push(i);
                                found.len() - 1
                            }
                        };
                        indexes.push(at);
                    }
                    Some(i) => failures.push(Failure::new(
                        i.value.container_instance_arn.clone(),
                        if i.value.agent_connected {
                            "INACTIVE"
                        } else {
                            "AGENT"
                        },
                    )),
                    None => failures.push(Failure::missing(
                        ctx.arn(ResourceKind::ContainerInstance, format!("{cluster}/{id}")),
                    )),
                }
            }
            (candidates_of(db, found)?, Some(indexes))
        }
    };
    let plan = match &named {
        None => place(&candidates.all(), &request, count),
        Some(indexes) => place_on(&candidates.all(), &request, indexes),
    };
    Ok(Placement {
        candidates,
        plan,
        demand,
    })
}

fn task_id(task: &Task) -> &str {
    task.task_arn.rsplit('/').next().unwrap_or_default()
}

fn check_launch_type(launch_type: Option<&str>) -> Result<(), ApiError> {
    match launch_type {
        None | Some("EC2") | Some("EXTERNAL") => Ok(()),
        Some(other) => Err(ApiError::invalid_parameter(format!(
            "launchType: '{other}' is not supported; Berth runs tasks on container instances (EC2 or EXTERNAL)"
        ))),
    }
}

pub async fn run(app: App, ctx: Ctx, input: RunTaskRequest) -> Result<TasksResponse, ApiError> {
    let order = checked_order(&app, ctx, input).await?;
    let (tasks, failures) = run_desk::submit(&app, order).await?;
    Ok(TasksResponse { tasks, failures })
}

/// A RunTask call whose input passed every check that needs no plan, ready for the desk.
pub async fn checked_order(app: &App, ctx: Ctx, input: RunTaskRequest) -> Result<Order, ApiError> {
    check_launch_type(input.launch_type.as_deref())?;
    let count = input.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid_parameter(format!(
            "count: must be between 1 and 10, got {count}"
        )));
    }
    if let Some(t) = &input.client_token {
        tokens::validate(t)?;
    }
    let strategies = check_strategies(
        "placementStrategy",
        input.placement_strategy.as_deref().unwrap_or_default(),
    )?;
    let constraints = check_constraints(
        "placementConstraints",
        input.placement_constraints.as_deref().unwrap_or_default(),
    )?;
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    let params = TaskParams {
        group: input.group.clone(),
        started_by: input.started_by.clone(),
        overrides: input.overrides.clone(),
        tags: input.tags.clone().unwrap_or_default(),
        enable_execute_command: input.enable_execute_command.unwrap_or(false),
        strategies,
        constraints,
    };
    let fingerprint = tokens::fingerprint(&serde_json::json!([
        input.task_definition,
        count,
        input.group,
        input.started_by,
        format!("{:?}", input.overrides),
        format!("{:?}", input.tags),
        input.placement_strategy,
        input.placement_constraints
    ]));
    Ok(Order {
        ctx,
        cluster,
        input,
        params,
        count: count as usize,
        fingerprint,
    })
}

pub async fn start(app: App, ctx: Ctx, input: StartTaskRequest) -> Result<TasksResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    if input.container_instances.is_empty() || input.container_instances.len() > 10 {
        return Err(ApiError::invalid_parameter(
            "containerInstances: give between 1 and 10 container instances",
        ));
    }
    let mut ids = Vec::new();
    for (i, reference) in input.container_instances.iter().enumerate() {
        ids.push(resource_id(
            &ctx,
            ResourceKind::ContainerInstance,
            &format!("containerInstances[{i}]"),
            reference,
            &cluster,
        )?);
    }
    let params = TaskParams {
        group: input.group.clone(),
        started_by: input.started_by.clone(),
        overrides: input.overrides.clone(),
        tags: input.tags.clone().unwrap_or_default(),
        enable_execute_command: input.enable_execute_command.unwrap_or(false),
        strategies: Vec::new(),
        constraints: Vec::new(),
    };
    let (tasks, failures) = app
        .db
        .transact(|db| {
            let cluster_record = existing_active_cluster(db, &ctx, &cluster)?;
            let definition = find_runnable(db, &ctx, "taskDefinition", &input.task_definition)?;
            params.validate(&definition.value)?;
            let (writes, tasks, failures) = plan_tasks(
                db,
                &ctx,
                &cluster,
                &definition.value,
                &params,
                ids.len(),
                &Targets::Named(ids.clone()),
            )?;
            // A cluster being deleted concurrently (on any server) makes this conflict.
            Ok((writes.expect_unchanged(&cluster_record), (tasks, failures)))
        })
        .await?;
    Ok(TasksResponse { tasks, failures })
}

/// Adds the writes that make `task` STOPPED and give its resources back to its instance.
pub fn finish(db: &Db, ctx: &Ctx, cluster: &str, task: &mut Task, writes: Writes) -> Writes {
    let mut writes = writes;
    task.advance_to(TaskStatus::Stopped, ctx.now);
    for c in &mut task.containers {
        c.last_status = ContainerStatus::Stopped;
    }
    let Some(instance_arn) = task.container_instance_arn.clone() else {
        return writes;
    };
    let instance_id = instance_arn.rsplit('/').next().unwrap_or_default();
    let Some(instance) =
        db.get::<ContainerInstance>(&keys::instance(&ctx.region, cluster, instance_id))
    else {
        return writes;
    };
    let definition = definition_of(db, ctx, task);
    if let (Some(definition), Ok(mut remaining), Ok(registered)) = (
        definition,
        instance.value.remaining(),
        instance.value.registered(),
    ) {
        let demand = task_demand(&definition.definition, task.overrides.as_ref());
        remaining.release_to(&demand, &registered);
        let mut updated = instance.value.clone();
        updated.remaining_resources = remaining.to_wire();
        updated.version += 1;
        writes = writes
            .expect_unchanged(&instance)
            .put(&instance.key, updated);
    }
    writes
}

fn definition_of(db: &Db, ctx: &Ctx, task: &Task) -> Option<StoredTaskDefinition> {
    let (family, revision) =
        parse_reference(ctx, "taskDefinitionArn", &task.task_definition_arn).ok()?;
    db.get::<StoredTaskDefinition>(&keys::task_definition(&ctx.region, &family, revision?))
        .map(|d| d.value)
}

fn find_task(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    member: &str,
    reference: &str,
) -> Result<Option<Versioned<Task>>, ApiError> {
    let id = resource_id(ctx, ResourceKind::Task, member, reference, cluster)?;
    Ok(db.get::<Task>(&keys::task(&ctx.region, cluster, &id)))
}

/// Asks a task to stop with `code` and `reason`; returns the updated task and its writes.
pub fn request_stop(
    db: &Db,
    ctx: &Ctx,
    cluster: &str,
    current: &Versioned<Task>,
    code: TaskStopCode,
    reason: &str,
) -> (Writes, Task) {
    let mut task = current.value.clone();
    let mut writes = Writes::new().expect_unchanged(current);
    if task.desired_status != DesiredStatus::Stopped {
        task.desired_status = DesiredStatus::Stopped;
        task.stop_code = Some(code);
        task.stopped_reason = Some(reason.to_string());
        task.stopping_at = Some(ctx.now);
        task.version += 1;
        if task.last_status.is_pending() {
            writes = finish(db, ctx, cluster, &mut task, writes);
        }
    }
    (writes.put(&current.key, task.clone()), task)
}

pub async fn stop(app: App, ctx: Ctx, input: StopTaskRequest) -> Result<TaskResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    if input.reason.as_ref().is_some_and(|r| r.len() > 255) {
        return Err(ApiError::invalid_parameter(
            "reason: at most 255 characters",
        ));
    }
    let reason = input
        .reason
        .clone()
        .unwrap_or_else(|| "Task stopped by user".to_string());
    let task = app
        .db
        .transact(|db| {
            let current = find_task(db, &ctx, &cluster, "task", &input.task)?.ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "task: '{}' was not found in cluster '{cluster}'",
                    input.task
                ))
            })?;
            let (writes, task) = request_stop(
                db,
                &ctx,
                &cluster,
                &current,
                TaskStopCode::UserInitiated,
                &reason,
            );
            Ok((writes, task))
        })
        .await?;
    Ok(TaskResponse { task })
}

pub async fn describe(
    app: App,
    ctx: Ctx,
    input: DescribeTasksRequest,
) -> Result<TasksResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    if input.tasks.is_empty() || input.tasks.len() > 100 {
        return Err(ApiError::invalid_parameter(
            "tasks: give between 1 and 100 tasks",
        ));
    }
    let include_tags = super::resolve::includes_tags(input.include.as_deref(), &[])?;
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for (i, reference) in input.tasks.iter().enumerate() {
        match find_task(&app.db, &ctx, &cluster, &format!("tasks[{i}]"), reference)? {
            Some(mut t) => {
                if !include_tags {
                    t.value.tags = None;
                }
                tasks.push(t.value);
            }
            None => {
                failures.push(Failure::missing(ctx.arn_of_reference(
                    ResourceKind::Task,
                    &cluster,
                    reference,
                )));
            }
        }
    }
    Ok(TasksResponse { tasks, failures })
}

pub async fn list(
    app: App,
    ctx: Ctx,
    input: ListTasksRequest,
) -> Result<ListTasksResponse, ApiError> {
    let cluster = active_cluster(&app.db, &ctx, input.cluster.as_deref())
        .await?
        .value
        .cluster_name;
    let size = page_size(input.max_results, 100)?;
    let after = after_key(input.next_token.as_deref())?;
    let desired = match input.desired_status.as_deref() {
        None => DesiredStatus::Running,
        Some(s) => DesiredStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "desiredStatus: '{s}' is not one of RUNNING, PENDING, STOPPED"
            ))
        })?,
    };
    check_launch_type(input.launch_type.as_deref())?;
    let instance_arn = match &input.container_instance {
        Some(reference) => Some(
            find_instance(&app.db, &ctx, &cluster, "containerInstance", reference)?
                .ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "containerInstance: '{reference}' is not registered in cluster '{cluster}'"
                    ))
                })?
                .value
                .container_instance_arn,
        ),
        None => None,
    };
    let family_prefix = input
        .family
        .as_ref()
        .map(|f| ctx.arn(ResourceKind::TaskDefinition, format!("{f}:")));
    let service_group = input.service_name.as_ref().map(|s| format!("service:{s}"));
    let mut matching = Vec::new();
    app.db.scan_after::<Task>(
        &keys::tasks(&ctx.region, &cluster),
        after.as_deref(),
        |key, t| {
            let wanted = t.desired_status == desired
                && instance_arn
                    .as_ref()
                    .is_none_or(|a| t.container_instance_arn.as_ref() == Some(a))
                && family_prefix
                    .as_ref()
                    .is_none_or(|p| t.task_definition_arn.starts_with(p.as_str()))
                && input
                    .started_by
                    .as_ref()
                    .is_none_or(|s| t.started_by.as_ref() == Some(s))
                && service_group
                    .as_ref()
                    .is_none_or(|g| t.group.as_ref() == Some(g));
            if wanted {
                matching.push((key.to_string(), t.task_arn.clone()));
            }
            // One more than a page tells whether there is a next one.
            matching.len() <= size
        },
    );
    let page = paginate(matching, after.as_deref(), size);
    Ok(ListTasksResponse {
        task_arns: page.items,
        next_token: page.next_token,
    })
}

fn parse_task_status(member: &str, s: &str) -> Result<TaskStatus, ApiError> {
    TaskStatus::parse(s).ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "{member}: '{s}' is not a task status (PENDING, RUNNING, STOPPED, …)"
        ))
    })
}

fn apply_container_change(
    task: &mut Task,
    change: &ContainerStateChange,
    member: &str,
) -> Result<(), ApiError> {
    let name = change.container_name.as_deref().ok_or_else(|| {
        ApiError::invalid_parameter(format!("{member}.containerName: is required"))
    })?;
    let container = task.container_mut(name).ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "{member}.containerName: task has no container '{name}'"
        ))
    })?;
    if let Some(status) = &change.status {
        let status = ContainerStatus::parse(status).ok_or_else(|| ApiError::invalid_parameter(format!("{member}.status: '{status}' is not one of PENDING, PULLED, CREATED, RUNNING, STOPPED")))?;
        if container.last_status.can_transition_to(status) {
            container.last_status = status;
        }
    }
    if change.runtime_id.is_some() {
        container.runtime_id = change.runtime_id.clone();
    }
    if change.exit_code.is_some() {
        container.exit_code = change.exit_code;
    }
    if change.reason.is_some() {
        container.reason = change.reason.clone();
    }
    if change.image_digest.is_some() {
        container.image_digest = change.image_digest.clone();
    }
    if let Some(bindings) = &change.network_bindings {
        container.network_bindings = bindings.clone();
    }
    if change.health_status.is_some() {
        container.health_status = change.health_status;
    }
    Ok(())
}

async fn submit(
    app: &App,
    ctx: &Ctx,
    cluster: Option<&str>,
    reference: Option<&str>,
    update: impl Fn(&mut Task) -> Result<Option<TaskStatus>, ApiError>,
) -> Result<AcknowledgmentResponse, ApiError> {
    let cluster = active_cluster(&app.db, ctx, cluster)
        .await?
        .value
        .cluster_name;
    let reference = reference.ok_or_else(|| ApiError::invalid_parameter("task: is required"))?;
    app.db
        .transact(|db| {
            let current = find_task(db, ctx, &cluster, "task", reference)?.ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "task: '{reference}' was not found in cluster '{cluster}'"
                ))
            })?;
            let mut task = current.value.clone();
            let next = update(&mut task)?;
            let mut writes = Writes::new().expect_unchanged(&current);
            if let Some(next) = next
                && task.last_status.can_transition_to(next)
            {
                if next == TaskStatus::Stopped {
                    // The agent stopped the task on its own: an essential container exited
                    // (it reported the exit code), or the task never got going.
                    if task.stop_code.is_none() {
                        let essential_exited = definition_of(db, ctx, &task).is_some_and(|d| {
                            d.definition.container_definitions.iter().any(|def| {
                                def.is_essential()
                                    && task.containers.iter().any(|c| {
                                        def.name.as_deref() == Some(c.name.as_str())
                                            && c.last_status == ContainerStatus::Stopped
                                            && c.exit_code.is_some()
                                    })
                            })
                        });
                        task.stop_code = Some(if essential_exited {
                            TaskStopCode::EssentialContainerExited
                        } else {
                            TaskStopCode::TaskFailedToStart
                        });
                    }
                    writes = finish(db, ctx, &cluster, &mut task, writes);
                } else {
                    task.advance_to(next, ctx.now);
                }
            }
            task.version += 1;
            Ok((writes.put(&current.key, task), ()))
        })
        .await?;
    Ok(AcknowledgmentResponse {
        acknowledgment: "ACK".into(),
    })
}

pub async fn submit_task_state_change(
    app: App,
    ctx: Ctx,
    input: SubmitTaskStateChangeRequest,
) -> Result<AcknowledgmentResponse, ApiError> {
    let status = input
        .status
        .as_deref()
        .map(|s| parse_task_status("status", s))
        .transpose()?;
    submit(
        &app,
        &ctx,
        input.cluster.as_deref(),
        input.task.as_deref(),
        |task| {
            for (i, change) in input.containers.iter().flatten().enumerate() {
                apply_container_change(task, change, &format!("containers[{i}]"))?;
            }
            if input.pull_started_at.is_some() {
                task.pull_started_at = input.pull_started_at;
            }
            if input.pull_stopped_at.is_some() {
                task.pull_stopped_at = input.pull_stopped_at;
            }
            if input.execution_stopped_at.is_some() {
                task.execution_stopped_at = input.execution_stopped_at;
            }
            if input.health_status.is_some() {
                task.health_status = input.health_status;
            }
            if status == Some(TaskStatus::Stopped) && task.stopped_reason.is_none() {
                task.stopped_reason = input.reason.clone();
            }
            Ok(status)
        },
    )
    .await
}

pub async fn submit_container_state_change(
    app: App,
    ctx: Ctx,
    input: SubmitContainerStateChangeRequest,
) -> Result<AcknowledgmentResponse, ApiError> {
    let change = ContainerStateChange {
        container_name: input.container_name.clone(),
        image_digest: None,
        runtime_id: input.runtime_id.clone(),
        exit_code: input.exit_code,
        network_bindings: input.network_bindings.clone(),
        reason: input.reason.clone(),
        status: input.status.clone(),
        health_status: None,
    };
    submit(
        &app,
        &ctx,
        input.cluster.as_deref(),
        input.task.as_deref(),
        |task| {
            apply_container_change(task, &change, "request")?;
            Ok(None)
        },
    )
    .await
}
