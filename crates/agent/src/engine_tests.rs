//! The engine on the mock runtime against an in-memory control plane.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::mock::{Mock, SIGTERM_EXIT};

const INSTANCE: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/i1";
const IMAGE: &str = "berth-test/busybox:1";

/// What the server would do with the agent's calls, kept in memory.
#[derive(Default)]
struct Fake {
    tasks: Mutex<BTreeMap<String, Task>>,
    definitions: Mutex<BTreeMap<String, TaskDefinition>>,
    desired: Mutex<BTreeSet<String>>,
    reports: Mutex<Vec<TaskStateChange>>,
}

impl Fake {
    fn add(&self, id: &str, containers: serde_json::Value) -> String {
        let def_arn = format!("arn:aws:ecs:us-east-1:000000000000:task-definition/{id}:1");
        let definition: TaskDefinition = serde_json::from_value(json!({
            "taskDefinitionArn": def_arn, "family": id, "revision": 1, "status": "ACTIVE", "registeredAt": 0,
            "containerDefinitions": containers,
        }))
        .unwrap();
        let arn = format!("arn:aws:ecs:us-east-1:000000000000:task/default/{id}");
        let task = Task::new(
            &arn,
            "arn:aws:ecs:us-east-1:000000000000:cluster/default",
            &def_arn,
            Timestamp(0),
        );
        self.definitions.lock().unwrap().insert(def_arn, definition);
        self.tasks.lock().unwrap().insert(arn.clone(), task);
        self.desired.lock().unwrap().insert(arn.clone());
        arn
    }

    fn stop(&self, arn: &str) {
        self.desired.lock().unwrap().remove(arn);
    }

    fn reports(&self, arn: &str) -> Vec<TaskStateChange> {
        self.reports
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.task == arn)
            .cloned()
            .collect()
    }

    fn last(&self, arn: &str, status: TaskStatus) -> Option<TaskStateChange> {
        self.reports(arn)
            .into_iter()
            .rev()
            .find(|r| r.status == status)
    }
}

#[async_trait]
impl ControlPlane for Fake {
    async fn desired_running(&self) -> Result<Vec<String>, ClientError> {
        Ok(self.desired.lock().unwrap().iter().cloned().collect())
    }
    async fn describe_tasks(&self, arns: &[String]) -> Result<Vec<Task>, ClientError> {
        let tasks = self.tasks.lock().unwrap();
        Ok(arns.iter().filter_map(|a| tasks.get(a).cloned()).collect())
    }
    async fn task_definition(&self, arn: &str) -> Result<TaskDefinition, ClientError> {
        self.definitions
            .lock()
            .unwrap()
            .get(arn)
            .cloned()
            .ok_or_else(|| ClientError::Api {
                code: "ClientException".into(),
                message: "no such task definition".into(),
                status: 400,
            })
    }
    async fn submit(&self, change: &TaskStateChange) -> Result<(), ClientError> {
        if change.status == TaskStatus::Stopped {
            // As the server does: a STOPPED task is no longer desired RUNNING.
            self.desired.lock().unwrap().remove(&change.task);
        }
        self.reports.lock().unwrap().push(change.clone());
        Ok(())
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        cluster: "default".into(),
        container_instance_arn: INSTANCE.into(),
        default_stop_timeout: Duration::from_secs(30),
        monitor_interval: Duration::from_millis(5),
        probe: |_, _| true,
    }
}

async fn engine(
    mock: &Arc<Mock>,
    fake: &Arc<Fake>,
    range: std::ops::RangeInclusive<u16>,
    reserved: &[u16],
) -> Engine {
    Engine::new(
        mock.clone(),
        fake.clone(),
        PortPicker::new(range, reserved.iter().copied()),
        config(),
    )
    .await
    .unwrap()
}

