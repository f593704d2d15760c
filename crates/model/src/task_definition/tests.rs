use serde_json::{Value, json};

use super::*;
use crate::ErrorKind;

/// The seeds' register-task-definition: a web container with a dynamic host port, environment,
/// secrets, labels, a health check, a dependency and awslogs; plus a sidecar it waits for.
fn seed_request() -> Value {
    json!({
        "family": "random-service",
        "taskRoleArn": "arn:aws:iam::123456789012:role/random-task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "networkMode": "bridge",
        "containerDefinitions": [
            {
                "name": "random",
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/random:1.2.0",
                "cpu": 256,
                "memory": 512,
                "memoryReservation": 256,
                "portMappings": [
                    {"containerPort": 10081, "hostPort": 0, "protocol": "tcp"}
                ],
                "essential": true,
                "environment": [
                    {"name": "PORT", "value": "10081"},
                    {"name": "LOG_LEVEL", "value": "info"}
                ],
                "secrets": [
                    {"name": "DB_PASSWORD",
                     "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"},
                    {"name": "API_KEY", "valueFrom": "/random/api-key"}
                ],
                "dockerLabels": {"app": "random", "team": "web"},
                "healthCheck": {
                    "command": ["CMD-SHELL", "wget -q -O - http://localhost:10081/health || exit 1"],
                    "interval": 10,
                    "timeout": 3,
                    "retries": 3,
                    "startPeriod": 15
                },
                "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/ecs/random",
                        "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "random"
                    }
                },
                "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
                "stopTimeout": 20
            },
            {
                "name": "init",
                "image": "httpd:2.4",
                "memory": 64,
                "essential": false,
                "command": ["sh", "-c", "echo ready"],
                "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch", "readOnly": false}]
            }
        ],
        "volumes": [{"name": "scratch", "host": {"sourcePath": "/var/lib/random"}}],
        "placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}
        ],
        "requiresCompatibilities": ["EC2"],
        "tags": [{"key": "team", "value": "web"}]
    })
}

fn spec_of(v: &Value) -> TaskDefinitionSpec {
    TaskDefinitionSpec::from_json(v).expect("parses")
}

#[test]
fn seed_request_round_trips_exactly() {
    let mut request = seed_request();
    let spec = spec_of(&request);
    // `tags` is a request member, not part of the spec.
    request.as_object_mut().unwrap().remove("tags");
    assert_eq!(serde_json::to_value(&spec).unwrap(), request);
    validate(&spec).unwrap();
}

