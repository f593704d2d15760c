//! State survives the server: a clean SIGTERM stop, a SIGKILL, and a start without the root
//! key flags all find what was there.

mod support;

use serde_json::json;
use support::{ACCESS_KEY, Berth, Signing, only, strings};

const TOTAL_RESOURCES: &str = r#"[{"name":"CPU","type":"INTEGER","integerValue":2048},{"name":"MEMORY","type":"INTEGER","integerValue":3768}]"#;

#[test]
fn everything_survives_a_clean_restart() {
    let mut berth = Berth::start();
    berth
        .aws(&[
            "ecs",
            "create-cluster",
            "--cluster-name",
            "keep",
            "--tags",
            "key=env,value=test",
        ])
        .ok();
    let td = json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "httpd:2.4", "cpu": 256, "memory": 128, "essential": true,
        "portMappings": [{"containerPort": 80, "hostPort": 0}], "environment": [{"name": "A", "value": "1"}]}]})
    .to_string();
    let file = berth.file("web.json", &td);
    let registered = berth
        .aws(&["ecs", "register-task-definition", "--cli-input-json", &file])
        .ok();
    let instance = berth
        .aws(&[
            "ecs",
            "register-container-instance",
            "--cluster",
            "keep",
            "--total-resources",
            TOTAL_RESOURCES,
        ])
        .ok();
    let instance_arn = instance["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string();
    let run = berth
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "keep",
            "--task-definition",
            "web",
            "--started-by",
            "restart-test",
        ])
        .ok();
    let task = only(&run, "tasks").clone();
    let task_arn = task["taskArn"].as_str().unwrap().to_string();

    let status = berth.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "berth must exit 0 on SIGTERM; stderr:\n{}",
        berth.stderr()
    );
    assert!(
        berth
            .stdout_lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Berth stopped")),
        "no 'Berth stopped' line: {:?}",
        berth.stdout_lines.lock().unwrap()
    );
    berth.start_again();

    let cluster = berth
        .aws(&[
            "ecs",
            "describe-clusters",
            "--clusters",
            "keep",
            "--include",
            "TAGS",
        ])
        .ok();
    let cluster = only(&cluster, "clusters");
    assert_eq!(cluster["status"], "ACTIVE");
    assert_eq!(cluster["registeredContainerInstancesCount"], 1);
    assert_eq!(cluster["pendingTasksCount"], 1);
    assert_eq!(cluster["tags"], json!([{"key": "env", "value": "test"}]));

    let described = berth
        .aws(&[
            "ecs",
            "describe-task-definition",
            "--task-definition",
            "web:1",
        ])
        .ok();
    assert_eq!(
        described["taskDefinition"], registered["taskDefinition"],
        "the task definition changed across a restart"
    );

    let instances = berth
        .aws(&[
            "ecs",
            "describe-container-instances",
            "--cluster",
            "keep",
            "--container-instances",
            &instance_arn,
        ])
        .ok();
    let i = only(&instances, "containerInstances");
    assert_eq!(i["status"], "ACTIVE");
    assert_eq!(i["pendingTasksCount"], 1);
    let memory = i["remainingResources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "MEMORY")
        .unwrap()["integerValue"]
        .clone();
    assert_eq!(memory, 3768 - 128);

    let tasks = berth
        .aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            "keep",
            "--tasks",
            &task_arn,
        ])
        .ok();
    let t = only(&tasks, "tasks");
    assert_eq!(t["lastStatus"], "PENDING");
    assert_eq!(t["startedBy"], "restart-test");
    assert_eq!(t["containerInstanceArn"], instance_arn.as_str());
    let listed = berth.aws(&["ecs", "list-tasks", "--cluster", "keep"]).ok();
    assert_eq!(strings(&listed["taskArns"]), vec![task_arn.clone()]);

    // The ids go on: the next revision is 2, and work continues.
    let again = berth
        .aws(&["ecs", "register-task-definition", "--cli-input-json", &file])
        .ok();
    assert_eq!(again["taskDefinition"]["revision"], 2);
    let stopped = berth
        .aws(&["ecs", "stop-task", "--cluster", "keep", "--task", &task_arn])
        .ok();
    assert_eq!(stopped["task"]["lastStatus"], "STOPPED");

    // A second clean restart, this time without the key flags: the stored root key still works.
    let status = berth.stop();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", berth.stderr());
    berth.give_root_key = false;
    berth.start_again();
    assert!(
        berth
            .stdout_lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(ACCESS_KEY)),
        "the stored root key is not the one printed: {:?}",
        berth.stdout_lines.lock().unwrap()
    );
    assert_eq!(
        berth.post("ListClusters", b"{}", Signing::root()).status,
        200,
        "root key refused after restart"
    );
    let clusters = berth.aws(&["ecs", "list-clusters"]).ok();
    assert_eq!(
        strings(&clusters["clusterArns"]),
        vec!["arn:aws:ecs:us-east-1:000000000000:cluster/keep".to_string()]
    );
}

#[test]
fn a_cluster_survives_sigkill_right_after_it_was_created() {
    let mut berth = Berth::start();
    let created = berth
        .aws(&["ecs", "create-cluster", "--cluster-name", "durable"])
        .ok();
    assert_eq!(created["cluster"]["status"], "ACTIVE");
    berth.kill9();
    berth.start_again();
    let described = berth
        .aws(&["ecs", "describe-clusters", "--clusters", "durable"])
        .ok();
    assert_eq!(
        described["failures"],
        json!([]),
        "the cluster was lost on SIGKILL: {described}"
    );
    assert_eq!(only(&described, "clusters")["status"], "ACTIVE");
    // Still writable after the unclean stop.
    berth
        .aws(&["ecs", "create-cluster", "--cluster-name", "after"])
        .ok();
    let listed = berth.aws(&["ecs", "list-clusters"]).ok();
    assert_eq!(strings(&listed["clusterArns"]).len(), 2, "{listed}");
}

#[test]
fn a_second_server_on_the_same_port_fails_with_a_message() {
    let berth = Berth::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{}", berth.port),
            "--data-dir",
        ])
        .arg(berth.work_dir().join("other"))
        .output()
        .expect("run berth");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not listen"), "{stderr}");
    assert!(berth.answers());
}
