//! The engine on the mock runtime against an in-memory control plane.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::mock::{Mock, SIGTERM_EXIT};
use crate::runtime::{RegistryAuth, registry_of};

/// The registry the fake control plane serves (as Berth's own).
const REGISTRY: &str = "127.0.0.1:9180";

const INSTANCE: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/i1";
const IMAGE: &str = "berth-test/busybox:1";

/// What the server would do with the agent's calls, kept in memory.
#[derive(Default)]
struct Fake {
    tasks: Mutex<BTreeMap<String, Task>>,
    definitions: Mutex<BTreeMap<String, TaskDefinition>>,
    desired: Mutex<BTreeSet<String>>,
    reports: Mutex<Vec<TaskStateChange>>,
    /// Secret strings by secret id, as Secrets Manager would answer them.
    secrets: Mutex<BTreeMap<String, String>>,
    /// Every GetSecretValue asked for.
    secret_reads: Mutex<Vec<crate::control::SecretRequest>>,
    /// Parameter values by name (with any selector), as Parameter Store would answer them.
    parameters: Mutex<BTreeMap<String, String>>,
    /// Every parameter asked for.
    parameter_reads: Mutex<Vec<crate::control::ParameterRequest>>,
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
    async fn registry_auth(&self, image: &str) -> Result<Option<RegistryAuth>, ClientError> {
        Ok(
            (registry_of(image) == Some(REGISTRY)).then(|| RegistryAuth {
                server: REGISTRY.into(),
                username: "AWS".into(),
                password: "token".into(),
            }),
        )
    }
    async fn parameter_value(
        &self,
        request: &crate::control::ParameterRequest,
    ) -> Result<Option<String>, ClientError> {
        self.parameter_reads.lock().unwrap().push(request.clone());
        Ok(self.parameters.lock().unwrap().get(&request.name).cloned())
    }
    async fn secret_string(
        &self,
        request: &crate::control::SecretRequest,
    ) -> Result<Option<String>, ClientError> {
        self.secret_reads.lock().unwrap().push(request.clone());
        let found = self
            .secrets
            .lock()
            .unwrap()
            .get(&request.secret_id)
            .cloned();
        found.map(Some).ok_or_else(|| ClientError::Api {
            code: "ResourceNotFoundException".into(),
            message: "Secrets Manager can't find the specified secret.".into(),
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
        // Only events tell the engine of changes in these tests; the sweep's own tests set it.
        sweep_interval: Duration::from_secs(3600),
        probe: |_, _| true,
        task_cleanup_wait: Duration::from_secs(3600),
        allow_privileged: false,
        images: Arc::default(),
    }
}

async fn engine(
    mock: &Arc<Mock>,
    fake: &Arc<Fake>,
    range: std::ops::RangeInclusive<u16>,
    reserved: &[u16],
) -> Engine {
    engine_with(mock, fake, range, reserved, config()).await
}

async fn engine_with(
    mock: &Arc<Mock>,
    fake: &Arc<Fake>,
    range: std::ops::RangeInclusive<u16>,
    reserved: &[u16],
    config: EngineConfig,
) -> Engine {
    Engine::new(
        mock.clone(),
        fake.clone(),
        PortPicker::new(range, reserved.iter().copied()),
        config,
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

fn has(mock: &Mock, container: &str) -> bool {
    mock.containers()
        .iter()
        .any(|(_, spec, _)| spec.labels[labels::CONTAINER_NAME] == container)
}

/// The containers' names in the order the runtime was asked to do `what` to them.
fn order_of(mock: &Mock, what: &str) -> Vec<String> {
    let names: BTreeMap<String, String> = mock
        .containers()
        .into_iter()
        .map(|(id, spec, _)| (id, spec.labels[labels::CONTAINER_NAME].clone()))
        .collect();
    mock.events()
        .into_iter()
        .filter(|(op, _)| *op == what)
        .map(|(_, id)| names[&id].clone())
        .collect()
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
async fn images_of_berths_registry_are_pulled_with_its_credentials() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    let private = format!("{REGISTRY}/web:1");
    mock.allow_pull(&private);
    let arn = fake.add(
        "t1",
        json!([{"name": "web", "image": private, "memory": 64, "essential": true},
               {"name": "side", "image": IMAGE, "memory": 64, "essential": false}]),
    );
    mock.cache_image(IMAGE);
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "RUNNING is reported", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    let pulls = mock.pulls();
    let with = |image: &str| {
        pulls
            .iter()
            .find(|(i, _)| i == image)
            .unwrap_or_else(|| panic!("{image} was not pulled: {pulls:?}"))
            .1
            .clone()
    };
    let auth = with(&private).expect("credentials for Berth's registry");
    assert_eq!(
        (auth.server.as_str(), auth.username.as_str()),
        (REGISTRY, "AWS")
    );
    assert_eq!(with(IMAGE), None, "other registries get no credentials");
}

#[test]
fn images_name_their_registry_as_docker_reads_them() {
    assert_eq!(registry_of("127.0.0.1:9180/web:1"), Some("127.0.0.1:9180"));
    assert_eq!(
        registry_of("registry.example.com/team/web"),
        Some("registry.example.com")
    );
    assert_eq!(registry_of("localhost/web"), Some("localhost"));
    assert_eq!(registry_of("library/busybox"), None);
    assert_eq!(registry_of("busybox:1"), None);
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

#[tokio::test]
async fn depends_on_orders_the_start_and_the_shutdown_goes_the_other_way() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let arn = fake.add(
        "deps",
        json!([
            {"name": "db", "image": IMAGE},
            {"name": "init", "image": IMAGE, "essential": false},
            {"name": "app", "image": IMAGE, "dependsOn": [
                {"containerName": "init", "condition": "SUCCESS"},
                {"containerName": "db", "condition": "START"}]},
            {"name": "log", "image": IMAGE, "essential": false, "dependsOn": [
                {"containerName": "app", "condition": "START"}]},
            {"name": "done", "image": IMAGE, "essential": false, "dependsOn": [
                {"containerName": "init", "condition": "COMPLETE"}]},
        ]),
    );
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "db and init start", || {
        has(&mock, "db") && has(&mock, "init")
    })
    .await;
    for _ in 0..10 {
        engine.tick().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!has(&mock, "app") && !has(&mock, "log") && !has(&mock, "done"));
    assert!(fake.last(&arn, TaskStatus::Running).is_none());
    mock.exit(&id_of(&mock, "init"), 0, false);
    until(&mut engine, "RUNNING", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    assert_eq!(
        order_of(&mock, "start"),
        ["db", "init", "app", "log", "done"]
    );
    let running = fake.last(&arn, TaskStatus::Running).unwrap();
    assert_eq!(running.containers[1].status, ContainerStatus::Stopped);
    assert_eq!(running.containers[1].exit_code, Some(0));
    fake.stop(&arn);
    until(&mut engine, "STOPPED", || {
        fake.last(&arn, TaskStatus::Stopped).is_some()
    })
    .await;
    // Dependents stop before what they depend on; init had already exited.
    let stops = order_of(&mock, "stop");
    let at = |name: &str| stops.iter().position(|s| s == name).unwrap();
    assert_eq!(stops.len(), 4, "{stops:?}");
    assert!(at("log") < at("app") && at("app") < at("db"), "{stops:?}");
}

#[tokio::test]
async fn a_dependency_that_cannot_be_met_fails_the_task() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let arn = fake.add(
        "failinit",
        json!([
            {"name": "init", "image": IMAGE, "essential": false},
            {"name": "app", "image": IMAGE, "dependsOn": [
                {"containerName": "init", "condition": "SUCCESS"}]},
        ]),
    );
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "init starts", || has(&mock, "init")).await;
    mock.exit(&id_of(&mock, "init"), 2, false);
    until(&mut engine, "STOPPED", || {
        fake.last(&arn, TaskStatus::Stopped).is_some()
    })
    .await;
    let stopped = fake.last(&arn, TaskStatus::Stopped).unwrap();
    let reason = stopped.reason.unwrap();
    assert!(
        reason.contains("'app'") && reason.contains("'init'") && reason.contains("exit code 2"),
        "{reason}"
    );
    assert_eq!(
        stopped.containers[1].reason.as_deref(),
        Some(reason.as_str())
    );
    assert_eq!(stopped.containers[1].runtime_id, None);
    assert!(!has(&mock, "app"));
    assert!(fake.last(&arn, TaskStatus::Running).is_none());
}

#[tokio::test]
async fn healthy_dependencies_wait_for_the_check_and_time_out_after_start_timeout() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let check = json!({"command": ["CMD-SHELL", "true"], "interval": 5});
    let ok = fake.add(
        "healthy",
        json!([
            {"name": "db", "image": IMAGE, "healthCheck": check},
            {"name": "app", "image": IMAGE, "dependsOn": [
                {"containerName": "db", "condition": "HEALTHY"}]},
        ]),
    );
    let slow = fake.add(
        "slow",
        json!([
            {"name": "db", "image": IMAGE, "healthCheck": check, "startTimeout": 1},
            {"name": "app", "image": IMAGE, "dependsOn": [
                {"containerName": "db", "condition": "HEALTHY"}]},
        ]),
    );
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    let db_of = |task: &str| {
        mock.containers()
            .into_iter()
            .find(|(_, spec, _)| {
                spec.labels[labels::TASK_ARN] == task && spec.labels[labels::CONTAINER_NAME] == "db"
            })
            .map(|(id, _, _)| id)
    };
    until(&mut engine, "both dbs start", || {
        db_of(&ok).is_some() && db_of(&slow).is_some()
    })
    .await;
    let started = Instant::now();
    assert_eq!(
        mock.containers().len(),
        2,
        "no app starts before its db is healthy"
    );
    mock.set_health(&db_of(&ok).unwrap(), HealthStatus::Healthy);
    until(&mut engine, "the healthy task RUNNING", || {
        fake.last(&ok, TaskStatus::Running).is_some()
    })
    .await;
    let running = fake.last(&ok, TaskStatus::Running).unwrap();
    assert_eq!(running.containers[0].health_status, HealthStatus::Healthy);
    until(&mut engine, "the slow task STOPPED", || {
        fake.last(&slow, TaskStatus::Stopped).is_some()
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    let reason = fake
        .last(&slow, TaskStatus::Stopped)
        .unwrap()
        .reason
        .unwrap();
    assert!(reason.contains("startTimeout of 1s"), "{reason}");
    assert!(fake.last(&slow, TaskStatus::Running).is_none());
}

#[tokio::test]
async fn task_health_follows_the_essential_containers_with_checks() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let check = json!({"command": ["CMD", "true"]});
    let arn = fake.add(
        "health",
        json!([
            {"name": "a", "image": IMAGE, "healthCheck": check},
            {"name": "b", "image": IMAGE, "healthCheck": check},
            {"name": "side", "image": IMAGE, "essential": false, "healthCheck": check},
            {"name": "plain", "image": IMAGE},
        ]),
    );
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "RUNNING", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    let last = || fake.last(&arn, TaskStatus::Running).unwrap();
    assert_eq!(last().health_status, HealthStatus::Unknown);
    // The check reaches the runtime with ECS's defaults.
    let (_, spec, _) = mock
        .containers()
        .into_iter()
        .find(|(_, s, _)| s.labels[labels::CONTAINER_NAME] == "a")
        .unwrap();
    let h = spec.health_check.unwrap();
    assert_eq!(
        (h.interval, h.timeout, h.retries, h.start_period),
        (
            Duration::from_secs(30),
            Duration::from_secs(5),
            3,
            Duration::ZERO
        )
    );
    mock.set_health(&id_of(&mock, "a"), HealthStatus::Healthy);
    until(&mut engine, "a healthy", || {
        last().containers[0].health_status == HealthStatus::Healthy
    })
    .await;
    assert_eq!(
        last().health_status,
        HealthStatus::Unknown,
        "b is still unknown"
    );
    mock.set_health(&id_of(&mock, "b"), HealthStatus::Healthy);
    until(&mut engine, "task HEALTHY", || {
        last().health_status == HealthStatus::Healthy
    })
    .await;
    // A non-essential container's health does not count; a container without a check is
    // UNKNOWN and does not count either.
    mock.set_health(&id_of(&mock, "side"), HealthStatus::Unhealthy);
    until(&mut engine, "side unhealthy", || {
        last().containers[2].health_status == HealthStatus::Unhealthy
    })
    .await;
    assert_eq!(last().health_status, HealthStatus::Healthy);
    assert_eq!(last().containers[3].health_status, HealthStatus::Unknown);
    mock.set_health(&id_of(&mock, "b"), HealthStatus::Unhealthy);
    until(&mut engine, "task UNHEALTHY", || {
        last().health_status == HealthStatus::Unhealthy
    })
    .await;
    assert!(fake.last(&arn, TaskStatus::Stopped).is_none());
}

#[tokio::test]
async fn restart_policies_restart_containers_unless_the_code_is_ignored_or_too_soon() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let arn = fake.add(
        "restarts",
        json!([
            {"name": "app", "image": IMAGE,
             "restartPolicy": {"enabled": true, "restartAttemptPeriod": 0}},
            {"name": "worker", "image": IMAGE, "essential": false,
             "restartPolicy": {"enabled": true, "ignoredExitCodes": [5], "restartAttemptPeriod": 0}},
            {"name": "flaky", "image": IMAGE, "essential": false,
             "restartPolicy": {"enabled": true, "restartAttemptPeriod": 3600}},
            {"name": "off", "image": IMAGE, "essential": false,
             "restartPolicy": {"enabled": false}},
        ]),
    );
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "RUNNING", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    let starts = |name: &str| {
        order_of(&mock, "start")
            .iter()
            .filter(|n| *n == name)
            .count()
    };
    let state = |name: &str| {
        mock.containers()
            .into_iter()
            .find(|(_, s, _)| s.labels[labels::CONTAINER_NAME] == name)
            .unwrap()
            .2
    };
    mock.exit(&id_of(&mock, "worker"), 1, false);
    until(&mut engine, "worker restarted", || starts("worker") == 2).await;
    assert_eq!(state("worker"), ContainerState::Running);
    // The essential container is restarted too, and the task goes on.
    mock.exit(&id_of(&mock, "app"), 2, false);
    until(&mut engine, "app restarted", || starts("app") == 2).await;
    // An ignored exit code, one too soon after the start, and a disabled policy: no restart.
    mock.exit(&id_of(&mock, "worker"), 5, false);
    mock.exit(&id_of(&mock, "flaky"), 1, false);
    mock.exit(&id_of(&mock, "off"), 1, false);
    until(&mut engine, "the three exits reported", || {
        fake.last(&arn, TaskStatus::Running).is_some_and(|r| {
            r.containers[1..]
                .iter()
                .all(|c| c.status == ContainerStatus::Stopped)
        })
    })
    .await;
    let running = fake.last(&arn, TaskStatus::Running).unwrap();
    let codes: Vec<_> = running.containers.iter().map(|c| c.exit_code).collect();
    assert_eq!(codes, [None, Some(5), Some(1), Some(1)]);
    assert_eq!(
        (starts("worker"), starts("flaky"), starts("off")),
        (2, 1, 1)
    );
    assert!(fake.last(&arn, TaskStatus::Stopped).is_none());
    assert_eq!(running.containers[0].status, ContainerStatus::Running);
}

#[tokio::test]
async fn stopped_tasks_are_cleaned_up_after_the_wait_with_their_task_volumes() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let arn = fake.add(
        "clean",
        json!([{"name": "app", "image": IMAGE, "mountPoints": [
            {"sourceVolume": "scratch", "containerPath": "/scratch"},
            {"sourceVolume": "cache", "containerPath": "/cache", "readOnly": true},
            {"sourceVolume": "host", "containerPath": "/host"}]}]),
    );
    fake.definitions
        .lock()
        .unwrap()
        .values_mut()
        .for_each(|d| {
            d.volumes = serde_json::from_value(json!([
                {"name": "scratch", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}},
                {"name": "cache", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true}},
                {"name": "host", "host": {"sourcePath": "/srv/data"}},
            ]))
            .unwrap();
        });
    let config = EngineConfig {
        task_cleanup_wait: Duration::from_millis(300),
        ..config()
    };
    let mut engine = engine_with(&mock, &fake, 50000..=50010, &[], config).await;
    until(&mut engine, "RUNNING", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    let task_volume = "berth-clean-1-scratch-clean";
    let names = || -> Vec<String> { mock.volumes().into_iter().map(|v| v.name).collect() };
    assert_eq!(names(), ["berth-clean-1-scratch-clean", "cache"]);
    assert_eq!(mock.volumes()[0].labels[labels::TASK_ARN], arn);
    let (_, spec, _) = mock.containers().remove(0);
    assert_eq!(
        spec.binds,
        [
            format!("{task_volume}:/scratch"),
            "cache:/cache:ro".to_owned(),
            "/srv/data:/host".to_owned()
        ]
    );
    fake.stop(&arn);
    until(&mut engine, "STOPPED", || {
        fake.last(&arn, TaskStatus::Stopped).is_some()
    })
    .await;
    assert_eq!(mock.containers().len(), 1, "kept until the wait is over");
    until(&mut engine, "the container is removed", || {
        mock.containers().is_empty()
    })
    .await;
    // The task's own volume goes with it; the shared one stays.
    until(&mut engine, "the task volume is removed", || {
        names() == ["cache"]
    })
    .await;
}