#[test]
fn every_container_member_round_trips() {
    let c: Value = serde_json::from_str(
        r#"{
        "name": "all", "image": "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:1:secret:reg"},
        "cpu": 10, "memory": 100, "memoryReservation": 50, "links": ["other:o"],
        "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "udp", "name": "web",
                          "appProtocol": "http"},
                         {"containerPortRange": "9000-9100"}],
        "essential": true,
        "restartPolicy": {"enabled": true, "ignoredExitCodes": [0, 2], "restartAttemptPeriod": 60},
        "entryPoint": ["/bin/sh"], "command": ["-c", "true"],
        "environment": [{"name": "A", "value": "1"}],
        "environmentFiles": [{"value": "arn:aws:s3:::bucket/a.env", "type": "s3"}],
        "mountPoints": [], "volumesFrom": [{"sourceContainer": "other", "readOnly": true}],
        "linuxParameters": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                            "devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse",
                                         "permissions": ["read", "write", "mknod"]}],
                            "initProcessEnabled": true, "sharedMemorySize": 64,
                            "tmpfs": [{"containerPath": "/tmp", "size": 64, "mountOptions": ["rw"]}],
                            "maxSwap": 0, "swappiness": 10},
        "secrets": [{"name": "S", "valueFrom": "/p"}],
        "dependsOn": [{"containerName": "other", "condition": "START"}],
        "startTimeout": 30, "stopTimeout": 30, "versionConsistency": "disabled",
        "hostname": "all", "user": "1000:1000", "workingDirectory": "/",
        "disableNetworking": false, "privileged": false, "readonlyRootFilesystem": true,
        "dnsServers": ["1.1.1.1"], "dnsSearchDomains": ["local"],
        "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.5"}],
        "dockerSecurityOptions": ["no-new-privileges"], "interactive": false, "pseudoTerminal": false,
        "dockerLabels": {"a": "b"},
        "ulimits": [{"name": "core", "softLimit": 0, "hardLimit": 0}],
        "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"},
                             "secretOptions": [{"name": "x", "valueFrom": "/p2"}]},
        "healthCheck": {"command": ["CMD", "true"]},
        "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
        "resourceRequirements": [{"type": "GPU", "value": "1",
                                  "sharingStrategy": {"nvidiaMps": {"memory": 1024, "maxComputePercent": 50}}}],
        "firelensConfiguration": {"type": "fluentbit", "options": {"enable-ecs-log-metadata": "true"}},
        "credentialSpecs": ["credentialspec:arn:aws:s3:::bucket/spec.json"]
    }"#,
    )
    .unwrap();
    let parsed: ContainerDefinition = serde_json::from_value(c.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), c);

    let mut task: Value = serde_json::from_str(
        r#"{
        "family": "f", "containerDefinitions": [],
        "networkMode": "bridge", "pidMode": "task", "ipcMode": "none", "cpu": "1 vCPU", "memory": "2GB",
        "volumes": [
            {"name": "d", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true,
             "driver": "local", "driverOpts": {"type": "tmpfs"}, "labels": {"a": "b"}}},
            {"name": "e", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "rootDirectory": "/",
             "transitEncryption": "ENABLED", "transitEncryptionPort": 2049,
             "authorizationConfig": {"accessPointId": "fsap-1", "iam": "ENABLED"}}},
            {"name": "s", "s3filesVolumeConfiguration": {"fileSystemArn": "arn:x", "rootDirectory": "/",
             "transitEncryptionPort": 1, "accessPointArn": "arn:y"}},
            {"name": "w", "fsxWindowsFileServerVolumeConfiguration": {"fileSystemId": "fs-2",
             "rootDirectory": "share", "authorizationConfig": {"credentialsParameter": "arn:z",
             "domain": "corp"}}},
            {"name": "l", "configuredAtLaunch": true}
        ],
        "proxyConfiguration": {"type": "APPMESH", "containerName": "other",
                               "properties": [{"name": "IgnoredUID", "value": "1337"}]},
        "inferenceAccelerators": [{"deviceName": "d1", "deviceType": "eia2.medium"}],
        "ephemeralStorage": {"sizeInGiB": 21},
        "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        "enableFaultInjection": false,
        "trustedExecutionConfiguration": {"isolationMode": "SHARED"}
    }"#,
    )
    .unwrap();
    task["containerDefinitions"] = json!([c, {"name": "other", "image": "busybox", "memory": 6}]);
    let spec = spec_of(&task);
    assert_eq!(serde_json::to_value(&spec).unwrap(), task);
}

