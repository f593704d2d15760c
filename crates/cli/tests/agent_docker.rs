//! The agent end to end: `berth up` with its in-process agent runs real Docker containers for
//! run-task and stop-task, driven by the real AWS CLI. Needs a Docker Engine and Debian's
//! `busybox-static` (`/bin/busybox`); the test image is built offline from them.

mod support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

const IMAGE: &str = "berth-test/busybox:1";
const TEST_LABEL: &str = "com.berth.test-run";

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("could not run the docker CLI ({e}); these tests need Docker"))
}

/// Builds `FROM scratch` + the static busybox as `berth-test/busybox:1`, unless it exists.
fn ensure_test_image() {
    if docker(&["image", "inspect", IMAGE]).status.success() {
        return;
    }
    let busybox = std::path::Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: install Debian's busybox-static (apt-get install busybox-static)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(busybox, dir.path().join("busybox")).expect("copy busybox");
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .expect("Dockerfile");
    let out = docker(&[
        "build",
        "-q",
        "-t",
        IMAGE,
        &dir.path().display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "docker build of {IMAGE} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes every container this test run made (found by its label), even when the test fails.
struct Cleanup(String);

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
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let cleanup = Cleanup(format!("{}-{nanos}", std::process::id()));
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
