//! `RegisterTaskDefinition`'s register-time rules, from botocore's documentation of each member
//! and ECS's behaviour. Every failure is a `ClientException` (ECS's exception for task definition
//! content) whose message starts with the member path; the first failure wins, checked in a fixed
//! order: task-level members, volumes, placement constraints, container names, each container in
//! order, then the rules that span containers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use super::normalize::{SecretSource, secret_source};
use super::*;

/// The most container definitions one task definition may have.
pub const MAX_CONTAINERS: usize = 10;
/// The most placement constraints one task definition may have.
const MAX_PLACEMENT_CONSTRAINTS: usize = 10;
/// Task-level CPU range ECS accepts for EC2/EXTERNAL (0.125 to 192 vCPU).
const TASK_CPU_RANGE: (u32, u32) = (128, 196_608);
/// Docker's smallest memory limit for a container.
const MIN_CONTAINER_MEMORY_MIB: i32 = 6;
/// Names (family, container, volume): up to 255 letters, numbers, underscores and hyphens.
const NAME_MAX: usize = 255;

fn fail(field: impl Into<String>, what: impl Display) -> ValidationError {
    let field = field.into();
    let message = if field.is_empty() {
        what.to_string()
    } else {
        format!("{field}: {what}")
    };
    ValidationError::client(field, message)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= NAME_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

const NAME_RULE: &str = "use 1 to 255 letters, numbers, underscores and hyphens";

/// What a container check needs to know about the rest of the definition.
struct Ctx<'a> {
    spec: &'a TaskDefinitionSpec,
    mode: NetworkMode,
    task_memory: Option<u32>,
    fargate: bool,
    /// container name -> index.
    containers: BTreeMap<&'a str, usize>,
    volumes: BTreeSet<&'a str>,
}

/// Checks a spec against ECS's rules; returns the first problem found.
pub fn validate(spec: &TaskDefinitionSpec) -> Result<(), ValidationError> {
    if !is_name(&spec.family) {
        return Err(fail(
            "family",
            format!("'{}' is not a valid family name; {NAME_RULE}", spec.family),
        ));
    }
    let mode = spec.effective_network_mode();
    let task_cpu = spec.cpu.as_deref().map(parse_cpu_units).transpose()?;
    let task_memory = spec.memory.as_deref().map(parse_memory_mib).transpose()?;
    if let Some(cpu) = task_cpu {
        let (lo, hi) = TASK_CPU_RANGE;
        if !(lo..=hi).contains(&cpu) {
            return Err(fail(
                "cpu",
                format!(
                    "invalid 'cpu' setting for task: {cpu} CPU units is outside the supported \
                     range {lo} to {hi} (0.125 to 192 vCPU)"
                ),
            ));
        }
    }
    if let Some(mem) = task_memory
        && mem < MIN_CONTAINER_MEMORY_MIB as u32
    {
        return Err(fail(
            "memory",
            format!(
                "invalid 'memory' setting for task: {mem} MiB is less than the minimum of 6 MiB"
            ),
        ));
    }
    let fargate = validate_compatibilities(spec, mode, task_cpu, task_memory)?;
    if let Some(es) = &spec.ephemeral_storage
        && !(21..=200).contains(&es.size_in_gib)
    {
        return Err(fail(
            "ephemeralStorage.sizeInGiB",
            format!(
                "{} GiB is outside the supported range 21 to 200 GiB",
                es.size_in_gib
            ),
        ));
    }
    if let Some(te) = &spec.trusted_execution_configuration
        && te.isolation_mode == IsolationMode::ConfidentialSandbox
        && te.attestation_policy.as_deref().is_none_or(str::is_empty)
    {
        return Err(fail(
            "trustedExecutionConfiguration.attestationPolicy",
            "isolationMode CONFIDENTIAL_SANDBOX requires an attestationPolicy",
        ));
    }
    for (i, ia) in spec.inference_accelerators.iter().flatten().enumerate() {
        if ia.device_name.is_empty() || ia.device_type.is_empty() {
            return Err(fail(
                format!("inferenceAccelerators[{i}]"),
                "an inference accelerator needs a non-empty deviceName and deviceType",
            ));
        }
    }

    let n = spec.container_definitions.len();
    if n == 0 {
        return Err(fail(
            "containerDefinitions",
            "a task definition needs at least one container definition",
        ));
    }
    if n > MAX_CONTAINERS {
        return Err(fail(
            "containerDefinitions",
            format!(
                "a task definition can have at most {MAX_CONTAINERS} container definitions, got {n}"
            ),
        ));
    }
    let volumes = validate_volumes(spec)?;
    validate_placement_constraints(spec)?;
    let containers = container_names(spec)?;

    let ctx = Ctx {
        spec,
        mode,
        task_memory,
        fargate,
        containers,
        volumes,
    };
    let mut port_names: BTreeMap<&str, String> = BTreeMap::new();
    for (i, c) in spec.container_definitions.iter().enumerate() {
        validate_container(&ctx, i, c, &mut port_names)?;
    }

    if !spec
        .container_definitions
        .iter()
        .any(ContainerDefinition::is_essential)
    {
        return Err(fail(
            "containerDefinitions",
            "a task definition must have at least one essential container; set \"essential\": true \
             on one (it defaults to true when omitted)",
        ));
    }
    check_dependency_cycles(spec, &ctx.containers)?;
    if let Some(proxy) = &spec.proxy_configuration
        && !ctx.containers.contains_key(proxy.container_name.as_str())
    {
        return Err(fail(
            "proxyConfiguration.containerName",
            format!(
                "container '{}' is not defined in this task definition",
                proxy.container_name
            ),
        ));
    }
    validate_totals(spec, task_cpu, task_memory)
}

