//! The user's journey through the unmodified AWS CLI against the real `berth` binary.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::{ACCOUNT, Berth, REGION, only, strings};

const TOTAL_RESOURCES: &str = r#"[{"name":"CPU","type":"INTEGER","integerValue":2048},{"name":"MEMORY","type":"INTEGER","integerValue":3768},{"name":"PORTS","type":"STRINGSET","stringSetValue":["22"]}]"#;

fn cluster_arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}")
}

/// A task definition like the seeds: an httpd web container that depends on a sidecar.
fn web_task_definition(family: &str) -> String {
    json!({
        "family": family,
        "networkMode": "bridge",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "httpd:2.4",
                "cpu": 256,
                "memory": 128,
                "essential": true,
                "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
                "environment": [{"name": "STAGE", "value": "01"}, {"name": "GREETING", "value": "hello"}],
                "dockerLabels": {"berth.test": "stage01", "tier": "frontend"},
                "healthCheck": {
                    "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                    "interval": 10,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 5
                },
                "dependsOn": [{"containerName": "sidecar", "condition": "START"}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/berth/stage01", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"}
                }
            },
            {
                "name": "sidecar",
                "image": "busybox:1.36",
                "memory": 64,
                "essential": false,
                "command": ["sleep", "infinity"]
            }
        ]
    })
    .to_string()
}

fn register_web(berth: &Berth, family: &str) -> Value {
    let file = berth.file(&format!("{family}.json"), &web_task_definition(family));
    berth
        .aws(&["ecs", "register-task-definition", "--cli-input-json", &file])
        .ok()
}

/// Registers an instance as an agent would; it claims the awslogs logging driver (which
/// Berth's own agent lacks), so `web`, which logs with it, can be placed there.
fn register_instance(berth: &Berth, cluster: &str) -> Value {
    let out = berth
        .aws(&[
            "ecs",
            "register-container-instance",
            "--cluster",
            cluster,
            "--total-resources",
            TOTAL_RESOURCES,
            "--attributes",
            "name=com.amazonaws.ecs.capability.logging-driver.awslogs",
        ])
        .ok();
    out["containerInstance"].clone()
}

fn resource(resources: &Value, name: &str) -> Value {
    resources
        .as_array()
        .unwrap_or_else(|| panic!("no resources in {resources}"))
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {resources}"))
        .clone()
}

fn int_resource(resources: &Value, name: &str) -> i64 {
    resource(resources, name)["integerValue"]
        .as_i64()
        .unwrap_or_else(|| panic!("{name} has no integerValue in {resources}"))
}

fn statistic(cluster: &Value, name: &str) -> String {
    cluster["statistics"]
        .as_array()
        .unwrap_or_else(|| panic!("no statistics in {cluster}"))
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no statistic {name} in {cluster}"))["value"]
        .as_str()
        .unwrap()
        .to_string()
}

fn describe_cluster(berth: &Berth, name: &str) -> Value {
    let out = berth
        .aws(&[
            "ecs",
            "describe-clusters",
            "--clusters",
            name,
            "--include",
            "SETTINGS",
            "TAGS",
            "STATISTICS",
        ])
        .ok();
    assert_eq!(out["failures"], json!([]), "{out}");
    only(&out, "clusters").clone()
}

fn describe_instance(berth: &Berth, cluster: &str, arn: &str) -> Value {
    let out = berth
        .aws(&[
            "ecs",
            "describe-container-instances",
            "--cluster",
            cluster,
            "--container-instances",
            arn,
        ])
        .ok();
    assert_eq!(out["failures"], json!([]), "{out}");
    only(&out, "containerInstances").clone()
}

