//! From a validated spec to the record ECS returns: defaults filled in, `cpu`/`memory` converted,
//! `compatibilities` and `requiresAttributes` derived.

use std::collections::BTreeSet;

use super::*;

impl TaskDefinition {
    /// Builds the `ACTIVE` record for a spec that passed [`validate`], the way ECS returns it from
    /// `RegisterTaskDefinition`:
    ///
    /// - task level: `cpu` and `memory` are converted to decimal unit/MiB strings (`"1 vCPU"` →
    ///   `"1024"`, `"0.5GB"` → `"512"`); `volumes`, `placementConstraints`, `requiresAttributes`
    ///   and `compatibilities` are always present (empty lists when there is nothing);
    ///   `networkMode` and `requiresCompatibilities` stay absent when they were not sent (ECS
    ///   omits them; [`TaskDefinition::effective_network_mode`] gives `bridge`).
    /// - each container: `cpu` 0, `essential` true, and `portMappings`, `environment`,
    ///   `mountPoints`, `volumesFrom`, `systemControls` as `[]` when absent (what ECS echoes);
    ///   every port mapping gets `protocol` `tcp`, and, unless it uses `containerPortRange`, a
    ///   `hostPort`: `0` (dynamic) in bridge mode, the `containerPort` in host/awsvpc mode;
    ///   a `healthCheck` gets `interval` 30, `timeout` 5, `retries` 3 when absent (`startPeriod`
    ///   stays absent: "off").
    /// - `compatibilities`: see [`compatibilities`]; `requiresAttributes`: see
    ///   [`requires_attributes`].
    pub fn from_spec(
        spec: TaskDefinitionSpec,
        arn: String,
        revision: i32,
        registered_at: Timestamp,
        registered_by: Option<String>,
    ) -> TaskDefinition {
        let mode = spec.effective_network_mode();
        let compatibilities = compatibilities(&spec);
        let requires_attributes = requires_attributes(&spec);
        let cpu = spec
            .cpu
            .map(|c| parse_cpu_units(&c).map(|u| u.to_string()).unwrap_or(c));
        let memory = spec
            .memory
            .map(|m| parse_memory_mib(&m).map(|u| u.to_string()).unwrap_or(m));
        let container_definitions = spec
            .container_definitions
            .into_iter()
            .map(|c| normalize_container(c, mode))
            .collect();
        TaskDefinition {
            task_definition_arn: arn,
            container_definitions,
            family: spec.family,
            task_role_arn: spec.task_role_arn,
            execution_role_arn: spec.execution_role_arn,
            network_mode: spec.network_mode,
            revision,
            volumes: spec.volumes.unwrap_or_default(),
            status: TaskDefinitionStatus::Active,
            requires_attributes,
            placement_constraints: spec.placement_constraints.unwrap_or_default(),
            compatibilities,
            runtime_platform: spec.runtime_platform,
            requires_compatibilities: spec.requires_compatibilities,
            cpu,
            memory,
            inference_accelerators: spec.inference_accelerators,
            pid_mode: spec.pid_mode,
            ipc_mode: spec.ipc_mode,
            proxy_configuration: spec.proxy_configuration,
            registered_at,
            deregistered_at: None,
            delete_requested_at: None,
            registered_by,
            ephemeral_storage: spec.ephemeral_storage,
            enable_fault_injection: spec.enable_fault_injection,
            trusted_execution_configuration: spec.trusted_execution_configuration,
        }
    }
}