#[test]
fn from_spec_fills_what_ecs_fills() {
    let spec = spec_of(&json!({
        "family": "web",
        "cpu": "0.5 vCPU",
        "memory": "1GB",
        "containerDefinitions": [{
            "name": "web", "image": "nginx", "memory": 128,
            "portMappings": [{"containerPort": 80}, {"containerPort": 443, "hostPort": 8443, "protocol": "tcp"}],
            "healthCheck": {"command": ["CMD-SHELL", "true"]}
        }]
    }));
    validate(&spec).unwrap();
    let td = TaskDefinition::from_spec(
        spec,
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3".into(),
        3,
        Timestamp::from_millis(1_700_000_000_500),
        Some("arn:aws:iam::123456789012:root".into()),
    );
    let v = serde_json::to_value(&td).unwrap();
    assert_eq!(
        v,
        json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
            "containerDefinitions": [{
                "name": "web", "image": "nginx", "cpu": 0, "memory": 128,
                "portMappings": [
                    {"containerPort": 80, "hostPort": 0, "protocol": "tcp"},
                    {"containerPort": 443, "hostPort": 8443, "protocol": "tcp"}
                ],
                "essential": true,
                "environment": [], "mountPoints": [], "volumesFrom": [],
                "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 30, "timeout": 5, "retries": 3},
                "systemControls": []
            }],
            "family": "web",
            "revision": 3,
            "volumes": [],
            "status": "ACTIVE",
            "requiresAttributes": [
                {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.17"},
                {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.24"},
                {"name": "ecs.capability.container-health-check"}
            ],
            "placementConstraints": [],
            "compatibilities": ["EXTERNAL", "EC2"],
            "cpu": "512",
            "memory": "1024",
            "registeredAt": 1_700_000_000.5,
            "registeredBy": "arn:aws:iam::123456789012:root"
        })
    );
    // The record reads back as itself.
    assert_eq!(serde_json::from_value::<TaskDefinition>(v).unwrap(), td);
    assert_eq!(td.family_revision(), "web:3");
    assert_eq!(td.reserved_cpu_units(), 512);
    assert_eq!(td.reserved_memory_mib(), 1024);
}

#[test]
fn host_port_defaults_follow_network_mode() {
    for (mode, want) in [
        ("bridge", Some(0)),
        ("host", Some(8080)),
        ("awsvpc", Some(8080)),
    ] {
        let spec = spec_of(&json!({
            "family": "f", "networkMode": mode,
            "containerDefinitions": [{"name": "c", "image": "i", "memory": 64,
                "portMappings": [{"containerPort": 8080}, {"containerPortRange": "9000-9010"}]}]
        }));
        let td = TaskDefinition::from_spec(spec, "arn".into(), 1, Timestamp(0), None);
        let pms = td.container_definitions[0].port_mappings.as_ref().unwrap();
        assert_eq!(pms[0].host_port, want, "{mode}");
        assert_eq!(pms[1].host_port, None, "{mode}: ranges keep no hostPort");
        assert_eq!(pms[1].protocol, Some(TransportProtocol::Tcp));
        assert_eq!(td.network_mode.unwrap().as_str(), mode);
    }
}

#[test]
fn seed_requires_attributes_and_compatibilities() {
    let spec = spec_of(&seed_request());
    let names: Vec<String> = requires_attributes(&spec)
        .into_iter()
        .map(|a| a.name)
        .collect();
    let want = [
        "com.amazonaws.ecs.capability.docker-remote-api.1.17",
        "com.amazonaws.ecs.capability.docker-remote-api.1.18",
        "com.amazonaws.ecs.capability.docker-remote-api.1.19",
        "com.amazonaws.ecs.capability.docker-remote-api.1.21",
        "com.amazonaws.ecs.capability.docker-remote-api.1.24",
        "com.amazonaws.ecs.capability.ecr-auth",
        "com.amazonaws.ecs.capability.logging-driver.awslogs",
        "com.amazonaws.ecs.capability.task-iam-role",
        "ecs.capability.container-health-check",
        "ecs.capability.container-ordering",
        "ecs.capability.execution-role-awslogs",
        "ecs.capability.execution-role-ecr-pull",
        "ecs.capability.secrets.asm.environment-variables",
        "ecs.capability.secrets.ssm.environment-variables",
    ];
    assert_eq!(names, want);
    assert_eq!(
        compatibilities(&spec),
        [Compatibility::External, Compatibility::Ec2]
    );

    let mut fargate = spec.clone();
    fargate.network_mode = Some(NetworkMode::Awsvpc);
    assert_eq!(compatibilities(&fargate), [Compatibility::Ec2]);
    fargate.cpu = Some("256".into());
    fargate.memory = Some("512".into());
    assert_eq!(
        compatibilities(&fargate),
        [Compatibility::Ec2, Compatibility::Fargate]
    );
    let names: Vec<String> = requires_attributes(&fargate)
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert!(names.contains(&"ecs.capability.task-eni".to_string()));
}