#[test]
fn clusters_create_describe_list_update_and_tag() {
    let berth = Berth::start();
    let created = berth
        .aws(&[
            "ecs",
            "create-cluster",
            "--cluster-name",
            "stage01",
            "--tags",
            "key=env,value=test",
        ])
        .ok();
    let cluster = &created["cluster"];
    assert_eq!(cluster["clusterName"], "stage01");
    assert_eq!(cluster["clusterArn"], cluster_arn("stage01"));
    assert_eq!(cluster["status"], "ACTIVE");
    assert_eq!(cluster["registeredContainerInstancesCount"], 0);
    assert_eq!(cluster["runningTasksCount"], 0);
    assert_eq!(cluster["pendingTasksCount"], 0);
    assert_eq!(cluster["activeServicesCount"], 0);

    // Creating it again is idempotent: same ARN, still one cluster.
    let again = berth
        .aws(&["ecs", "create-cluster", "--cluster-name", "stage01"])
        .ok();
    assert_eq!(again["cluster"]["clusterArn"], cluster_arn("stage01"));
    assert_eq!(again["cluster"]["status"], "ACTIVE");
    assert_eq!(
        strings(&berth.aws(&["ecs", "list-clusters"]).ok()["clusterArns"]),
        vec![cluster_arn("stage01")]
    );

    let described = describe_cluster(&berth, "stage01");
    assert_eq!(described["status"], "ACTIVE");
    assert_eq!(described["clusterName"], "stage01");
    assert_eq!(described["registeredContainerInstancesCount"], 0);
    assert_eq!(
        described["tags"],
        json!([{"key": "env", "value": "test"}]),
        "{described}"
    );
    assert_eq!(
        described["settings"],
        json!([{"name": "containerInsights", "value": "disabled"}]),
        "{described}"
    );
    assert_eq!(statistic(&described, "runningEC2TasksCount"), "0");
    assert_eq!(statistic(&described, "pendingEC2TasksCount"), "0");
    assert_eq!(statistic(&described, "activeEC2ServiceCount"), "0");
    // Without --include, no tags nor settings.
    let plain = berth
        .aws(&["ecs", "describe-clusters", "--clusters", "stage01"])
        .ok();
    assert!(
        only(&plain, "clusters")
            .get("tags")
            .is_none_or(|t| t.as_array().is_some_and(|a| a.is_empty())),
        "{plain}"
    );
    // A missing cluster is a failure, not an error.
    let missing = berth
        .aws(&["ecs", "describe-clusters", "--clusters", "nope"])
        .ok();
    assert_eq!(missing["clusters"], json!([]));
    assert_eq!(only(&missing, "failures")["reason"], "MISSING");
    assert_eq!(only(&missing, "failures")["arn"], cluster_arn("nope"));

    // Pagination over four clusters.
    for name in ["stage02", "stage03", "stage04"] {
        berth
            .aws(&["ecs", "create-cluster", "--cluster-name", name])
            .ok();
    }
    let all: BTreeSet<String> = ["stage01", "stage02", "stage03", "stage04"]
        .iter()
        .map(|n| cluster_arn(n))
        .collect();
    // The CLI follows the server's nextToken page by page.
    let paged = berth
        .aws(&["ecs", "list-clusters", "--page-size", "1"])
        .ok();
    let arns = strings(&paged["clusterArns"]);
    assert_eq!(arns.len(), 4, "{paged}");
    assert_eq!(arns.iter().cloned().collect::<BTreeSet<_>>(), all);
    // The server's own pages.
    let first = berth
        .aws(&[
            "ecs",
            "list-clusters",
            "--no-paginate",
            "--max-results",
            "3",
        ])
        .ok();
    assert_eq!(strings(&first["clusterArns"]).len(), 3, "{first}");
    let token = first["nextToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no nextToken in {first}"))
        .to_string();
    let second = berth
        .aws(&[
            "ecs",
            "list-clusters",
            "--no-paginate",
            "--max-results",
            "3",
            "--next-token",
            &token,
        ])
        .ok();
    assert_eq!(strings(&second["clusterArns"]).len(), 1, "{second}");
    assert!(
        second.get("nextToken").is_none_or(Value::is_null),
        "{second}"
    );
    let mut seen: BTreeSet<String> = strings(&first["clusterArns"]).into_iter().collect();
    seen.extend(strings(&second["clusterArns"]));
    assert_eq!(seen, all);
    // The CLI's --max-items / --starting-token on top of --page-size.
    let a = berth
        .aws(&[
            "ecs",
            "list-clusters",
            "--max-items",
            "2",
            "--page-size",
            "1",
        ])
        .ok();
    assert_eq!(strings(&a["clusterArns"]).len(), 2, "{a}");
    let token = a["NextToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no NextToken in {a}"))
        .to_string();
    let b = berth
        .aws(&[
            "ecs",
            "list-clusters",
            "--max-items",
            "2",
            "--page-size",
            "1",
            "--starting-token",
            &token,
        ])
        .ok();
    assert_eq!(strings(&b["clusterArns"]).len(), 2, "{b}");
    let mut seen: BTreeSet<String> = strings(&a["clusterArns"]).into_iter().collect();
    seen.extend(strings(&b["clusterArns"]));
    assert_eq!(seen, all);
    // A bad token is refused.
    berth
        .aws(&[
            "ecs",
            "list-clusters",
            "--no-paginate",
            "--next-token",
            "garbage!",
        ])
        .fails_with("InvalidParameterException");

    // update-cluster-settings
    let updated = berth
        .aws(&[
            "ecs",
            "update-cluster-settings",
            "--cluster",
            "stage01",
            "--settings",
            "name=containerInsights,value=enabled",
        ])
        .ok();
    assert_eq!(
        updated["cluster"]["settings"],
        json!([{"name": "containerInsights", "value": "enabled"}]),
        "{updated}"
    );
    assert_eq!(
        describe_cluster(&berth, "stage01")["settings"],
        json!([{"name": "containerInsights", "value": "enabled"}])
    );
    berth
        .aws(&[
            "ecs",
            "update-cluster-settings",
            "--cluster",
            "nope",
            "--settings",
            "name=containerInsights,value=enabled",
        ])
        .fails_with("ClusterNotFoundException");

    // Tags on the cluster.
    let arn = cluster_arn("stage01");
    berth
        .aws(&[
            "ecs",
            "tag-resource",
            "--resource-arn",
            &arn,
            "--tags",
            "key=team,value=core",
            "key=env,value=prod",
        ])
        .ok();
    let tags = berth
        .aws(&["ecs", "list-tags-for-resource", "--resource-arn", &arn])
        .ok();
    let mut tags: Vec<(String, String)> = tags["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("{tags}"))
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().into(),
                t["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        vec![
            ("env".to_string(), "prod".to_string()),
            ("team".to_string(), "core".to_string())
        ]
    );
    berth
        .aws(&[
            "ecs",
            "untag-resource",
            "--resource-arn",
            &arn,
            "--tag-keys",
            "team",
        ])
        .ok();
    let tags = berth
        .aws(&["ecs", "list-tags-for-resource", "--resource-arn", &arn])
        .ok();
    assert_eq!(
        tags["tags"],
        json!([{"key": "env", "value": "prod"}]),
        "{tags}"
    );
    assert_eq!(
        describe_cluster(&berth, "stage01")["tags"],
        json!([{"key": "env", "value": "prod"}])
    );

    // An empty cluster deletes at once.
    let deleted = berth
        .aws(&["ecs", "delete-cluster", "--cluster", "stage04"])
        .ok();
    assert_eq!(deleted["cluster"]["status"], "INACTIVE");
    assert!(
        !strings(&berth.aws(&["ecs", "list-clusters"]).ok()["clusterArns"])
            .contains(&cluster_arn("stage04"))
    );
}