/// `requiresCompatibilities` against the rest of the definition; returns whether FARGATE was
/// asked for.
fn validate_compatibilities(
    spec: &TaskDefinitionSpec,
    mode: NetworkMode,
    task_cpu: Option<u32>,
    task_memory: Option<u32>,
) -> Result<bool, ValidationError> {
    let requested = spec.requires_compatibilities.as_deref().unwrap_or_default();
    let field = "requiresCompatibilities";
    let fargate = requested.contains(&Compatibility::Fargate);
    if fargate {
        if mode != NetworkMode::Awsvpc {
            return Err(fail(
                field,
                format!(
                    "task definition does not support launch type FARGATE: Fargate needs networkMode awsvpc, not {mode}"
                ),
            ));
        }
        let (Some(cpu), Some(memory)) = (task_cpu, task_memory) else {
            return Err(fail(
                field,
                "task definition does not support launch type FARGATE: Fargate needs task-level cpu and memory",
            ));
        };
        if !fargate_size_ok(cpu, memory) {
            return Err(fail(
                "memory",
                format!(
                    "no Fargate configuration exists for {cpu} CPU units and {memory} MiB; e.g. 256 \
                     CPU takes 512, 1024 or 2048 MiB and 1024 CPU takes 2048 to 8192 MiB in 1024 MiB steps"
                ),
            ));
        }
        if spec.pid_mode == Some(PidMode::Host) {
            return Err(fail(
                "pidMode",
                "pidMode host is not supported on Fargate; use task",
            ));
        }
    }
    if requested.contains(&Compatibility::External) && mode == NetworkMode::Awsvpc {
        return Err(fail(
            field,
            "task definition does not support launch type EXTERNAL: external instances do not \
             support networkMode awsvpc; use bridge, host or none",
        ));
    }
    Ok(fargate)
}

/// Fargate's task sizes: each CPU size with the memory (MiB) it allows.
fn fargate_size_ok(cpu: u32, memory: u32) -> bool {
    let (lo, hi, step) = match cpu {
        256 => return matches!(memory, 512 | 1024 | 2048),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122_880, 8192),
        _ => return false,
    };
    (lo..=hi).contains(&memory) && memory.is_multiple_of(step)
}