#[test]
fn unknown_enum_values_name_their_member() {
    type EnumCase = (&'static str, fn(&mut Value), &'static str);
    let cases: &[EnumCase] = &[
        (
            "networkMode",
            |v| v["networkMode"] = json!("nat"),
            "networkMode",
        ),
        (
            "ulimit",
            |v| v["containerDefinitions"][0]["ulimits"][0]["name"] = json!("files"),
            "containerDefinitions[0].ulimits[0].name",
        ),
        (
            "logDriver",
            |v| v["containerDefinitions"][0]["logConfiguration"]["logDriver"] = json!("loki"),
            "containerDefinitions[0].logConfiguration.logDriver",
        ),
        (
            "condition",
            |v| v["containerDefinitions"][0]["dependsOn"][0]["condition"] = json!("READY"),
            "containerDefinitions[0].dependsOn[0].condition",
        ),
        (
            "protocol",
            |v| v["containerDefinitions"][0]["portMappings"][0]["protocol"] = json!("TCP"),
            "containerDefinitions[0].portMappings[0].protocol",
        ),
        (
            "compat",
            |v| v["requiresCompatibilities"] = json!(["EC2", "LAMBDA"]),
            "requiresCompatibilities[1]",
        ),
        ("pidMode", |v| v["pidMode"] = json!("container"), "pidMode"),
        ("ipcMode", |v| v["ipcMode"] = json!("shareable"), "ipcMode"),
        (
            "constraint",
            |v| v["placementConstraints"][0]["type"] = json!("distinctInstance"),
            "placementConstraints[0].type",
        ),
    ];
    for (label, mutate, field) in cases {
        let mut v = seed_request();
        mutate(&mut v);
        let err = TaskDefinitionSpec::from_json(&v).unwrap_err();
        assert_eq!(err.field, *field, "{label}");
        assert_eq!(err.kind, ErrorKind::InvalidParameter, "{label}");
        assert!(err.message.starts_with(field), "{label}: {}", err.message);
        assert!(
            err.message.contains("valid values are"),
            "{label}: {}",
            err.message
        );
    }
    // Other shape problems come from serde.
    let mut v = seed_request();
    v["containerDefinitions"][0]["memory"] = json!("lots");
    assert_eq!(
        TaskDefinitionSpec::from_json(&v).unwrap_err().kind,
        ErrorKind::InvalidParameter
    );
}

/// A small valid definition to break one rule at a time.
fn base() -> Value {
    json!({
        "family": "app",
        "executionRoleArn": "arn:aws:iam::1:role/exec",
        "containerDefinitions": [
            {"name": "web", "image": "nginx", "memory": 256,
             "portMappings": [{"containerPort": 80, "hostPort": 0}],
             "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
             "healthCheck": {"command": ["CMD", "true"]}},
            {"name": "db", "image": "postgres", "memoryReservation": 128, "essential": false,
             "healthCheck": {"command": ["CMD-SHELL", "pg_isready"]},
             "mountPoints": [{"sourceVolume": "data", "containerPath": "/var/lib/postgresql"}]}
        ],
        "volumes": [{"name": "data"}]
    })
}

#[test]
fn base_is_valid() {
    validate(&spec_of(&base())).unwrap();
}