/// Ticks the engine until `done` holds (or fails the test after 5 s).
async fn until(engine: &mut Engine, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        engine.tick().await.unwrap();
        if done() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn id_of(mock: &Mock, container: &str) -> String {
    mock.containers()
        .into_iter()
        .find(|(_, spec, _)| spec.labels[labels::CONTAINER_NAME] == container)
        .map(|(id, _, _)| id)
        .unwrap_or_else(|| panic!("no container {container}"))
}

fn web() -> serde_json::Value {
    json!([{"name": "web", "image": IMAGE, "memory": 64, "essential": true,
            "portMappings": [{"containerPort": 8080, "hostPort": 0}]}])
}

#[tokio::test]
async fn starts_a_task_from_the_cached_image_and_reports_it_running() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let arn = fake.add("t1", web());
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "RUNNING is reported", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    let running = fake.last(&arn, TaskStatus::Running).unwrap();
    let container = &running.containers[0];
    assert_eq!(container.status, ContainerStatus::Running);
    assert_eq!(
        container.runtime_id.as_deref(),
        Some(id_of(&mock, "web").as_str())
    );
    let binding = &container.network_bindings[0];
    assert_eq!(binding.container_port, Some(8080));
    assert!(
        (50000..=50010).contains(&binding.host_port.unwrap()),
        "{binding:?}"
    );
    assert!(running.pull_started_at.is_some() && running.pull_stopped_at.is_some());
    let (_, spec, state) = mock.containers().remove(0);
    assert_eq!(state, ContainerState::Running);
    assert_eq!(spec.labels[labels::TASK_ARN], arn);
    assert_eq!(spec.labels[labels::CLUSTER], "default");
    assert_eq!(spec.labels[labels::CONTAINER_INSTANCE], INSTANCE);
    assert_eq!(
        spec.ports[0].host_port,
        u16::try_from(binding.host_port.unwrap()).unwrap()
    );
    // Nothing more happens while the task stays desired.
    for _ in 0..5 {
        engine.tick().await.unwrap();
    }
    assert_eq!(mock.containers().len(), 1);
    assert!(fake.last(&arn, TaskStatus::Stopped).is_none());
}

#[tokio::test]
async fn an_essential_exit_stops_the_task_and_its_other_containers() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.allow_pull(IMAGE);
    let arn = fake.add(
        "t2",
        json!([{"name": "app", "image": IMAGE, "essential": true},
               {"name": "side", "image": IMAGE, "essential": false, "stopTimeout": 7},
               {"name": "helper", "image": IMAGE, "essential": false}]),
    );
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "RUNNING", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    // A non-essential exit is reported, and the task goes on.
    mock.exit(&id_of(&mock, "helper"), 0, false);
    until(&mut engine, "the helper's exit is reported", || {
        fake.last(&arn, TaskStatus::Running)
            .is_some_and(|r| r.containers[2].status == ContainerStatus::Stopped)
    })
    .await;
    assert!(fake.last(&arn, TaskStatus::Stopped).is_none());
    mock.exit(&id_of(&mock, "app"), 3, false);
    until(&mut engine, "STOPPED", || {
        fake.last(&arn, TaskStatus::Stopped).is_some()
    })
    .await;
    let stopped = fake.last(&arn, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.reason.as_deref(), Some(ESSENTIAL_EXITED));
    let codes: Vec<_> = stopped
        .containers
        .iter()
        .map(|c| (c.status, c.exit_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            (ContainerStatus::Stopped, Some(3)),
            (
                ContainerStatus::Stopped,
                Some(i32::try_from(SIGTERM_EXIT).unwrap())
            ),
            (ContainerStatus::Stopped, Some(0)),
        ]
    );
    assert!(stopped.execution_stopped_at.is_some());
    assert_eq!(
        mock.stops(),
        vec![(id_of(&mock, "side"), Duration::from_secs(7))]
    );
}

#[tokio::test]
async fn an_oom_kill_is_reported_with_ecs_reason() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let arn = fake.add("oom", web());
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "RUNNING", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    mock.exit(&id_of(&mock, "web"), 137, true);
    until(&mut engine, "STOPPED", || {
        fake.last(&arn, TaskStatus::Stopped).is_some()
    })
    .await;
    let c = &fake.last(&arn, TaskStatus::Stopped).unwrap().containers[0];
    assert_eq!(
        (c.exit_code, c.reason.as_deref()),
        (Some(137), Some(OOM_KILLED))
    );
}

#[tokio::test]
async fn tasks_no_longer_desired_are_stopped_with_their_timeout() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let arn = fake.add("t3", web());
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "RUNNING", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    fake.stop(&arn);
    until(&mut engine, "STOPPED", || {
        fake.last(&arn, TaskStatus::Stopped).is_some()
    })
    .await;
    let stopped = fake.last(&arn, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.reason, None);
    assert_eq!(stopped.containers[0].exit_code, Some(143));
    assert_eq!(
        mock.stops(),
        vec![(id_of(&mock, "web"), Duration::from_secs(30))]
    );
    until(&mut engine, "the manager is gone", || engine_idle(&fake)).await;
    assert!(engine.active_tasks().is_empty());
}

fn engine_idle(fake: &Fake) -> bool {
    fake.desired.lock().unwrap().is_empty()
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_the_task() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    let arn = fake.add("t4", json!([{"name": "web", "image": "nowhere/nothing:1"}]));
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "STOPPED", || {
        fake.last(&arn, TaskStatus::Stopped).is_some()
    })
    .await;
    let stopped = fake.last(&arn, TaskStatus::Stopped).unwrap();
    let reason = stopped.reason.unwrap();
    assert!(
        reason.starts_with("CannotPullContainerError:") && reason.contains("nowhere/nothing:1"),
        "{reason}"
    );
    assert_eq!(
        stopped.containers[0].reason.as_deref(),
        Some(reason.as_str())
    );
    assert!(fake.last(&arn, TaskStatus::Running).is_none());
    assert!(mock.containers().is_empty());
}

