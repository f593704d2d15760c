//! Small shapes that several ECS resources share: tags, key/value pairs, attributes, the
//! container-instance resource entries, batch failures, settings, attachments, capacity provider
//! strategy items, launch type, transport protocol and awsvpc network configuration.
//!
//! Each serializes in ECS's wire shape (botocore `ecs/2014-11-13`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// A resource tag (`Tag`). ECS requires a key of 1–128 characters and a value of 0–256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The most tags a resource may carry.
pub const MAX_TAGS: usize = 50;

/// Checks a request's `tags` member: at most 50 tags, keys 1–128 characters and unique, values
/// at most 256 characters, and no key with the reserved `aws:` prefix (any case).
pub fn validate_tags(field: &str, tags: &[Tag]) -> Result<(), ValidationError> {
    if tags.len() > MAX_TAGS {
        return Err(ValidationError::invalid(
            field,
            format!(
                "{field} has {} tags: at most {MAX_TAGS} are allowed",
                tags.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, tag) in tags.iter().enumerate() {
        let key_len = tag.key.chars().count();
        if !(1..=128).contains(&key_len) {
            return Err(ValidationError::invalid(
                format!("{field}[{i}].key"),
                format!("{field}[{i}].key must be 1 to 128 characters long"),
            ));
        }
        if tag.value.chars().count() > 256 {
            return Err(ValidationError::invalid(
                format!("{field}[{i}].value"),
                format!("{field}[{i}].value must be at most 256 characters long"),
            ));
        }
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ValidationError::invalid(
                format!("{field}[{i}].key"),
                format!("tag key '{}' uses the reserved prefix 'aws:'", tag.key),
            ));
        }
        if !seen.insert(tag.key.as_str()) {
            return Err(ValidationError::invalid(
                format!("{field}[{i}].key"),
                format!("duplicate tag key '{}'", tag.key),
            ));
        }
    }
    Ok(())
}

/// `KeyValuePair`: environment variables, cluster statistics, attachment details.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValuePair {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
}

impl KeyValuePair {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValuePair {
            name: Some(name.into()),
            value: Some(value.into()),
        }
    }
}

/// `TargetType`: the kind of resource an [`Attribute`] is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TargetType {
    #[serde(rename = "container-instance")]
    ContainerInstance,
}

/// `Attribute`: a name (and optional value) on a container instance, e.g. `ecs.os-type`, or a
/// task definition's `requiresAttributes` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_type: Option<TargetType>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_id: Option<String>,
}

impl Attribute {
    pub fn new(name: impl Into<String>, value: Option<String>) -> Self {
        Attribute {
            name: name.into(),
            value,
            target_type: None,
            target_id: None,
        }
    }
}

/// Checks a custom attribute as PutAttributes and RegisterContainerInstance take it: the name is
/// 1–128 characters of letters, digits, `-`, `_`, `/`, `.`, `@`; the value, when present, is
/// 1–128 characters of letters, digits, `-`, `_`, `.`, `@`, `/`, `:` and spaces (ECS's
/// documented limits).
pub fn validate_attribute(field: &str, attribute: &Attribute) -> Result<(), ValidationError> {
    let name = &attribute.name;
    let name_ok = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_/.@".contains(c));
    if !name_ok {
        return Err(ValidationError::invalid(
            format!("{field}.name"),
            format!(
                "attribute name '{name}' must be 1 to 128 letters, digits, hyphens, \
                 underscores, slashes, periods or at signs"
            ),
        ));
    }
    if let Some(value) = &attribute.value {
        let value_ok = (1..=128).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@/: ".contains(c));
        if !value_ok {
            return Err(ValidationError::invalid(
                format!("{field}.value"),
                format!(
                    "attribute value '{value}' must be 1 to 128 letters, digits, hyphens, \
                     underscores, periods, at signs, slashes, colons or spaces"
                ),
            ));
        }
    }
    Ok(())
}

/// `Resource`: one entry of a container instance's registered/remaining resources, e.g.
/// `{"name":"CPU","type":"INTEGER","integerValue":2048}` or
/// `{"name":"PORTS","type":"STRINGSET","stringSetValue":["22","2376"]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub double_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub long_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub integer_value: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub string_set_value: Option<Vec<String>>,
}

impl Resource {
    /// An `INTEGER` resource, as the agent registers CPU and MEMORY. Values beyond `i32` are
    /// clamped.
    pub fn integer(name: impl Into<String>, value: i64) -> Self {
        let v = value.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        Resource {
            name: Some(name.into()),
            r#type: Some("INTEGER".to_string()),
            integer_value: Some(v),
            ..Resource::default()
        }
    }