#[tokio::test]
async fn a_missing_shared_volume_without_autoprovision_fails_the_task() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let arn = fake.add(
        "noshared",
        json!([{"name": "app", "image": IMAGE,
                "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]}]),
    );
    fake.definitions
        .lock()
        .unwrap()
        .values_mut()
        .for_each(|d| {
            d.volumes = serde_json::from_value(json!([
                {"name": "data", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": false}},
            ]))
            .unwrap();
        });
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "STOPPED", || {
        fake.last(&arn, TaskStatus::Stopped).is_some()
    })
    .await;
    let reason = fake
        .last(&arn, TaskStatus::Stopped)
        .unwrap()
        .reason
        .unwrap();
    assert!(
        reason.contains("shared volume 'data' does not exist") && reason.contains("autoprovision"),
        "{reason}"
    );
    assert!(mock.containers().is_empty() && mock.volumes().is_empty());
}

#[tokio::test]
async fn privileged_containers_need_the_agent_to_allow_them() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let containers = json!([{"name": "app", "image": IMAGE, "privileged": true}]);
    let refused = fake.add("refused", containers.clone());
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "STOPPED", || {
        fake.last(&refused, TaskStatus::Stopped).is_some()
    })
    .await;
    let reason = fake
        .last(&refused, TaskStatus::Stopped)
        .unwrap()
        .reason
        .unwrap();
    assert!(
        reason.contains("privileged") && reason.contains("--allow-privileged"),
        "{reason}"
    );
    assert!(mock.containers().is_empty());
    drop(engine);
    let allowed = fake.add("allowed", containers);
    let config = EngineConfig {
        allow_privileged: true,
        ..config()
    };
    let mut engine = engine_with(&mock, &fake, 50000..=50010, &[], config).await;
    until(&mut engine, "RUNNING", || {
        fake.last(&allowed, TaskStatus::Running).is_some()
    })
    .await;
    assert!(mock.containers()[0].1.privileged);
}