#[test]
fn task_definitions_register_describe_list_deregister_delete() {
    let berth = Berth::start();
    let first = register_web(&berth, "web");
    let td = &first["taskDefinition"];
    assert_eq!(td["family"], "web");
    assert_eq!(td["revision"], 1);
    assert_eq!(td["status"], "ACTIVE");
    assert_eq!(
        td["taskDefinitionArn"],
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:1")
    );
    assert_eq!(td["networkMode"], "bridge");
    let containers = td["containerDefinitions"]
        .as_array()
        .expect("containerDefinitions");
    assert_eq!(containers.len(), 2);
    let web = containers
        .iter()
        .find(|c| c["name"] == "web")
        .expect("web container");
    assert_eq!(web["image"], "httpd:2.4");
    assert_eq!(web["cpu"], 256);
    assert_eq!(web["memory"], 128);
    assert_eq!(web["essential"], true);
    assert_eq!(web["portMappings"][0]["containerPort"], 80);
    assert_eq!(web["portMappings"][0]["hostPort"], 0);
    assert_eq!(web["portMappings"][0]["protocol"], "tcp");
    let mut env: Vec<(String, String)> = web["environment"]
        .as_array()
        .expect("environment")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    env.sort();
    assert_eq!(
        env,
        vec![
            ("GREETING".into(), "hello".into()),
            ("STAGE".into(), "01".into())
        ]
    );
    assert_eq!(
        web["dockerLabels"],
        json!({"berth.test": "stage01", "tier": "frontend"})
    );
    assert_eq!(
        web["healthCheck"]["command"],
        json!(["CMD-SHELL", "curl -f http://localhost/ || exit 1"])
    );
    assert_eq!(web["healthCheck"]["interval"], 10);
    assert_eq!(web["healthCheck"]["timeout"], 5);
    assert_eq!(web["healthCheck"]["retries"], 3);
    assert_eq!(web["healthCheck"]["startPeriod"], 5);
    assert_eq!(
        web["dependsOn"],
        json!([{"containerName": "sidecar", "condition": "START"}])
    );
    assert_eq!(web["logConfiguration"]["logDriver"], "awslogs");
    assert_eq!(
        web["logConfiguration"]["options"]["awslogs-group"],
        "/berth/stage01"
    );
    let sidecar = containers
        .iter()
        .find(|c| c["name"] == "sidecar")
        .expect("sidecar container");
    assert_eq!(sidecar["essential"], false);
    assert_eq!(sidecar["command"], json!(["sleep", "infinity"]));
    assert!(
        td["registeredAt"].is_number() || td["registeredAt"].is_string(),
        "no registeredAt in {td}"
    );

    let second = register_web(&berth, "web");
    assert_eq!(second["taskDefinition"]["revision"], 2);
    let web2 = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:2");
    assert_eq!(second["taskDefinition"]["taskDefinitionArn"], web2);
    register_web(&berth, "api");

    // describe by family (latest ACTIVE), family:revision and ARN
    let latest = berth
        .aws(&[
            "ecs",
            "describe-task-definition",
            "--task-definition",
            "web",
        ])
        .ok();
    assert_eq!(latest["taskDefinition"]["revision"], 2);
    let one = berth
        .aws(&[
            "ecs",
            "describe-task-definition",
            "--task-definition",
            "web:1",
        ])
        .ok();
    assert_eq!(one["taskDefinition"]["revision"], 1);
    assert_eq!(
        one["taskDefinition"]["containerDefinitions"],
        td["containerDefinitions"]
    );
    let by_arn = berth
        .aws(&[
            "ecs",
            "describe-task-definition",
            "--task-definition",
            &web2,
        ])
        .ok();
    assert_eq!(by_arn["taskDefinition"]["revision"], 2);
    assert_eq!(by_arn["taskDefinition"]["family"], "web");
    berth
        .aws(&[
            "ecs",
            "describe-task-definition",
            "--task-definition",
            "web:9",
        ])
        .fails_with("ClientException");

    // list-task-definitions
    let listed = berth
        .aws(&["ecs", "list-task-definitions", "--family-prefix", "web"])
        .ok();
    assert_eq!(
        strings(&listed["taskDefinitionArns"]),
        vec![
            format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:1"),
            web2.clone()
        ]
    );
    let desc = berth
        .aws(&[
            "ecs",
            "list-task-definitions",
            "--family-prefix",
            "web",
            "--sort",
            "DESC",
        ])
        .ok();
    assert_eq!(
        strings(&desc["taskDefinitionArns"]),
        vec![
            web2.clone(),
            format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:1")
        ]
    );
    let all = berth.aws(&["ecs", "list-task-definitions"]).ok();
    assert_eq!(strings(&all["taskDefinitionArns"]).len(), 3, "{all}");
    let families = berth.aws(&["ecs", "list-task-definition-families"]).ok();
    assert_eq!(strings(&families["families"]), vec!["api", "web"]);
    let families = berth
        .aws(&[
            "ecs",
            "list-task-definition-families",
            "--family-prefix",
            "we",
        ])
        .ok();
    assert_eq!(strings(&families["families"]), vec!["web"]);

    // deregister → INACTIVE, leaves the ACTIVE list
    let dereg = berth
        .aws(&[
            "ecs",
            "deregister-task-definition",
            "--task-definition",
            "web:1",
        ])
        .ok();
    assert_eq!(dereg["taskDefinition"]["status"], "INACTIVE");
    assert!(
        dereg["taskDefinition"]["deregisteredAt"].is_number()
            || dereg["taskDefinition"]["deregisteredAt"].is_string(),
        "{dereg}"
    );
    let listed = berth
        .aws(&["ecs", "list-task-definitions", "--family-prefix", "web"])
        .ok();
    assert_eq!(strings(&listed["taskDefinitionArns"]), vec![web2.clone()]);
    let inactive = berth
        .aws(&[
            "ecs",
            "list-task-definitions",
            "--family-prefix",
            "web",
            "--status",
            "INACTIVE",
        ])
        .ok();
    assert_eq!(
        strings(&inactive["taskDefinitionArns"]),
        vec![format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:1"
        )]
    );
    // The family still resolves to its latest ACTIVE revision.
    assert_eq!(
        berth
            .aws(&[
                "ecs",
                "describe-task-definition",
                "--task-definition",
                "web"
            ])
            .ok()["taskDefinition"]["revision"],
        2
    );

    // delete-task-definitions: only INACTIVE revisions
    let deleted = berth
        .aws(&[
            "ecs",
            "delete-task-definitions",
            "--task-definitions",
            "web:1",
        ])
        .ok();
    assert_eq!(deleted["failures"], json!([]), "{deleted}");
    let gone = only(&deleted, "taskDefinitions");
    assert_eq!(gone["status"], "DELETE_IN_PROGRESS", "{deleted}");
    let refused = berth.aws(&[
        "ecs",
        "delete-task-definitions",
        "--task-definitions",
        "web:2",
    ]);
    if refused.status == 0 {
        assert_eq!(
            refused.json["taskDefinitions"],
            json!([]),
            "{}",
            refused.json
        );
        assert_eq!(
            refused.json["failures"].as_array().map(Vec::len),
            Some(1),
            "{}",
            refused.json
        );
    } else {
        assert!(refused.stderr.contains("Exception"), "{}", refused.stderr);
    }
    assert_eq!(
        berth
            .aws(&[
                "ecs",
                "describe-task-definition",
                "--task-definition",
                "web:2"
            ])
            .ok()["taskDefinition"]["status"],
        "ACTIVE"
    );
    // The next registration is revision 3, never a reuse of 1.
    assert_eq!(register_web(&berth, "web")["taskDefinition"]["revision"], 3);
}

