//! The `Cluster` record and its configuration shapes.
//!
//! The counts (`registeredContainerInstancesCount`, `runningTasksCount`, `pendingTasksCount`,
//! `activeServicesCount`) are computed by the server from the instances, tasks and services it
//! holds; the record carries them so the value the API returns is a `Cluster`.

use serde::{Deserialize, Serialize};

use crate::common::{Attachment, CapacityProviderStrategyItem, ClusterSetting, KeyValuePair, Tag};
use crate::error::ValidationError;

/// A cluster's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    #[default]
    Active,
    Provisioning,
    Deprovisioning,
    Failed,
    Inactive,
}

impl ClusterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Active => "ACTIVE",
            ClusterStatus::Provisioning => "PROVISIONING",
            ClusterStatus::Deprovisioning => "DEPROVISIONING",
            ClusterStatus::Failed => "FAILED",
            ClusterStatus::Inactive => "INACTIVE",
        }
    }

    /// Whether tasks, services and instances may be added to a cluster in this state.
    pub fn accepts_work(self) -> bool {
        self == ClusterStatus::Active
    }

    /// The lifecycle: PROVISIONING → ACTIVE | FAILED; ACTIVE → DEPROVISIONING | INACTIVE;
    /// DEPROVISIONING → INACTIVE | FAILED; FAILED → INACTIVE. INACTIVE (deleted) is terminal.
    /// Staying in the same state is allowed.
    pub fn can_transition_to(self, next: ClusterStatus) -> bool {
        use ClusterStatus::*;
        self == next
            || matches!(
                (self, next),
                (Provisioning, Active | Failed)
                    | (Active, Deprovisioning | Inactive)
                    | (Deprovisioning, Inactive | Failed)
                    | (Failed, Inactive)
            )
    }
}

/// `ExecuteCommandLogging`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecuteCommandLogging {
    None,
    Default,
    Override,
}

/// `ExecuteCommandLogConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteCommandLogConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cloud_watch_log_group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cloud_watch_encryption_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub s3_bucket_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub s3_encryption_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub s3_key_prefix: Option<String>,
}

/// `ExecuteCommandConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteCommandConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub logging: Option<ExecuteCommandLogging>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_configuration: Option<ExecuteCommandLogConfiguration>,
}

/// `ManagedStorageConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ManagedStorageConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fargate_ephemeral_storage_kms_key_id: Option<String>,
}

/// `ClusterConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub execute_command_configuration: Option<ExecuteCommandConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub managed_storage_configuration: Option<ManagedStorageConfiguration>,
}

/// `ClusterServiceConnectDefaults` (the response shape; the request's
/// `ClusterServiceConnectDefaultsRequest` has the same single member, required there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterServiceConnectDefaults {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub namespace: Option<String>,
}

/// The `Cluster` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub cluster_arn: String,
    pub cluster_name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub configuration: Option<ClusterConfiguration>,
    #[serde(default)]
    pub status: ClusterStatus,
    #[serde(default)]
    pub registered_container_instances_count: i32,
    #[serde(default)]
    pub running_tasks_count: i32,
    #[serde(default)]
    pub pending_tasks_count: i32,
    #[serde(default)]
    pub active_services_count: i32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub statistics: Option<Vec<KeyValuePair>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub settings: Option<Vec<ClusterSetting>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_providers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub default_capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attachments: Option<Vec<Attachment>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attachments_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_connect_defaults: Option<ClusterServiceConnectDefaults>,
}

impl Cluster {
    /// A new ACTIVE cluster with zero counts and no optional members.
    pub fn new(cluster_arn: impl Into<String>, cluster_name: impl Into<String>) -> Self {
        Cluster {
            cluster_arn: cluster_arn.into(),
            cluster_name: cluster_name.into(),
            configuration: None,
            status: ClusterStatus::Active,
            registered_container_instances_count: 0,
            running_tasks_count: 0,
            pending_tasks_count: 0,
            active_services_count: 0,
            statistics: None,
            tags: None,
            settings: None,
            capacity_providers: None,
            default_capacity_provider_strategy: None,
            attachments: None,
            attachments_status: None,
            service_connect_defaults: None,
        }
    }
}