fn validate_volumes(spec: &TaskDefinitionSpec) -> Result<BTreeSet<&str>, ValidationError> {
    let mut names = BTreeSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let p = format!("volumes[{i}]");
        let Some(name) = v.name.as_deref() else {
            return Err(fail(
                format!("{p}.name"),
                "a volume needs a name for mountPoints to refer to",
            ));
        };
        if !is_name(name) {
            return Err(fail(
                format!("{p}.name"),
                format!("'{name}' is not a valid volume name; {NAME_RULE}"),
            ));
        }
        if !names.insert(name) {
            return Err(fail(
                format!("{p}.name"),
                format!("volume name '{name}' is used more than once"),
            ));
        }
        let kinds = [
            v.host.is_some(),
            v.docker_volume_configuration.is_some(),
            v.efs_volume_configuration.is_some(),
            v.s3files_volume_configuration.is_some(),
            v.fsx_windows_file_server_volume_configuration.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(fail(
                p,
                "a volume can use only one of host, dockerVolumeConfiguration, \
                 efsVolumeConfiguration, s3filesVolumeConfiguration and \
                 fsxWindowsFileServerVolumeConfiguration",
            ));
        }
        if let Some(efs) = &v.efs_volume_configuration {
            let p = format!("{p}.efsVolumeConfiguration");
            if efs.file_system_id.is_empty() {
                return Err(fail(
                    format!("{p}.fileSystemId"),
                    "an EFS volume needs a fileSystemId",
                ));
            }
            if let Some(port) = efs.transit_encryption_port
                && !(0..=65535).contains(&port)
            {
                return Err(fail(
                    format!("{p}.transitEncryptionPort"),
                    format!("{port} is not a port (0 to 65535)"),
                ));
            }
            let encrypted = efs.transit_encryption == Some(EfsTransitEncryption::Enabled);
            if let Some(auth) = &efs.authorization_config {
                if auth.iam == Some(EfsAuthorizationConfigIam::Enabled) && !encrypted {
                    return Err(fail(
                        format!("{p}.authorizationConfig.iam"),
                        "IAM authorization needs transitEncryption ENABLED",
                    ));
                }
                if auth.access_point_id.is_some() {
                    if !encrypted {
                        return Err(fail(
                            format!("{p}.authorizationConfig.accessPointId"),
                            "an access point needs transitEncryption ENABLED",
                        ));
                    }
                    if efs.root_directory.as_deref().is_some_and(|d| d != "/") {
                        return Err(fail(
                            format!("{p}.rootDirectory"),
                            "with an access point the root directory must be omitted or '/'",
                        ));
                    }
                }
            }
        }
    }
    Ok(names)
}

fn validate_placement_constraints(spec: &TaskDefinitionSpec) -> Result<(), ValidationError> {
    let constraints = spec.placement_constraints.as_deref().unwrap_or_default();
    if constraints.len() > MAX_PLACEMENT_CONSTRAINTS {
        return Err(fail(
            "placementConstraints",
            format!(
                "at most {MAX_PLACEMENT_CONSTRAINTS} placement constraints are allowed, got {}",
                constraints.len()
            ),
        ));
    }
    for (i, pc) in constraints.iter().enumerate() {
        let p = format!("placementConstraints[{i}]");
        if pc.r#type.is_none() {
            return Err(fail(
                format!("{p}.type"),
                "a task definition placement constraint needs type memberOf",
            ));
        }
        if pc.expression.as_deref().is_none_or(|e| e.trim().is_empty()) {
            return Err(fail(
                format!("{p}.expression"),
                "a memberOf constraint needs a cluster query language expression, e.g. \
                 attribute:ecs.instance-type =~ t2.*",
            ));
        }
    }
    Ok(())
}

/// Every container's name: present, well formed, unique. Returns name -> index.
fn container_names(spec: &TaskDefinitionSpec) -> Result<BTreeMap<&str, usize>, ValidationError> {
    let mut names = BTreeMap::new();
    for (i, c) in spec.container_definitions.iter().enumerate() {
        let field = format!("containerDefinitions[{i}].name");
        let Some(name) = c.name.as_deref() else {
            return Err(fail(field, "a container definition needs a name"));
        };
        if !is_name(name) {
            return Err(fail(
                field,
                format!("'{name}' is not a valid container name; {NAME_RULE}"),
            ));
        }
        if let Some(first) = names.insert(name, i) {
            return Err(fail(
                field,
                format!(
                    "container name '{name}' is already used by containerDefinitions[{first}]; names must be unique"
                ),
            ));
        }
    }
    Ok(names)
}

