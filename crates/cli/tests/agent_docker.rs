//! The agent end to end: `berth up` with its in-process agent runs real Docker containers for
//! run-task and stop-task, driven by the real AWS CLI. Needs a Docker Engine and Debian's
//! `busybox-static` (`/bin/busybox`); the test image is built offline from them.

mod support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

const IMAGE: &str = "berth-test/busybox:1";
const TEST_LABEL: &str = "com.berth.test-run";

fn docker(args: &[&str]) -> std::process::Output {
    support::images::docker_in(None, args, None)
}

/// Builds `FROM scratch` + the static busybox as `berth-test/busybox:1`, unless it exists.
fn ensure_test_image() {
    if !docker(&["image", "inspect", IMAGE]).status.success() {
        support::images::build_busybox_image(IMAGE, None);
    }
}

/// Removes every container this test run made (found by its label), even when the test fails.
struct Cleanup(String);

impl Cleanup {
    /// A label value no other run shares.
    fn new() -> Cleanup {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Cleanup(format!("{}-{nanos}", std::process::id()))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label={TEST_LABEL}={}", self.0);
        let out = docker(&["ps", "-aq", "--filter", &filter]);
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            docker(&args);
        }
    }
}

/// `berth up` on a free port, its agent registered in cluster `default`.
fn up_with_agent() -> (Berth, Cleanup) {
    ensure_test_image();
    let cleanup = Cleanup::new();
    let berth = Berth::start_up(vec!["--no-profile".into()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = berth.aws(&["ecs", "list-container-instances"]);
        if listed.status == 0 && strings(&listed.json["containerInstanceArns"]).len() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not register within 30 s; stderr:\n{}",
            berth.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (berth, cleanup)
}

fn register(berth: &Berth, cleanup: &Cleanup, family: &str, container: Value) -> String {
    let mut container = container;
    container["dockerLabels"] = serde_json::json!({ TEST_LABEL: cleanup.0 });
    let file = berth.file(
        &format!("{family}.json"),
        &serde_json::json!([container]).to_string(),
    );
    let out = berth
        .aws(&[
            "ecs",
            "register-task-definition",
            "--family",
            family,
            "--container-definitions",
            &file,
        ])
        .ok();
    out["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn run_task(berth: &Berth, definition: &str) -> String {
    let out = berth
        .aws(&["ecs", "run-task", "--task-definition", definition])
        .ok();
    assert_eq!(out["failures"], serde_json::json!([]), "{out}");
    only(&out, "tasks")["taskArn"].as_str().unwrap().to_owned()
}

fn describe(berth: &Berth, task: &str) -> Value {
    let out = berth.aws(&["ecs", "describe-tasks", "--tasks", task]).ok();
    only(&out, "tasks").clone()
}

/// Polls describe-tasks until the task's lastStatus is `status`.
fn wait_for(berth: &Berth, task: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = describe(berth, task);
        if t["lastStatus"] == status {
            return t;
        }
        assert!(
            t["lastStatus"] != "STOPPED",
            "the task stopped while waiting for {status}: {t:#}\nstderr:\n{}",
            berth.stderr()
        );
        assert!(
            Instant::now() < deadline,
            "the task did not reach {status} within 60 s: {t:#}\nstderr:\n{}",
            berth.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The body of `GET /` on 127.0.0.1:`port`, retried while the server inside starts.
fn http_get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(body) if body.starts_with("HTTP/") => return body,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "nothing answers HTTP on 127.0.0.1:{port}: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[test]
fn run_task_serves_http_on_a_dynamic_port_and_stop_task_stops_it() {
    let (berth, cleanup) = up_with_agent();
    let definition = register(
        &berth,
        &cleanup,
        "web",
        serde_json::json!({
            "name": "web", "image": IMAGE, "memory": 64, "essential": true, "stopTimeout": 2,
            "command": ["sh", "-c",
                "mkdir -p /www && echo hello-from-berth > /www/index.html && exec httpd -f -p 8080 -h /www"],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
        }),
    );
    let task = run_task(&berth, &definition);
    let running = wait_for(&berth, &task, "RUNNING");
    assert_eq!(running["desiredStatus"], "RUNNING");
    assert!(running["pullStartedAt"].is_number(), "{running:#}");
    let container = only(&running, "containers");
    assert_eq!(container["lastStatus"], "RUNNING");
    let runtime_id = container["runtimeId"]
        .as_str()
        .expect("runtimeId")
        .to_owned();
    let binding = only(container, "networkBindings");
    assert_eq!(binding["containerPort"], 8080);
    assert_eq!(binding["protocol"], "tcp");
    let host_port = binding["hostPort"].as_u64().expect("hostPort");
    assert!((49153..=65535).contains(&host_port), "{binding}");
    let answer = http_get(u16::try_from(host_port).unwrap());
    assert!(answer.contains("hello-from-berth"), "{answer}");
    // The container Docker runs is the one reported, with Berth's labels.
    let labels = docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"com.berth.task-arn\"}} {{index .Config.Labels \"com.berth.container-name\"}}",
        &runtime_id,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&labels.stdout).trim(),
        format!("{task} web")
    );

    berth.aws(&["ecs", "stop-task", "--task", &task]).ok();
    let stopped = wait_for(&berth, &task, "STOPPED");
    assert_eq!(stopped["stopCode"], "UserInitiated", "{stopped:#}");
    assert_eq!(stopped["desiredStatus"], "STOPPED");
    let container = only(&stopped, "containers");
    assert_eq!(container["lastStatus"], "STOPPED");
    // httpd runs as PID 1 and ignores SIGTERM: SIGKILL after stopTimeout, exit 137.
    assert_eq!(container["exitCode"], 137, "{stopped:#}");
    let state = docker(&["inspect", "-f", "{{.State.Running}}", &runtime_id]);
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "false");
}

#[test]
fn an_essential_exit_stops_the_task_and_a_missing_image_fails_it() {
    let (berth, cleanup) = up_with_agent();
    let exits = register(
        &berth,
        &cleanup,
        "exits",
        serde_json::json!({
            "name": "main", "image": IMAGE, "memory": 32, "essential": true,
            "command": ["sh", "-c", "exit 3"],
        }),
    );
    let missing = register(
        &berth,
        &cleanup,
        "missing",
        serde_json::json!({"name": "main", "image": "berth-test/not-built-anywhere:1", "memory": 32}),
    );
    let exiting = run_task(&berth, &exits);
    let failing = run_task(&berth, &missing);

    let stopped = wait_for(&berth, &exiting, "STOPPED");
    assert_eq!(
        stopped["stopCode"], "EssentialContainerExited",
        "{stopped:#}"
    );
    assert_eq!(
        stopped["stoppedReason"],
        "Essential container in task exited"
    );
    let container = only(&stopped, "containers");
    assert_eq!(container["exitCode"], 3, "{stopped:#}");
    assert!(container["runtimeId"].is_string(), "{stopped:#}");

    let failed = wait_for(&berth, &failing, "STOPPED");
    assert_eq!(failed["stopCode"], "TaskFailedToStart", "{failed:#}");
    let reason = failed["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("CannotPullContainerError")
            && reason.contains("berth-test/not-built-anywhere:1"),
        "{failed:#}"
    );
}

/// Registers a task definition of several containers and volumes, each container labelled for
/// the cleanup.
fn register_task(
    berth: &Berth,
    cleanup: &Cleanup,
    family: &str,
    containers: Value,
    volumes: Value,
) -> String {
    let mut containers = containers;
    for c in containers.as_array_mut().expect("an array of containers") {
        c["dockerLabels"] = serde_json::json!({ TEST_LABEL: cleanup.0 });
    }
    let input = serde_json::json!({
        "family": family, "containerDefinitions": containers, "volumes": volumes,
    });
    let file = berth.file(&format!("{family}.json"), &input.to_string());
    let out = berth
        .aws(&["ecs", "register-task-definition", "--cli-input-json", &file])
        .ok();
    out["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls describe-tasks until `done` holds for the task.
fn wait_until(berth: &Berth, task: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = describe(berth, task);
        if done(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "not {what} within 60 s: {t:#}\nstderr:\n{}",
            berth.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name} in {task:#}"))
}

/// A time of a container's state (`StartedAt`, `FinishedAt`), as a string that sorts in time
/// order (Docker writes UTC RFC 3339 with up to nine digits of fraction, trailing zeros cut).
fn docker_time(id: &str, field: &str) -> String {
    let out = docker(&["inspect", "-f", &format!("{{{{.State.{field}}}}}"), id]);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let time = text
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("{field} of {id} is not in UTC: '{text}'"));
    let (seconds, fraction) = time.split_once('.').unwrap_or((time, ""));
    format!("{seconds}.{fraction:0<9}")
}

#[test]
fn health_checks_dependencies_and_mounts_on_docker() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (berth, cleanup) = up_with_agent();
    let host_dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(host_dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    std::fs::write(host_dir.path().join("hello.txt"), "from-the-host").expect("hello.txt");
    let host = host_dir.path().display().to_string();
    let check = |cmd: &str| serde_json::json!({"command": ["CMD-SHELL", cmd], "interval": 5, "timeout": 2, "retries": 1});
    let definition = register_task(
        &berth,
        &cleanup,
        "chain",
        serde_json::json!([
            // Runs first, as another user, writing into the host directory.
            {"name": "init", "image": IMAGE, "memory": 32, "essential": false, "user": "1000:1000",
             "command": ["sh", "-c", "sleep 1; echo ready > /data/ready"],
             "mountPoints": [{"sourceVolume": "shared", "containerPath": "/data"}]},
            // Starts only after init succeeded; the read-only mount must refuse writes.
            {"name": "web", "image": IMAGE, "memory": 32, "stopTimeout": 1,
             "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
             "command": ["sh", "-c",
                "test -f /data/ready && ! touch /ro/x 2>/dev/null && exec httpd -f -p 8080 -h /data"],
             "mountPoints": [{"sourceVolume": "shared", "containerPath": "/data"},
                             {"sourceVolume": "shared", "containerPath": "/ro", "readOnly": true}],
             "healthCheck": check("wget -q -O- http://127.0.0.1:8080/hello.txt | grep -q from-the-host")},
            // Starts after web; with an init process SIGTERM ends its sleep at once.
            {"name": "tail", "image": IMAGE, "memory": 32, "essential": false, "stopTimeout": 10,
             "dependsOn": [{"containerName": "web", "condition": "HEALTHY"}],
             "linuxParameters": {"initProcessEnabled": true},
             "command": ["sleep", "3600"]},
        ]),
        serde_json::json!([{"name": "shared", "host": {"sourcePath": host}}]),
    );
    let sick = register_task(
        &berth,
        &cleanup,
        "sick",
        serde_json::json!([{"name": "main", "image": IMAGE, "memory": 32,
            "linuxParameters": {"initProcessEnabled": true},
            "command": ["sleep", "3600"], "healthCheck": check("exit 1")}]),
        serde_json::json!([]),
    );
    let task = run_task(&berth, &definition);
    let sick_task = run_task(&berth, &sick);

    let healthy = wait_until(&berth, &task, "HEALTHY and RUNNING", |t| {
        t["lastStatus"] == "RUNNING" && t["healthStatus"] == "HEALTHY"
    });
    let (init, web) = (container(&healthy, "init"), container(&healthy, "web"));
    assert_eq!(init["lastStatus"], "STOPPED", "{healthy:#}");
    assert_eq!(init["exitCode"], 0, "{healthy:#}");
    assert_eq!(web["lastStatus"], "RUNNING", "{healthy:#}");
    assert_eq!(web["healthStatus"], "HEALTHY", "{healthy:#}");
    assert_eq!(
        container(&healthy, "tail")["lastStatus"],
        "RUNNING",
        "{healthy:#}"
    );
    let ready = host_dir.path().join("ready");
    assert_eq!(
        std::fs::read_to_string(&ready).expect("ready").trim(),
        "ready"
    );
    assert_eq!(std::fs::metadata(&ready).expect("ready").uid(), 1000);
    let id = |c: &Value| c["runtimeId"].as_str().expect("runtimeId").to_owned();
    let (init_id, web_id, tail_id) = (id(init), id(web), id(container(&healthy, "tail")));
    assert!(
        docker_time(&init_id, "FinishedAt") <= docker_time(&web_id, "StartedAt"),
        "web started before init finished"
    );
    assert!(docker_time(&web_id, "StartedAt") <= docker_time(&tail_id, "StartedAt"));

    let unhealthy = wait_until(&berth, &sick_task, "UNHEALTHY", |t| {
        t["healthStatus"] == "UNHEALTHY"
    });
    assert_eq!(unhealthy["lastStatus"], "RUNNING", "{unhealthy:#}");
    assert_eq!(container(&unhealthy, "main")["healthStatus"], "UNHEALTHY");

    berth.aws(&["ecs", "stop-task", "--task", &task]).ok();
    berth.aws(&["ecs", "stop-task", "--task", &sick_task]).ok();
    let stopped = wait_for(&berth, &task, "STOPPED");
    // tail stops (promptly: its init forwards SIGTERM) before web, which it depends on.
    assert_eq!(container(&stopped, "tail")["exitCode"], 143, "{stopped:#}");
    assert_eq!(container(&stopped, "web")["exitCode"], 137, "{stopped:#}");
    assert!(
        docker_time(&tail_id, "FinishedAt") <= docker_time(&web_id, "FinishedAt"),
        "web stopped before tail, which depends on it"
    );
    wait_for(&berth, &sick_task, "STOPPED");
}

/// Seed 002's flow: push an image to Berth's registry, name its repository URI in a task
/// definition, and run a service whose tasks the agent pulls with its own registry token (the
/// pushed tag is removed locally first, so only a pull can provide it).
#[test]
fn a_service_runs_an_image_the_agent_pulls_from_berths_registry() {
    let (berth, cleanup) = up_with_agent();
    let repo = format!("seed/web-{}", cleanup.0);
    let uri = berth
        .aws(&["ecr", "create-repository", "--repository-name", &repo])
        .ok()["repository"]["repositoryUri"]
        .as_str()
        .unwrap()
        .to_owned();
    let password = berth.aws(&["ecr", "get-login-password"]).ok();
    let config = tempfile::tempdir().unwrap();
    let docker_with = |args: &[&str], stdin: Option<&str>| {
        let out = support::images::docker_in(Some(config.path()), args, stdin);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let registry = uri.split('/').next().unwrap().to_owned();
    docker_with(
        &["login", "-u", "AWS", "--password-stdin", &registry],
        Some(password.as_str().unwrap().trim()),
    );
    let image = format!("{uri}:1");
    docker_with(&["tag", IMAGE, &image], None);
    docker_with(&["push", &image], None);
    docker_with(&["rmi", &image], None);

    let definition = register(
        &berth,
        &cleanup,
        "seed-web",
        serde_json::json!({
            "name": "web", "image": image, "memory": 32, "essential": true, "stopTimeout": 1,
            "command": ["httpd", "-f", "-p", "8080"],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
        }),
    );
    berth
        .aws(&[
            "ecs",
            "create-service",
            "--service-name",
            "seed-web",
            "--task-definition",
            &definition,
            "--desired-count",
            "5",
        ])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    let service = loop {
        let s = berth
            .aws(&["ecs", "describe-services", "--services", "seed-web"])
            .ok()["services"][0]
            .clone();
        if s["runningCount"] == 5 && s["deployments"][0]["rolloutState"] == "COMPLETED" {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not become stable within 60 s: {s:#}\nstderr:\n{}",
            berth.stderr()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(service["deployments"].as_array().unwrap().len(), 1);
    let tasks = berth
        .aws(&["ecs", "list-tasks", "--service-name", "seed-web"])
        .ok();
    assert_eq!(strings(&tasks["taskArns"]).len(), 5, "{tasks}");
    for task in strings(&tasks["taskArns"]) {
        let t = describe(&berth, &task);
        let binding = &t["containers"][0]["networkBindings"][0];
        let port = u16::try_from(binding["hostPort"].as_u64().unwrap()).unwrap();
        assert!(http_get(port).starts_with("HTTP/1."), "task {task}");
    }
    assert!(
        docker(&["image", "inspect", &image]).status.success(),
        "the agent pulled {image} from Berth"
    );
    berth
        .aws(&["ecs", "delete-service", "--service", "seed-web", "--force"])
        .ok();
    docker(&["rmi", "-f", &image]);
}

#[test]
fn a_container_past_its_memory_limit_is_oom_killed_and_the_reason_says_so() {
    let (berth, cleanup) = up_with_agent();
    // dd's one 64 MiB block does not fit in 16 MiB (maxSwap 0: no swap to spill into).
    let definition = register(
        &berth,
        &cleanup,
        "hog",
        serde_json::json!({
            "name": "hog", "image": IMAGE, "memory": 16, "essential": true,
            "linuxParameters": {"maxSwap": 0},
            "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        }),
    );
    let task = run_task(&berth, &definition);
    let stopped = wait_until(&berth, &task, "STOPPED", |t| t["lastStatus"] == "STOPPED");
    assert_eq!(
        stopped["stopCode"], "EssentialContainerExited",
        "{stopped:#}"
    );
    let container = only(&stopped, "containers");
    assert_eq!(container["exitCode"], 137, "{stopped:#}");
    assert_eq!(
        container["reason"], "OutOfMemoryError: Container killed due to memory usage",
        "{stopped:#}"
    );
}

/// A container killed behind the agent's back is reported through Docker's event stream: the
/// task shows STOPPED within seconds, long before the agent's 10 s safety-net sweep (whose
/// first pass for a task comes 10 s after its manager started, and the kill follows RUNNING
/// at once).
#[test]
fn a_container_killed_outside_the_agent_is_reported_through_docker_events() {
    let (berth, cleanup) = up_with_agent();
    let definition = register(
        &berth,
        &cleanup,
        "sleeper",
        serde_json::json!({
            "name": "main", "image": IMAGE, "memory": 16, "essential": true,
            "command": ["sleep", "3600"],
        }),
    );
    let task = run_task(&berth, &definition);
    let running = wait_for(&berth, &task, "RUNNING");
    let id = only(&running, "containers")["runtimeId"]
        .as_str()
        .expect("runtimeId")
        .to_owned();
    let killed = Instant::now();
    assert!(docker(&["kill", &id]).status.success());
    let stopped = wait_until(&berth, &task, "STOPPED", |t| t["lastStatus"] == "STOPPED");
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "STOPPED only after {took:?}: {stopped:#}\nstderr:\n{}",
        berth.stderr()
    );
    assert_eq!(
        stopped["stopCode"], "EssentialContainerExited",
        "{stopped:#}"
    );
    assert_eq!(only(&stopped, "containers")["exitCode"], 137, "{stopped:#}");
    assert!(
        !berth.stderr().contains("could not follow container events"),
        "{}",
        berth.stderr()
    );
}

/// The containers Docker holds for this test run, as (id, running).
fn test_containers(cleanup: &Cleanup) -> Vec<(String, bool)> {
    let filter = format!("label={TEST_LABEL}={}", cleanup.0);
    let out = docker(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &filter,
        "--format",
        "{{.ID}} {{.State}}",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, state)| (id.to_owned(), state == "running"))
        .collect()
}

/// kill -9 of Berth (server and in-process agent) while 10 tasks run; one container dies
/// while it is down. After the restart the agent adopts the nine that still run (same
/// container IDs, nothing started twice) and reports the dead one STOPPED with its exit code.
#[test]
fn after_kill_9_the_agent_adopts_its_containers_and_reports_the_one_that_died() {
    let (mut berth, cleanup) = up_with_agent();
    let definition = register(
        &berth,
        &cleanup,
        "fleet",
        serde_json::json!({
            "name": "web", "image": IMAGE, "memory": 16, "essential": true, "stopTimeout": 1,
            "command": ["httpd", "-f", "-p", "8080"],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
        }),
    );
    let out = berth
        .aws(&[
            "ecs",
            "run-task",
            "--task-definition",
            &definition,
            "--count",
            "10",
        ])
        .ok();
    assert_eq!(out["failures"], serde_json::json!([]), "{out}");
    let tasks: Vec<String> = out["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tasks.len(), 10);
    let runtime_ids: Vec<String> = tasks
        .iter()
        .map(|t| {
            let running = wait_for(&berth, t, "RUNNING");
            only(&running, "containers")["runtimeId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();

    berth.kill9();
    let victim = &runtime_ids[0];
    assert!(docker(&["kill", victim]).status.success());
    berth.start_again();

    let died = wait_until(&berth, &tasks[0], "STOPPED", |t| {
        t["lastStatus"] == "STOPPED"
    });
    let container = only(&died, "containers");
    assert_eq!(container["runtimeId"], victim.as_str(), "{died:#}");
    assert_eq!(container["exitCode"], 137, "{died:#}");
    assert_eq!(died["stopCode"], "EssentialContainerExited", "{died:#}");
    for (task, id) in tasks.iter().zip(&runtime_ids).skip(1) {
        let t = describe(&berth, task);
        assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
        assert_eq!(only(&t, "containers")["runtimeId"], id.as_str(), "{t:#}");
    }
    // A few of the agent's reconciliations later, still nothing started twice.
    std::thread::sleep(Duration::from_secs(3));
    let held = test_containers(&cleanup);
    assert_eq!(
        held.len(),
        10,
        "one container per task, none added: {held:?}"
    );
    let mut running: Vec<&String> = held.iter().filter(|(_, r)| *r).map(|(id, _)| id).collect();
    running.sort();
    let mut expected: Vec<&String> = runtime_ids.iter().skip(1).collect();
    expected.sort();
    assert_eq!(running, expected);
}

/// A `berth agent` child process on its own data directory, killed when dropped.
struct AgentProcess(std::process::Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `berth agent` for cluster stage01 at `server` with `args` (a token, a pin).
fn start_agent(server: &str, data_dir: &std::path::Path, args: &[&str]) -> AgentProcess {
    start_agent_env(server, data_dir, args, &[])
}

/// `start_agent` with environment variables (a key pair, the agent's ECS_* settings).
fn start_agent_env(
    server: &str,
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> AgentProcess {
    let log = std::fs::File::create(data_dir.with_extension("log")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["agent", "--server", server, "--cluster", "stage01"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("BERTH_LOG", "info")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("berth agent starts");
    AgentProcess(child)
}

/// The log of an agent, once it holds `needle` (within 20 s).
fn agent_log_with(data_dir: &std::path::Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A host joins with a token from `berth token create`: its agent reaches the server over TLS,
/// holds it to the pin the token carries, registers with a key of its own, keeps key and pin
/// (owner-only), and a restart needs the token no more.
#[test]
fn an_agent_joins_with_a_token_and_keeps_its_own_key() {
    ensure_test_image();
    let berth = Berth::start();
    berth
        .aws(&["ecs", "create-cluster", "--cluster-name", "stage01"])
        .ok();
    let created = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "token",
            "create",
            "--server",
            &berth.endpoint,
            "--cluster",
            "stage01",
        ])
        .args(["--ttl", "1h"])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("bjt."), "{token}");

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("agent");
    let registered = |berth: &Berth| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let listed = berth
                .aws(&["ecs", "list-container-instances", "--cluster", "stage01"])
                .ok();
            let arns = strings(&listed["containerInstanceArns"]);
            if !arns.is_empty() {
                return arns;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not register: {}",
                std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let https = berth.endpoint.replacen("http://", "https://", 1);
    let agent = start_agent(&https, &data_dir, &["--token", &token]);
    let first = registered(&berth);
    let state_file = data_dir.join("agent-state.json");
    let state: Value = serde_json::from_str(&read(&state_file)).unwrap();
    let pin = berth.banner("server pin");
    assert_eq!(
        format!("sha256:{}", state["serverPin"].as_str().unwrap()),
        pin
    );
    let key = state["joinedKey"]["accessKeyId"]
        .as_str()
        .expect("a key of its own");
    assert_ne!(key, ACCESS_KEY);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&state_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the state file holds a secret");
    drop(agent);

    // Restarted with a token that no longer works, it still comes back as the same instance.
    let hex = pin.trim_start_matches("sha256:");
    let revoked = format!("bjt.revoked.nothing.{hex}");
    let _agent = start_agent(&https, &data_dir, &["--token", &revoked]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(registered(&berth), first);
    let log = std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default();
    assert!(!log.contains("refused the join token"), "{log}");

    // A wrong token is refused in plain words.
    let other = dir.path().join("other");
    let mut refused = start_agent(&https, &other, &["--token", &revoked]);
    let status = refused.0.wait().unwrap();
    assert!(!status.success());
    let log = std::fs::read_to_string(other.with_extension("log")).unwrap_or_default();
    assert!(log.contains("refused the join token"), "{log}");

    // A pinned server is not reached in the clear.
    let clear = dir.path().join("clear");
    let mut refused = start_agent(&berth.endpoint, &clear, &["--token", &token]);
    assert!(!refused.0.wait().unwrap().success());
    let log = std::fs::read_to_string(clear.with_extension("log")).unwrap_or_default();
    assert!(log.contains("plain HTTP"), "{log}");

    // A server with another key is not trusted with the token: the agent keeps trying, says
    // why, and never joins.
    let mut other_pin = pin.clone();
    let last = other_pin.pop().unwrap();
    other_pin.push(if last == '0' { '1' } else { '0' });
    let impostor = dir.path().join("impostor");
    let agent = start_agent(
        &https,
        &impostor,
        &["--token", &token, "--server-pin", &other_pin],
    );
    let log = agent_log_with(&impostor, "not the one pinned");
    assert!(log.contains("not the one pinned"), "{log}");
    drop(agent);
    assert_eq!(registered(&berth), first, "no second instance joined");
}

#[test]
fn secrets_from_secrets_manager_and_parameter_store_reach_the_containers() {
    let (berth, cleanup) = up_with_agent();
    let parameter = format!("/berth-test/{}/token", cleanup.0);
    berth
        .aws(&[
            "ssm",
            "put-parameter",
            "--name",
            &parameter,
            "--value",
            "ssm-Tk7-value",
            "--type",
            "SecureString",
        ])
        .ok();
    let missing_parameter = format!("{parameter}-gone");
    let arn = berth
        .aws(&[
            "secretsmanager",
            "create-secret",
            "--name",
            &format!("db-{}", cleanup.0),
            "--secret-string",
            r#"{"username":"app","password":"s3cret-Zq9"}"#,
        ])
        .ok()["ARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing = format!("{}-gone", &arn[..arn.len() - 7]);
    let register_with = |family: &str, secrets: Value| {
        let input = serde_json::json!({
            "family": family,
            "executionRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"),
            "containerDefinitions": [{
                "name": "app", "image": IMAGE, "memory": 32, "essential": true,
                "command": ["sleep", "600"], "stopTimeout": 1,
                "dockerLabels": { TEST_LABEL: cleanup.0 },
                "secrets": secrets,
                "logConfiguration": {
                    "logDriver": "json-file", "options": {"max-size": "1m"},
                    "secretOptions": [{"name": "tag", "valueFrom": format!("{arn}:username::")}],
                },
            }],
        });
        let file = berth.file(&format!("{family}.json"), &input.to_string());
        berth
            .aws(&["ecs", "register-task-definition", "--cli-input-json", &file])
            .ok()["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let with_secrets = register_with(
        "with-secrets",
        serde_json::json!([
            {"name": "DB_PASSWORD", "valueFrom": format!("{arn}:password::")},
            {"name": "DB_SECRET", "valueFrom": arn},
            {"name": "TOKEN", "valueFrom": parameter},
        ]),
    );
    let without = register_with(
        "missing-secret",
        serde_json::json!([{"name": "DB_PASSWORD", "valueFrom": missing}]),
    );
    let without_parameter = register_with(
        "missing-parameter",
        serde_json::json!([{"name": "TOKEN", "valueFrom": missing_parameter}]),
    );
    let task = run_task(&berth, &with_secrets);
    let failing = run_task(&berth, &without);
    let failing_parameter = run_task(&berth, &without_parameter);

    let running = wait_for(&berth, &task, "RUNNING");
    let id = only(&running, "containers")["runtimeId"]
        .as_str()
        .expect("runtimeId")
        .to_owned();
    let out = docker(&["inspect", "-f", "{{json .Config.Env}}", &id]);
    let env: Vec<String> = serde_json::from_slice(&out.stdout).expect("the container's Env");
    assert!(
        env.contains(&"DB_PASSWORD=s3cret-Zq9".to_owned()),
        "{env:?}"
    );
    assert!(
        env.contains(&r#"DB_SECRET={"username":"app","password":"s3cret-Zq9"}"#.to_owned()),
        "{env:?}"
    );
    assert!(env.contains(&"TOKEN=ssm-Tk7-value".to_owned()), "{env:?}");
    let out = docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", &id]);
    let log: Value = serde_json::from_slice(&out.stdout).expect("the container's LogConfig");
    // The secret option beside the plain one (Docker may add its own defaults).
    assert_eq!(log["Type"], "json-file", "{log}");
    assert_eq!(log["Config"]["max-size"], "1m", "{log}");
    assert_eq!(log["Config"]["tag"], "app", "{log}");

    let failed = wait_for(&berth, &failing, "STOPPED");
    assert_eq!(failed["stopCode"], "TaskFailedToStart", "{failed:#}");
    let reason = failed["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("ResourceInitializationError: unable to pull secrets or registry auth")
            && reason.contains(&missing)
            && reason.contains("ResourceNotFoundException"),
        "{failed:#}"
    );
    assert!(
        only(&failed, "containers")["runtimeId"].is_null(),
        "{failed:#}"
    );
    let failed = wait_for(&berth, &failing_parameter, "STOPPED");
    let reason = failed["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("ResourceInitializationError: unable to pull secrets or registry auth")
            && reason.contains(&missing_parameter)
            && reason.contains("no such Systems Manager parameter"),
        "{failed:#}"
    );
    berth.aws(&["ecs", "stop-task", "--task", &task]).ok();
}

/// Seed 002 across two availability zones: two hosts' agents (one per zone) in cluster stage01,
/// a service of 5 tasks spread by zone, then a new revision rolled out; `aws ecs wait
/// services-stable` comes true after each, and the tasks split 3 and 2 between the zones.
#[test]
fn a_service_spread_over_two_zones_is_updated_to_a_new_revision() {
    ensure_test_image();
    let cleanup = Cleanup::new();
    let berth = Berth::start();
    berth
        .aws(&["ecs", "create-cluster", "--cluster-name", "stage01"])
        .ok();
    let dir = tempfile::tempdir().unwrap();
    let key = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ];
    // The two agents share this host's Docker: disjoint port ranges keep them apart.
    let _agents: Vec<AgentProcess> = [("a", "40000-44999"), ("b", "45000-49999")]
        .iter()
        .map(|(zone, ports)| {
            let mut env = key.to_vec();
            env.push(("ECS_DYNAMIC_HOST_PORT_RANGE", ports));
            start_agent_env(
                &berth.endpoint,
                &dir.path().join(format!("agent-{zone}")),
                &["--availability-zone", &format!("us-east-1{zone}")],
                &env,
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while strings(
        &berth
            .aws(&["ecs", "list-container-instances", "--cluster", "stage01"])
            .ok()["containerInstanceArns"],
    )
    .len()
        < 2
    {
        assert!(Instant::now() < deadline, "the two agents did not register");
        std::thread::sleep(Duration::from_millis(200));
    }

    let web = |revision: &str| {
        serde_json::json!({
            "name": "web", "image": IMAGE, "memory": 32, "essential": true, "stopTimeout": 1,
            "command": ["httpd", "-f", "-p", "8080"],
            "environment": [{"name": "REVISION", "value": revision}],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
        })
    };
    let first = register(&berth, &cleanup, "zoned-web", web("1"));
    let ecs = |args: &[&str]| {
        let mut all = vec!["ecs"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--cluster", "stage01"]);
        berth.aws(&all).ok()
    };
    ecs(&[
        "create-service",
        "--service-name",
        "zoned-web",
        "--task-definition",
        &first,
        "--desired-count",
        "5",
        "--placement-strategy",
        "type=spread,field=attribute:ecs.availability-zone",
    ]);
    let stable_on = |definition: &str| {
        ecs(&["wait", "services-stable", "--services", "zoned-web"]);
        let service = ecs(&["describe-services", "--services", "zoned-web"])["services"][0].clone();
        assert_eq!(service["runningCount"], 5, "{service:#}");
        assert_eq!(service["deployments"].as_array().unwrap().len(), 1);
        let arns = strings(&ecs(&["list-tasks", "--service-name", "zoned-web"])["taskArns"]);
        let mut described = vec!["describe-tasks", "--tasks"];
        described.extend(arns.iter().map(String::as_str));
        let tasks = ecs(&described)["tasks"].as_array().unwrap().clone();
        let mut per_zone = std::collections::BTreeMap::<String, usize>::new();
        for t in &tasks {
            assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
            assert_eq!(t["taskDefinitionArn"], definition, "{t:#}");
            *per_zone
                .entry(t["availabilityZone"].as_str().unwrap().to_owned())
                .or_default() += 1;
            let port = t["containers"][0]["networkBindings"][0]["hostPort"]
                .as_u64()
                .unwrap();
            assert!(http_get(u16::try_from(port).unwrap()).starts_with("HTTP/1."));
        }
        let mut counts: Vec<usize> = per_zone.values().copied().collect();
        counts.sort_unstable();
        assert_eq!(counts, [2, 3], "spread over the zones: {per_zone:?}");
    };
    stable_on(&first);

    let second = register(&berth, &cleanup, "zoned-web", web("2"));
    ecs(&[
        "update-service",
        "--service",
        "zoned-web",
        "--task-definition",
        &second,
    ]);
    stable_on(&second);
    ecs(&["delete-service", "--service", "zoned-web", "--force"]);
}
