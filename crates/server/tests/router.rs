//! In-process tests of the HTTP front door: the real router on a real SQLite store in a temp
//! directory, called with `oneshot` (no sockets). Auth is off here; signatures are covered by
//! the sigv4 crate and the black-box tests.

mod support;

use axum::http::StatusCode;
use berth_server::App;
use serde_json::{Value, json};
use support::{At, Harness, harness};

fn instance_resources(cpu: i64, memory: i64) -> Value {
    json!([{"name":"CPU","type":"INTEGER","integerValue":cpu},{"name":"MEMORY","type":"INTEGER","integerValue":memory},{"name":"PORTS","type":"STRINGSET","stringSetValue":["22"]}])
}

#[tokio::test]
async fn a_cluster_lives_and_dies_by_the_ecs_rules() {
    let h = harness().await;
    let created = h
        .ok(
            "CreateCluster",
            json!({"clusterName": "stage01", "tags": [{"key": "team", "value": "a"}]}),
        )
        .await;
    assert_eq!(created["cluster"]["status"], "ACTIVE");
    assert_eq!(
        created["cluster"]["clusterArn"],
        "arn:aws:ecs:us-east-1:000000000000:cluster/stage01"
    );

    let again = h
        .ok("CreateCluster", json!({"clusterName": "stage01"}))
        .await;
    assert_eq!(
        again["cluster"]["clusterArn"],
        created["cluster"]["clusterArn"]
    );

    let described = h
        .ok(
            "DescribeClusters",
            json!({"clusters": ["stage01", "nope"], "include": ["TAGS"]}),
        )
        .await;
    assert_eq!(described["clusters"][0]["tags"][0]["key"], "team");
    assert_eq!(described["failures"][0]["reason"], "MISSING");

    let instance = h
        .ok(
            "RegisterContainerInstance",
            json!({"cluster": "stage01", "totalResources": instance_resources(1024, 1000)}),
        )
        .await;
    let arn = instance["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        arn.starts_with("arn:aws:ecs:us-east-1:000000000000:container-instance/stage01/"),
        "{arn}"
    );

    let (status, refused) = h.call("DeleteCluster", json!({"cluster": "stage01"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused["__type"],
        "ClusterContainsContainerInstancesException"
    );

    h.ok(
        "DeregisterContainerInstance",
        json!({"cluster": "stage01", "containerInstance": arn}),
    )
    .await;
    let deleted = h.ok("DeleteCluster", json!({"cluster": "stage01"})).await;
    assert_eq!(deleted["cluster"]["status"], "INACTIVE");
    let listed = h.ok("ListClusters", json!({})).await;
    assert_eq!(listed["clusterArns"], json!([]));
}

#[tokio::test]
async fn placement_never_over_commits_an_instance() {
    let h = harness().await;
    h.ok("CreateCluster", json!({"clusterName": "c"})).await;
    h.ok(
        "RegisterContainerInstance",
        json!({"cluster": "c", "totalResources": instance_resources(1024, 1000)}),
    )
    .await;
    h.ok("RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "httpd", "memory": 300, "cpu": 100}]})).await;

    let run = h
        .ok(
            "RunTask",
            json!({"cluster": "c", "taskDefinition": "web", "count": 4}),
        )
        .await;
    assert_eq!(run["tasks"].as_array().unwrap().len(), 3, "{run}");
    assert_eq!(run["failures"][0]["reason"], "RESOURCE:MEMORY");
    assert_eq!(run["tasks"][0]["lastStatus"], "PENDING");
    assert_eq!(run["tasks"][0]["desiredStatus"], "RUNNING");

    let described = h.ok("DescribeClusters", json!({"clusters": ["c"]})).await;
    assert_eq!(described["clusters"][0]["pendingTasksCount"], 3);

    let task = run["tasks"][0]["taskArn"].as_str().unwrap();
    let stopped = h
        .ok(
            "StopTask",
            json!({"cluster": "c", "task": task, "reason": "done"}),
        )
        .await;
    assert_eq!(stopped["task"]["lastStatus"], "STOPPED");
    assert_eq!(stopped["task"]["stopCode"], "UserInitiated");

    let again = h
        .ok("RunTask", json!({"cluster": "c", "taskDefinition": "web"}))
        .await;
    assert_eq!(
        again["tasks"].as_array().unwrap().len(),
        1,
        "the stopped task's memory is free again: {again}"
    );
}

#[tokio::test]
async fn client_tokens_make_run_task_idempotent() {
    let h = harness().await;
    h.ok(
        "RegisterContainerInstance",
        json!({"totalResources": instance_resources(4096, 4096)}),
    )
    .await;
    h.ok("RegisterTaskDefinition", json!({"family": "job", "containerDefinitions": [{"name": "job", "image": "busybox", "memory": 10}]})).await;
    let first = h
        .ok(
            "RunTask",
            json!({"taskDefinition": "job", "count": 2, "clientToken": "abc"}),
        )
        .await;
    let retry = h
        .ok(
            "RunTask",
            json!({"taskDefinition": "job", "count": 2, "clientToken": "abc"}),
        )
        .await;
    assert_eq!(first["tasks"][0]["taskArn"], retry["tasks"][0]["taskArn"]);
    assert_eq!(first["tasks"][1]["taskArn"], retry["tasks"][1]["taskArn"]);
    let (status, conflict) = h
        .call(
            "RunTask",
            json!({"taskDefinition": "job", "count": 1, "clientToken": "abc"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(conflict["__type"], "ConflictException");
    let listed = h.ok("ListTasks", json!({})).await;
    assert_eq!(listed["taskArns"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_requests_get_the_ecs_error_shape() {
    let h = harness().await;
    let cases: Vec<(Option<&str>, Vec<u8>, &str, &str)> = vec![
        (Some("ListClusters"), b"{".to_vec(), "SerializationException", "not valid JSON"),
        (Some("RunTask"), br#"{"taskDefinition":"a","count":"x"}"#.to_vec(), "InvalidParameterException", "count"),
        (Some("RunTask"), br#"{}"#.to_vec(), "InvalidParameterException", "taskDefinition"),
        (Some("Frobnicate"), b"{}".to_vec(), "UnknownOperationException", "Frobnicate"),
        (None, b"{}".to_vec(), "UnknownOperationException", "X-Amz-Target"),
        (Some("DescribeServices"), br#"{"cluster":"missing","services":["a"]}"#.to_vec(), "ClusterNotFoundException", "Cluster not found"),
        (Some("DescribeTaskDefinition"), br#"{"taskDefinition":"nope:3"}"#.to_vec(), "ClientException", "nope:3"),
        (Some("ListClusters"), br#"{"maxResults":0}"#.to_vec(), "InvalidParameterException", "maxResults"),
        (Some("RegisterTaskDefinition"), br#"{"family":"x","containerDefinitions":[{"name":"a","image":"i","memory":10,"essential":false}]}"#.to_vec(), "ClientException", "essential"),
    ];
    for (op, body, code, mentions) in cases {
        let (status, error) = h.raw(op, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{op:?}: {error}");
        assert_eq!(error["__type"], code, "{op:?}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(mentions),
            "{op:?}: message {message:?} should mention {mentions:?}"
        );
    }
    let (status, error) = h
        .raw(Some("ListClusters"), vec![b' '; 5 * 1024 * 1024])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
}

#[tokio::test]
async fn task_definitions_count_revisions_and_echo_what_was_sent() {
    let h = harness().await;
    let body = json!({
        "family": "web",
        "containerDefinitions": [
            {"name": "web", "image": "httpd", "cpu": 256, "memory": 128, "essential": true,
             "portMappings": [{"containerPort": 80, "hostPort": 0}],
             "environment": [{"name": "MODE", "value": "prod"}],
             "dockerLabels": {"team": "a"},
             "dependsOn": [{"containerName": "init", "condition": "COMPLETE"}]},
            {"name": "init", "image": "busybox", "memory": 16, "essential": false}
        ],
        "tags": [{"key": "k", "value": "v"}]
    });
    let first = h.ok("RegisterTaskDefinition", body.clone()).await;
    assert_eq!(first["taskDefinition"]["revision"], 1);
    let td = &first["taskDefinition"];
    assert_eq!(
        td["containerDefinitions"][0]["portMappings"][0],
        json!({"containerPort": 80, "hostPort": 0, "protocol": "tcp"})
    );
    assert_eq!(
        td["containerDefinitions"][0]["environment"][0]["value"],
        "prod"
    );
    assert_eq!(td["containerDefinitions"][0]["dockerLabels"]["team"], "a");
    assert_eq!(
        td["containerDefinitions"][0]["dependsOn"][0]["condition"],
        "COMPLETE"
    );
    let second = h.ok("RegisterTaskDefinition", body).await;
    assert_eq!(second["taskDefinition"]["revision"], 2);

    h.ok(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:2"}),
    )
    .await;
    let latest = h
        .ok(
            "DescribeTaskDefinition",
            json!({"taskDefinition": "web", "include": ["TAGS"]}),
        )
        .await;
    assert_eq!(
        latest["taskDefinition"]["revision"], 1,
        "a bare family names its latest ACTIVE revision"
    );
    assert_eq!(latest["tags"][0]["key"], "k");
    let inactive = h
        .ok("ListTaskDefinitions", json!({"status": "INACTIVE"}))
        .await;
    assert_eq!(
        inactive["taskDefinitionArns"],
        json!(["arn:aws:ecs:us-east-1:000000000000:task-definition/web:2"])
    );
    let desc = h
        .ok(
            "ListTaskDefinitions",
            json!({"sort": "DESC", "maxResults": 1}),
        )
        .await;
    assert_eq!(
        desc["taskDefinitionArns"][0],
        "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1"
    );
}

/// Registers an instance of `memory` MiB in cluster `c` with the given attributes (an empty
/// value: a capability, without one); its ARN.
async fn instance_with(h: &Harness, memory: i64, attributes: &[(&str, &str)]) -> String {
    let attributes: Vec<Value> = attributes
        .iter()
        .map(|(n, v)| match *v {
            "" => json!({"name": n}),
            v => json!({"name": n, "value": v}),
        })
        .collect();
    let out = h
        .ok(
            "RegisterContainerInstance",
            json!({"cluster": "c", "totalResources": instance_resources(4096, memory), "attributes": attributes}),
        )
        .await;
    out["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs `body` (cluster `c`, task definition `web` unless given) and returns the response.
async fn run(h: &Harness, body: Value) -> Value {
    let mut body = body;
    body["cluster"] = json!("c");
    if body.get("taskDefinition").is_none() {
        body["taskDefinition"] = json!("web");
    }
    h.ok("RunTask", body).await
}

fn instances_of(run: &Value) -> Vec<String> {
    run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["containerInstanceArn"].as_str().unwrap().to_string())
        .collect()
}

fn reasons(run: &Value) -> Vec<(String, String)> {
    run["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["arn"].as_str().unwrap().to_string(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn run_task_follows_placement_strategies_and_constraints() {
    let h = harness().await;
    h.ok("CreateCluster", json!({"clusterName": "c"})).await;
    let small = instance_with(
        &h,
        1000,
        &[
            ("ecs.availability-zone", "us-east-1a"),
            ("ecs.instance-type", "t2.micro"),
        ],
    )
    .await;
    let medium = instance_with(
        &h,
        2000,
        &[
            ("ecs.availability-zone", "us-east-1a"),
            ("ecs.instance-type", "m5.large"),
        ],
    )
    .await;
    let large = instance_with(
        &h,
        3000,
        &[
            ("ecs.availability-zone", "us-east-1b"),
            ("ecs.instance-type", "t2.large"),
        ],
    )
    .await;
    h.ok("RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "httpd", "memory": 100}]})).await;

    // binpack on memory: the fullest instance that fits takes every task.
    let packed = run(
        &h,
        json!({"count": 4, "placementStrategy": [{"type": "binpack", "field": "memory"}]}),
    )
    .await;
    assert_eq!(instances_of(&packed), vec![small.clone(); 4], "{packed}");

    // spread over zones counts the group's tasks per zone.
    let spread = run(
        &h,
        json!({"count": 4, "group": "batch", "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}]}),
    )
    .await;
    let mut zones: Vec<String> = spread["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["availabilityZone"].as_str().unwrap().to_string())
        .collect();
    zones.sort();
    assert_eq!(
        zones,
        vec!["us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b"],
        "{spread}"
    );

    // memberOf keeps tasks on matching instances.
    let t2 = run(
        &h,
        json!({"count": 3, "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t2.*"}]}),
    )
    .await;
    assert!(
        instances_of(&t2).iter().all(|i| *i == small || *i == large),
        "{t2}"
    );

    // distinctInstance: one task of the group per instance; the fourth has nowhere to go.
    let distinct = run(
        &h,
        json!({"count": 4, "group": "singleton", "placementConstraints": [{"type": "distinctInstance"}]}),
    )
    .await;
    let mut placed = instances_of(&distinct);
    placed.sort();
    let mut all = vec![small.clone(), medium.clone(), large.clone()];
    all.sort();
    assert_eq!(placed, all, "{distinct}");
    let d = "DistinctInstance placement constraint unsatisfied.".to_string();
    let mut failed = reasons(&distinct);
    failed.sort();
    assert_eq!(
        failed,
        all.iter()
            .map(|i| (i.clone(), d.clone()))
            .collect::<Vec<_>>()
    );

    // An expression no instance satisfies: each instance says so, no task starts.
    let none = run(
        &h,
        json!({"placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type == c5.xlarge"}]}),
    )
    .await;
    assert_eq!(none["tasks"], json!([]), "{none}");
    assert_eq!(reasons(&none).len(), 3, "{none}");
    assert!(
        reasons(&none)
            .iter()
            .all(|(_, r)| r == "MemberOf placement constraint unsatisfied."),
        "{none}"
    );
    assert!(none["failures"][0]["detail"].as_str().is_some(), "{none}");

    // task:group affinity with a group that runs nowhere places nothing.
    let lonely = run(
        &h,
        json!({"placementConstraints": [{"type": "memberOf", "expression": "task:group == service:nothing"}]}),
    )
    .await;
    assert_eq!(lonely["tasks"], json!([]), "{lonely}");

    // The task definition's constraints apply too.
    h.ok("RegisterTaskDefinition", json!({"family": "zoned", "containerDefinitions": [{"name": "z", "image": "httpd", "memory": 10}], "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone == us-east-1b"}]})).await;
    let zoned = run(&h, json!({"taskDefinition": "zoned", "count": 3})).await;
    assert_eq!(instances_of(&zoned), vec![large.clone(); 3], "{zoned}");

    // binpack fills the small instance to the brim before it uses the next fullest one.
    let more = run(
        &h,
        json!({"count": 7, "placementStrategy": [{"type": "binpack", "field": "memory"}]}),
    )
    .await;
    assert_eq!(instances_of(&more).len(), 7, "{more}");
    assert!(instances_of(&more).contains(&medium), "{more}");
    let described = h
        .ok(
            "DescribeContainerInstances",
            json!({"cluster": "c", "containerInstances": [small]}),
        )
        .await;
    let memory_left = described["containerInstances"][0]["remainingResources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "MEMORY")
        .unwrap()["integerValue"]
        .as_i64()
        .unwrap();
    assert!(memory_left < 100, "{described}");
}

#[tokio::test]
async fn tasks_go_only_where_their_required_attributes_are() {
    let h = harness().await;
    h.ok("CreateCluster", json!({"clusterName": "c"})).await;
    let plain = instance_with(&h, 1000, &[]).await;
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "root", "containerDefinitions": [
            {"name": "app", "image": "x", "memory": 64, "privileged": true,
             "healthCheck": {"command": ["CMD", "true"]}, "dependsOn": []}]}),
    )
    .await;
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "plain", "containerDefinitions": [
            {"name": "app", "image": "x", "memory": 64, "memoryReservation": 32,
             "healthCheck": {"command": ["CMD", "true"]}, "stopTimeout": 5,
             "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}}}]}),
    )
    .await;
    // Everything a Berth agent can run places on an instance registered without attributes.
    let out = run(&h, json!({"taskDefinition": "plain"})).await;
    assert_eq!(instances_of(&out), std::slice::from_ref(&plain), "{out}");
    // Secrets Manager secrets, Systems Manager parameters (as variables and as log driver
    // secret options) and registry credentials too.
    let secret = "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf";
    for (family, value_from) in [("asm", secret), ("ssm", "db-password")] {
        h.ok(
            "RegisterTaskDefinition",
            json!({"family": family, "executionRoleArn": "arn:aws:iam::000000000000:role/exec",
                   "containerDefinitions": [
                {"name": "app", "image": "registry.example.com/app:1", "memory": 64,
                 "repositoryCredentials": {"credentialsParameter": secret},
                 "secrets": [{"name": "DB_PASSWORD", "valueFrom": value_from}],
                 "logConfiguration": {"logDriver": "json-file",
                     "secretOptions": [{"name": "tag", "valueFrom": value_from}]}}]}),
        )
        .await;
        let out = run(&h, json!({"taskDefinition": family})).await;
        assert_eq!(instances_of(&out), std::slice::from_ref(&plain), "{out}");
    }
    // A privileged container needs an instance whose agent allows it.
    let out = run(&h, json!({"taskDefinition": "root"})).await;
    assert_eq!(
        reasons(&out),
        [(plain.clone(), "ATTRIBUTE".to_string())],
        "{out}"
    );
    assert!(
        out["failures"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("com.amazonaws.ecs.capability.privileged-container"),
        "{out}"
    );
    let allowing = instance_with(
        &h,
        1000,
        &[("com.amazonaws.ecs.capability.privileged-container", "")],
    )
    .await;
    let out = run(&h, json!({"taskDefinition": "root"})).await;
    assert_eq!(instances_of(&out), [allowing], "{out}");
}

#[tokio::test]
async fn run_task_refuses_bad_placement_and_names_the_member() {
    let h = harness().await;
    h.ok("CreateCluster", json!({"clusterName": "c"})).await;
    instance_with(&h, 1000, &[]).await;
    h.ok("RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "httpd", "memory": 100}]})).await;
    h.ok("RegisterTaskDefinition", json!({"family": "broken", "containerDefinitions": [{"name": "b", "image": "httpd", "memory": 100}], "placementConstraints": [{"type": "memberOf", "expression": "attribute:x =="}]})).await;
    let eleven = vec![json!({"type": "distinctInstance"}); 10];
    let cases = [
        (
            json!({"taskDefinition": "web", "placementStrategy": [{"type": "binpack", "field": "disk"}]}),
            "placementStrategy[0].field",
        ),
        (
            json!({"taskDefinition": "web", "placementStrategy": [{"type": "spread"}]}),
            "placementStrategy[0].field",
        ),
        (
            json!({"taskDefinition": "web", "placementStrategy": [{"type": "sideways"}]}),
            "placementStrategy[0].type",
        ),
        (
            json!({"taskDefinition": "web", "placementStrategy": vec![json!({"type": "random"}); 6]}),
            "placementStrategy",
        ),
        (
            json!({"taskDefinition": "web", "placementConstraints": [{"type": "memberOf", "expression": "attribute:x foo"}]}),
            "placementConstraints[0].expression",
        ),
        (
            json!({"taskDefinition": "web", "placementConstraints": [{"type": "distinctInstance", "expression": "a exists"}]}),
            "placementConstraints[0].expression",
        ),
        (
            json!({"taskDefinition": "broken"}),
            "taskDefinition.placementConstraints[0].expression",
        ),
        (
            json!({"taskDefinition": "zoned10", "placementConstraints": eleven}),
            "placementConstraints",
        ),
    ];
    h.ok("RegisterTaskDefinition", json!({"family": "zoned10", "containerDefinitions": [{"name": "z", "image": "httpd", "memory": 10}], "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}]})).await;
    for (mut body, member) in cases {
        body["cluster"] = json!("c");
        let (status, error) = h.call("RunTask", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(
            error["__type"], "InvalidParameterException",
            "{body}: {error}"
        );
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(member),
            "{body}: message {message:?} should name {member:?}"
        );
    }
    let listed = h.ok("ListTasks", json!({"cluster": "c"})).await;
    assert_eq!(listed["taskArns"], json!([]), "nothing ran: {listed}");
}

#[tokio::test]
async fn start_task_places_one_task_on_each_named_instance() {
    let h = harness().await;
    h.ok("CreateCluster", json!({"clusterName": "c"})).await;
    let a = instance_with(&h, 1000, &[("ecs.availability-zone", "us-east-1a")]).await;
    let b = instance_with(&h, 1000, &[("ecs.availability-zone", "us-east-1b")]).await;
    h.ok("RegisterTaskDefinition", json!({"family": "half", "containerDefinitions": [{"name": "h", "image": "httpd", "memory": 600}]})).await;
    let started = h
        .ok(
            "StartTask",
            json!({"cluster": "c", "taskDefinition": "half", "containerInstances": [a, a, b]}),
        )
        .await;
    assert_eq!(
        instances_of(&started),
        vec![a.clone(), b.clone()],
        "{started}"
    );
    assert_eq!(
        reasons(&started),
        vec![(a.clone(), "RESOURCE:MEMORY".to_string())],
        "the second task on {a} does not fit next to the first: {started}"
    );

    h.ok("RegisterTaskDefinition", json!({"family": "east1a", "containerDefinitions": [{"name": "e", "image": "httpd", "memory": 10}], "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone == us-east-1a"}]})).await;
    let constrained = h
        .ok(
            "StartTask",
            json!({"cluster": "c", "taskDefinition": "east1a", "containerInstances": [a, b]}),
        )
        .await;
    assert_eq!(instances_of(&constrained), vec![a.clone()], "{constrained}");
    assert_eq!(
        reasons(&constrained),
        vec![(b, "MemberOf placement constraint unsatisfied.".to_string())]
    );
}

#[tokio::test]
async fn stopped_tasks_are_forgotten_an_hour_after_they_stop() {
    let h = harness().await;
    h.ok(
        "RegisterContainerInstance",
        json!({"totalResources": instance_resources(4096, 4096)}),
    )
    .await;
    h.ok("RegisterTaskDefinition", json!({"family": "job", "containerDefinitions": [{"name": "job", "image": "busybox", "memory": 10}]})).await;
    let run = h
        .ok("RunTask", json!({"taskDefinition": "job", "count": 2}))
        .await;
    let arns: Vec<String> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_string())
        .collect();
    let stopped = h.ok("StopTask", json!({"task": arns[0]})).await;
    assert_eq!(stopped["task"]["lastStatus"], "STOPPED", "{stopped}");
    let stopped_at = h.app.clock.now();

    let later = |minutes: i64| App {
        clock: std::sync::Arc::new(At(stopped_at.plus_millis(minutes * 60_000))),
        ..h.app.clone()
    };
    assert_eq!(berth_server::janitor::sweep(&later(59)).await.unwrap(), 0);
    assert_eq!(berth_server::janitor::sweep(&later(61)).await.unwrap(), 1);

    let described = h.ok("DescribeTasks", json!({"tasks": arns})).await;
    assert_eq!(
        described["tasks"].as_array().unwrap().len(),
        1,
        "{described}"
    );
    assert_eq!(described["tasks"][0]["taskArn"], arns[1].as_str());
    assert_eq!(described["failures"][0]["arn"], arns[0].as_str());
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    // The pending task was never stopped: nothing more to forget, however late.
    assert_eq!(berth_server::janitor::sweep(&later(600)).await.unwrap(), 0);
}

/// Issue 4's consistency check: 32 RunTask callers at once on a cluster with room for 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_run_task_callers_never_over_commit() {
    let h = harness().await;
    for _ in 0..2 {
        h.ok(
            "RegisterContainerInstance",
            json!({"totalResources": instance_resources(4096, 500)}),
        )
        .await;
    }
    h.ok("RegisterTaskDefinition", json!({"family": "job", "containerDefinitions": [{"name": "job", "image": "busybox", "memory": 100}]})).await;
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let app = h.app.clone();
            tokio::spawn(async move {
                support::Harness::with_app(app)
                    .ok("RunTask", json!({"taskDefinition": "job"}))
                    .await
            })
        })
        .collect();
    let (mut placed, mut refused) = (0, 0);
    for call in calls {
        let out = call.await.unwrap();
        placed += out["tasks"].as_array().unwrap().len();
        for f in out["failures"].as_array().unwrap() {
            assert_eq!(f["reason"], "RESOURCE:MEMORY", "{out}");
        }
        if out["tasks"].as_array().unwrap().is_empty() {
            refused += 1;
        }
    }
    assert_eq!((placed, refused), (10, 22));
    let instances = h.ok("ListContainerInstances", json!({})).await;
    let described = h
        .ok(
            "DescribeContainerInstances",
            json!({"containerInstances": instances["containerInstanceArns"]}),
        )
        .await;
    for i in described["containerInstances"].as_array().unwrap() {
        let memory = i["remainingResources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "MEMORY")
            .unwrap()["integerValue"]
            .as_i64()
            .unwrap();
        assert_eq!(memory, 0, "{i}");
        assert_eq!(i["pendingTasksCount"], 5, "{i}");
    }
}