fn validate_container<'a>(
    ctx: &Ctx<'a>,
    i: usize,
    c: &'a ContainerDefinition,
    port_names: &mut BTreeMap<&'a str, String>,
) -> Result<(), ValidationError> {
    let p = format!("containerDefinitions[{i}]");
    let name = c.name.as_deref().unwrap_or_default();
    let mode = ctx.mode;

    validate_image(&p, c)?;
    if let Some(rc) = &c.repository_credentials
        && rc.credentials_parameter.is_empty()
    {
        return Err(fail(
            format!("{p}.repositoryCredentials.credentialsParameter"),
            "needs the ARN of the secret holding the registry credentials",
        ));
    }
    if let Some(cpu) = c.cpu
        && cpu < 0
    {
        return Err(fail(
            format!("{p}.cpu"),
            format!("{cpu} is negative; cpu is a number of CPU units (1024 per vCPU)"),
        ));
    }
    validate_memory(ctx, &p, name, c)?;

    // links
    let links = c.links.as_deref().unwrap_or_default();
    if !links.is_empty() && mode != NetworkMode::Bridge {
        return Err(fail(
            format!("{p}.links"),
            format!("links are only supported in bridge network mode, not {mode}"),
        ));
    }
    for (j, link) in links.iter().enumerate() {
        let target = link.split_once(':').map_or(link.as_str(), |(t, _)| t);
        let field = format!("{p}.links[{j}]");
        if target == name {
            return Err(fail(
                field,
                format!("container '{name}' cannot link to itself"),
            ));
        }
        if !ctx.containers.contains_key(target) {
            return Err(fail(
                field,
                format!("container '{target}' is not defined in this task definition"),
            ));
        }
    }

    validate_port_mappings(ctx, &p, c, port_names)?;

    if let Some(rp) = &c.restart_policy {
        let codes = rp.ignored_exit_codes.as_deref().unwrap_or_default();
        if codes.len() > 50 {
            return Err(fail(
                format!("{p}.restartPolicy.ignoredExitCodes"),
                format!("at most 50 exit codes can be ignored, got {}", codes.len()),
            ));
        }
        if let Some(period) = rp.restart_attempt_period
            && !(60..=1800).contains(&period)
        {
            return Err(fail(
                format!("{p}.restartPolicy.restartAttemptPeriod"),
                format!("{period} seconds is outside the supported range 60 to 1800"),
            ));
        }
    }

    for (j, kv) in c.environment.iter().flatten().enumerate() {
        if kv.name.as_deref().is_none_or(str::is_empty) {
            return Err(fail(
                format!("{p}.environment[{j}].name"),
                "an environment variable needs a name",
            ));
        }
    }
    for (j, f) in c.environment_files.iter().flatten().enumerate() {
        if f.value.is_empty() {
            return Err(fail(
                format!("{p}.environmentFiles[{j}].value"),
                "an environment file needs the ARN of an S3 object, e.g. arn:aws:s3:::bucket/app.env",
            ));
        }
    }

    for (j, mp) in c.mount_points.iter().flatten().enumerate() {
        let field = format!("{p}.mountPoints[{j}]");
        let Some(volume) = mp.source_volume.as_deref() else {
            return Err(fail(
                format!("{field}.sourceVolume"),
                "a mount point needs the name of a volume",
            ));
        };
        if !ctx.volumes.contains(volume) {
            return Err(fail(
                format!("{field}.sourceVolume"),
                format!("volume '{volume}' is not declared in this task definition's volumes"),
            ));
        }
        if mp.container_path.as_deref().is_none_or(str::is_empty) {
            return Err(fail(
                format!("{field}.containerPath"),
                "a mount point needs a path inside the container",
            ));
        }
    }
    for (j, vf) in c.volumes_from.iter().flatten().enumerate() {
        let field = format!("{p}.volumesFrom[{j}].sourceContainer");
        let Some(source) = vf.source_container.as_deref() else {
            return Err(fail(
                field,
                "volumesFrom needs the name of the container to take volumes from",
            ));
        };
        if source == name {
            return Err(fail(
                field,
                format!("container '{name}' cannot take volumes from itself"),
            ));
        }
        if !ctx.containers.contains_key(source) {
            return Err(fail(
                field,
                format!("container '{source}' is not defined in this task definition"),
            ));
        }
    }

    if let Some(lp) = &c.linux_parameters {
        validate_linux_parameters(&format!("{p}.linuxParameters"), lp)?;
    }

    let has_exec_role = ctx
        .spec
        .execution_role_arn
        .as_deref()
        .is_some_and(|s| !s.is_empty());
    for (j, s) in c.secrets.iter().flatten().enumerate() {
        validate_secret(&format!("{p}.secrets[{j}]"), s, has_exec_role)?;
    }

    for (j, dep) in c.depends_on.iter().flatten().enumerate() {
        let field = format!("{p}.dependsOn[{j}].containerName");
        let target = dep.container_name.as_str();
        if target == name {
            return Err(fail(
                field,
                format!("container '{name}' cannot depend on itself"),
            ));
        }
        let Some(&t) = ctx.containers.get(target) else {
            return Err(fail(
                field,
                format!("container '{target}' is not defined in this task definition"),
            ));
        };
        let tc = &ctx.spec.container_definitions[t];
        match dep.condition {
            ContainerCondition::Complete | ContainerCondition::Success if tc.is_essential() => {
                return Err(fail(
                    format!("{p}.dependsOn[{j}].condition"),
                    format!(
                        "condition {} cannot be set on essential container '{target}'; mark it \
                         \"essential\": false or use START or HEALTHY",
                        dep.condition
                    ),
                ));
            }
            ContainerCondition::Healthy if tc.health_check.is_none() => {
                return Err(fail(
                    format!("{p}.dependsOn[{j}].condition"),
                    format!("condition HEALTHY needs container '{target}' to have a healthCheck"),
                ));
            }
            _ => {}
        }
    }

    for (member, value) in [
        ("startTimeout", c.start_timeout),
        ("stopTimeout", c.stop_timeout),
    ] {
        if let Some(t) = value
            && t < 0
        {
            return Err(fail(
                format!("{p}.{member}"),
                format!("{t} is negative; give a number of seconds"),
            ));
        }
    }
    if ctx.fargate
        && let Some(t) = c.stop_timeout
        && t > 120
    {
        return Err(fail(
            format!("{p}.stopTimeout"),
            format!("{t} seconds exceeds Fargate's maximum of 120"),
        ));
    }

    if mode == NetworkMode::Awsvpc {
        if c.hostname.is_some() {
            return Err(fail(
                format!("{p}.hostname"),
                "hostname is not supported in awsvpc network mode",
            ));
        }
        if c.extra_hosts.as_ref().is_some_and(|h| !h.is_empty()) {
            return Err(fail(
                format!("{p}.extraHosts"),
                "extraHosts is not supported in awsvpc network mode",
            ));
        }
    }
    for (j, h) in c.extra_hosts.iter().flatten().enumerate() {
        if h.hostname.is_empty() || h.ip_address.is_empty() {
            return Err(fail(
                format!("{p}.extraHosts[{j}]"),
                "a host entry needs a hostname and an ipAddress",
            ));
        }
    }

    let mut ulimit_names = BTreeSet::new();
    for (j, u) in c.ulimits.iter().flatten().enumerate() {
        let field = format!("{p}.ulimits[{j}]");
        if !ulimit_names.insert(u.name) {
            return Err(fail(
                format!("{field}.name"),
                format!("ulimit '{}' is set more than once", u.name),
            ));
        }
        if u.hard_limit >= 0 && u.soft_limit > u.hard_limit {
            return Err(fail(
                format!("{field}.softLimit"),
                format!(
                    "softLimit {} is greater than hardLimit {}",
                    u.soft_limit, u.hard_limit
                ),
            ));
        }
    }

    if let Some(log) = &c.log_configuration {
        if log.log_driver == LogDriver::Awsfirelens
            && !ctx
                .spec
                .container_definitions
                .iter()
                .any(|o| o.firelens_configuration.is_some())
        {
            return Err(fail(
                format!("{p}.logConfiguration.logDriver"),
                "log driver awsfirelens needs a log router container with a firelensConfiguration \
                 in this task definition",
            ));
        }
        for (j, s) in log.secret_options.iter().flatten().enumerate() {
            validate_secret(
                &format!("{p}.logConfiguration.secretOptions[{j}]"),
                s,
                has_exec_role,
            )?;
        }
    }

    if let Some(hc) = &c.health_check {
        validate_health_check(&format!("{p}.healthCheck"), hc)?;
    }

    let mut resource_types: Vec<ResourceType> = Vec::new();
    for (j, rr) in c.resource_requirements.iter().flatten().enumerate() {
        let field = format!("{p}.resourceRequirements[{j}]");
        let kind = resource_type_str(rr.r#type);
        if resource_types.contains(&rr.r#type) {
            return Err(fail(
                format!("{field}.type"),
                format!("resource type {kind} is listed more than once"),
            ));
        }
        resource_types.push(rr.r#type);
        let value = rr.value.as_deref().unwrap_or_default();
        let ok = match rr.r#type {
            ResourceType::Gpu | ResourceType::NeuronDevice => {
                value.parse::<u32>().is_ok_and(|n| n > 0)
            }
            ResourceType::InferenceAccelerator => !value.is_empty(),
        };
        if !ok {
            return Err(fail(
                format!("{field}.value"),
                format!(
                    "'{value}' is not valid for {}; give a positive number of devices (or an accelerator deviceName)",
                    kind
                ),
            ));
        }
    }
    Ok(())
}

fn resource_type_str(t: ResourceType) -> &'static str {
    match t {
        ResourceType::Gpu => "GPU",
        ResourceType::InferenceAccelerator => "InferenceAccelerator",
        ResourceType::NeuronDevice => "NeuronDevice",
    }
}