    /// A `STRINGSET` resource, as the agent registers PORTS and PORTS_UDP.
    pub fn string_set(name: impl Into<String>, values: Vec<String>) -> Self {
        Resource {
            name: Some(name.into()),
            r#type: Some("STRINGSET".to_string()),
            string_set_value: Some(values),
            ..Resource::default()
        }
    }

    /// The numeric value whichever member carries it (integer, long, then double, truncated).
    pub fn number(&self) -> Option<i64> {
        self.integer_value
            .map(i64::from)
            .or(self.long_value)
            .or(self.double_value.map(|d| d as i64))
    }
}

/// `Failure`: one entry of a batch call's `failures`, e.g. `{"arn": "...", "reason": "MISSING"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

impl Failure {
    pub fn new(arn: impl Into<String>, reason: impl Into<String>) -> Self {
        Failure {
            arn: Some(arn.into()),
            reason: Some(reason.into()),
            detail: None,
        }
    }
    /// The `MISSING` failure Describe* calls report for an unknown identifier.
    pub fn missing(arn: impl Into<String>) -> Self {
        Failure::new(arn, "MISSING")
    }
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// `ClusterSettingName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClusterSettingName {
    #[serde(rename = "containerInsights")]
    ContainerInsights,
}

/// `ClusterSetting`, e.g. `{"name": "containerInsights", "value": "enabled"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSetting {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<ClusterSettingName>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
}

/// `SettingName`: account settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SettingName {
    ServiceLongArnFormat,
    TaskLongArnFormat,
    ContainerInstanceLongArnFormat,
    AwsvpcTrunking,
    ContainerInsights,
    #[serde(rename = "fargateFIPSMode")]
    FargateFipsMode,
    TagResourceAuthorization,
    FargateTaskRetirementWaitPeriod,
    GuardDutyActivate,
    DefaultLogDriverMode,
    FargateEventWindows,
}

/// `SettingType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SettingType {
    #[serde(rename = "user")]
    User,
    #[serde(rename = "aws_managed")]
    AwsManaged,
}

/// `Setting`: an account setting as ListAccountSettings and PutAccountSetting return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<SettingName>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub principal_arn: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub r#type: Option<SettingType>,
}

/// `Attachment`: an elastic network interface, service connect or managed storage attachment
/// of a task, container instance or cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub details: Option<Vec<KeyValuePair>>,
}

/// `CapacityProviderStrategyItem`: `weight` 0–1000, `base` 0–100000.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub weight: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub base: Option<i32>,
}

/// Checks a `capacityProviderStrategy` member: weights 0–1000, bases 0–100000, at most one
/// item with a base, no provider named twice, and at most 20 items.
pub fn validate_capacity_provider_strategy(
    field: &str,
    items: &[CapacityProviderStrategyItem],
) -> Result<(), ValidationError> {
    if items.len() > 20 {
        return Err(ValidationError::invalid(
            field,
            format!("{field} has {} items: at most 20 are allowed", items.len()),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut with_base = 0;
    for (i, item) in items.iter().enumerate() {
        if item.capacity_provider.is_empty() {
            return Err(ValidationError::invalid(
                format!("{field}[{i}].capacityProvider"),
                format!("{field}[{i}].capacityProvider must not be empty"),
            ));
        }
        if let Some(w) = item.weight
            && !(0..=1000).contains(&w)
        {
            return Err(ValidationError::invalid(
                format!("{field}[{i}].weight"),
                format!("{field}[{i}].weight must be between 0 and 1000, got {w}"),
            ));
        }
        if let Some(b) = item.base {
            if !(0..=100_000).contains(&b) {
                return Err(ValidationError::invalid(
                    format!("{field}[{i}].base"),
                    format!("{field}[{i}].base must be between 0 and 100000, got {b}"),
                ));
            }
            if b > 0 {
                with_base += 1;
            }
        }
        if with_base > 1 {
            return Err(ValidationError::invalid(
                format!("{field}[{i}].base"),
                "only one capacity provider in a strategy can have a base defined",
            ));
        }
        if !seen.insert(item.capacity_provider.as_str()) {
            return Err(ValidationError::invalid(
                format!("{field}[{i}].capacityProvider"),
                format!(
                    "capacity provider '{}' appears more than once",
                    item.capacity_provider
                ),
            ));
        }
    }
    Ok(())
}

/// `LaunchType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LaunchType {
    Ec2,
    Fargate,
    External,
    ManagedInstances,
}

impl LaunchType {
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchType::Ec2 => "EC2",
            LaunchType::Fargate => "FARGATE",
            LaunchType::External => "EXTERNAL",
            LaunchType::ManagedInstances => "MANAGED_INSTANCES",
        }
    }
}