#[test]
fn instances_tasks_and_the_cluster_lifecycle() {
    let berth = Berth::start();
    berth
        .aws(&["ecs", "create-cluster", "--cluster-name", "stage01"])
        .ok();
    register_web(&berth, "web");
    let huge = json!({"family": "huge", "containerDefinitions": [{"name": "big", "image": "httpd:2.4", "memory": 4000, "essential": true}]}).to_string();
    let huge_file = berth.file("huge.json", &huge);
    berth
        .aws(&[
            "ecs",
            "register-task-definition",
            "--cli-input-json",
            &huge_file,
        ])
        .ok();

    // register-container-instance
    let instance = register_instance(&berth, "stage01");
    let instance_arn = instance["containerInstanceArn"]
        .as_str()
        .expect("containerInstanceArn")
        .to_string();
    assert!(
        instance_arn.starts_with(&format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/stage01/"
        )),
        "{instance_arn}"
    );
    let instance_id = instance_arn.rsplit('/').next().unwrap().to_string();
    assert_eq!(instance["status"], "ACTIVE");
    assert_eq!(instance["agentConnected"], true);
    assert_eq!(int_resource(&instance["registeredResources"], "CPU"), 2048);
    assert_eq!(
        int_resource(&instance["registeredResources"], "MEMORY"),
        3768
    );
    assert_eq!(
        resource(&instance["registeredResources"], "PORTS")["stringSetValue"],
        json!(["22"])
    );
    assert_eq!(int_resource(&instance["remainingResources"], "CPU"), 2048);
    assert_eq!(
        int_resource(&instance["remainingResources"], "MEMORY"),
        3768
    );

    // describe and list
    let described = describe_instance(&berth, "stage01", &instance_id);
    assert_eq!(described["containerInstanceArn"], instance_arn.as_str());
    assert_eq!(described["runningTasksCount"], 0);
    assert_eq!(described["pendingTasksCount"], 0);
    let attrs = described["attributes"].as_array().expect("attributes");
    assert!(
        attrs
            .iter()
            .any(|a| a["name"] == "ecs.os-type" && a["value"] == "linux"),
        "{described}"
    );
    let listed = berth
        .aws(&["ecs", "list-container-instances", "--cluster", "stage01"])
        .ok();
    assert_eq!(
        strings(&listed["containerInstanceArns"]),
        vec![instance_arn.clone()]
    );
    let linux = berth
        .aws(&[
            "ecs",
            "list-container-instances",
            "--cluster",
            "stage01",
            "--filter",
            "attribute:ecs.os-type == linux",
        ])
        .ok();
    assert_eq!(
        strings(&linux["containerInstanceArns"]),
        vec![instance_arn.clone()]
    );
    let windows = berth
        .aws(&[
            "ecs",
            "list-container-instances",
            "--cluster",
            "stage01",
            "--filter",
            "attribute:ecs.os-type == windows",
        ])
        .ok();
    assert_eq!(
        strings(&windows["containerInstanceArns"]),
        Vec::<String>::new()
    );
    berth
        .aws(&[
            "ecs",
            "list-container-instances",
            "--cluster",
            "stage01",
            "--filter",
            "attribute:ecs.os-type ===",
        ])
        .fails_with("InvalidParameterException");
    assert_eq!(
        describe_cluster(&berth, "stage01")["registeredContainerInstancesCount"],
        1
    );

    // put-attributes / list-attributes / delete-attributes
    let put = berth
        .aws(&[
            "ecs",
            "put-attributes",
            "--cluster",
            "stage01",
            "--attributes",
            &format!("name=stack,value=prod,targetType=container-instance,targetId={instance_arn}"),
        ])
        .ok();
    assert_eq!(only(&put, "attributes")["name"], "stack");
    let listed = berth
        .aws(&[
            "ecs",
            "list-attributes",
            "--cluster",
            "stage01",
            "--target-type",
            "container-instance",
            "--attribute-name",
            "stack",
        ])
        .ok();
    let attr = only(&listed, "attributes");
    assert_eq!(attr["value"], "prod");
    assert_eq!(attr["targetId"], instance_arn.as_str());
    let filtered = berth
        .aws(&[
            "ecs",
            "list-container-instances",
            "--cluster",
            "stage01",
            "--filter",
            "attribute:stack == prod",
        ])
        .ok();
    assert_eq!(
        strings(&filtered["containerInstanceArns"]),
        vec![instance_arn.clone()]
    );
    berth
        .aws(&[
            "ecs",
            "delete-attributes",
            "--cluster",
            "stage01",
            "--attributes",
            &format!("name=stack,targetId={instance_arn}"),
        ])
        .ok();
    let listed = berth
        .aws(&[
            "ecs",
            "list-attributes",
            "--cluster",
            "stage01",
            "--target-type",
            "container-instance",
            "--attribute-name",
            "stack",
        ])
        .ok();
    assert_eq!(listed["attributes"], json!([]), "{listed}");

    // DRAINING and back
    let drained = berth
        .aws(&[
            "ecs",
            "update-container-instances-state",
            "--cluster",
            "stage01",
            "--container-instances",
            &instance_id,
            "--status",
            "DRAINING",
        ])
        .ok();
    assert_eq!(only(&drained, "containerInstances")["status"], "DRAINING");
    assert_eq!(
        describe_instance(&berth, "stage01", &instance_arn)["status"],
        "DRAINING"
    );
    let draining = berth
        .aws(&[
            "ecs",
            "list-container-instances",
            "--cluster",
            "stage01",
            "--status",
            "DRAINING",
        ])
        .ok();
    assert_eq!(
        strings(&draining["containerInstanceArns"]),
        vec![instance_arn.clone()]
    );
    // No new task goes on a draining instance.
    let none = berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "stage01",
            "--task-definition",
            "web",
        ])
        .ok();
    assert_eq!(none["tasks"], json!([]), "{none}");
    assert!(
        !none["failures"].as_array().expect("failures").is_empty(),
        "{none}"
    );
    let active = berth
        .aws(&[
            "ecs",
            "update-container-instances-state",
            "--cluster",
            "stage01",
            "--container-instances",
            &instance_id,
            "--status",
            "ACTIVE",
        ])
        .ok();
    assert_eq!(only(&active, "containerInstances")["status"], "ACTIVE");

    // run-task --count 2
    let run = berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "stage01",
            "--task-definition",
            "web",
            "--count",
            "2",
            "--started-by",
            "ci-test",
        ])
        .ok();
    assert_eq!(run["failures"], json!([]), "{run}");
    let tasks = run["tasks"].as_array().expect("tasks").clone();
    assert_eq!(tasks.len(), 2, "{run}");
    let web1 = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:1");
    for t in &tasks {
        assert_eq!(t["lastStatus"], "PENDING");
        assert_eq!(t["desiredStatus"], "RUNNING");
        assert_eq!(t["containerInstanceArn"], instance_arn.as_str());
        assert_eq!(t["clusterArn"], cluster_arn("stage01"));
        assert_eq!(t["taskDefinitionArn"], web1.as_str());
        assert_eq!(t["startedBy"], "ci-test");
        assert_eq!(t["launchType"], "EC2");
        assert_eq!(t["group"], "family:web");
        assert!(
            t["taskArn"]
                .as_str()
                .unwrap()
                .starts_with(&format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/stage01/")),
            "{t}"
        );
        let names: BTreeSet<&str> = t["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, BTreeSet::from(["web", "sidecar"]));
    }
    let task_arns: Vec<String> = tasks
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_string())
        .collect();
    assert_ne!(task_arns[0], task_arns[1]);
    let after_run = describe_instance(&berth, "stage01", &instance_arn);
    assert_eq!(
        int_resource(&after_run["remainingResources"], "CPU"),
        2048 - 2 * 256
    );
    assert_eq!(
        int_resource(&after_run["remainingResources"], "MEMORY"),
        3768 - 2 * (128 + 64)
    );
    assert_eq!(after_run["pendingTasksCount"], 2);
    let stats = describe_cluster(&berth, "stage01");
    assert_eq!(stats["pendingTasksCount"], 2);
    assert_eq!(statistic(&stats, "pendingEC2TasksCount"), "2");

    // describe-tasks and list-tasks
    let described = berth
        .aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            "stage01",
            "--tasks",
            &task_arns[0],
            &task_arns[1],
        ])
        .ok();
    assert_eq!(described["failures"], json!([]), "{described}");
    let got: BTreeSet<String> = described["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, task_arns.iter().cloned().collect());
    let missing = berth
        .aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            "stage01",
            "--tasks",
            "0123456789abcdef0123456789abcdef",
        ])
        .ok();
    assert_eq!(only(&missing, "failures")["reason"], "MISSING");
    let by_family = berth
        .aws(&[
            "ecs",
            "list-tasks",
            "--cluster",
            "stage01",
            "--family",
            "web",
        ])
        .ok();
    assert_eq!(
        strings(&by_family["taskArns"])
            .into_iter()
            .collect::<BTreeSet<_>>(),
        task_arns.iter().cloned().collect()
    );
    let by_starter = berth
        .aws(&[
            "ecs",
            "list-tasks",
            "--cluster",
            "stage01",
            "--started-by",
            "ci-test",
        ])
        .ok();
    assert_eq!(strings(&by_starter["taskArns"]).len(), 2, "{by_starter}");
    let nobody = berth
        .aws(&[
            "ecs",
            "list-tasks",
            "--cluster",
            "stage01",
            "--started-by",
            "someone-else",
        ])
        .ok();
    assert_eq!(nobody["taskArns"], json!([]));
    let on_instance = berth
        .aws(&[
            "ecs",
            "list-tasks",
            "--cluster",
            "stage01",
            "--container-instance",
            &instance_id,
        ])
        .ok();
    assert_eq!(strings(&on_instance["taskArns"]).len(), 2, "{on_instance}");

    // run-task with a client token: a retry returns the same task; other parameters conflict.
    let a = berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "stage01",
            "--task-definition",
            "web",
            "--client-token",
            "token-0001",
        ])
        .ok();
    let b = berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "stage01",
            "--task-definition",
            "web",
            "--client-token",
            "token-0001",
        ])
        .ok();
    assert_eq!(a["tasks"].as_array().map(Vec::len), Some(1), "{a}");
    assert_eq!(
        a["tasks"][0]["taskArn"], b["tasks"][0]["taskArn"],
        "a retry with the same token must return the same task:\n{a}\n{b}"
    );
    assert_eq!(b["tasks"].as_array().map(Vec::len), Some(1), "{b}");
    let token_task = a["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "stage01",
            "--task-definition",
            "web",
            "--client-token",
            "token-0001",
            "--count",
            "2",
        ])
        .fails_with("ConflictException");
    let count = berth
        .aws(&["ecs", "list-tasks", "--cluster", "stage01"])
        .ok();
    assert_eq!(strings(&count["taskArns"]).len(), 3, "{count}");

    // More memory than the instance has.
    let big = berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "stage01",
            "--task-definition",
            "huge",
        ])
        .ok();
    assert_eq!(big["tasks"], json!([]), "{big}");
    let failure = only(&big, "failures");
    assert_eq!(failure["reason"], "RESOURCE:MEMORY", "{big}");
    assert_eq!(failure["arn"], instance_arn.as_str(), "{big}");

    // stop-task: never started by an agent, so STOPPED at once.
    let mut all_tasks = task_arns.clone();
    all_tasks.push(token_task);
    for arn in &all_tasks {
        let stopped = berth
            .aws(&[
                "ecs",
                "stop-task",
                "--cluster",
                "stage01",
                "--task",
                arn,
                "--reason",
                "test is done",
            ])
            .ok();
        assert_eq!(stopped["task"]["taskArn"], arn.as_str());
        assert_eq!(stopped["task"]["desiredStatus"], "STOPPED", "{stopped}");
        assert_eq!(stopped["task"]["lastStatus"], "STOPPED", "{stopped}");
        assert_eq!(
            stopped["task"]["stoppedReason"], "test is done",
            "{stopped}"
        );
    }
    let after = berth
        .aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            "stage01",
            "--tasks",
            &task_arns[0],
        ])
        .ok();
    assert_eq!(only(&after, "tasks")["lastStatus"], "STOPPED");
    let running = berth
        .aws(&["ecs", "list-tasks", "--cluster", "stage01"])
        .ok();
    assert_eq!(
        running["taskArns"],
        json!([]),
        "stopped tasks are not listed by default: {running}"
    );
    let stopped = berth
        .aws(&[
            "ecs",
            "list-tasks",
            "--cluster",
            "stage01",
            "--desired-status",
            "STOPPED",
        ])
        .ok();
    assert_eq!(strings(&stopped["taskArns"]).len(), 3, "{stopped}");
    let restored = describe_instance(&berth, "stage01", &instance_arn);
    assert_eq!(int_resource(&restored["remainingResources"], "CPU"), 2048);
    assert_eq!(
        int_resource(&restored["remainingResources"], "MEMORY"),
        3768
    );
    assert_eq!(restored["pendingTasksCount"], 0);
    assert_eq!(restored["runningTasksCount"], 0);

    // The cluster cannot go while an instance is registered.
    let err = berth
        .aws(&["ecs", "delete-cluster", "--cluster", "stage01"])
        .fails_with("ClusterContainsContainerInstancesException");
    assert!(err.contains("DeleteCluster"), "{err}");
    assert_eq!(describe_cluster(&berth, "stage01")["status"], "ACTIVE");
    let dereg = berth
        .aws(&[
            "ecs",
            "deregister-container-instance",
            "--cluster",
            "stage01",
            "--container-instance",
            &instance_id,
            "--force",
        ])
        .ok();
    assert_eq!(dereg["containerInstance"]["status"], "INACTIVE", "{dereg}");
    let listed = berth
        .aws(&["ecs", "list-container-instances", "--cluster", "stage01"])
        .ok();
    assert_eq!(listed["containerInstanceArns"], json!([]));
    let deleted = berth
        .aws(&["ecs", "delete-cluster", "--cluster", "stage01"])
        .ok();
    assert_eq!(deleted["cluster"]["status"], "INACTIVE");
    assert_eq!(deleted["cluster"]["clusterArn"], cluster_arn("stage01"));
    let listed = berth.aws(&["ecs", "list-clusters"]).ok();
    assert_eq!(listed["clusterArns"], json!([]));
    // A deleted cluster takes no new work.
    berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "stage01",
            "--task-definition",
            "web",
        ])
        .fails_with("ClusterNotFoundException");
}

