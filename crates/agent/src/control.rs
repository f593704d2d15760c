//! The agent's side of the control plane: what it asks the server and what it reports, over
//! the public ECS API through `berth-client` (never the store).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use berth_client::{Client, ClientError};
use berth_model::task::{ContainerStatus, HealthStatus, NetworkBinding, Task, TaskStatus};
use berth_model::task_definition::TaskDefinition;
use berth_model::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// One container's part of a [`TaskStateChange`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateChange {
    pub container_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    pub status: ContainerStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub network_bindings: Vec<NetworkBinding>,
    /// Berth's addition to the AWS shape (ECS learns health through its own channel); UNKNOWN
    /// for a container without a health check.
    pub health_status: HealthStatus,
}

/// SubmitTaskStateChange's input, less the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateChange {
    pub task: String,
    pub status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub containers: Vec<ContainerStateChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<Timestamp>,
    /// Berth's addition to the AWS shape: the task's health, from its essential containers'.
    pub health_status: HealthStatus,
}

/// What the engine needs from the control plane.
#[async_trait]
pub trait ControlPlane: Send + Sync + 'static {
    /// The ARNs of the tasks placed on this instance whose desired status is RUNNING.
    async fn desired_running(&self) -> Result<Vec<String>, ClientError>;
    /// The tasks with these ARNs (those the server knows).
    async fn describe_tasks(&self, arns: &[String]) -> Result<Vec<Task>, ClientError>;
    async fn task_definition(&self, arn: &str) -> Result<TaskDefinition, ClientError>;
    async fn submit(&self, change: &TaskStateChange) -> Result<(), ClientError>;
}

/// The control plane over HTTP, for one cluster and container instance.
pub struct HttpControlPlane {
    client: Client,
    cluster: String,
    container_instance_arn: String,
    definitions: Mutex<HashMap<String, TaskDefinition>>,
}

impl HttpControlPlane {
    pub fn new(client: Client, cluster: String, container_instance_arn: String) -> Self {
        HttpControlPlane {
            client,
            cluster,
            container_instance_arn,
            definitions: Mutex::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTasksOutput {
    #[serde(default)]
    task_arns: Vec<String>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct DescribeTasksOutput {
    #[serde(default)]
    tasks: Vec<Task>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeTaskDefinitionOutput {
    task_definition: TaskDefinition,
}

#[async_trait]
impl ControlPlane for HttpControlPlane {
    async fn desired_running(&self) -> Result<Vec<String>, ClientError> {
        let mut arns = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page: ListTasksOutput = self
                .client
                .ecs(
                    "ListTasks",
                    &json!({
                        "cluster": self.cluster,
                        "containerInstance": self.container_instance_arn,
                        "desiredStatus": "RUNNING",
                        "nextToken": next_token,
                    }),
                )
                .await?;
            arns.extend(page.task_arns);
            match page.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(arns),
            }
        }
    }

    async fn describe_tasks(&self, arns: &[String]) -> Result<Vec<Task>, ClientError> {
        let mut tasks = Vec::new();
        for chunk in arns.chunks(100) {
            let out: DescribeTasksOutput = self
                .client
                .ecs(
                    "DescribeTasks",
                    &json!({"cluster": self.cluster, "tasks": chunk}),
                )
                .await?;
            tasks.extend(out.tasks);
        }
        Ok(tasks)
    }

    async fn task_definition(&self, arn: &str) -> Result<TaskDefinition, ClientError> {
        if let Some(found) = self.cached(arn) {
            return Ok(found);
        }
        let out: DescribeTaskDefinitionOutput = self
            .client
            .ecs("DescribeTaskDefinition", &json!({"taskDefinition": arn}))
            .await?;
        if let Ok(mut cache) = self.definitions.lock() {
            cache.insert(arn.to_owned(), out.task_definition.clone());
        }
        Ok(out.task_definition)
    }

    async fn submit(&self, change: &TaskStateChange) -> Result<(), ClientError> {
        let mut body = serde_json::to_value(change).map_err(|e| ClientError::Decode {
            status: 0,
            detail: format!("the state change does not serialize: {e}"),
        })?;
        body["cluster"] = json!(self.cluster);
        let _: serde_json::Value = self.client.ecs("SubmitTaskStateChange", &body).await?;
        Ok(())
    }
}

impl HttpControlPlane {
    fn cached(&self, arn: &str) -> Option<TaskDefinition> {
        self.definitions.lock().ok()?.get(arn).cloned()
    }
}