/// `TransportProtocol`: `tcp` or `udp` (port mappings and network bindings).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum TransportProtocol {
    #[default]
    Tcp,
    Udp,
}

impl TransportProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportProtocol::Tcp => "tcp",
            TransportProtocol::Udp => "udp",
        }
    }
}

/// `PropagateTags`: where a service's or task's tags are copied from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PropagateTags {
    TaskDefinition,
    Service,
    None,
}

/// `AssignPublicIp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssignPublicIp {
    Enabled,
    Disabled,
}

/// `AwsVpcConfiguration`: subnets (required, at most 16), security groups (at most 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsVpcConfiguration {
    pub subnets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub security_groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub assign_public_ip: Option<AssignPublicIp>,
}

/// `NetworkConfiguration` (services, task sets, deployments, RunTask/StartTask).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfiguration {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub awsvpc_configuration: Option<AwsVpcConfiguration>,
}

/// Checks a `networkConfiguration` member: at most 16 subnets and 5 security groups.
pub fn validate_network_configuration(
    field: &str,
    config: &NetworkConfiguration,
) -> Result<(), ValidationError> {
    if let Some(vpc) = &config.awsvpc_configuration {
        if vpc.subnets.is_empty() {
            return Err(ValidationError::invalid(
                format!("{field}.awsvpcConfiguration.subnets"),
                "subnets can not be empty",
            ));
        }
        if vpc.subnets.len() > 16 {
            return Err(ValidationError::invalid(
                format!("{field}.awsvpcConfiguration.subnets"),
                "at most 16 subnets are allowed",
            ));
        }
        if vpc.security_groups.as_ref().is_some_and(|g| g.len() > 5) {
            return Err(ValidationError::invalid(
                format!("{field}.awsvpcConfiguration.securityGroups"),
                "at most 5 security groups are allowed",
            ));
        }
    }
    Ok(())
}

/// `EnvironmentFileType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentFileType {
    S3,
}

/// `EnvironmentFile`: an S3 object of `VARIABLE=VALUE` lines (container definitions and
/// container overrides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentFile {
    pub value: String,
    #[serde(rename = "type")]
    pub r#type: EnvironmentFileType,
}

/// `ResourceType` of a [`ResourceRequirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    #[serde(rename = "GPU")]
    Gpu,
    #[serde(rename = "InferenceAccelerator")]
    InferenceAccelerator,
    #[serde(rename = "NeuronDevice")]
    NeuronDevice,
}

/// `NvidiaMpsAllocation`: `memory` ≥ 1, `maxComputePercent` 1–100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NvidiaMpsAllocation {
    pub memory: i32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_compute_percent: Option<i32>,
}

/// `SharingStrategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SharingStrategy {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nvidia_mps: Option<NvidiaMpsAllocation>,
}

/// `ResourceRequirement` (container definitions and container overrides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirement {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
    #[serde(rename = "type")]
    pub r#type: ResourceType,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sharing_strategy: Option<SharingStrategy>,
}

/// `InferenceAccelerator` (task definitions and tasks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceAccelerator {
    pub device_name: String,
    pub device_type: String,
}