fn normalize_container(mut c: ContainerDefinition, mode: NetworkMode) -> ContainerDefinition {
    c.cpu.get_or_insert(0);
    c.essential.get_or_insert(true);
    c.environment.get_or_insert_with(Vec::new);
    c.mount_points.get_or_insert_with(Vec::new);
    c.volumes_from.get_or_insert_with(Vec::new);
    c.system_controls.get_or_insert_with(Vec::new);
    for pm in c.port_mappings.get_or_insert_with(Vec::new) {
        pm.protocol.get_or_insert(TransportProtocol::Tcp);
        if pm.container_port_range.is_none() && pm.host_port.is_none() {
            pm.host_port = match mode {
                NetworkMode::Host | NetworkMode::Awsvpc => pm.container_port,
                NetworkMode::Bridge | NetworkMode::None => Some(0),
            };
        }
    }
    if let Some(hc) = c.health_check.as_mut() {
        hc.interval.get_or_insert(HealthCheck::DEFAULT_INTERVAL);
        hc.timeout.get_or_insert(HealthCheck::DEFAULT_TIMEOUT);
        hc.retries.get_or_insert(HealthCheck::DEFAULT_RETRIES);
    }
    c
}

/// The launch types a definition is compatible with, in the order ECS lists them:
///
/// - `awsvpc`: `["EC2"]`, plus `FARGATE` when task-level `cpu` and `memory` are both set (ECS
///   reports `["EC2", "FARGATE"]` for such definitions even without `requiresCompatibilities`);
///   ECS Anywhere (`EXTERNAL`) does not support `awsvpc`.
/// - `bridge`, `host`, `none`: `["EXTERNAL", "EC2"]` (Fargate needs `awsvpc`).
/// - `MANAGED_INSTANCES` is appended when `requiresCompatibilities` asks for it.
///
/// A Berth agent can run every one of these; the list is what `RunTask`/`CreateService` check a
/// requested `launchType` against.
pub fn compatibilities(spec: &TaskDefinitionSpec) -> Vec<Compatibility> {
    let mut out = match spec.effective_network_mode() {
        NetworkMode::Awsvpc => {
            let mut v = vec![Compatibility::Ec2];
            if spec.cpu.is_some() && spec.memory.is_some() {
                v.push(Compatibility::Fargate);
            }
            v
        }
        _ => vec![Compatibility::External, Compatibility::Ec2],
    };
    let requested = spec.requires_compatibilities.as_deref().unwrap_or_default();
    if requested.contains(&Compatibility::ManagedInstances) {
        out.push(Compatibility::ManagedInstances);
    }
    out
}

const DOCKER_API: &str = "com.amazonaws.ecs.capability.docker-remote-api.";

/// The capabilities a Berth container instance has: what its agent can run of the features
/// [`requires_attributes`] derives. Docker remote API versions 1.17–1.25, Docker's own logging
/// drivers, container health checks, container ordering, environment files, the `local`
/// volume driver, registry authentication, Secrets Manager secrets and Systems Manager
/// parameters as environment variables and as log driver options, repositoryCredentials from
/// Secrets Manager, and privileged containers only where the agent allows them. Not: task IAM
/// roles, awsvpc, awslogs, FireLens, EFS, PID/IPC sharing, container port ranges, volume
/// plugins.
pub fn berth_capabilities(allow_privileged: bool) -> Vec<String> {
    let api = (17..=25).map(|minor| format!("{DOCKER_API}1.{minor}"));
    let logging = [
        "json-file",
        "syslog",
        "journald",
        "gelf",
        "fluentd",
        "splunk",
    ]
    .map(|d| format!("com.amazonaws.ecs.capability.logging-driver.{d}"));
    let features = [
        "ecs.capability.container-health-check",
        "ecs.capability.container-ordering",
        "ecs.capability.env-files.s3",
        "ecs.capability.docker-plugin.local",
        "com.amazonaws.ecs.capability.ecr-auth",
        "ecs.capability.secrets.asm.environment-variables",
        "ecs.capability.secrets.ssm.environment-variables",
        "ecs.capability.secrets.asm.bootstrap.log-driver",
        "ecs.capability.secrets.ssm.bootstrap.log-driver",
        "ecs.capability.private-registry-authentication.secretsmanager",
    ]
    .map(str::to_owned);
    let privileged =
        allow_privileged.then(|| "com.amazonaws.ecs.capability.privileged-container".to_owned());
    api.chain(logging)
        .chain(features)
        .chain(privileged)
        .collect()
}

