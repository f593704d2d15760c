//! The `Service` record, its deployments, task sets and configuration shapes, the ECS
//! deployment-configuration defaults, and the pure checks of CreateService/UpdateService
//! members.

use serde::{Deserialize, Serialize};

use crate::common::{
    CapacityProviderStrategyItem, LaunchType, NetworkConfiguration, PropagateTags, Tag,
    validate_capacity_provider_strategy, validate_network_configuration, validate_tags,
};
use crate::error::ValidationError;
use crate::task_definition::LogConfiguration;
use crate::time::Timestamp;

pub use crate::placement::{
    PlacementConstraint, PlacementConstraintType, PlacementStrategy, PlacementStrategyType,
};

// ---------------------------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------------------------

/// A service's `status`: ACTIVE, then DRAINING after DeleteService, then INACTIVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceStatus {
    #[default]
    Active,
    Draining,
    Inactive,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Active => "ACTIVE",
            ServiceStatus::Draining => "DRAINING",
            ServiceStatus::Inactive => "INACTIVE",
        }
    }

    /// ACTIVE → DRAINING → INACTIVE (ACTIVE → INACTIVE allowed when nothing runs); never back.
    pub fn can_transition_to(self, next: ServiceStatus) -> bool {
        use ServiceStatus::*;
        self == next
            || matches!(
                (self, next),
                (Active, Draining | Inactive) | (Draining, Inactive)
            )
    }
}

/// `SchedulingStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SchedulingStrategy {
    #[default]
    Replica,
    Daemon,
}

/// `DeploymentControllerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentControllerType {
    #[default]
    Ecs,
    CodeDeploy,
    External,
}

/// `DeploymentController`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DeploymentController {
    #[serde(rename = "type")]
    pub r#type: DeploymentControllerType,
}

/// `AvailabilityZoneRebalancing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AvailabilityZoneRebalancing {
    Enabled,
    Disabled,
}

/// `ResourceManagementType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceManagementType {
    Customer,
    Ecs,
}

/// A deployment's `status` (botocore: a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// The most recent deployment.
    Primary,
    /// A previous deployment still being replaced.
    Active,
    /// Completely replaced.
    Inactive,
}

/// `DeploymentRolloutState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentRolloutState {
    Completed,
    Failed,
    InProgress,
}

/// `DeploymentStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStrategy {
    Rolling,
    BlueGreen,
    Linear,
    Canary,
}

/// `ThresholdType` (circuit breaker threshold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThresholdType {
    Count,
    BoundedPercent,
    UnboundedPercent,
}

/// `DeploymentLifecycleHookTargetType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentLifecycleHookTargetType {
    AwsLambda,
    Pause,
}

/// `DeploymentLifecycleHookStage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentLifecycleHookStage {
    ReconcileService,
    PreScaleUp,
    PostScaleUp,
    TestTrafficShift,
    PostTestTrafficShift,
    PreProductionTrafficShift,
    ProductionTrafficShift,
    PostProductionTrafficShift,
}

/// `DeploymentLifecycleHookAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentLifecycleHookAction {
    Rollback,
    Continue,
}

/// `ServiceRevisionCleanup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceRevisionCleanup {
    Blocking,
    Deferred,
}

/// A task set's `status` (botocore: a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskSetStatus {
    Primary,
    Active,
    Draining,
}

/// `StabilityStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StabilityStatus {
    SteadyState,
    Stabilizing,
}

/// `ScaleUnit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScaleUnit {
    Percent,
}

// ---------------------------------------------------------------------------------------------
// Load balancers, registries
// ---------------------------------------------------------------------------------------------

/// `AdvancedConfiguration` of a service load balancer (blue/green).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub alternate_target_group_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub production_listener_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_listener_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role_arn: Option<String>,
}

/// `LoadBalancer`: which container port of the service's tasks is registered where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_group_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub load_balancer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub advanced_configuration: Option<AdvancedConfiguration>,
}

/// `ServiceRegistry` (Cloud Map).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistry {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub registry_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_port: Option<i32>,
}

// ---------------------------------------------------------------------------------------------
// Deployment configuration
// ---------------------------------------------------------------------------------------------

/// `ThresholdConfiguration` of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdConfiguration {
    #[serde(rename = "type")]
    pub r#type: ThresholdType,
    pub value: i32,
}

/// `DeploymentCircuitBreaker`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reset_on_healthy_task: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub threshold_configuration: Option<ThresholdConfiguration>,
}

impl DeploymentCircuitBreaker {
    /// The number of failed tasks that trips the breaker for a deployment of `desired` tasks.
    /// ECS's default is `BOUNDED_PERCENT` 50: half the desired count, rounded up, kept within
    /// 3..=200. `UNBOUNDED_PERCENT` is the same percentage without the bounds (at least 1);
    /// `COUNT` is the value itself (at least 1).
    pub fn failed_task_threshold(&self, desired: i32) -> i32 {
        let percent = |p: i32| (i64::from(desired.max(0)) * i64::from(p.max(0)) + 99) / 100;
        let t = match self.threshold_configuration {
            None => percent(50).clamp(3, 200),
            Some(ThresholdConfiguration {
                r#type: ThresholdType::BoundedPercent,
                value,
            }) => percent(value).clamp(3, 200),
            Some(ThresholdConfiguration {
                r#type: ThresholdType::UnboundedPercent,
                value,
            }) => percent(value).max(1),
            Some(ThresholdConfiguration {
                r#type: ThresholdType::Count,
                value,
            }) => i64::from(value.max(1)),
        };
        t.min(i64::from(i32::MAX)) as i32
    }
}

/// `DeploymentAlarms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAlarms {
    pub alarm_names: Vec<String>,
    pub rollback: bool,
    pub enable: bool,
}

/// `DeploymentLifecycleHookTimeoutConfiguration`: `timeoutInMinutes` 1–20160.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentLifecycleHookTimeoutConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout_in_minutes: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub action: Option<DeploymentLifecycleHookAction>,
}

/// `DeploymentLifecycleHook`. `hookDetails` is a free-form JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentLifecycleHook {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_type: Option<DeploymentLifecycleHookTargetType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hook_target_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lifecycle_stages: Option<Vec<DeploymentLifecycleHookStage>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hook_details: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout_configuration: Option<DeploymentLifecycleHookTimeoutConfiguration>,
}

/// `LinearConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LinearConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step_bake_time_in_minutes: Option<i32>,
}

/// `CanaryConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CanaryConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub canary_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub canary_bake_time_in_minutes: Option<i32>,
}

/// `DeploymentEarlySuccessCriteria`: `healthyPercent` 0–100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentEarlySuccessCriteria {
    pub enable: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub healthy_percent: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_service_revision_cleanup: Option<ServiceRevisionCleanup>,
}