#[test]
fn services_create_describe_update_list_delete() {
    let berth = Berth::start();
    berth
        .aws(&["ecs", "create-cluster", "--cluster-name", "stage01"])
        .ok();
    register_web(&berth, "web");
    register_instance(&berth, "stage01");

    let created = berth
        .aws(&[
            "ecs",
            "create-service",
            "--cluster",
            "stage01",
            "--service-name",
            "web",
            "--task-definition",
            "web",
            "--desired-count",
            "1",
        ])
        .ok();
    let service = &created["service"];
    assert_eq!(service["serviceName"], "web");
    assert_eq!(
        service["serviceArn"],
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/stage01/web")
    );
    assert_eq!(service["clusterArn"], cluster_arn("stage01"));
    assert_eq!(service["status"], "ACTIVE");
    assert_eq!(service["desiredCount"], 1);
    assert_eq!(
        service["taskDefinition"],
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/web:1")
    );
    assert!(
        !service["deployments"]
            .as_array()
            .expect("deployments")
            .is_empty(),
        "{created}"
    );
    // The same name again is refused while it is active.
    berth
        .aws(&[
            "ecs",
            "create-service",
            "--cluster",
            "stage01",
            "--service-name",
            "web",
            "--task-definition",
            "web:1",
            "--desired-count",
            "2",
        ])
        .fails_with("InvalidParameterException");

    let described = berth
        .aws(&[
            "ecs",
            "describe-services",
            "--cluster",
            "stage01",
            "--services",
            "web",
        ])
        .ok();
    assert_eq!(described["failures"], json!([]), "{described}");
    let one = only(&described, "services");
    assert_eq!(one["serviceName"], "web");
    assert_eq!(one["desiredCount"], 1);
    let missing = berth
        .aws(&[
            "ecs",
            "describe-services",
            "--cluster",
            "stage01",
            "--services",
            "nope",
        ])
        .ok();
    assert_eq!(only(&missing, "failures")["reason"], "MISSING");

    let updated = berth
        .aws(&[
            "ecs",
            "update-service",
            "--cluster",
            "stage01",
            "--service",
            "web",
            "--desired-count",
            "2",
        ])
        .ok();
    assert_eq!(updated["service"]["desiredCount"], 2, "{updated}");
    let described = berth
        .aws(&[
            "ecs",
            "describe-services",
            "--cluster",
            "stage01",
            "--services",
            "web",
        ])
        .ok();
    assert_eq!(only(&described, "services")["desiredCount"], 2);

    let listed = berth
        .aws(&["ecs", "list-services", "--cluster", "stage01"])
        .ok();
    assert_eq!(
        strings(&listed["serviceArns"]),
        vec![format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:service/stage01/web"
        )]
    );
    let cluster = describe_cluster(&berth, "stage01");
    assert_eq!(cluster["activeServicesCount"], 1);

    // The cluster cannot go while it has a service.
    berth
        .aws(&["ecs", "delete-cluster", "--cluster", "stage01"])
        .fails_with("ClusterContains");

    let deleted = berth
        .aws(&[
            "ecs",
            "delete-service",
            "--cluster",
            "stage01",
            "--service",
            "web",
            "--force",
        ])
        .ok();
    let status = deleted["service"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(status == "DRAINING" || status == "INACTIVE", "{deleted}");
    assert_eq!(deleted["service"]["desiredCount"], 0, "{deleted}");
    berth
        .aws(&[
            "ecs",
            "update-service",
            "--cluster",
            "stage01",
            "--service",
            "web",
            "--desired-count",
            "1",
        ])
        .fails_with("ServiceNotActiveException");
}