/// `EphemeralStorage` (task definitions, tasks, task overrides): `sizeInGiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EphemeralStorage {
    #[serde(rename = "sizeInGiB")]
    pub size_in_gib: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tag_and_attribute_wire_shape() {
        let tag = Tag::new("team", "web");
        assert_eq!(
            serde_json::to_value(&tag).unwrap(),
            json!({"key": "team", "value": "web"})
        );
        let attr: Attribute = serde_json::from_value(json!({
            "name": "ecs.os-type", "value": "linux", "targetType": "container-instance",
            "targetId": "arn:aws:ecs:us-east-1:1:container-instance/c/abc"
        }))
        .unwrap();
        assert_eq!(attr.target_type, Some(TargetType::ContainerInstance));
        assert_eq!(
            serde_json::to_value(Attribute::new("stack", None)).unwrap(),
            json!({"name": "stack"})
        );
    }

    #[test]
    fn resource_wire_shape() {
        let cpu = Resource::integer("CPU", 2048);
        assert_eq!(
            serde_json::to_value(&cpu).unwrap(),
            json!({"name": "CPU", "type": "INTEGER", "integerValue": 2048})
        );
        let r: Resource = serde_json::from_value(json!({
            "name": "MEMORY", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0,
            "integerValue": 3768
        }))
        .unwrap();
        assert_eq!(r.number(), Some(3768));
    }

    #[test]
    fn enums_use_botocore_strings() {
        assert_eq!(
            serde_json::to_value(LaunchType::ManagedInstances).unwrap(),
            "MANAGED_INSTANCES"
        );
        assert_eq!(serde_json::to_value(LaunchType::Ec2).unwrap(), "EC2");
        assert_eq!(
            serde_json::to_value(SettingName::FargateFipsMode).unwrap(),
            "fargateFIPSMode"
        );
        assert_eq!(
            serde_json::to_value(SettingName::ContainerInstanceLongArnFormat).unwrap(),
            "containerInstanceLongArnFormat"
        );
        assert_eq!(
            serde_json::to_value(SettingType::AwsManaged).unwrap(),
            "aws_managed"
        );
        assert_eq!(
            serde_json::to_value(PropagateTags::TaskDefinition).unwrap(),
            "TASK_DEFINITION"
        );
        assert_eq!(serde_json::to_value(TransportProtocol::Udp).unwrap(), "udp");
        assert_eq!(
            serde_json::to_value(ClusterSettingName::ContainerInsights).unwrap(),
            "containerInsights"
        );
    }

    #[test]
    fn tag_validation() {
        assert!(validate_tags("tags", &[Tag::new("a", ""), Tag::new("b", "x")]).is_ok());
        let e = validate_tags("tags", &[Tag::new("a", "1"), Tag::new("a", "2")]).unwrap_err();
        assert_eq!(e.field, "tags[1].key");
        let e = validate_tags("tags", &[Tag::new("", "1")]).unwrap_err();
        assert_eq!(e.field, "tags[0].key");
        let e = validate_tags("tags", &[Tag::new("AWS:x", "1")]).unwrap_err();
        assert_eq!(e.field, "tags[0].key");
        let e = validate_tags("tags", &[Tag::new("k", "v".repeat(257))]).unwrap_err();
        assert_eq!(e.field, "tags[0].value");
        let many: Vec<Tag> = (0..51).map(|i| Tag::new(format!("k{i}"), "")).collect();
        assert_eq!(validate_tags("tags", &many).unwrap_err().field, "tags");
    }

    #[test]
    fn attribute_validation() {
        assert!(
            validate_attribute(
                "attributes[0]",
                &Attribute::new("stack", Some("prod".into()))
            )
            .is_ok()
        );
        assert!(validate_attribute("attributes[0]", &Attribute::new("ecs.os-type", None)).is_ok());
        let e = validate_attribute("attributes[0]", &Attribute::new("bad name", None)).unwrap_err();
        assert_eq!(e.field, "attributes[0].name");
        let e = validate_attribute("attributes[0]", &Attribute::new("ok", Some("a|b".into())))
            .unwrap_err();
        assert_eq!(e.field, "attributes[0].value");
    }

    #[test]
    fn capacity_provider_strategy_validation() {
        let item = |p: &str, w: Option<i32>, b: Option<i32>| CapacityProviderStrategyItem {
            capacity_provider: p.into(),
            weight: w,
            base: b,
        };
        let ok = [item("a", Some(1), Some(2)), item("b", Some(3), None)];
        assert!(validate_capacity_provider_strategy("capacityProviderStrategy", &ok).is_ok());
        let e =
            validate_capacity_provider_strategy("s", &[item("a", Some(1001), None)]).unwrap_err();
        assert_eq!(e.field, "s[0].weight");
        let e = validate_capacity_provider_strategy(
            "s",
            &[item("a", None, Some(1)), item("b", None, Some(1))],
        )
        .unwrap_err();
        assert_eq!(e.field, "s[1].base");
        let e = validate_capacity_provider_strategy(
            "s",
            &[item("a", None, None), item("a", None, None)],
        )
        .unwrap_err();
        assert_eq!(e.field, "s[1].capacityProvider");
    }

    #[test]
    fn network_configuration_wire_shape() {
        let n: NetworkConfiguration = serde_json::from_value(json!({
            "awsvpcConfiguration": {"subnets": ["s-1"], "assignPublicIp": "DISABLED"}
        }))
        .unwrap();
        assert_eq!(
            n.awsvpc_configuration.as_ref().unwrap().assign_public_ip,
            Some(AssignPublicIp::Disabled)
        );
        assert!(validate_network_configuration("networkConfiguration", &n).is_ok());
    }
}