/// `DeploymentConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub maximum_percent: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub minimum_healthy_percent: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub alarms: Option<DeploymentAlarms>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub strategy: Option<DeploymentStrategy>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bake_time_in_minutes: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lifecycle_hooks: Option<Vec<DeploymentLifecycleHook>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub linear_configuration: Option<LinearConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub canary_configuration: Option<CanaryConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub early_success_criteria: Option<DeploymentEarlySuccessCriteria>,
}

impl DeploymentConfiguration {
    /// What ECS reports for a service created without a deployment configuration: REPLICA
    /// maximumPercent 200 / minimumHealthyPercent 100, DAEMON 100 / 0; circuit breaker off;
    /// ROLLING.
    pub fn with_ecs_defaults(scheduling: SchedulingStrategy) -> Self {
        let (max, min) = match scheduling {
            SchedulingStrategy::Replica => (200, 100),
            SchedulingStrategy::Daemon => (100, 0),
        };
        DeploymentConfiguration {
            deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                enable: false,
                rollback: false,
                reset_on_healthy_task: None,
                threshold_configuration: None,
            }),
            maximum_percent: Some(max),
            minimum_healthy_percent: Some(min),
            strategy: Some(DeploymentStrategy::Rolling),
            ..DeploymentConfiguration::default()
        }
    }

    /// This configuration with its absent members taken from
    /// [`with_ecs_defaults`](Self::with_ecs_defaults) (what ECS stores when a request gives
    /// only some members).
    pub fn resolved(&self, scheduling: SchedulingStrategy) -> Self {
        let d = Self::with_ecs_defaults(scheduling);
        let mut out = self.clone();
        out.maximum_percent = out.maximum_percent.or(d.maximum_percent);
        out.minimum_healthy_percent = out.minimum_healthy_percent.or(d.minimum_healthy_percent);
        if out.deployment_circuit_breaker.is_none() {
            out.deployment_circuit_breaker = d.deployment_circuit_breaker;
        }
        out.strategy = out.strategy.or(d.strategy);
        out
    }

    /// The rolling-update bounds for `desired` tasks: (the fewest healthy tasks to keep,
    /// rounded up; the most RUNNING + PENDING tasks allowed, rounded down). Absent percents
    /// count as the REPLICA defaults.
    pub fn task_bounds(&self, desired: i32) -> (i32, i32) {
        let d = i64::from(desired.max(0));
        let min = i64::from(self.minimum_healthy_percent.unwrap_or(100).max(0));
        let max = i64::from(self.maximum_percent.unwrap_or(200).max(0));
        let min_healthy = (d * min + 99) / 100;
        let max_total = d * max / 100;
        (
            min_healthy as i32,
            max_total.min(i64::from(i32::MAX)) as i32,
        )
    }

    /// Whether the circuit breaker is on.
    pub fn circuit_breaker_enabled(&self) -> bool {
        self.deployment_circuit_breaker
            .as_ref()
            .is_some_and(|c| c.enable)
    }

    /// Whether a tripped circuit breaker rolls back.
    pub fn rollback_enabled(&self) -> bool {
        self.deployment_circuit_breaker
            .as_ref()
            .is_some_and(|c| c.enable && c.rollback)
    }
}

// ---------------------------------------------------------------------------------------------
// Service Connect, volumes, VPC Lattice (members of services and deployments)
// ---------------------------------------------------------------------------------------------

/// `ServiceConnectTestTrafficHeaderMatchRules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectTestTrafficHeaderMatchRules {
    pub exact: String,
}

/// `ServiceConnectTestTrafficHeaderRules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectTestTrafficHeaderRules {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<ServiceConnectTestTrafficHeaderMatchRules>,
}

/// `ServiceConnectTestTrafficRules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectTestTrafficRules {
    pub header: ServiceConnectTestTrafficHeaderRules,
}

/// `ServiceConnectClientAlias`: `port` 0–65535.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectClientAlias {
    pub port: i32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dns_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_traffic_rules: Option<ServiceConnectTestTrafficRules>,
}

/// `TimeoutConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idle_timeout_seconds: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub per_request_timeout_seconds: Option<i32>,
}

/// `ServiceConnectTlsCertificateAuthority`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectTlsCertificateAuthority {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub aws_pca_authority_arn: Option<String>,
}

/// `ServiceConnectTlsConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectTlsConfiguration {
    pub issuer_certificate_authority: ServiceConnectTlsCertificateAuthority,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kms_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role_arn: Option<String>,
}

/// `ServiceConnectService`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectService {
    pub port_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub discovery_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_aliases: Option<Vec<ServiceConnectClientAlias>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ingress_port_override: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout: Option<TimeoutConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tls: Option<ServiceConnectTlsConfiguration>,
}

/// `ServiceConnectAccessLoggingFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceConnectAccessLoggingFormat {
    Text,
    Json,
}

/// `ServiceConnectIncludeQueryParameters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceConnectIncludeQueryParameters {
    Disabled,
    Enabled,
}

/// `ServiceConnectAccessLogConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectAccessLogConfiguration {
    pub format: ServiceConnectAccessLoggingFormat,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub include_query_parameters: Option<ServiceConnectIncludeQueryParameters>,
}

/// `ServiceConnectContainerLogLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceConnectContainerLogLevel {
    Debug,
    Info,
}

/// `ServiceConnectContainerConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectContainerConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_level: Option<ServiceConnectContainerLogLevel>,
}

/// `ServiceConnectConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectConfiguration {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub services: Option<Vec<ServiceConnectService>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_configuration: Option<LogConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub access_log_configuration: Option<ServiceConnectAccessLogConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_configurations: Option<Vec<ServiceConnectContainerConfiguration>>,
}

/// `ServiceConnectServiceResource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectServiceResource {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub discovery_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub discovery_arn: Option<String>,
}

/// `EBSResourceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EbsResourceType {
    Volume,
}

/// `TaskFilesystemType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskFilesystemType {
    Ext3,
    Ext4,
    Xfs,
    Ntfs,
}

/// `EBSTagSpecification`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EbsTagSpecification {
    pub resource_type: EbsResourceType,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub propagate_tags: Option<PropagateTags>,
}

/// `ServiceManagedEBSVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceManagedEbsVolumeConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volume_type: Option<String>,
    #[serde(rename = "sizeInGiB", skip_serializing_if = "Option::is_none", default)]
    pub size_in_gib: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volume_initialization_rate: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iops: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub throughput: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tag_specifications: Option<Vec<EbsTagSpecification>>,
    pub role_arn: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub filesystem_type: Option<TaskFilesystemType>,
}

/// `ServiceVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceVolumeConfiguration {
    pub name: String,
    #[serde(
        rename = "managedEBSVolume",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub managed_ebs_volume: Option<ServiceManagedEbsVolumeConfiguration>,
}

/// `VpcLatticeAdvancedConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VpcLatticeAdvancedConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub alternate_target_group_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub production_listener_rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test_listener_rule: Option<String>,
}