#[test]
fn errors_come_back_as_the_aws_cli_expects() {
    let berth = Berth::start();
    let err = berth
        .aws(&[
            "ecs",
            "describe-services",
            "--cluster",
            "missing",
            "--services",
            "web",
        ])
        .fails_with("ClusterNotFoundException");
    assert!(err.contains("DescribeServices"), "{err}");
    berth
        .aws(&["ecs", "list-container-instances", "--cluster", "missing"])
        .fails_with("ClusterNotFoundException");
    berth
        .aws(&["ecs", "create-cluster", "--cluster-name", "bad name!"])
        .fails_with("InvalidParameterException");

    let twins = json!({"family": "twins", "containerDefinitions": [
        {"name": "app", "image": "httpd:2.4", "memory": 128, "essential": true},
        {"name": "app", "image": "busybox", "memory": 64, "essential": false}
    ]})
    .to_string();
    let file = berth.file("twins.json", &twins);
    berth
        .aws(&["ecs", "register-task-definition", "--cli-input-json", &file])
        .fails_with("ClientException");

    let inessential = json!({"family": "inessential", "containerDefinitions": [
        {"name": "a", "image": "httpd:2.4", "memory": 128, "essential": false},
        {"name": "b", "image": "busybox", "memory": 64, "essential": false}
    ]})
    .to_string();
    let file = berth.file("inessential.json", &inessential);
    berth
        .aws(&["ecs", "register-task-definition", "--cli-input-json", &file])
        .fails_with("ClientException");
    // Neither was registered.
    let families = berth.aws(&["ecs", "list-task-definition-families"]).ok();
    assert_eq!(families["families"], json!([]), "{families}");

    berth
        .aws(&["ecs", "create-cluster", "--cluster-name", "stage01"])
        .ok();
    register_instance(&berth, "stage01");
    berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "stage01",
            "--task-definition",
            "nosuchthing:1",
        ])
        .fails_with("ClientException");
    berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "stage01",
            "--task-definition",
            "nosuchthing",
        ])
        .fails_with("ClientException");
    berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "missing",
            "--task-definition",
            "nosuchthing",
        ])
        .fails_with("ClusterNotFoundException");
}
