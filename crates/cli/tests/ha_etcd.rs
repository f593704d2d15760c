//! High availability: two real `berth server` processes on one real etcd. Both answer the API;
//! only the elected leader runs the service controller: the other logs that it stands by, and a
//! service created through it gets exactly its desired count of tasks. When the leader is killed
//! with SIGKILL, the other server takes over once the dead leader's lease has run out (not
//! before) and its controller follows a change made through it. Without an `etcd` binary this
//! test fails and says how to install one.

mod support;

use berth_store::etcd::local::LocalEtcd;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{Berth, Signing};

/// The leader's lease in `berth server` (`berth_server::leader::LEADER_TTL`).
const LEADER_TTL: Duration = Duration::from_secs(10);
const TOTAL_RESOURCES: &str = r#"[{"name":"CPU","type":"INTEGER","integerValue":4096},{"name":"MEMORY","type":"INTEGER","integerValue":8192}]"#;
const LEADS: &str = "this server is now the leader";
const STANDS_BY: &str = "this one stands by";

fn call(berth: &Berth, operation: &str, body: Value) -> Value {
    let res = berth.post(operation, body.to_string().as_bytes(), Signing::root());
    assert_eq!(
        res.status,
        200,
        "{operation} on {}: {}",
        berth.endpoint,
        String::from_utf8_lossy(&res.body)
    );
    res.json()
}

/// The tasks of cluster `ha` with this desired status, as `berth` sees them.
fn tasks(berth: &Berth, desired: &str) -> usize {
    call(
        berth,
        "ListTasks",
        json!({"cluster": "ha", "desiredStatus": desired, "maxResults": 100}),
    )["taskArns"]
        .as_array()
        .expect("taskArns")
        .len()
}

/// Waits until `berth` lists `want` tasks to run; returns when that happened.
fn wait_for_tasks(berth: &Berth, want: usize, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let have = tasks(berth, "RUNNING");
        if have == want {
            return Instant::now();
        }
        assert!(
            have < want,
            "{} lists {have} tasks, more than the {want} desired",
            berth.endpoint
        );
        assert!(
            Instant::now() < deadline,
            "{} lists {have} of {want} tasks after {within:?}; its stderr:\n{}",
            berth.endpoint,
            berth.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_log(berth: &Berth, line: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !berth.stderr().contains(line) {
        assert!(
            Instant::now() < deadline,
            "{} did not log '{line}' within {within:?}; its stderr:\n{}",
            berth.endpoint,
            berth.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Exactly `want` tasks, none of them stopped, and it stays so over many controller ticks.
fn exactly(servers: &[&Berth], want: usize) {
    std::thread::sleep(Duration::from_secs(3));
    for berth in servers {
        assert_eq!(tasks(berth, "RUNNING"), want, "on {}", berth.endpoint);
        assert_eq!(tasks(berth, "STOPPED"), 0, "on {}", berth.endpoint);
    }
}

#[test]
fn two_servers_on_one_etcd_run_the_controller_once_and_fail_over() {
    let etcd = LocalEtcd::start().unwrap_or_else(|e| panic!("{e}"));
    let store = format!("etcd://{}", etcd.endpoint());
    let mut first = Berth::start_with(vec!["--store".into(), store.clone()]);
    wait_for_log(&first, LEADS, Duration::from_secs(10));
    let second = Berth::start_with(vec!["--store".into(), store]);
    wait_for_log(&second, STANDS_BY, Duration::from_secs(10));

    // Everything through the server that does not lead.
    second
        .aws(&["ecs", "create-cluster", "--cluster-name", "ha"])
        .ok();
    let td = json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "httpd:2.4",
        "cpu": 256, "memory": 128, "essential": true}]})
    .to_string();
    let file = second.file("web.json", &td);
    second
        .aws(&["ecs", "register-task-definition", "--cli-input-json", &file])
        .ok();
    for _ in 0..2 {
        second
            .aws(&[
                "ecs",
                "register-container-instance",
                "--cluster",
                "ha",
                "--total-resources",
                TOTAL_RESOURCES,
            ])
            .ok();
    }
    let created = Instant::now();
    second
        .aws(&[
            "ecs",
            "create-service",
            "--cluster",
            "ha",
            "--service-name",
            "web",
            "--task-definition",
            "web",
            "--desired-count",
            "3",
        ])
        .ok();
    let placed = wait_for_tasks(&second, 3, Duration::from_secs(15));
    eprintln!(
        "the leader's controller placed 3 tasks {:?} after create-service",
        placed - created
    );
    exactly(&[&first, &second], 3);
    assert!(
        !second.stderr().contains(LEADS),
        "the second server must not lead while the first does:\n{}",
        second.stderr()
    );

    // The leader dies without a word; its lease runs out and the other server takes over.
    first.kill9();
    let killed = Instant::now();
    call(
        &second,
        "UpdateService",
        json!({"cluster": "ha", "service": "web", "desiredCount": 5}),
    );
    let followed = wait_for_tasks(&second, 5, LEADER_TTL + Duration::from_secs(10));
    wait_for_log(&second, LEADS, Duration::ZERO);
    eprintln!(
        "after SIGKILL of the leader, the other server's controller brought the service to 5 tasks in {:?} (lease TTL {LEADER_TTL:?})",
        followed - killed
    );
    // The survivor's controller waited for the dead leader's lease, renewed every third of the
    // TTL, to run out (a server that ran its controllers all along would have acted within a
    // tick of the update), and took over within the TTL and a bit.
    assert!(
        followed - killed >= LEADER_TTL / 3,
        "the survivor acted {:?} after the kill, before the dead leader's lease ran out",
        followed - killed
    );
    assert!(
        followed - killed <= LEADER_TTL + Duration::from_secs(5),
        "failover took {:?}",
        followed - killed
    );
    exactly(&[&second], 5);
    let described = call(
        &second,
        "DescribeServices",
        json!({"cluster": "ha", "services": ["web"]}),
    );
    let service = &described["services"][0];
    assert_eq!(service["desiredCount"], 5, "{described}");
    assert_eq!(service["pendingCount"], 5, "{described}");
}