/// The engine with the agent's kind of sweep, `every` apart.
fn swept_every(every: Duration) -> EngineConfig {
    EngineConfig {
        sweep_interval: every,
        ..config()
    }
}

/// The container of a one-container task.
fn container_of(mock: &Mock, task: &str) -> String {
    mock.containers()
        .into_iter()
        .find(|(_, spec, _)| spec.labels[labels::TASK_ARN] == task)
        .map(|(id, _, _)| id)
        .unwrap_or_else(|| panic!("no container of {task}"))
}

#[tokio::test(start_paused = true)]
async fn an_exit_event_stops_the_task_at_once_without_polling_or_waiting_for_the_sweep() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let arn = fake.add("evented", web());
    let sweep = Duration::from_secs(10);
    let mut engine = engine_with(&mock, &fake, 50000..=50010, &[], swept_every(sweep)).await;
    until(&mut engine, "RUNNING", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    // A running task whose container has no events is not inspected before the sweep.
    let inspected = mock.inspections();
    tokio::time::sleep(sweep / 2).await;
    engine.tick().await.unwrap();
    assert_eq!(mock.inspections(), inspected, "nothing polls the container");
    let exited = tokio::time::Instant::now();
    mock.exit(&container_of(&mock, &arn), 3, false);
    until(&mut engine, "STOPPED", || {
        fake.last(&arn, TaskStatus::Stopped).is_some()
    })
    .await;
    // The sweep was still seconds away (in the test's paused time): the event did it.
    let took = exited.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let stopped = fake.last(&arn, TaskStatus::Stopped).unwrap();
    assert_eq!(stopped.reason.as_deref(), Some(ESSENTIAL_EXITED));
    assert_eq!(stopped.containers[0].exit_code, Some(3));
}