fn validate_image(p: &str, c: &ContainerDefinition) -> Result<(), ValidationError> {
    let field = format!("{p}.image");
    let image = c.image.as_deref().unwrap_or_default();
    if image.trim().is_empty() {
        return Err(fail(
            field,
            "a container needs an image, e.g. 'nginx:latest' or 'registry/repo@sha256:…'",
        ));
    }
    if image.chars().any(char::is_whitespace) {
        return Err(fail(
            field,
            format!("'{image}' contains whitespace; an image reference cannot"),
        ));
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if name.len() > NAME_MAX {
        return Err(fail(
            field,
            format!(
                "the image name is {} characters; at most {NAME_MAX} are allowed",
                name.len()
            ),
        ));
    }
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail(
                field,
                format!("digest '{d}' is not valid; use sha256: followed by 64 hex digits"),
            ));
        }
    }
    Ok(())
}

fn validate_memory(
    ctx: &Ctx<'_>,
    p: &str,
    name: &str,
    c: &ContainerDefinition,
) -> Result<(), ValidationError> {
    for (member, value) in [
        ("memory", c.memory),
        ("memoryReservation", c.memory_reservation),
    ] {
        if let Some(m) = value
            && m < MIN_CONTAINER_MEMORY_MIB
        {
            return Err(fail(
                format!("{p}.{member}"),
                format!(
                    "{m} MiB is less than the minimum of {MIN_CONTAINER_MEMORY_MIB} MiB a container needs"
                ),
            ));
        }
    }
    match (c.memory, c.memory_reservation) {
        (None, None) if ctx.task_memory.is_none() => Err(fail(
            format!("{p}.memory"),
            format!(
                "container '{name}' must set memory or memoryReservation (MiB) because the task \
                 definition has no task-level memory"
            ),
        )),
        (Some(m), Some(r)) if r > m => Err(fail(
            format!("{p}.memoryReservation"),
            format!(
                "memoryReservation ({r} MiB) must not exceed memory ({m} MiB), the container's hard limit"
            ),
        )),
        _ => Ok(()),
    }
}