/// The container-instance attributes a task of this definition needs, derived as ECS does from
/// the features it uses, sorted by name (ECS's own order is unspecified) and deduplicated:
///
/// | feature | attribute |
/// |---|---|
/// | always | `com.amazonaws.ecs.capability.docker-remote-api.1.17` |
/// | `dockerLabels`, `ulimits`, `logConfiguration` | `…docker-remote-api.1.18` |
/// | `logConfiguration.options` | `…docker-remote-api.1.19` |
/// | `memoryReservation` | `…docker-remote-api.1.21` |
/// | `healthCheck` | `…docker-remote-api.1.24`, `ecs.capability.container-health-check` |
/// | `linuxParameters.initProcessEnabled` | `…docker-remote-api.1.25` |
/// | `logConfiguration.logDriver` D | `com.amazonaws.ecs.capability.logging-driver.D` |
/// | awslogs + `executionRoleArn` | `ecs.capability.execution-role-awslogs` |
/// | image in an ECR registry | `com.amazonaws.ecs.capability.ecr-auth` (+ `ecs.capability.execution-role-ecr-pull` with an execution role) |
/// | `repositoryCredentials` | `ecs.capability.private-registry-authentication.secretsmanager` |
/// | `secrets` from Secrets Manager / SSM | `ecs.capability.secrets.asm.environment-variables` / `ecs.capability.secrets.ssm.environment-variables` |
/// | `logConfiguration.secretOptions` from Secrets Manager / SSM | `ecs.capability.secrets.asm.bootstrap.log-driver` / `ecs.capability.secrets.ssm.bootstrap.log-driver` |
/// | `dependsOn`, `startTimeout`, `stopTimeout` | `ecs.capability.container-ordering` |
/// | `privileged: true` | `com.amazonaws.ecs.capability.privileged-container` |
/// | `taskRoleArn` | `com.amazonaws.ecs.capability.task-iam-role` (+ `…task-iam-role-network-host` in host mode) |
/// | `networkMode: awsvpc` | `ecs.capability.task-eni` |
/// | `pidMode` or `ipcMode` | `ecs.capability.pid-ipc-namespace-sharing` |
/// | `environmentFiles` | `ecs.capability.env-files.s3` |
/// | `firelensConfiguration` T | `ecs.capability.firelens.T` |
/// | `containerPortRange` | `ecs.capability.container-port-range` |
/// | EFS volume | `ecs.capability.efs` (+ `ecs.capability.efsAuth` with `authorizationConfig`) |
/// | Docker volume with driver D (default `local`) | `ecs.capability.docker-plugin.D` |
pub fn requires_attributes(spec: &TaskDefinitionSpec) -> Vec<Attribute> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut add = |n: &str| {
        names.insert(n.to_string());
    };
    let api = |v: &str| format!("{DOCKER_API}{v}");
    add(&api("1.17"));
    let has_exec_role = spec
        .execution_role_arn
        .as_deref()
        .is_some_and(|s| !s.is_empty());
    let mode = spec.effective_network_mode();

    if spec.task_role_arn.as_deref().is_some_and(|s| !s.is_empty()) {
        add("com.amazonaws.ecs.capability.task-iam-role");
        if mode == NetworkMode::Host {
            add("com.amazonaws.ecs.capability.task-iam-role-network-host");
        }
    }
    if mode == NetworkMode::Awsvpc {
        add("ecs.capability.task-eni");
    }
    if spec.pid_mode.is_some() || spec.ipc_mode.is_some() {
        add("ecs.capability.pid-ipc-namespace-sharing");
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(efs) = &v.efs_volume_configuration {
            add("ecs.capability.efs");
            if efs.authorization_config.is_some() {
                add("ecs.capability.efsAuth");
            }
        }
        if let Some(d) = &v.docker_volume_configuration {
            let driver = d
                .driver
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or("local");
            add(&format!("ecs.capability.docker-plugin.{driver}"));
        }
    }

    for c in &spec.container_definitions {
        if c.docker_labels.is_some() || c.ulimits.is_some() || c.log_configuration.is_some() {
            add(&api("1.18"));
        }
        if c.memory_reservation.is_some() {
            add(&api("1.21"));
        }
        if c.health_check.is_some() {
            add(&api("1.24"));
            add("ecs.capability.container-health-check");
        }
        if c.linux_parameters
            .as_ref()
            .is_some_and(|l| l.init_process_enabled.is_some())
        {
            add(&api("1.25"));
        }
        if let Some(log) = &c.log_configuration {
            if log.options.is_some() {
                add(&api("1.19"));
            }
            add(&format!(
                "com.amazonaws.ecs.capability.logging-driver.{}",
                log.log_driver
            ));
            if log.log_driver == LogDriver::Awslogs && has_exec_role {
                add("ecs.capability.execution-role-awslogs");
            }
            for s in log.secret_options.iter().flatten() {
                add(match secret_source(&s.value_from) {
                    SecretSource::SecretsManager => {
                        "ecs.capability.secrets.asm.bootstrap.log-driver"
                    }
                    SecretSource::Ssm => "ecs.capability.secrets.ssm.bootstrap.log-driver",
                });
            }
        }
        if c.image.as_deref().is_some_and(is_ecr_image) {
            add("com.amazonaws.ecs.capability.ecr-auth");
            if has_exec_role {
                add("ecs.capability.execution-role-ecr-pull");
            }
        }
        if c.repository_credentials.is_some() {
            add("ecs.capability.private-registry-authentication.secretsmanager");
        }
        for s in c.secrets.iter().flatten() {
            add(match secret_source(&s.value_from) {
                SecretSource::SecretsManager => "ecs.capability.secrets.asm.environment-variables",
                SecretSource::Ssm => "ecs.capability.secrets.ssm.environment-variables",
            });
        }
        if c.depends_on.as_ref().is_some_and(|d| !d.is_empty())
            || c.start_timeout.is_some()
            || c.stop_timeout.is_some()
        {
            add("ecs.capability.container-ordering");
        }
        if c.privileged == Some(true) {
            add("com.amazonaws.ecs.capability.privileged-container");
        }
        if c.environment_files.as_ref().is_some_and(|f| !f.is_empty()) {
            add("ecs.capability.env-files.s3");
        }
        if let Some(fl) = &c.firelens_configuration {
            add(&format!("ecs.capability.firelens.{}", fl.r#type));
        }
        if c.port_mappings
            .iter()
            .flatten()
            .any(|p| p.container_port_range.is_some())
        {
            add("ecs.capability.container-port-range");
        }
    }
    names.into_iter().map(|n| Attribute::new(n, None)).collect()
}

/// Where a secret's `valueFrom` points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretSource {
    SecretsManager,
    Ssm,
}

/// Secrets Manager ARNs (`arn:…:secretsmanager:…`) go to Secrets Manager; everything else (an
/// SSM parameter name or `arn:…:ssm:…`) to Parameter Store, as ECS decides.
pub(crate) fn secret_source(value_from: &str) -> SecretSource {
    if value_from.starts_with("arn:") && value_from.split(':').nth(2) == Some("secretsmanager") {
        SecretSource::SecretsManager
    } else {
        SecretSource::Ssm
    }
}

/// An image in an ECR registry: `ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]/…`.
fn is_ecr_image(image: &str) -> bool {
    image.split_once('/').is_some_and(|(registry, _)| {
        registry.contains(".dkr.ecr.") && registry.contains(".amazonaws.com")
    })
}