#[tokio::test(start_paused = true)]
async fn lost_events_are_caught_by_the_sweep_and_by_a_sweep_after_resubscribing() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let (quiet, gap, after) = (
        fake.add("quiet", web()),
        fake.add("gap", web()),
        fake.add("after", web()),
    );
    let sweep = Duration::from_secs(10);
    let mut engine = engine_with(&mock, &fake, 50000..=50010, &[], swept_every(sweep)).await;
    until(&mut engine, "all RUNNING", || {
        [&quiet, &gap, &after]
            .iter()
            .all(|a| fake.last(a, TaskStatus::Running).is_some())
    })
    .await;
    let stopped = |arn: &str| fake.last(arn, TaskStatus::Stopped);
    // An exit whose event is lost is not seen until the sweep, and then it is.
    mock.exit_unseen(&container_of(&mock, &quiet), 4);
    tokio::time::sleep(sweep / 2).await;
    engine.tick().await.unwrap();
    assert!(stopped(&quiet).is_none(), "seen before the sweep");
    tokio::time::sleep(sweep).await;
    until(&mut engine, "quiet STOPPED", || stopped(&quiet).is_some()).await;
    assert_eq!(stopped(&quiet).unwrap().containers[0].exit_code, Some(4));
    // The stream breaks (Docker restarts) and an exit happens in the gap: the engine
    // subscribes again and sweeps at once, long before the next periodic sweep.
    let subscribed = mock.subscriptions();
    mock.exit_unseen(&container_of(&mock, &gap), 5);
    mock.break_events();
    let broke = tokio::time::Instant::now();
    until(&mut engine, "gap STOPPED", || stopped(&gap).is_some()).await;
    let took = broke.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(stopped(&gap).unwrap().containers[0].exit_code, Some(5));
    assert_eq!(mock.subscriptions(), subscribed + 1);
    // Events flow through the new subscription.
    let exited = tokio::time::Instant::now();
    mock.exit(&container_of(&mock, &after), 6, false);
    until(&mut engine, "after STOPPED", || stopped(&after).is_some()).await;
    assert!(exited.elapsed() < Duration::from_secs(1));
    assert_eq!(stopped(&after).unwrap().containers[0].exit_code, Some(6));
}

