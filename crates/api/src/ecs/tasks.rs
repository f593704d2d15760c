//! Task operations, including the agent-facing state-change calls.

use berth_model::Timestamp;
use berth_model::common::{Failure, Tag};
use berth_model::placement::{PlacementConstraint, PlacementStrategy};
use berth_model::task::{HealthStatus, NetworkBinding, Task, TaskOverride};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskRequest {
    pub cluster: Option<String>,
    pub task_definition: String,
    pub count: Option<i32>,
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub overrides: Option<TaskOverride>,
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    pub launch_type: Option<String>,
    pub tags: Option<Vec<Tag>>,
    pub enable_ecs_managed_tags: Option<bool>,
    pub enable_execute_command: Option<bool>,
    pub propagate_tags: Option<String>,
    pub reference_id: Option<String>,
    pub client_token: Option<String>,
    pub platform_version: Option<String>,
    pub network_configuration: Option<serde_json::Value>,
    pub capacity_provider_strategy: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTaskRequest {
    pub cluster: Option<String>,
    pub task_definition: String,
    pub container_instances: Vec<String>,
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub overrides: Option<TaskOverride>,
    pub tags: Option<Vec<Tag>>,
    pub enable_ecs_managed_tags: Option<bool>,
    pub enable_execute_command: Option<bool>,
    pub propagate_tags: Option<String>,
    pub reference_id: Option<String>,
    pub network_configuration: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TasksResponse {
    pub tasks: Vec<Task>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskRequest {
    pub cluster: Option<String>,
    pub task: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResponse {
    pub task: Task,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksRequest {
    pub cluster: Option<String>,
    pub tasks: Vec<String>,
    pub include: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksRequest {
    pub cluster: Option<String>,
    pub container_instance: Option<String>,
    pub family: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
    pub started_by: Option<String>,
    pub service_name: Option<String>,
    pub desired_status: Option<String>,
    pub launch_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksResponse {
    pub task_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateChange {
    pub container_name: Option<String>,
    pub image_digest: Option<String>,
    pub runtime_id: Option<String>,
    pub exit_code: Option<i32>,
    pub network_bindings: Option<Vec<NetworkBinding>>,
    pub reason: Option<String>,
    pub status: Option<String>,
    /// Not in botocore's shape (ECS's agent reports health through its own channel): Berth's
    /// agent sends the container's health here. AWS clients never send it.
    pub health_status: Option<HealthStatus>,
}

/// SubmitTaskStateChange's input. `healthStatus` (the task's health) is Berth's addition,
/// sent by its agent; the AWS members are as botocore has them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitTaskStateChangeRequest {
    pub cluster: Option<String>,
    pub task: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub containers: Option<Vec<ContainerStateChange>>,
    pub pull_started_at: Option<Timestamp>,
    pub pull_stopped_at: Option<Timestamp>,
    pub execution_stopped_at: Option<Timestamp>,
    pub health_status: Option<HealthStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitContainerStateChangeRequest {
    pub cluster: Option<String>,
    pub task: Option<String>,
    pub container_name: Option<String>,
    pub runtime_id: Option<String>,
    pub status: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub network_bindings: Option<Vec<NetworkBinding>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcknowledgmentResponse {
    pub acknowledgment: String,
}
