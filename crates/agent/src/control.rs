//! The agent's side of the control plane: what it asks the server and what it reports, over
//! the public ECS, ECR, Secrets Manager and Parameter Store APIs through `berth-client` (never the store).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine as _;
use berth_client::{Client, ClientError};
use berth_model::task::{ContainerStatus, HealthStatus, NetworkBinding, Task, TaskStatus};
use berth_model::task_definition::TaskDefinition;
use berth_model::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::runtime::{RegistryAuth, registry_of};
use berth_model::agent_channel::{SIGNING_SERVICE, WAIT_PATH, WaitAnswer, WaitRequest};
use std::time::Duration;

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

/// One secret version to read from Secrets Manager (GetSecretValue).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRequest {
    /// The region to ask in; `None`: the agent's.
    pub region: Option<String>,
    /// The secret's name or ARN.
    pub secret_id: String,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

/// One Parameter Store parameter to read (GetParameters `WithDecryption`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParameterRequest {
    /// The region to ask in; `None`: the agent's.
    pub region: Option<String>,
    /// The parameter's name or ARN, optionally followed by `:VERSION` or `:LABEL`.
    pub name: String,
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
    /// Credentials for pulling `image`, when it lives in Berth's own registry.
    async fn registry_auth(&self, image: &str) -> Result<Option<RegistryAuth>, ClientError>;
    /// A secret's `SecretString`, from Secrets Manager; `None` when it holds a `SecretBinary`.
    async fn secret_string(&self, request: &SecretRequest) -> Result<Option<String>, ClientError>;
    /// A parameter's value from Parameter Store, SecureStrings decrypted; `None` when there is
    /// no such parameter or version.
    async fn parameter_value(
        &self,
        request: &ParameterRequest,
    ) -> Result<Option<String>, ClientError>;
}

/// The control plane over HTTP, for one cluster and container instance.
pub struct HttpControlPlane {
    client: Client,
    cluster: String,
    container_instance_arn: String,
    definitions: Mutex<HashMap<String, TaskDefinition>>,
    /// The registry token from GetAuthorizationToken, until shortly before it expires.
    registry: Mutex<Option<(RegistryAuth, Timestamp)>>,
}