const SECRET: &str = "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf";

/// The environment of the container named `name`, as the runtime was asked to create it.
fn environment_of(mock: &Mock, name: &str) -> Vec<String> {
    mock.containers()
        .into_iter()
        .find(|(_, spec, _)| spec.labels[labels::CONTAINER_NAME] == name)
        .map(|(_, spec, _)| spec.environment)
        .unwrap_or_else(|| panic!("no container {name}"))
}

#[tokio::test]
async fn secrets_become_environment_variables_of_their_containers() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    fake.secrets.lock().unwrap().insert(
        SECRET.into(),
        r#"{"username":"app","password":"s3cret","port":5432}"#.into(),
    );
    let arn = fake.add(
        "s1",
        json!([
            {"name": "web", "image": IMAGE, "memory": 64, "essential": true,
             "environment": [{"name": "PLAIN", "value": "1"}, {"name": "DB_USER", "value": "overridden"}],
             "secrets": [{"name": "DB_USER", "valueFrom": format!("{SECRET}:username::")},
                         {"name": "DB_PORT", "valueFrom": format!("{SECRET}:port::")},
                         {"name": "DB_JSON", "valueFrom": SECRET}]},
            {"name": "side", "image": IMAGE, "memory": 64, "essential": false,
             "secrets": [{"name": "PASSWORD", "valueFrom": format!("{SECRET}:password::")}]},
        ]),
    );
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "RUNNING is reported", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    let web = environment_of(&mock, "web");
    for want in ["PLAIN=1", "DB_USER=app", "DB_PORT=5432"] {
        assert!(web.contains(&want.to_owned()), "{want} not in {web:?}");
    }
    assert!(!web.contains(&"DB_USER=overridden".to_owned()), "{web:?}");
    assert!(
        web.iter()
            .any(|kv| kv.starts_with("DB_JSON={") && kv.contains("\"password\":\"s3cret\"")),
        "{web:?}"
    );
    assert!(environment_of(&mock, "side").contains(&"PASSWORD=s3cret".to_owned()));
    // One read of the secret for the whole task, in the ARN's region.
    let reads = fake.secret_reads.lock().unwrap().clone();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].region.as_deref(), Some("us-east-1"));
}