fn validate_port_mappings<'a>(
    ctx: &Ctx<'a>,
    p: &str,
    c: &'a ContainerDefinition,
    port_names: &mut BTreeMap<&'a str, String>,
) -> Result<(), ValidationError> {
    let mode = ctx.mode;
    let mappings = c.port_mappings.as_deref().unwrap_or_default();
    if !mappings.is_empty() && mode == NetworkMode::None {
        return Err(fail(
            format!("{p}.portMappings"),
            "port mappings are not allowed in network mode none",
        ));
    }
    // (host port, protocol) -> index of the mapping that claimed it.
    let mut claimed: BTreeMap<(i32, TransportProtocol), usize> = BTreeMap::new();
    for (j, pm) in mappings.iter().enumerate() {
        let field = format!("{p}.portMappings[{j}]");
        let protocol = pm.protocol.unwrap_or(TransportProtocol::Tcp);
        match (pm.container_port, pm.container_port_range.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(fail(
                    field,
                    "give either containerPort or containerPortRange, not both",
                ));
            }
            (None, None) => {
                return Err(fail(
                    format!("{field}.containerPort"),
                    "a port mapping needs a containerPort",
                ));
            }
            (None, Some(range)) => {
                let f = format!("{field}.containerPortRange");
                if !matches!(mode, NetworkMode::Bridge | NetworkMode::Awsvpc) {
                    return Err(fail(
                        f,
                        format!(
                            "containerPortRange needs bridge or awsvpc network mode, not {mode}"
                        ),
                    ));
                }
                parse_port_range(range).ok_or_else(|| {
                    fail(&f, format!("'{range}' is not a port range; use FIRST-LAST with 1 <= FIRST < LAST <= 65535"))
                })?;
                if pm.host_port.is_some() {
                    return Err(fail(
                        format!("{field}.hostPort"),
                        "leave hostPort out when containerPortRange is used",
                    ));
                }
            }
            (Some(cp), None) => {
                if !(1..=65535).contains(&cp) {
                    return Err(fail(
                        format!("{field}.containerPort"),
                        format!("{cp} is not a port; use 1 to 65535"),
                    ));
                }
                if let Some(hp) = pm.host_port {
                    if !(0..=65535).contains(&hp) {
                        return Err(fail(
                            format!("{field}.hostPort"),
                            format!("{hp} is not a port; use 1 to 65535, or 0 for a dynamic port"),
                        ));
                    }
                    if matches!(mode, NetworkMode::Host | NetworkMode::Awsvpc) && hp != cp {
                        return Err(fail(
                            format!("{field}.hostPort"),
                            format!(
                                "in {mode} network mode hostPort must be left out or equal \
                                 containerPort ({cp}), got {hp}"
                            ),
                        ));
                    }
                }
                let host = match mode {
                    NetworkMode::Host | NetworkMode::Awsvpc => Some(cp),
                    _ => pm.host_port.filter(|h| *h != 0),
                };
                if let Some(h) = host
                    && let Some(k) = claimed.insert((h, protocol), j)
                {
                    return Err(fail(
                        format!("{field}.hostPort"),
                        format!(
                            "host port {h}/{} is already mapped by portMappings[{k}] of this container",
                            protocol.as_str()
                        ),
                    ));
                }
            }
        }
        if let Some(pname) = pm.name.as_deref() {
            let f = format!("{field}.name");
            let ok = !pname.is_empty()
                && pname.len() <= 64
                && !pname.starts_with('-')
                && pname.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                return Err(fail(
                    f,
                    format!(
                        "'{pname}' is not a valid port mapping name; use up to 64 lowercase letters, \
                         numbers, underscores and hyphens, not starting with a hyphen"
                    ),
                ));
            }
            if let Some(first) = port_names.insert(pname, f.clone()) {
                return Err(fail(
                    f,
                    format!("port mapping name '{pname}' is already used by {first}"),
                ));
            }
        }
    }
    Ok(())
}