#[test]
fn validation_table() {
    type Case = (fn(&mut Value), &'static str, &'static str);
    let cases: &[Case] = &[
        (
            |v| v["family"] = json!("my app"),
            "family",
            "not a valid family name",
        ),
        (
            |v| v["family"] = json!("a".repeat(256)),
            "family",
            "not a valid family name",
        ),
        (
            |v| v["family"] = json!(""),
            "family",
            "not a valid family name",
        ),
        (|v| v["cpu"] = json!("lots"), "cpu", "invalid 'cpu' setting"),
        (
            |v| v["cpu"] = json!("64"),
            "cpu",
            "outside the supported range",
        ),
        (
            |v| v["memory"] = json!("1 TB"),
            "memory",
            "invalid 'memory' setting",
        ),
        (
            |v| v["containerDefinitions"] = json!([]),
            "containerDefinitions",
            "at least one container",
        ),
        (
            |v| {
                let c = json!({"name": "x", "image": "i", "memory": 6, "essential": false});
                let list: Vec<Value> = (0..11)
                    .map(|i| {
                        let mut c = c.clone();
                        c["name"] = json!(format!("c{i}"));
                        c
                    })
                    .collect();
                v["containerDefinitions"] = json!(list);
            },
            "containerDefinitions",
            "at most 10",
        ),
        (
            |v| v["containerDefinitions"][1]["name"] = json!("web"),
            "containerDefinitions[1].name",
            "already used by containerDefinitions[0]",
        ),
        (
            |v| v["containerDefinitions"][1]["name"] = json!("d b"),
            "containerDefinitions[1].name",
            "not a valid container name",
        ),
        (
            |v| {
                v["containerDefinitions"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("name");
            },
            "containerDefinitions[0].name",
            "needs a name",
        ),
        (
            |v| v["containerDefinitions"][0]["image"] = json!(""),
            "containerDefinitions[0].image",
            "needs an image",
        ),
        (
            |v| {
                v["containerDefinitions"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("image");
            },
            "containerDefinitions[0].image",
            "needs an image",
        ),
        (
            |v| v["containerDefinitions"][0]["image"] = json!("a".repeat(256)),
            "containerDefinitions[0].image",
            "at most 255",
        ),
        (
            |v| v["containerDefinitions"][0]["image"] = json!("nginx@sha256:abc"),
            "containerDefinitions[0].image",
            "64 hex digits",
        ),
        (
            |v| v["containerDefinitions"][0]["essential"] = json!(false),
            "containerDefinitions",
            "at least one essential container",
        ),
        (
            |v| v["containerDefinitions"][0]["dependsOn"][0]["containerName"] = json!("cache"),
            "containerDefinitions[0].dependsOn[0].containerName",
            "container 'cache' is not defined in this task definition",
        ),
        (
            |v| v["containerDefinitions"][0]["dependsOn"][0]["containerName"] = json!("web"),
            "containerDefinitions[0].dependsOn[0].containerName",
            "cannot depend on itself",
        ),
        (
            |v| {
                v["containerDefinitions"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("healthCheck");
            },
            "containerDefinitions[0].dependsOn[0].condition",
            "needs container 'db' to have a healthCheck",
        ),
        (
            |v| {
                v["containerDefinitions"][0]["dependsOn"][0]["condition"] = json!("SUCCESS");
                v["containerDefinitions"][1]["essential"] = json!(true);
            },
            "containerDefinitions[0].dependsOn[0].condition",
            "cannot be set on essential container 'db'",
        ),
        (
            |v| {
                v["containerDefinitions"][1]["dependsOn"] =
                    json!([{"containerName": "web", "condition": "START"}])
            },
            "containerDefinitions[0].dependsOn",
            "'web' -> 'db' -> 'web'",
        ),
        (
            |v| v["containerDefinitions"][0]["links"] = json!(["nope:alias"]),
            "containerDefinitions[0].links[0]",
            "container 'nope' is not defined",
        ),
        (
            |v| {
                v["networkMode"] = json!("awsvpc");
                v["containerDefinitions"][0]["links"] = json!(["db"]);
                v["containerDefinitions"][0]["portMappings"][0]["hostPort"] = json!(80);
            },
            "containerDefinitions[0].links",
            "only supported in bridge network mode",
        ),
        (
            |v| v["containerDefinitions"][0]["volumesFrom"] = json!([{"sourceContainer": "cache"}]),
            "containerDefinitions[0].volumesFrom[0].sourceContainer",
            "container 'cache' is not defined",
        ),
        (
            |v| v["containerDefinitions"][1]["mountPoints"][0]["sourceVolume"] = json!("logs"),
            "containerDefinitions[1].mountPoints[0].sourceVolume",
            "volume 'logs' is not declared",
        ),
        (
            |v| v["volumes"] = json!([{"name": "data"}, {"name": "data"}]),
            "volumes[1].name",
            "used more than once",
        ),
        (
            |v| v["containerDefinitions"][0]["portMappings"][0]["containerPort"] = json!(0),
            "containerDefinitions[0].portMappings[0].containerPort",
            "not a port",
        ),
        (
            |v| v["containerDefinitions"][0]["portMappings"][0]["containerPort"] = json!(70000),
            "containerDefinitions[0].portMappings[0].containerPort",
            "not a port",
        ),
        (
            |v| v["containerDefinitions"][0]["portMappings"][0]["hostPort"] = json!(65536),
            "containerDefinitions[0].portMappings[0].hostPort",
            "not a port",
        ),
        (
            |v| v["containerDefinitions"][0]["portMappings"] = json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}]),
            "containerDefinitions[0].portMappings[1].hostPort",
            "host port 8080/tcp is already mapped by portMappings[0]",
        ),
        (
            |v| {
                v["networkMode"] = json!("host");
                v["containerDefinitions"][0]["portMappings"][0]["hostPort"] = json!(8080);
            },
            "containerDefinitions[0].portMappings[0].hostPort",
            "in host network mode hostPort must be left out or equal containerPort (80)",
        ),
        (
            |v| {
                v["networkMode"] = json!("awsvpc");
            },
            "containerDefinitions[0].portMappings[0].hostPort",
            "in awsvpc network mode",
        ),
        (
            |v| v["networkMode"] = json!("none"),
            "containerDefinitions[0].portMappings",
            "not allowed in network mode none",
        ),
        (
            |v| {
                v["containerDefinitions"][0]["portMappings"][0]["containerPortRange"] = json!("1-2")
            },
            "containerDefinitions[0].portMappings[0]",
            "not both",
        ),
        (
            |v| {
                v["containerDefinitions"][0]["portMappings"] =
                    json!([{"containerPortRange": "90-80"}])
            },
            "containerDefinitions[0].portMappings[0].containerPortRange",
            "not a port range",
        ),
        (
            |v| {
                v["containerDefinitions"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("memory");
            },
            "containerDefinitions[0].memory",
            "must set memory or memoryReservation",
        ),
        (
            |v| v["containerDefinitions"][0]["memory"] = json!(4),
            "containerDefinitions[0].memory",
            "minimum of 6 MiB",
        ),
        (
            |v| v["containerDefinitions"][0]["memoryReservation"] = json!(512),
            "containerDefinitions[0].memoryReservation",
            "must not exceed memory (256 MiB)",
        ),
        (
            |v| v["memory"] = json!("200"),
            "containerDefinitions[0].memory",
            "more than the task-level memory of 200 MiB",
        ),
        (
            |v| v["memory"] = json!("300"),
            "containerDefinitions",
            "reserve 384 MiB in total",
        ),
        (
            |v| {
                v["cpu"] = json!("256");
                v["containerDefinitions"][0]["cpu"] = json!(200);
                v["containerDefinitions"][1]["cpu"] = json!(100);
            },
            "containerDefinitions",
            "adds up to 300 units",
        ),
        (
            |v| v["containerDefinitions"][0]["healthCheck"]["command"] = json!([]),
            "containerDefinitions[0].healthCheck.command",
            "needs a command",
        ),
        (
            |v| {
                v["containerDefinitions"][0]["healthCheck"]["command"] =
                    json!(["curl", "localhost"])
            },
            "containerDefinitions[0].healthCheck.command",
            "must start with CMD or CMD-SHELL",
        ),
        (
            |v| v["containerDefinitions"][0]["healthCheck"]["interval"] = json!(4),
            "containerDefinitions[0].healthCheck.interval",
            "5 to 300",
        ),
        (
            |v| v["containerDefinitions"][0]["healthCheck"]["timeout"] = json!(61),
            "containerDefinitions[0].healthCheck.timeout",
            "2 to 60",
        ),
        (
            |v| v["containerDefinitions"][0]["healthCheck"]["retries"] = json!(0),
            "containerDefinitions[0].healthCheck.retries",
            "1 to 10",
        ),
        (
            |v| v["containerDefinitions"][0]["healthCheck"]["startPeriod"] = json!(301),
            "containerDefinitions[0].healthCheck.startPeriod",
            "0 to 300",
        ),
        (
            |v| {
                v["containerDefinitions"][0]["ulimits"] =
                    json!([{"name": "nofile", "softLimit": 10, "hardLimit": 5}])
            },
            "containerDefinitions[0].ulimits[0].softLimit",
            "greater than hardLimit",
        ),
        (
            |v| {
                v["containerDefinitions"][0]["secrets"] = json!([{"name": "P", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:p"}]);
                v.as_object_mut().unwrap().remove("executionRoleArn");
            },
            "containerDefinitions[0].secrets[0]",
            "need the task definition's executionRoleArn",
        ),
        (
            |v| v["placementConstraints"] = json!([{"type": "memberOf"}]),
            "placementConstraints[0].expression",
            "cluster query language expression",
        ),
        (
            |v| v["placementConstraints"] = json!([{"expression": "attribute:x == y"}]),
            "placementConstraints[0].type",
            "needs type memberOf",
        ),
        (
            |v| v["requiresCompatibilities"] = json!(["FARGATE"]),
            "requiresCompatibilities",
            "Fargate needs networkMode awsvpc",
        ),
        (
            |v| {
                v["requiresCompatibilities"] = json!(["FARGATE"]);
                v["networkMode"] = json!("awsvpc");
            },
            "requiresCompatibilities",
            "needs task-level cpu and memory",
        ),
        (
            |v| {
                v["requiresCompatibilities"] = json!(["FARGATE"]);
                v["networkMode"] = json!("awsvpc");
                v["cpu"] = json!("256");
                v["memory"] = json!("4GB");
            },
            "memory",
            "no Fargate configuration exists for 256 CPU units and 4096 MiB",
        ),
        (
            |v| {
                v["requiresCompatibilities"] = json!(["EXTERNAL"]);
                v["networkMode"] = json!("awsvpc");
            },
            "requiresCompatibilities",
            "EXTERNAL",
        ),
        (
            |v| {
                v["containerDefinitions"][0]["logConfiguration"] =
                    json!({"logDriver": "awsfirelens"})
            },
            "containerDefinitions[0].logConfiguration.logDriver",
            "firelensConfiguration",
        ),
        (
            |v| v["proxyConfiguration"] = json!({"containerName": "envoy"}),
            "proxyConfiguration.containerName",
            "container 'envoy' is not defined",
        ),
        (
            |v| v["ephemeralStorage"] = json!({"sizeInGiB": 20}),
            "ephemeralStorage.sizeInGiB",
            "21 to 200",
        ),
        (
            |v| {
                v["containerDefinitions"][0]["restartPolicy"] =
                    json!({"enabled": true, "restartAttemptPeriod": 30})
            },
            "containerDefinitions[0].restartPolicy.restartAttemptPeriod",
            "60 to 1800",
        ),
        (
            |v| v["containerDefinitions"][0]["linuxParameters"] = json!({"swappiness": 101}),
            "containerDefinitions[0].linuxParameters.swappiness",
            "0 to 100",
        ),
        (
            |v| {
                v["volumes"] =
                    json!([{"name": "data", "host": {}, "dockerVolumeConfiguration": {}}])
            },
            "volumes[0]",
            "only one of",
        ),
        (
            |v| v["volumes"] = json!([{"name": "data", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "authorizationConfig": {"iam": "ENABLED"}}}]),
            "volumes[0].efsVolumeConfiguration.authorizationConfig.iam",
            "transitEncryption ENABLED",
        ),
        (
            |v| {
                v["containerDefinitions"][0]["portMappings"] =
                    json!([{"containerPort": 80, "name": "Web"}])
            },
            "containerDefinitions[0].portMappings[0].name",
            "not a valid port mapping name",
        ),
        (
            |v| v["containerDefinitions"][1]["portMappings"] = json!([{"containerPort": 5432, "name": "db"}, {"containerPort": 5433, "name": "db"}]),
            "containerDefinitions[1].portMappings[1].name",
            "already used by containerDefinitions[1].portMappings[0].name",
        ),
    ];
    for (n, (mutate, field, needle)) in cases.iter().enumerate() {
        let mut v = base();
        mutate(&mut v);
        let spec = spec_of(&v);
        let err = validate(&spec).expect_err(&format!("case {n} ({field}) should fail"));
        assert_eq!(err.field, *field, "case {n}: {}", err.message);
        assert_eq!(err.kind, ErrorKind::Client, "case {n}");
        assert!(
            err.message.starts_with(field),
            "case {n}: message should start with the member: {}",
            err.message
        );
        assert!(
            err.message.contains(needle),
            "case {n}: {:?} should contain {:?}",
            err.message,
            needle
        );
    }
}

#[test]
fn accepted_variants() {
    let cases: &[fn(&mut Value)] = &[
        // Task-level memory replaces the per-container requirement.
        |v| {
            v["memory"] = json!("1GB");
            v["containerDefinitions"][0]
                .as_object_mut()
                .unwrap()
                .remove("memory");
        },
        // host/awsvpc accept hostPort equal to containerPort or left out.
        |v| {
            v["networkMode"] = json!("host");
            v["containerDefinitions"][0]["portMappings"] =
                json!([{"containerPort": 80, "hostPort": 80}, {"containerPort": 81}]);
        },
        // The same host port on different protocols.
        |v| {
            v["containerDefinitions"][0]["portMappings"] = json!([{"containerPort": 53, "hostPort": 53}, {"containerPort": 53, "hostPort": 53, "protocol": "udp"}]);
        },
        // Several dynamic ports.
        |v| {
            v["containerDefinitions"][0]["portMappings"] =
                json!([{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}]);
        },
        // A valid Fargate definition.
        |v| {
            v["requiresCompatibilities"] = json!(["FARGATE"]);
            v["networkMode"] = json!("awsvpc");
            v["cpu"] = json!(".25 vCPU");
            v["memory"] = json!("0.5GB");
            v["containerDefinitions"][0]["portMappings"] = json!([{"containerPort": 80}]);
        },
        // Links by name and alias in bridge mode; memory equal to its reservation.
        |v| {
            v["containerDefinitions"][0]["links"] = json!(["db", "db:database"]);
            v["containerDefinitions"][0]["memoryReservation"] = json!(256);
        },
        // Image by digest.
        |v| {
            v["containerDefinitions"][0]["image"] = json!(
                "registry.local:5000/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            );
        },
    ];
    for (n, mutate) in cases.iter().enumerate() {
        let mut v = base();
        mutate(&mut v);
        if let Err(e) = validate(&spec_of(&v)) {
            panic!("case {n} should pass: {e}");
        }
    }
}

#[test]
fn enum_strings_match_botocore() {
    assert_eq!(
        serde_json::to_value(LogDriver::JsonFile).unwrap(),
        "json-file"
    );
    assert_eq!(
        serde_json::to_value(OsFamily::WindowsServer20H2Core).unwrap(),
        "WINDOWS_SERVER_20H2_CORE"
    );
    assert_eq!(
        serde_json::to_value(Compatibility::ManagedInstances).unwrap(),
        "MANAGED_INSTANCES"
    );
    assert_eq!(
        serde_json::to_value(TaskDefinitionPlacementConstraintType::MemberOf).unwrap(),
        "memberOf"
    );
    assert_eq!(
        serde_json::to_value(TaskDefinitionStatus::DeleteInProgress).unwrap(),
        "DELETE_IN_PROGRESS"
    );
    assert_eq!(UlimitName::WIRE.len(), 15);
    for s in LogDriver::WIRE {
        assert_eq!(LogDriver::parse(s).unwrap().as_str(), *s);
    }
    assert_eq!(NetworkMode::parse("BRIDGE"), None);
}
