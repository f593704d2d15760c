//! Service operations.

use berth_model::common::{
    CapacityProviderStrategyItem, Failure, LaunchType, NetworkConfiguration, PropagateTags, Tag,
};
use berth_model::service::{
    AvailabilityZoneRebalancing, DeploymentConfiguration, DeploymentController, LoadBalancer,
    PlacementConstraint, PlacementStrategy, SchedulingStrategy, Service,
    ServiceConnectConfiguration, ServiceRegistry, ServiceVolumeConfiguration,
    VpcLatticeConfiguration,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateServiceRequest {
    pub cluster: Option<String>,
    pub service_name: String,
    pub task_definition: Option<String>,
    pub availability_zone_rebalancing: Option<AvailabilityZoneRebalancing>,
    pub load_balancers: Option<Vec<LoadBalancer>>,
    pub service_registries: Option<Vec<ServiceRegistry>>,
    pub desired_count: Option<i32>,
    pub client_token: Option<String>,
    pub launch_type: Option<LaunchType>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    pub role: Option<String>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub health_check_grace_period_seconds: Option<i32>,
    pub scheduling_strategy: Option<SchedulingStrategy>,
    pub deployment_controller: Option<DeploymentController>,
    pub tags: Option<Vec<Tag>>,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    pub propagate_tags: Option<PropagateTags>,
    pub enable_execute_command: Option<bool>,
    pub service_connect_configuration: Option<ServiceConnectConfiguration>,
    pub volume_configurations: Option<Vec<ServiceVolumeConfiguration>>,
    pub vpc_lattice_configurations: Option<Vec<VpcLatticeConfiguration>>,
    pub gateway_connectors: Option<serde_json::Value>,
    pub monitoring: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServiceRequest {
    pub cluster: Option<String>,
    pub service: String,
    pub desired_count: Option<i32>,
    pub task_definition: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub availability_zone_rebalancing: Option<AvailabilityZoneRebalancing>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    pub platform_version: Option<String>,
    pub force_new_deployment: Option<bool>,
    pub health_check_grace_period_seconds: Option<i32>,
    pub deployment_controller: Option<DeploymentController>,
    pub enable_execute_command: Option<bool>,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    pub load_balancers: Option<Vec<LoadBalancer>>,
    pub propagate_tags: Option<PropagateTags>,
    pub service_registries: Option<Vec<ServiceRegistry>>,
    pub service_connect_configuration: Option<ServiceConnectConfiguration>,
    pub volume_configurations: Option<Vec<ServiceVolumeConfiguration>>,
    pub vpc_lattice_configurations: Option<Vec<VpcLatticeConfiguration>>,
    pub gateway_connectors: Option<serde_json::Value>,
    pub monitoring: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteServiceRequest {
    pub cluster: Option<String>,
    pub service: String,
    pub force: Option<bool>,
}

/// The answer of CreateService, UpdateService and DeleteService.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceResponse {
    pub service: Service,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesRequest {
    pub cluster: Option<String>,
    pub services: Vec<String>,
    pub include: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesResponse {
    pub services: Vec<Service>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesRequest {
    pub cluster: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
    pub launch_type: Option<String>,
    pub scheduling_strategy: Option<String>,
    pub resource_management_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesResponse {
    pub service_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}