/// `VpcLatticeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcLatticeConfiguration {
    pub role_arn: String,
    pub target_group_arn: String,
    pub port_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub advanced_configuration: Option<VpcLatticeAdvancedConfiguration>,
}

/// `DeploymentEphemeralStorage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentEphemeralStorage {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kms_key_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Deployments, task sets, events
// ---------------------------------------------------------------------------------------------

/// A `Deployment` of a service (ECS deployment controller).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub status: DeploymentStatus,
    pub task_definition: String,
    #[serde(default)]
    pub desired_count: i32,
    #[serde(default)]
    pub pending_count: i32,
    #[serde(default)]
    pub running_count: i32,
    #[serde(default)]
    pub failed_tasks: i32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub launch_type: Option<LaunchType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rollout_state: Option<DeploymentRolloutState>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rollout_state_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_connect_configuration: Option<ServiceConnectConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_connect_resources: Option<Vec<ServiceConnectServiceResource>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub volume_configurations: Option<Vec<ServiceVolumeConfiguration>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fargate_ephemeral_storage: Option<DeploymentEphemeralStorage>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vpc_lattice_configurations: Option<Vec<VpcLatticeConfiguration>>,
}

impl Deployment {
    /// A new PRIMARY deployment, IN_PROGRESS ("ECS deployment ID in progress."), with no tasks
    /// yet. ECS ids look like `ecs-svc/1234567890123456789`; the caller makes the id.
    pub fn new(
        id: impl Into<String>,
        task_definition: impl Into<String>,
        desired_count: i32,
        now: Timestamp,
    ) -> Self {
        let id = id.into();
        let reason = format!("ECS deployment {id} in progress.");
        Deployment {
            id,
            status: DeploymentStatus::Primary,
            task_definition: task_definition.into(),
            desired_count,
            pending_count: 0,
            running_count: 0,
            failed_tasks: 0,
            created_at: now,
            updated_at: now,
            capacity_provider_strategy: None,
            launch_type: None,
            platform_version: None,
            platform_family: None,
            network_configuration: None,
            rollout_state: Some(DeploymentRolloutState::InProgress),
            rollout_state_reason: Some(reason),
            service_connect_configuration: None,
            service_connect_resources: None,
            volume_configurations: None,
            fargate_ephemeral_storage: None,
            vpc_lattice_configurations: None,
        }
    }
}

/// `Scale` of a task set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Scale {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<ScaleUnit>,
}

/// A `TaskSet` (EXTERNAL and CODE_DEPLOY deployment controllers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSet {
    pub id: String,
    pub task_set_arn: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cluster_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<TaskSetStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task_definition: Option<String>,
    #[serde(default)]
    pub computed_desired_count: i32,
    #[serde(default)]
    pub pending_count: i32,
    #[serde(default)]
    pub running_count: i32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub updated_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub launch_type: Option<LaunchType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub load_balancers: Option<Vec<LoadBalancer>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_registries: Option<Vec<ServiceRegistry>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scale: Option<Scale>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stability_status: Option<StabilityStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stability_status_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fargate_ephemeral_storage: Option<DeploymentEphemeralStorage>,
}

/// `ServiceEvent`: one line of a service's event log, e.g.
/// `(service web) has reached a steady state.`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: Timestamp,
    pub message: String,
}

/// `ServiceCurrentRevisionSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCurrentRevisionSummary {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub requested_task_count: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub running_task_count: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pending_task_count: Option<i32>,
}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

/// How many events DescribeServices returns (the most recent first).
pub const MAX_SERVICE_EVENTS: usize = 100;

/// The `Service` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default)]
    pub service_registries: Vec<ServiceRegistry>,
    #[serde(default)]
    pub status: ServiceStatus,
    #[serde(default)]
    pub desired_count: i32,
    #[serde(default)]
    pub running_count: i32,
    #[serde(default)]
    pub pending_count: i32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub launch_type: Option<LaunchType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform_family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task_definition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task_sets: Option<Vec<TaskSet>>,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub current_service_deployment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub current_service_revisions: Option<Vec<ServiceCurrentRevisionSummary>>,
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraint>,
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub health_check_grace_period_seconds: Option<i32>,
    #[serde(default)]
    pub scheduling_strategy: SchedulingStrategy,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deployment_controller: Option<DeploymentController>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub created_by: Option<String>,
    #[serde(rename = "enableECSManagedTags", default)]
    pub enable_ecs_managed_tags: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub propagate_tags: Option<PropagateTags>,
    #[serde(default)]
    pub enable_execute_command: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub availability_zone_rebalancing: Option<AvailabilityZoneRebalancing>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_management_type: Option<ResourceManagementType>,
}

impl Service {
    /// A new ACTIVE service with no deployments or events, created at `now`.
    pub fn new(
        service_arn: impl Into<String>,
        service_name: impl Into<String>,
        cluster_arn: impl Into<String>,
        now: Timestamp,
    ) -> Self {
        Service {
            service_arn: service_arn.into(),
            service_name: service_name.into(),
            cluster_arn: cluster_arn.into(),
            load_balancers: Vec::new(),
            service_registries: Vec::new(),
            status: ServiceStatus::Active,
            desired_count: 0,
            running_count: 0,
            pending_count: 0,
            launch_type: None,
            capacity_provider_strategy: None,
            platform_version: None,
            platform_family: None,
            task_definition: None,
            deployment_configuration: None,
            task_sets: None,
            deployments: Vec::new(),
            role_arn: None,
            events: Vec::new(),
            created_at: now,
            current_service_deployment: None,
            current_service_revisions: None,
            placement_constraints: Vec::new(),
            placement_strategy: Vec::new(),
            network_configuration: None,
            health_check_grace_period_seconds: None,
            scheduling_strategy: SchedulingStrategy::Replica,
            deployment_controller: None,
            tags: None,
            created_by: None,
            enable_ecs_managed_tags: false,
            propagate_tags: None,
            enable_execute_command: false,
            availability_zone_rebalancing: None,
            resource_management_type: None,
        }
    }

    /// The PRIMARY deployment, if any.
    pub fn primary_deployment(&self) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary)
    }

    pub fn primary_deployment_mut(&mut self) -> Option<&mut Deployment> {
        self.deployments
            .iter_mut()
            .find(|d| d.status == DeploymentStatus::Primary)
    }

    /// The `services-stable` waiter's condition: exactly one deployment and
    /// `runningCount == desiredCount`.
    pub fn is_stable(&self) -> bool {
        self.deployments.len() == 1 && self.running_count == self.desired_count
    }

    /// The deployment controller type (ECS when absent).
    pub fn controller(&self) -> DeploymentControllerType {
        self.deployment_controller
            .map(|c| c.r#type)
            .unwrap_or_default()
    }

    /// Adds an event at the front (events are newest first) and keeps at most
    /// [`MAX_SERVICE_EVENTS`].
    pub fn push_event(&mut self, event: ServiceEvent) {
        self.events.insert(0, event);
        self.events.truncate(MAX_SERVICE_EVENTS);
    }
}