#[tokio::test]
async fn parameters_become_variables_and_secret_options_log_driver_options() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    let parameter_arn = "arn:aws:ssm:eu-west-1:000000000000:parameter/prod/token";
    {
        let mut parameters = fake.parameters.lock().unwrap();
        parameters.insert("/prod/db-password".into(), "from-ssm".into());
        parameters.insert(parameter_arn.into(), "token-value".into());
    }
    fake.secrets
        .lock()
        .unwrap()
        .insert(SECRET.into(), r#"{"splunk":"hec-token"}"#.into());
    let arn = fake.add(
        "p1",
        json!([
            {"name": "web", "image": IMAGE, "memory": 64, "essential": true,
             "secrets": [{"name": "DB_PASSWORD", "valueFrom": "/prod/db-password"},
                         {"name": "TOKEN", "valueFrom": parameter_arn}],
             "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"},
                 "secretOptions": [{"name": "labels", "valueFrom": "/prod/db-password"},
                                   {"name": "tag", "valueFrom": format!("{SECRET}:splunk::")}]}},
        ]),
    );
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "RUNNING is reported", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    let web = environment_of(&mock, "web");
    for want in ["DB_PASSWORD=from-ssm", "TOKEN=token-value"] {
        assert!(web.contains(&want.to_owned()), "{want} not in {web:?}");
    }
    let (_, spec, _) = mock
        .containers()
        .into_iter()
        .find(|(_, spec, _)| spec.labels[labels::CONTAINER_NAME] == "web")
        .unwrap();
    let log = spec.log.expect("a log driver");
    assert_eq!(log.driver, "json-file");
    let options: Vec<(&str, &str)> = log
        .options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        options,
        [
            ("labels", "from-ssm"),
            ("max-size", "1m"),
            ("tag", "hec-token")
        ]
    );
    // Each parameter read once, in the region its ARN names (a name: the agent's).
    let mut reads: Vec<(Option<String>, String)> = fake
        .parameter_reads
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.region.clone(), r.name.clone()))
        .collect();
    reads.sort();
    assert_eq!(
        reads,
        [
            (None, "/prod/db-password".to_owned()),
            (Some("eu-west-1".to_owned()), parameter_arn.to_owned())
        ]
    );
}