impl HttpControlPlane {
    pub fn new(client: Client, cluster: String, container_instance_arn: String) -> Self {
        HttpControlPlane {
            client,
            cluster,
            container_instance_arn,
            definitions: Mutex::default(),
            registry: Mutex::default(),
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizationData {
    authorization_token: String,
    proxy_endpoint: String,
    expires_at: Timestamp,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetAuthorizationTokenOutput {
    #[serde(default)]
    authorization_data: Vec<AuthorizationData>,
}

#[derive(Deserialize)]
struct GetSecretValueOutput {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

#[derive(Deserialize)]
struct GetParametersOutput {
    #[serde(rename = "Parameters", default)]
    parameters: Vec<ParameterValue>,
}

#[derive(Deserialize)]
struct ParameterValue {
    #[serde(rename = "Value")]
    value: String,
}

/// A fresh registry token is fetched this long before the old one expires.
const TOKEN_MARGIN_MS: i64 = 5 * 60 * 1000;

impl HttpControlPlane {
    /// The registry's credentials, from the cache or a new GetAuthorizationToken.
    async fn registry_credentials(&self) -> Result<RegistryAuth, ClientError> {
        let now = crate::engine::now();
        if let Some((auth, expires)) = self.registry.lock().expect("registry lock").clone()
            && expires.millis() - TOKEN_MARGIN_MS > now.millis()
        {
            return Ok(auth);
        }
        let out: GetAuthorizationTokenOutput = self
            .client
            .json_1_1(
                "ecr",
                "AmazonEC2ContainerRegistry_V20150921",
                "GetAuthorizationToken",
                &json!({}),
            )
            .await?;
        let bad = |detail: &str| ClientError::Decode {
            status: 200,
            detail: format!("GetAuthorizationToken: {detail}"),
        };
        let data = out
            .authorization_data
            .into_iter()
            .next()
            .ok_or_else(|| bad("no authorizationData"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&data.authorization_token)
            .map_err(|_| bad("the token is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad("the token is not text"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad("the token is not USER:PASSWORD"))?;
        let server = data
            .proxy_endpoint
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let auth = RegistryAuth {
            server,
            username: username.to_string(),
            password: password.to_string(),
        };
        *self.registry.lock().expect("registry lock") = Some((auth.clone(), data.expires_at));
        Ok(auth)
    }

    /// Tells the control plane this instance's agent is alive (DiscoverPollEndpoint, as the
    /// ECS agent calls it): without it for a while, the instance counts as disconnected and
    /// then lost.
    pub async fn heartbeat(&self) -> Result<(), ClientError> {
        self.client
            .ecs::<_, serde_json::Value>(
                "DiscoverPollEndpoint",
                &json!({"cluster": self.cluster, "containerInstance": self.container_instance_arn}),
            )
            .await
            .map(drop)
    }

    /// Waits, up to `wait`, for the server to say this instance's work changed since
    /// generation `after` (see `berth_model::agent_channel`); returns the generation it gave.
    pub async fn wait_for_work(
        &self,
        after: Option<u64>,
        wait: Duration,
    ) -> Result<u64, ClientError> {
        let request = WaitRequest {
            container_instance: self.container_instance_arn.clone(),
            after,
            wait_seconds: wait.as_secs(),
        };
        let call = self
            .client
            .berth_json::<_, WaitAnswer>(SIGNING_SERVICE, WAIT_PATH, &request);
        // The server answers by `wait`; a call that takes much longer went astray.
        match tokio::time::timeout(wait + Duration::from_secs(10), call).await {
            Ok(answer) => answer.map(|a| a.generation),
            Err(_) => Err(ClientError::Transport {
                endpoint: self.client.endpoint_authority(),
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer to a wait of {wait:?}"),
                )),
            }),
        }
    }

    /// The server's own `HOST:PORT`, which its registry's image references start with.
    fn server_authority(&self) -> String {
        self.client.endpoint_authority()
    }
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

    async fn registry_auth(&self, image: &str) -> Result<Option<RegistryAuth>, ClientError> {
        if registry_of(image) != Some(self.server_authority().as_str()) {
            return Ok(None);
        }
        self.registry_credentials().await.map(Some)
    }

    async fn secret_string(&self, request: &SecretRequest) -> Result<Option<String>, ClientError> {
        let mut input = json!({"SecretId": request.secret_id});
        if let Some(stage) = &request.version_stage {
            input["VersionStage"] = json!(stage);
        }
        if let Some(id) = &request.version_id {
            input["VersionId"] = json!(id);
        }
        let out: GetSecretValueOutput = self
            .client_in(request.region.as_deref())
            .json_1_1("secretsmanager", "secretsmanager", "GetSecretValue", &input)
            .await?;
        Ok(out.secret_string)
    }

    async fn parameter_value(
        &self,
        request: &ParameterRequest,
    ) -> Result<Option<String>, ClientError> {
        let input = json!({"Names": [request.name], "WithDecryption": true});
        let out: GetParametersOutput = self
            .client_in(request.region.as_deref())
            .json_1_1("ssm", "AmazonSSM", "GetParameters", &input)
            .await?;
        Ok(out.parameters.into_iter().next().map(|p| p.value))
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
    /// The client for `region` (`None`: the agent's own).
    fn client_in(&self, region: Option<&str>) -> Client {
        match region {
            Some(region) if region != self.client.region() => self.client.for_region(region),
            _ => self.client.clone(),
        }
    }

    fn cached(&self, arn: &str) -> Option<TaskDefinition> {
        self.definitions.lock().ok()?.get(arn).cloned()
    }
}