// ---------------------------------------------------------------------------------------------
// Validation of CreateService / UpdateService members
// ---------------------------------------------------------------------------------------------

/// Checks a `serviceName`: 1–255 letters, digits, hyphens and underscores.
pub fn validate_service_name(name: &str) -> Result<(), ValidationError> {
    let ok = (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::invalid(
            "serviceName",
            "service name must be 1 to 255 characters: letters (uppercase and lowercase), \
             numbers, underscores and hyphens are allowed",
        ))
    }
}

/// Checks `desiredCount`: not negative; DAEMON services take none.
pub fn validate_desired_count(
    desired_count: Option<i32>,
    scheduling: SchedulingStrategy,
) -> Result<(), ValidationError> {
    match (desired_count, scheduling) {
        (Some(_), SchedulingStrategy::Daemon) => Err(ValidationError::invalid(
            "desiredCount",
            "the daemon scheduling strategy does not support a desired count for services",
        )),
        (Some(n), _) if n < 0 => Err(ValidationError::invalid(
            "desiredCount",
            format!("desiredCount must be greater than or equal to 0, got {n}"),
        )),
        _ => Ok(()),
    }
}

/// Checks `healthCheckGracePeriodSeconds`: 0 to 2147483647.
pub fn validate_health_check_grace_period(seconds: i32) -> Result<(), ValidationError> {
    if seconds < 0 {
        Err(ValidationError::invalid(
            "healthCheckGracePeriodSeconds",
            format!(
                "healthCheckGracePeriodSeconds must be between 0 and 2147483647, got {seconds}"
            ),
        ))
    } else {
        Ok(())
    }
}

/// Checks a `deploymentConfiguration` for a service with the given scheduling strategy and
/// deployment controller:
/// - minimumHealthyPercent 0–100, maximumPercent ≥ 0;
/// - for the ECS controller: maximumPercent must exceed minimumHealthyPercent (else a rolling
///   deployment can never replace a task); REPLICA services need maximumPercent ≥ 100 unless
///   minimumHealthyPercent is 0; DAEMON services allow at most 100;
/// - the circuit breaker and alarms only with the ECS controller; enabled alarms need names;
/// - bakeTimeInMinutes 0–1440; lifecycle hook timeouts 1–20160 minutes; linear step and
///   canary percents in (0, 100]; early success healthyPercent 0–100.
///
/// Absent percents are taken from [`DeploymentConfiguration::with_ecs_defaults`].
pub fn validate_deployment_configuration(
    config: &DeploymentConfiguration,
    scheduling: SchedulingStrategy,
    controller: DeploymentControllerType,
) -> Result<(), ValidationError> {
    const F: &str = "deploymentConfiguration";
    let r = config.resolved(scheduling);
    let min = r.minimum_healthy_percent.unwrap_or(0);
    let max = r.maximum_percent.unwrap_or(0);
    if !(0..=100).contains(&min) {
        return Err(ValidationError::invalid(
            format!("{F}.minimumHealthyPercent"),
            format!("minimumHealthyPercent must be between 0 and 100, got {min}"),
        ));
    }
    if max < 0 {
        return Err(ValidationError::invalid(
            format!("{F}.maximumPercent"),
            format!("maximumPercent must not be negative, got {max}"),
        ));
    }
    if controller == DeploymentControllerType::Ecs {
        if scheduling == SchedulingStrategy::Daemon && max > 100 {
            return Err(ValidationError::invalid(
                format!("{F}.maximumPercent"),
                "the daemon scheduling strategy does not support values above 100 for \
                 maximumPercent on a deployment configuration: change the maximumPercent value \
                 to 100, and try again",
            ));
        }
        if scheduling == SchedulingStrategy::Replica && max < 100 && min > 0 {
            return Err(ValidationError::invalid(
                format!("{F}.maximumPercent"),
                format!(
                    "maximumPercent must be at least 100 unless minimumHealthyPercent is 0, \
                     got maximumPercent {max} with minimumHealthyPercent {min}"
                ),
            ));
        }
        if max <= min {
            return Err(ValidationError::invalid(
                format!("{F}.maximumPercent"),
                format!(
                    "maximumPercent ({max}) must be greater than minimumHealthyPercent ({min}) \
                     so that a deployment can replace tasks"
                ),
            ));
        }
    } else {
        if config
            .deployment_circuit_breaker
            .as_ref()
            .is_some_and(|c| c.enable)
        {
            return Err(ValidationError::invalid(
                format!("{F}.deploymentCircuitBreaker"),
                "the deployment circuit breaker is only supported with the ECS deployment \
                 controller",
            ));
        }
        if config.alarms.as_ref().is_some_and(|a| a.enable) {
            return Err(ValidationError::invalid(
                format!("{F}.alarms"),
                "deployment alarms are only supported with the ECS deployment controller",
            ));
        }
    }
    if let Some(t) = config
        .deployment_circuit_breaker
        .as_ref()
        .and_then(|c| c.threshold_configuration)
        && t.value < 0
    {
        return Err(ValidationError::invalid(
            format!("{F}.deploymentCircuitBreaker.thresholdConfiguration.value"),
            format!("threshold value must not be negative, got {}", t.value),
        ));
    }
    if let Some(a) = &config.alarms {
        if a.enable && a.alarm_names.is_empty() {
            return Err(ValidationError::invalid(
                format!("{F}.alarms.alarmNames"),
                "alarmNames must name at least one alarm when alarms are enabled",
            ));
        }
        if let Some((i, _)) = a
            .alarm_names
            .iter()
            .enumerate()
            .find(|(_, n)| n.trim().is_empty())
        {
            return Err(ValidationError::invalid(
                format!("{F}.alarms.alarmNames[{i}]"),
                "alarm names must not be empty",
            ));
        }
    }
    if let Some(b) = config.bake_time_in_minutes
        && !(0..=1440).contains(&b)
    {
        return Err(ValidationError::invalid(
            format!("{F}.bakeTimeInMinutes"),
            format!("bakeTimeInMinutes must be between 0 and 1440, got {b}"),
        ));
    }
    for (i, h) in config.lifecycle_hooks.iter().flatten().enumerate() {
        if let Some(t) = h
            .timeout_configuration
            .as_ref()
            .and_then(|t| t.timeout_in_minutes)
            && !(1..=20160).contains(&t)
        {
            return Err(ValidationError::invalid(
                format!("{F}.lifecycleHooks[{i}].timeoutConfiguration.timeoutInMinutes"),
                format!("timeoutInMinutes must be between 1 and 20160, got {t}"),
            ));
        }
    }
    let percent_ok = |p: f64| p > 0.0 && p <= 100.0;
    if let Some(p) = config
        .linear_configuration
        .as_ref()
        .and_then(|l| l.step_percent)
        && !percent_ok(p)
    {
        return Err(ValidationError::invalid(
            format!("{F}.linearConfiguration.stepPercent"),
            format!("stepPercent must be greater than 0 and at most 100, got {p}"),
        ));
    }
    if let Some(p) = config
        .canary_configuration
        .as_ref()
        .and_then(|c| c.canary_percent)
        && !percent_ok(p)
    {
        return Err(ValidationError::invalid(
            format!("{F}.canaryConfiguration.canaryPercent"),
            format!("canaryPercent must be greater than 0 and at most 100, got {p}"),
        ));
    }
    if let Some(p) = config
        .early_success_criteria
        .as_ref()
        .and_then(|e| e.healthy_percent)
        && !(0..=100).contains(&p)
    {
        return Err(ValidationError::invalid(
            format!("{F}.earlySuccessCriteria.healthyPercent"),
            format!("healthyPercent must be between 0 and 100, got {p}"),
        ));
    }
    Ok(())
}