/// The name ECS gives the cluster when a request names none.
pub const DEFAULT_CLUSTER_NAME: &str = "default";

/// Checks a `clusterName`: 1–255 letters (upper or lower case), digits, hyphens and underscores.
pub fn validate_cluster_name(name: &str) -> Result<(), ValidationError> {
    let ok = (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::invalid(
            "clusterName",
            "cluster name must be 1 to 255 characters: letters (upper and lowercase), numbers, \
             underscores and hyphens are allowed",
        ))
    }
}

/// Checks a `settings` member of CreateCluster/UpdateClusterSettings: containerInsights takes
/// `enabled`, `disabled` or `enhanced`.
pub fn validate_cluster_settings(
    field: &str,
    settings: &[ClusterSetting],
) -> Result<(), ValidationError> {
    for (i, s) in settings.iter().enumerate() {
        if s.name.is_none() {
            return Err(ValidationError::invalid(
                format!("{field}[{i}].name"),
                format!("{field}[{i}].name is required"),
            ));
        }
        match s.value.as_deref() {
            Some("enabled" | "disabled" | "enhanced") => {}
            other => {
                return Err(ValidationError::invalid(
                    format!("{field}[{i}].value"),
                    format!(
                        "containerInsights must be one of enabled, disabled, enhanced, got '{}'",
                        other.unwrap_or("")
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::ClusterSettingName;
    use serde_json::json;

    #[test]
    fn cluster_wire_shape() {
        let mut c = Cluster::new(
            "arn:aws:ecs:us-east-1:123456789012:cluster/stage01",
            "stage01",
        );
        c.running_tasks_count = 3;
        c.settings = Some(vec![ClusterSetting {
            name: Some(ClusterSettingName::ContainerInsights),
            value: Some("disabled".into()),
        }]);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            json!({
                "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/stage01",
                "clusterName": "stage01",
                "status": "ACTIVE",
                "registeredContainerInstancesCount": 0,
                "runningTasksCount": 3,
                "pendingTasksCount": 0,
                "activeServicesCount": 0,
                "settings": [{"name": "containerInsights", "value": "disabled"}]
            })
        );
        let back: Cluster = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn configuration_round_trips() {
        let v = json!({
            "executeCommandConfiguration": {
                "kmsKeyId": "k", "logging": "OVERRIDE",
                "logConfiguration": {"cloudWatchLogGroupName": "g", "cloudWatchEncryptionEnabled": true,
                                     "s3BucketName": "b", "s3EncryptionEnabled": false, "s3KeyPrefix": "p"}
            },
            "managedStorageConfiguration": {"kmsKeyId": "a", "fargateEphemeralStorageKmsKeyId": "b"}
        });
        let c: ClusterConfiguration = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), v);
    }

    #[test]
    fn status_lifecycle() {
        use ClusterStatus::*;
        assert!(Active.can_transition_to(Inactive));
        assert!(Provisioning.can_transition_to(Active));
        assert!(!Inactive.can_transition_to(Active));
        assert!(!Active.can_transition_to(Provisioning));
        assert!(Active.accepts_work() && !Inactive.accepts_work());
        assert_eq!(
            serde_json::to_value(Deprovisioning).unwrap(),
            "DEPROVISIONING"
        );
    }

    #[test]
    fn cluster_names() {
        assert!(validate_cluster_name("stage01").is_ok());
        assert!(validate_cluster_name("My_Cluster-2").is_ok());
        assert_eq!(validate_cluster_name("").unwrap_err().field, "clusterName");
        assert!(validate_cluster_name("a/b").is_err());
        assert!(validate_cluster_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn cluster_settings() {
        let s = |v: &str| ClusterSetting {
            name: Some(ClusterSettingName::ContainerInsights),
            value: Some(v.into()),
        };
        assert!(validate_cluster_settings("settings", &[s("enabled")]).is_ok());
        let e = validate_cluster_settings("settings", &[s("enabled"), s("on")]).unwrap_err();
        assert_eq!(e.field, "settings[1].value");
    }
}