#[tokio::test]
async fn dynamic_ports_never_collide_with_reserved_or_held_ones() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let two = json!([{"name": "web", "image": IMAGE,
        "portMappings": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}]}]);
    let a = fake.add("a", two.clone());
    let b = fake.add(
        "b",
        json!([{"name": "web", "image": IMAGE, "portMappings": [{"containerPort": 80}]}]),
    );
    let mut engine = engine(&mock, &fake, 50000..=50004, &[50001, 50003]).await;
    until(&mut engine, "both RUNNING", || {
        fake.last(&a, TaskStatus::Running).is_some() && fake.last(&b, TaskStatus::Running).is_some()
    })
    .await;
    let mut ports: Vec<i32> = [&a, &b]
        .iter()
        .flat_map(|arn| {
            fake.last(arn, TaskStatus::Running).unwrap().containers[0]
                .network_bindings
                .clone()
        })
        .filter_map(|n| n.host_port)
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, vec![50000, 50002, 50004]);
    // The range is used up: the next task cannot get a port and says so.
    let c = fake.add("c", two);
    until(&mut engine, "c STOPPED", || {
        fake.last(&c, TaskStatus::Stopped).is_some()
    })
    .await;
    let reason = fake.last(&c, TaskStatus::Stopped).unwrap().reason.unwrap();
    assert!(reason.contains("no free host port"), "{reason}");
    // Ports come back when a task stops.
    fake.stop(&b);
    until(&mut engine, "b STOPPED", || {
        fake.last(&b, TaskStatus::Stopped).is_some()
    })
    .await;
    let d = fake.add(
        "d",
        json!([{"name": "web", "image": IMAGE, "portMappings": [{"containerPort": 80}]}]),
    );
    until(&mut engine, "d RUNNING", || {
        fake.last(&d, TaskStatus::Running).is_some()
    })
    .await;
}

#[tokio::test]
async fn a_restarted_engine_adopts_its_containers_instead_of_starting_new_ones() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let kept = fake.add("kept", web());
    let gone = fake.add("gone", web());
    let died = fake.add("died", web());
    let mut first = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut first, "all RUNNING", || {
        [&kept, &gone, &died]
            .iter()
            .all(|a| fake.last(a, TaskStatus::Running).is_some())
    })
    .await;
    let before = mock.containers();
    let kept_binding = fake.last(&kept, TaskStatus::Running).unwrap().containers[0]
        .network_bindings
        .clone();
    drop(first);
    // While the agent is down: one task is stopped by the user, one container dies.
    fake.stop(&gone);
    let died_id = before
        .iter()
        .find(|(_, spec, _)| spec.labels[labels::TASK_ARN] == died)
        .map(|(id, _, _)| id.clone())
        .unwrap();
    mock.exit(&died_id, 9, false);
    let mut second = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut second, "gone and died STOPPED", || {
        fake.last(&gone, TaskStatus::Stopped).is_some()
            && fake.last(&died, TaskStatus::Stopped).is_some()
    })
    .await;
    until(&mut second, "kept reported RUNNING again", || {
        fake.reports(&kept)
            .iter()
            .filter(|r| r.status == TaskStatus::Running)
            .count()
            == 2
    })
    .await;
    // No container was started twice, and each kept its id and host port.
    assert_eq!(mock.containers().len(), 3);
    let again = fake.last(&kept, TaskStatus::Running).unwrap();
    assert_eq!(
        again.containers[0].runtime_id,
        fake.reports(&kept)[0].containers[0].runtime_id
    );
    assert_eq!(again.containers[0].network_bindings, kept_binding);
    let died_report = fake.last(&died, TaskStatus::Stopped).unwrap();
    assert_eq!(died_report.containers[0].exit_code, Some(9));
    assert_eq!(died_report.reason.as_deref(), Some(ESSENTIAL_EXITED));
    assert_eq!(
        fake.last(&gone, TaskStatus::Stopped).unwrap().containers[0].exit_code,
        Some(143)
    );
    // The adopted task's port stays held: a new task gets another one.
    let fresh = fake.add("fresh", web());
    until(&mut second, "fresh RUNNING", || {
        fake.last(&fresh, TaskStatus::Running).is_some()
    })
    .await;
    assert_ne!(
        fake.last(&fresh, TaskStatus::Running).unwrap().containers[0].network_bindings[0].host_port,
        kept_binding[0].host_port
    );
}