/// `"FIRST-LAST"` with 1 <= FIRST < LAST <= 65535.
fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let a: u16 = a.trim().parse().ok()?;
    let b: u16 = b.trim().parse().ok()?;
    (a >= 1 && a < b).then_some((a, b))
}

fn validate_linux_parameters(p: &str, lp: &LinuxParameters) -> Result<(), ValidationError> {
    if let Some(size) = lp.shared_memory_size
        && size <= 0
    {
        return Err(fail(
            format!("{p}.sharedMemorySize"),
            format!("{size} is not a positive size in MiB"),
        ));
    }
    if let Some(swap) = lp.max_swap
        && swap < 0
    {
        return Err(fail(
            format!("{p}.maxSwap"),
            format!("{swap} is negative; use 0 (no swap) or a size in MiB"),
        ));
    }
    if let Some(s) = lp.swappiness
        && !(0..=100).contains(&s)
    {
        return Err(fail(
            format!("{p}.swappiness"),
            format!("{s} is outside the range 0 to 100"),
        ));
    }
    for (j, d) in lp.devices.iter().flatten().enumerate() {
        if d.host_path.is_empty() {
            return Err(fail(
                format!("{p}.devices[{j}].hostPath"),
                "a device needs the path of the device on the host",
            ));
        }
    }
    for (j, t) in lp.tmpfs.iter().flatten().enumerate() {
        if t.container_path.is_empty() {
            return Err(fail(
                format!("{p}.tmpfs[{j}].containerPath"),
                "a tmpfs mount needs a path inside the container",
            ));
        }
        if t.size <= 0 {
            return Err(fail(
                format!("{p}.tmpfs[{j}].size"),
                format!("{} is not a positive size in MiB", t.size),
            ));
        }
    }
    Ok(())
}

fn validate_secret(p: &str, s: &Secret, has_exec_role: bool) -> Result<(), ValidationError> {
    if s.name.is_empty() {
        return Err(fail(
            format!("{p}.name"),
            "a secret needs the name it is exposed under",
        ));
    }
    if s.value_from.is_empty() {
        return Err(fail(
            format!("{p}.valueFrom"),
            "a secret needs a Secrets Manager secret ARN or a Systems Manager parameter name or ARN",
        ));
    }
    if !has_exec_role {
        let source = match secret_source(&s.value_from) {
            SecretSource::SecretsManager => "Secrets Manager",
            SecretSource::Ssm => "Systems Manager Parameter Store",
        };
        return Err(fail(
            p,
            format!(
                "secrets from {source} need the task definition's executionRoleArn, the role used \
                 to fetch them"
            ),
        ));
    }
    Ok(())
}