/// At most this many load balancers (target groups) per service.
pub const MAX_SERVICE_LOAD_BALANCERS: usize = 5;

/// Checks `loadBalancers`: at most 5; each names a container and a container port (1–65535)
/// and exactly one of targetGroupArn (ALB/NLB) or loadBalancerName (Classic); no target group
/// twice for the same container port.
pub fn validate_load_balancers(lbs: &[LoadBalancer]) -> Result<(), ValidationError> {
    const F: &str = "loadBalancers";
    if lbs.len() > MAX_SERVICE_LOAD_BALANCERS {
        return Err(ValidationError::invalid(
            F,
            format!("a service can have at most {MAX_SERVICE_LOAD_BALANCERS} load balancers"),
        ));
    }
    for (i, lb) in lbs.iter().enumerate() {
        let p = format!("{F}[{i}]");
        match (&lb.target_group_arn, &lb.load_balancer_name) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::invalid(
                    p.clone(),
                    format!("{p}: specify either targetGroupArn or loadBalancerName, not both"),
                ));
            }
            (None, None) => {
                return Err(ValidationError::invalid(
                    format!("{p}.targetGroupArn"),
                    format!("{p}: targetGroupArn (or loadBalancerName) is required"),
                ));
            }
            _ => {}
        }
        if lb.container_name.as_deref().is_none_or(str::is_empty) {
            return Err(ValidationError::invalid(
                format!("{p}.containerName"),
                format!("{p}.containerName is required"),
            ));
        }
        match lb.container_port {
            Some(port) if (1..=65535).contains(&port) => {}
            other => {
                return Err(ValidationError::invalid(
                    format!("{p}.containerPort"),
                    match other {
                        None => format!("{p}.containerPort is required"),
                        Some(port) => {
                            format!("{p}.containerPort must be between 1 and 65535, got {port}")
                        }
                    },
                ));
            }
        }
        let dup = lbs[..i].iter().any(|o| {
            o.target_group_arn.is_some()
                && o.target_group_arn == lb.target_group_arn
                && o.container_name == lb.container_name
                && o.container_port == lb.container_port
        });
        if dup {
            return Err(ValidationError::invalid(
                p.clone(),
                format!("{p} repeats an earlier target group, container and port"),
            ));
        }
    }
    Ok(())
}

/// Checks `serviceRegistries`: at most one, with a registryArn; ports 0–65535.
pub fn validate_service_registries(regs: &[ServiceRegistry]) -> Result<(), ValidationError> {
    const F: &str = "serviceRegistries";
    if regs.len() > 1 {
        return Err(ValidationError::invalid(
            F,
            "a service can have at most one service registry",
        ));
    }
    for (i, r) in regs.iter().enumerate() {
        if r.registry_arn.as_deref().is_none_or(str::is_empty) {
            return Err(ValidationError::invalid(
                format!("{F}[{i}].registryArn"),
                format!("{F}[{i}].registryArn is required"),
            ));
        }
        for (name, v) in [("port", r.port), ("containerPort", r.container_port)] {
            if let Some(v) = v
                && !(0..=65535).contains(&v)
            {
                return Err(ValidationError::invalid(
                    format!("{F}[{i}].{name}"),
                    format!("{F}[{i}].{name} must be between 0 and 65535, got {v}"),
                ));
            }
        }
    }
    Ok(())
}

/// The pure members of a CreateService or UpdateService request, borrowed. For UpdateService,
/// `scheduling_strategy` and `deployment_controller` are the existing service's (they cannot
/// change) and `service_name` is `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceRequestMembers<'a> {
    pub service_name: Option<&'a str>,
    pub desired_count: Option<i32>,
    pub scheduling_strategy: SchedulingStrategy,
    pub deployment_controller: DeploymentControllerType,
    pub launch_type: Option<LaunchType>,
    pub capacity_provider_strategy: Option<&'a [CapacityProviderStrategyItem]>,
    pub deployment_configuration: Option<&'a DeploymentConfiguration>,
    pub placement_constraints: Option<&'a [PlacementConstraint]>,
    pub placement_strategy: Option<&'a [PlacementStrategy]>,
    pub network_configuration: Option<&'a NetworkConfiguration>,
    pub health_check_grace_period_seconds: Option<i32>,
    pub load_balancers: Option<&'a [LoadBalancer]>,
    pub service_registries: Option<&'a [ServiceRegistry]>,
    pub tags: Option<&'a [Tag]>,
}

/// Checks CreateService's pure members (see [`validate_service_members`]); in addition the
/// service name is required and valid, and a REPLICA service needs a desiredCount (botocore:
/// "required if schedulingStrategy is REPLICA or isn't specified").
pub fn validate_create_service(m: &ServiceRequestMembers<'_>) -> Result<(), ValidationError> {
    match m.service_name {
        Some(name) => validate_service_name(name)?,
        None => {
            return Err(ValidationError::invalid(
                "serviceName",
                "serviceName is required",
            ));
        }
    }
    if m.scheduling_strategy == SchedulingStrategy::Replica && m.desired_count.is_none() {
        return Err(ValidationError::invalid(
            "desiredCount",
            "desiredCount is required for services with the REPLICA scheduling strategy",
        ));
    }
    validate_service_members(m)
}

/// Checks UpdateService's pure members (see [`validate_service_members`]).
pub fn validate_update_service(m: &ServiceRequestMembers<'_>) -> Result<(), ValidationError> {
    validate_service_members(m)
}