#[tokio::test]
async fn a_secret_that_cannot_be_had_fails_the_task_before_any_container_is_created() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    mock.cache_image(IMAGE);
    fake.secrets
        .lock()
        .unwrap()
        .insert(SECRET.into(), r#"{"username":"app"}"#.into());
    let missing = "arn:aws:secretsmanager:us-east-1:000000000000:secret:gone-XyZ123";
    let cases = [
        (
            "k1",
            format!("{SECRET}:password::"),
            "did not contain json key 'password'",
        ),
        ("k2", missing.to_owned(), "ResourceNotFoundException"),
        (
            "k3",
            "/prod/db-password".to_owned(),
            "no such Systems Manager parameter",
        ),
        (
            "k4",
            "arn:aws:s3:::bucket/key".to_owned(),
            "neither a Secrets Manager secret",
        ),
    ];
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    for (id, value_from, why) in cases {
        let arn = fake.add(
            id,
            json!([
                // The first container needs nothing; it is not created either.
                {"name": "first", "image": IMAGE, "memory": 64, "essential": false},
                {"name": "app", "image": IMAGE, "memory": 64, "essential": true,
                 "dependsOn": [{"containerName": "first", "condition": "START"}],
                 "secrets": [{"name": "DB_PASSWORD", "valueFrom": value_from}]},
            ]),
        );
        until(&mut engine, "STOPPED", || {
            fake.last(&arn, TaskStatus::Stopped).is_some()
        })
        .await;
        let reason = fake
            .last(&arn, TaskStatus::Stopped)
            .unwrap()
            .reason
            .unwrap();
        assert!(
            reason.starts_with(
                "ResourceInitializationError: unable to pull secrets or registry auth: "
            ) && reason.contains(&value_from)
                && reason.contains("'app'")
                && reason.contains(why),
            "{reason}"
        );
        assert!(fake.last(&arn, TaskStatus::Running).is_none());
    }
    assert!(mock.containers().is_empty(), "{:?}", mock.containers());
    assert!(mock.pulls().is_empty());
}