fn validate_health_check(p: &str, hc: &HealthCheck) -> Result<(), ValidationError> {
    match hc.command.first().map(String::as_str) {
        None => {
            return Err(fail(
                format!("{p}.command"),
                "a health check needs a command, e.g. [\"CMD-SHELL\", \"curl -f http://localhost/ || exit 1\"]",
            ));
        }
        Some("CMD" | "CMD-SHELL") if hc.command.len() < 2 => {
            return Err(fail(
                format!("{p}.command"),
                "the health check command has nothing to run after CMD/CMD-SHELL",
            ));
        }
        Some("CMD" | "CMD-SHELL" | "NONE") => {}
        Some(other) => {
            return Err(fail(
                format!("{p}.command"),
                format!("the health check command must start with CMD or CMD-SHELL, not '{other}'"),
            ));
        }
    }
    let ranges = [
        ("interval", hc.interval, 5, 300, "seconds"),
        ("timeout", hc.timeout, 2, 60, "seconds"),
        ("retries", hc.retries, 1, 10, "retries"),
        ("startPeriod", hc.start_period, 0, 300, "seconds"),
    ];
    for (member, value, lo, hi, unit) in ranges {
        if let Some(v) = value
            && !(lo..=hi).contains(&v)
        {
            return Err(fail(
                format!("{p}.{member}"),
                format!("{v} is outside the allowed range {lo} to {hi} {unit}"),
            ));
        }
    }
    Ok(())
}

/// `dependsOn` must not loop (a container that waits for itself would never start).
fn check_dependency_cycles(
    spec: &TaskDefinitionSpec,
    names: &BTreeMap<&str, usize>,
) -> Result<(), ValidationError> {
    let deps: Vec<Vec<usize>> = spec
        .container_definitions
        .iter()
        .map(|c| {
            c.depends_on
                .iter()
                .flatten()
                .filter_map(|d| names.get(d.container_name.as_str()).copied())
                .collect()
        })
        .collect();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; deps.len()];
    let mut path = Vec::new();
    fn visit(
        n: usize,
        deps: &[Vec<usize>],
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[n] = 1;
        path.push(n);
        for &m in &deps[n] {
            match state[m] {
                1 => {
                    let start = path.iter().position(|&x| x == m).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(m);
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, deps, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state[n] = 2;
        None
    }
    for start in 0..deps.len() {
        if state[start] == 0
            && let Some(cycle) = visit(start, &deps, &mut state, &mut path)
        {
            let name = |i: usize| {
                spec.container_definitions[i]
                    .name
                    .clone()
                    .unwrap_or_default()
            };
            let chain: Vec<String> = cycle.iter().map(|&i| format!("'{}'", name(i))).collect();
            return Err(fail(
                format!("containerDefinitions[{}].dependsOn", cycle[0]),
                format!(
                    "containers {} depend on each other in a cycle; remove one dependency",
                    chain.join(" -> ")
                ),
            ));
        }
    }
    Ok(())
}

/// Containers' cpu and memory against the task-level values.
fn validate_totals(
    spec: &TaskDefinitionSpec,
    task_cpu: Option<u32>,
    task_memory: Option<u32>,
) -> Result<(), ValidationError> {
    if let Some(task_cpu) = task_cpu {
        let total: i64 = spec
            .container_definitions
            .iter()
            .map(|c| i64::from(c.cpu.unwrap_or(0)))
            .sum();
        if total > i64::from(task_cpu) {
            return Err(fail(
                "containerDefinitions",
                format!(
                    "the containers' cpu adds up to {total} units, more than the task-level cpu of {task_cpu} units"
                ),
            ));
        }
    }
    if let Some(task_memory) = task_memory {
        for (i, c) in spec.container_definitions.iter().enumerate() {
            for (member, value) in [
                ("memory", c.memory),
                ("memoryReservation", c.memory_reservation),
            ] {
                if let Some(m) = value
                    && i64::from(m) > i64::from(task_memory)
                {
                    return Err(fail(
                        format!("containerDefinitions[{i}].{member}"),
                        format!("{m} MiB is more than the task-level memory of {task_memory} MiB"),
                    ));
                }
            }
        }
        let reserved: i64 = spec
            .container_definitions
            .iter()
            .map(|c| i64::from(c.memory_reservation.or(c.memory).unwrap_or(0)))
            .sum();
        if reserved > i64::from(task_memory) {
            return Err(fail(
                "containerDefinitions",
                format!(
                    "the containers reserve {reserved} MiB in total (memoryReservation, else memory), \
                     more than the task-level memory of {task_memory} MiB"
                ),
            ));
        }
    }
    Ok(())
}