/// The checks CreateService and UpdateService share: desiredCount, DAEMON restrictions
/// (no desired count, no placement strategies, ECS controller only, not on Fargate), launch
/// type and capacity provider strategy not both, placement strategies (≤ 5, valid type/field)
/// and constraints (≤ 10, valid expressions), deployment configuration, health check grace
/// period, load balancers, service registries, network configuration and tags.
pub fn validate_service_members(m: &ServiceRequestMembers<'_>) -> Result<(), ValidationError> {
    let daemon = m.scheduling_strategy == SchedulingStrategy::Daemon;
    validate_desired_count(m.desired_count, m.scheduling_strategy)?;
    if daemon {
        if m.placement_strategy.is_some_and(|s| !s.is_empty()) {
            return Err(ValidationError::invalid(
                "placementStrategy",
                "the daemon scheduling strategy does not support placement strategies",
            ));
        }
        if m.deployment_controller != DeploymentControllerType::Ecs {
            return Err(ValidationError::invalid(
                "schedulingStrategy",
                "the daemon scheduling strategy is only supported with the ECS deployment \
                 controller",
            ));
        }
        if m.launch_type == Some(LaunchType::Fargate) {
            return Err(ValidationError::invalid(
                "schedulingStrategy",
                "the daemon scheduling strategy is not supported with the FARGATE launch type",
            ));
        }
    }
    if let Some(cps) = m.capacity_provider_strategy {
        if m.launch_type.is_some() && !cps.is_empty() {
            return Err(ValidationError::invalid(
                "capacityProviderStrategy",
                "specify either a launchType or a capacityProviderStrategy, not both",
            ));
        }
        validate_capacity_provider_strategy("capacityProviderStrategy", cps)?;
    }
    if let Some(s) = m.placement_strategy {
        crate::placement::check_strategies("placementStrategy", s)?;
    }
    if let Some(c) = m.placement_constraints {
        crate::placement::check_constraints("placementConstraints", c)?;
    }
    if let Some(dc) = m.deployment_configuration {
        validate_deployment_configuration(dc, m.scheduling_strategy, m.deployment_controller)?;
    }
    if let Some(g) = m.health_check_grace_period_seconds {
        validate_health_check_grace_period(g)?;
    }
    if let Some(lbs) = m.load_balancers {
        validate_load_balancers(lbs)?;
    }
    if let Some(regs) = m.service_registries {
        validate_service_registries(regs)?;
    }
    if let Some(n) = m.network_configuration {
        validate_network_configuration("networkConfiguration", n)?;
    }
    if let Some(t) = m.tags {
        validate_tags("tags", t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:ecs:us-east-1:1:service/default/web";

    #[test]
    fn defaults() {
        let r = DeploymentConfiguration::with_ecs_defaults(SchedulingStrategy::Replica);
        assert_eq!(
            (r.maximum_percent, r.minimum_healthy_percent),
            (Some(200), Some(100))
        );
        let d = DeploymentConfiguration::with_ecs_defaults(SchedulingStrategy::Daemon);
        assert_eq!(
            (d.maximum_percent, d.minimum_healthy_percent),
            (Some(100), Some(0))
        );
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "deploymentCircuitBreaker": {"enable": false, "rollback": false},
                "maximumPercent": 200, "minimumHealthyPercent": 100, "strategy": "ROLLING"
            })
        );
        let partial = DeploymentConfiguration {
            minimum_healthy_percent: Some(50),
            ..Default::default()
        };
        let p = partial.resolved(SchedulingStrategy::Replica);
        assert_eq!(
            (p.maximum_percent, p.minimum_healthy_percent),
            (Some(200), Some(50))
        );
        assert!(!p.circuit_breaker_enabled());
    }

    #[test]
    fn task_bounds_round_like_ecs() {
        let c = DeploymentConfiguration::with_ecs_defaults(SchedulingStrategy::Replica);
        assert_eq!(c.task_bounds(6), (6, 12));
        let c = DeploymentConfiguration {
            minimum_healthy_percent: Some(50),
            maximum_percent: Some(150),
            ..Default::default()
        };
        assert_eq!(c.task_bounds(3), (2, 4)); // ceil(1.5) = 2, floor(4.5) = 4
        assert_eq!(c.task_bounds(0), (0, 0));
    }

    #[test]
    fn circuit_breaker_threshold() {
        let cb = DeploymentCircuitBreaker {
            enable: true,
            rollback: true,
            ..Default::default()
        };
        assert_eq!(cb.failed_task_threshold(1), 3);
        assert_eq!(cb.failed_task_threshold(7), 4);
        assert_eq!(cb.failed_task_threshold(50), 25);
        assert_eq!(cb.failed_task_threshold(1000), 200);
        let count = DeploymentCircuitBreaker {
            threshold_configuration: Some(ThresholdConfiguration {
                r#type: ThresholdType::Count,
                value: 3,
            }),
            ..cb.clone()
        };
        assert_eq!(count.failed_task_threshold(100), 3);
        let pct = DeploymentCircuitBreaker {
            threshold_configuration: Some(ThresholdConfiguration {
                r#type: ThresholdType::BoundedPercent,
                value: 25,
            }),
            ..cb
        };
        assert_eq!(pct.failed_task_threshold(10), 3);
        assert_eq!(pct.failed_task_threshold(40), 10);
        let unbounded = DeploymentCircuitBreaker {
            threshold_configuration: Some(ThresholdConfiguration {
                r#type: ThresholdType::UnboundedPercent,
                value: 10,
            }),
            ..Default::default()
        };
        assert_eq!(unbounded.failed_task_threshold(5), 1);
        assert_eq!(unbounded.failed_task_threshold(5000), 500);
    }

    #[test]
    fn deployment_configuration_table() {
        use DeploymentControllerType as C;
        use SchedulingStrategy as S;
        let dc = |min: Option<i32>, max: Option<i32>| DeploymentConfiguration {
            minimum_healthy_percent: min,
            maximum_percent: max,
            ..Default::default()
        };
        let ok = [
            (dc(None, None), S::Replica, C::Ecs),
            (dc(Some(100), Some(200)), S::Replica, C::Ecs),
            (dc(Some(0), Some(100)), S::Replica, C::Ecs),
            (dc(Some(0), Some(50)), S::Replica, C::Ecs),
            (dc(Some(50), Some(150)), S::Replica, C::Ecs),
            (dc(None, None), S::Daemon, C::Ecs),
            (dc(Some(50), Some(100)), S::Daemon, C::Ecs),
            (dc(Some(100), Some(100)), S::Replica, C::External),
        ];
        for (c, s, k) in ok {
            assert!(
                validate_deployment_configuration(&c, s, k).is_ok(),
                "{c:?} {s:?} {k:?}"
            );
        }
        let bad = [
            (
                dc(Some(101), None),
                S::Replica,
                C::Ecs,
                "deploymentConfiguration.minimumHealthyPercent",
            ),
            (
                dc(Some(-1), None),
                S::Replica,
                C::Ecs,
                "deploymentConfiguration.minimumHealthyPercent",
            ),
            (
                dc(Some(100), Some(100)),
                S::Replica,
                C::Ecs,
                "deploymentConfiguration.maximumPercent",
            ),
            (
                dc(Some(50), Some(90)),
                S::Replica,
                C::Ecs,
                "deploymentConfiguration.maximumPercent",
            ),
            (
                dc(None, Some(200)),
                S::Daemon,
                C::Ecs,
                "deploymentConfiguration.maximumPercent",
            ),
            (
                dc(None, Some(-5)),
                S::Replica,
                C::Ecs,
                "deploymentConfiguration.maximumPercent",
            ),
        ];
        for (c, s, k, field) in bad {
            let e = validate_deployment_configuration(&c, s, k).unwrap_err();
            assert_eq!(e.field, field, "{c:?} {s:?}: {}", e.message);
        }
        let cb = DeploymentConfiguration {
            deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                enable: true,
                rollback: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(validate_deployment_configuration(&cb, S::Replica, C::Ecs).is_ok());
        assert_eq!(
            validate_deployment_configuration(&cb, S::Replica, C::CodeDeploy)
                .unwrap_err()
                .field,
            "deploymentConfiguration.deploymentCircuitBreaker"
        );
        let alarms = DeploymentConfiguration {
            alarms: Some(DeploymentAlarms {
                alarm_names: vec![],
                rollback: true,
                enable: true,
            }),
            ..Default::default()
        };
        assert_eq!(
            validate_deployment_configuration(&alarms, S::Replica, C::Ecs)
                .unwrap_err()
                .field,
            "deploymentConfiguration.alarms.alarmNames"
        );
        let bake = DeploymentConfiguration {
            bake_time_in_minutes: Some(1441),
            ..Default::default()
        };
        assert_eq!(
            validate_deployment_configuration(&bake, S::Replica, C::Ecs)
                .unwrap_err()
                .field,
            "deploymentConfiguration.bakeTimeInMinutes"
        );
    }

    fn members<'a>() -> ServiceRequestMembers<'a> {
        ServiceRequestMembers {
            service_name: Some("web"),
            desired_count: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn create_service_checks() {
        assert!(validate_create_service(&members()).is_ok());
        let e = validate_create_service(&ServiceRequestMembers {
            desired_count: Some(-1),
            ..members()
        })
        .unwrap_err();
        assert_eq!(e.field, "desiredCount");
        let e = validate_create_service(&ServiceRequestMembers {
            desired_count: None,
            ..members()
        })
        .unwrap_err();
        assert_eq!(e.field, "desiredCount");
        let e = validate_create_service(&ServiceRequestMembers {
            service_name: Some("a b"),
            ..members()
        })
        .unwrap_err();
        assert_eq!(e.field, "serviceName");

        let daemon = ServiceRequestMembers {
            scheduling_strategy: SchedulingStrategy::Daemon,
            desired_count: None,
            ..members()
        };
        assert!(validate_create_service(&daemon).is_ok());
        let e = validate_create_service(&ServiceRequestMembers {
            desired_count: Some(1),
            ..daemon
        })
        .unwrap_err();
        assert_eq!(e.field, "desiredCount");
        let strategies = [PlacementStrategy::spread("instanceId")];
        let e = validate_create_service(&ServiceRequestMembers {
            placement_strategy: Some(&strategies),
            ..daemon
        })
        .unwrap_err();
        assert_eq!(e.field, "placementStrategy");
        let e = validate_create_service(&ServiceRequestMembers {
            launch_type: Some(LaunchType::Fargate),
            ..daemon
        })
        .unwrap_err();
        assert_eq!(e.field, "schedulingStrategy");

        let bad_strategy = [
            PlacementStrategy::random(),
            PlacementStrategy::binpack("disk"),
        ];
        let e = validate_create_service(&ServiceRequestMembers {
            placement_strategy: Some(&bad_strategy),
            ..members()
        })
        .unwrap_err();
        assert_eq!(e.field, "placementStrategy[1].field");
        let bad_constraint = [PlacementConstraint::member_of("attribute:x ==")];
        let e = validate_create_service(&ServiceRequestMembers {
            placement_constraints: Some(&bad_constraint),
            ..members()
        })
        .unwrap_err();
        assert_eq!(e.field, "placementConstraints[0].expression");
        let e = validate_update_service(&ServiceRequestMembers {
            health_check_grace_period_seconds: Some(-1),
            ..members()
        })
        .unwrap_err();
        assert_eq!(e.field, "healthCheckGracePeriodSeconds");
        let cps = [CapacityProviderStrategyItem {
            capacity_provider: "cp".into(),
            weight: Some(1),
            base: None,
        }];
        let e = validate_create_service(&ServiceRequestMembers {
            launch_type: Some(LaunchType::Ec2),
            capacity_provider_strategy: Some(&cps),
            ..members()
        })
        .unwrap_err();
        assert_eq!(e.field, "capacityProviderStrategy");
    }

    #[test]
    fn load_balancer_and_registry_checks() {
        let lb =
            |tg: Option<&str>, name: Option<&str>, c: Option<&str>, p: Option<i32>| LoadBalancer {
                target_group_arn: tg.map(String::from),
                load_balancer_name: name.map(String::from),
                container_name: c.map(String::from),
                container_port: p,
                advanced_configuration: None,
            };
        let good = lb(Some("arn:tg"), None, Some("web"), Some(80));
        assert!(validate_load_balancers(std::slice::from_ref(&good)).is_ok());
        let cases = [
            (
                lb(Some("t"), Some("n"), Some("web"), Some(80)),
                "loadBalancers[0]",
            ),
            (
                lb(None, None, Some("web"), Some(80)),
                "loadBalancers[0].targetGroupArn",
            ),
            (
                lb(Some("t"), None, None, Some(80)),
                "loadBalancers[0].containerName",
            ),
            (
                lb(Some("t"), None, Some("web"), None),
                "loadBalancers[0].containerPort",
            ),
            (
                lb(Some("t"), None, Some("web"), Some(70000)),
                "loadBalancers[0].containerPort",
            ),
        ];
        for (l, field) in cases {
            assert_eq!(validate_load_balancers(&[l]).unwrap_err().field, field);
        }
        assert_eq!(
            validate_load_balancers(&[good.clone(), good.clone()])
                .unwrap_err()
                .field,
            "loadBalancers[1]"
        );
        assert_eq!(
            validate_load_balancers(&vec![good; 6]).unwrap_err().field,
            "loadBalancers"
        );
        let reg = ServiceRegistry {
            registry_arn: Some("arn:sd".into()),
            ..Default::default()
        };
        assert!(validate_service_registries(std::slice::from_ref(&reg)).is_ok());
        assert_eq!(
            validate_service_registries(&[reg.clone(), reg])
                .unwrap_err()
                .field,
            "serviceRegistries"
        );
        assert_eq!(
            validate_service_registries(&[ServiceRegistry::default()])
                .unwrap_err()
                .field,
            "serviceRegistries[0].registryArn"
        );
    }

    #[test]
    fn service_wire_shape_and_helpers() {
        let mut s = Service::new(
            ARN,
            "web",
            "arn:aws:ecs:us-east-1:1:cluster/default",
            Timestamp(1_000),
        );
        s.desired_count = 2;
        s.task_definition = Some("arn:aws:ecs:us-east-1:1:task-definition/web:1".into());
        s.deployment_configuration = Some(DeploymentConfiguration::with_ecs_defaults(
            SchedulingStrategy::Replica,
        ));
        s.deployment_controller = Some(DeploymentController {
            r#type: DeploymentControllerType::Ecs,
        });
        s.propagate_tags = Some(PropagateTags::None);
        s.placement_strategy
            .push(PlacementStrategy::spread("attribute:ecs.availability-zone"));
        s.deployments.push(Deployment::new(
            "ecs-svc/1",
            "arn:aws:ecs:us-east-1:1:task-definition/web:1",
            2,
            Timestamp(1_000),
        ));
        s.push_event(ServiceEvent {
            id: "e1".into(),
            created_at: Timestamp(2_000),
            message: "(service web) has started 2 tasks: (task a) (task b).".into(),
        });
        s.push_event(ServiceEvent {
            id: "e2".into(),
            created_at: Timestamp(3_000),
            message: "(service web) has reached a steady state.".into(),
        });
        assert_eq!(s.events[0].id, "e2");
        assert!(!s.is_stable());
        s.running_count = 2;
        assert!(s.is_stable());
        assert_eq!(s.controller(), DeploymentControllerType::Ecs);
        assert_eq!(s.primary_deployment().unwrap().id, "ecs-svc/1");

        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["schedulingStrategy"], "REPLICA");
        assert_eq!(v["enableECSManagedTags"], false);
        assert_eq!(v["propagateTags"], "NONE");
        assert_eq!(v["loadBalancers"], json!([]));
        assert_eq!(v["deploymentController"], json!({"type": "ECS"}));
        assert_eq!(
            v["placementStrategy"],
            json!([{"type": "spread", "field": "attribute:ecs.availability-zone"}])
        );
        assert_eq!(v["deployments"][0]["status"], "PRIMARY");
        assert_eq!(v["deployments"][0]["rolloutState"], "IN_PROGRESS");
        assert_eq!(v["events"][1]["createdAt"], json!(2.0));
        let back: Service = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        for _ in 0..150 {
            s.push_event(ServiceEvent {
                id: "x".into(),
                created_at: Timestamp(0),
                message: String::new(),
            });
        }
        assert_eq!(s.events.len(), MAX_SERVICE_EVENTS);
    }

    #[test]
    fn reads_full_deployment_and_task_set() {
        let d = json!({
            "id": "ecs-svc/9", "status": "ACTIVE", "taskDefinition": "td:1", "desiredCount": 1,
            "pendingCount": 0, "runningCount": 1, "failedTasks": 2, "createdAt": 1.5, "updatedAt": 2.5,
            "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1, "base": 0}],
            "launchType": "EC2", "platformVersion": "LATEST", "platformFamily": "Linux",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"], "securityGroups": ["g"], "assignPublicIp": "ENABLED"}},
            "rolloutState": "FAILED", "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
            "serviceConnectConfiguration": {
                "enabled": true, "namespace": "ns",
                "services": [{"portName": "http", "discoveryName": "web",
                              "clientAliases": [{"port": 80, "dnsName": "web", "testTrafficRules": {"header": {"name": "x", "value": {"exact": "y"}}}}],
                              "ingressPortOverride": 8080, "timeout": {"idleTimeoutSeconds": 1, "perRequestTimeoutSeconds": 2},
                              "tls": {"issuerCertificateAuthority": {"awsPcaAuthorityArn": "a"}, "kmsKey": "k", "roleArn": "r"}}],
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}},
                "accessLogConfiguration": {"format": "JSON", "includeQueryParameters": "ENABLED"},
                "containerConfigurations": [{"logLevel": "debug"}]
            },
            "serviceConnectResources": [{"discoveryName": "web", "discoveryArn": "arn"}],
            "volumeConfigurations": [{"name": "data", "managedEBSVolume": {
                "encrypted": true, "sizeInGiB": 10, "volumeType": "gp3", "roleArn": "r", "filesystemType": "ext4",
                "tagSpecifications": [{"resourceType": "volume", "tags": [{"key": "a", "value": "b"}], "propagateTags": "SERVICE"}]}}],
            "fargateEphemeralStorage": {"kmsKeyId": "k"},
            "vpcLatticeConfigurations": [{"roleArn": "r", "targetGroupArn": "t", "portName": "p"}]
        });
        let dep: Deployment = serde_json::from_value(d.clone()).unwrap();
        assert_eq!(dep.rollout_state, Some(DeploymentRolloutState::Failed));
        assert_eq!(serde_json::to_value(&dep).unwrap(), d);

        let ts = json!({
            "id": "ecs-svc/1", "taskSetArn": "arn:ts", "serviceArn": ARN, "status": "PRIMARY",
            "computedDesiredCount": 2, "pendingCount": 0, "runningCount": 2,
            "scale": {"value": 100.0, "unit": "PERCENT"}, "stabilityStatus": "STEADY_STATE",
            "stabilityStatusAt": 3.0
        });
        let t: TaskSet = serde_json::from_value(ts.clone()).unwrap();
        assert_eq!(serde_json::to_value(&t).unwrap(), ts);

        let cfg = json!({
            "deploymentCircuitBreaker": {"enable": true, "rollback": true, "resetOnHealthyTask": true,
                                         "thresholdConfiguration": {"type": "COUNT", "value": 3}},
            "maximumPercent": 200, "minimumHealthyPercent": 100,
            "alarms": {"alarmNames": ["a"], "rollback": true, "enable": true},
            "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5,
            "lifecycleHooks": [{"targetType": "AWS_LAMBDA", "hookTargetArn": "h", "roleArn": "r",
                                "lifecycleStages": ["PRE_SCALE_UP", "POST_PRODUCTION_TRAFFIC_SHIFT"],
                                "hookDetails": {"any": ["json"]},
                                "timeoutConfiguration": {"timeoutInMinutes": 60, "action": "ROLLBACK"}}],
            "linearConfiguration": {"stepPercent": 10.0, "stepBakeTimeInMinutes": 1},
            "canaryConfiguration": {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 2},
            "earlySuccessCriteria": {"enable": true, "healthyPercent": 90, "sourceServiceRevisionCleanup": "DEFERRED"}
        });
        let c: DeploymentConfiguration = serde_json::from_value(cfg.clone()).unwrap();
        assert!(c.rollback_enabled());
        assert_eq!(serde_json::to_value(&c).unwrap(), cfg);
        assert!(
            validate_deployment_configuration(
                &c,
                SchedulingStrategy::Replica,
                DeploymentControllerType::Ecs
            )
            .is_ok()
        );
    }

    #[test]
    fn status_guards() {
        assert!(ServiceStatus::Active.can_transition_to(ServiceStatus::Draining));
        assert!(ServiceStatus::Draining.can_transition_to(ServiceStatus::Inactive));
        assert!(!ServiceStatus::Inactive.can_transition_to(ServiceStatus::Active));
        assert!(!ServiceStatus::Draining.can_transition_to(ServiceStatus::Active));
    }
}