#[tokio::test]
async fn repository_credentials_are_the_image_pull_credentials() {
    let (mock, fake) = (Arc::new(Mock::new()), Arc::new(Fake::default()));
    let private = "registry.example.com/team/web:1";
    mock.allow_pull(private);
    mock.allow_pull(IMAGE);
    fake.secrets.lock().unwrap().insert(
        "dockerhub".into(),
        r#"{"username":"robot","password":"pw"}"#.into(),
    );
    let arn = fake.add(
        "r1",
        json!([
            {"name": "web", "image": private, "memory": 64, "essential": true,
             "repositoryCredentials": {"credentialsParameter": "dockerhub"}},
            {"name": "hub", "image": IMAGE, "memory": 64, "essential": false,
             "repositoryCredentials": {"credentialsParameter": "dockerhub"}},
        ]),
    );
    let mut engine = engine(&mock, &fake, 50000..=50010, &[]).await;
    until(&mut engine, "RUNNING is reported", || {
        fake.last(&arn, TaskStatus::Running).is_some()
    })
    .await;
    let pulls = mock.pulls();
    let auth = |image: &str| {
        pulls
            .iter()
            .find(|(i, _)| i == image)
            .and_then(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("{image} pulled without credentials: {pulls:?}"))
    };
    let web = auth(private);
    assert_eq!(
        (
            web.server.as_str(),
            web.username.as_str(),
            web.password.as_str()
        ),
        ("registry.example.com", "robot", "pw")
    );
    assert_eq!(auth(IMAGE).server, "https://index.docker.io/v1/");
    assert_eq!(fake.secret_reads.lock().unwrap().len(), 1);

    fake.secrets
        .lock()
        .unwrap()
        .insert("broken".into(), "user:pass".into());
    let bad = fake.add(
        "r2",
        json!([{"name": "web", "image": private, "memory": 64,
                "repositoryCredentials": {"credentialsParameter": "broken"}}]),
    );
    until(&mut engine, "STOPPED", || {
        fake.last(&bad, TaskStatus::Stopped).is_some()
    })
    .await;
    let reason = fake
        .last(&bad, TaskStatus::Stopped)
        .unwrap()
        .reason
        .unwrap();
    assert!(
        reason.starts_with("ResourceInitializationError:")
            && reason.contains("repositoryCredentials 'broken'")
            && reason.contains("username"),
        "{reason}"
    );
}
