//! The service controller in process: a simulated agent reports task states through the API,
//! and each test drives the controller one tick at a time.

mod support;

use berth_server::App;
use berth_server::instance_health;
use berth_server::service_controller::tick_once;
use serde_json::{Value, json};
use support::{Harness, harness, xml_value};

/// What the tests ask of the service and its tasks, through the API.
trait Observe {
    async fn service(&self) -> Value;
    async fn tasks(&self, desired: &str) -> Vec<Value>;
    async fn report(&self, task: &Value, status: &str);
    async fn agent_catches_up(&self);
}

impl Observe for Harness {
    async fn service(&self) -> Value {
        self.ok("DescribeServices", json!({"services": ["web"]}))
            .await["services"][0]
            .clone()
    }

    /// Every task of the cluster that has not been forgotten, by desired status.
    async fn tasks(&self, desired: &str) -> Vec<Value> {
        let arns = self
            .ok(
                "ListTasks",
                json!({"desiredStatus": desired, "maxResults": 100}),
            )
            .await["taskArns"]
            .clone();
        if arns.as_array().unwrap().is_empty() {
            return Vec::new();
        }
        self.ok("DescribeTasks", json!({"tasks": arns})).await["tasks"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn report(&self, task: &Value, status: &str) {
        self.ok(
            "SubmitTaskStateChange",
            json!({"task": task["taskArn"], "status": status}),
        )
        .await;
    }

    /// What an agent would do now: start every pending task, finish every task asked to stop.
    async fn agent_catches_up(&self) {
        for t in self.tasks("RUNNING").await {
            if t["lastStatus"] == "PENDING" {
                self.report(&t, "RUNNING").await;
            }
        }
        for t in self.tasks("STOPPED").await {
            if t["lastStatus"] != "STOPPED" {
                self.report(&t, "STOPPED").await;
            }
        }
    }
}

fn count(v: &Value, member: &str) -> i64 {
    v[member]
        .as_i64()
        .unwrap_or_else(|| panic!("{member} in {v}"))
}

async fn cluster_with_web() -> Harness {
    let h = harness().await;
    h.ok(
        "RegisterContainerInstance",
        json!({"totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}
        ]}),
    )
    .await;
    for image in ["web:1", "web:2"] {
        h.ok(
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [{"name": "web", "image": image, "memory": 128}]}),
        )
        .await;
    }
    h
}

#[tokio::test]
async fn a_service_keeps_its_desired_count_running() {
    let h = cluster_with_web().await;
    h.ok(
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 3}),
    )
    .await;
    tick_once(&h.app).await;
    let s = h.service().await;
    assert_eq!(
        (count(&s, "pendingCount"), count(&s, "runningCount")),
        (3, 0),
        "{s}"
    );
    assert!(
        s["events"][0]["message"]
            .as_str()
            .unwrap()
            .contains("has started 3 tasks"),
        "{s}"
    );

    h.agent_catches_up().await;
    tick_once(&h.app).await;
    let s = h.service().await;
    assert_eq!(count(&s, "runningCount"), 3, "{s}");
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED", "{s}");
    assert!(
        s["events"][0]["message"]
            .as_str()
            .unwrap()
            .ends_with("has reached a steady state."),
        "{s}"
    );

    // A task that dies is replaced.
    let victim = h.tasks("RUNNING").await.remove(0);
    h.report(&victim, "STOPPED").await;
    tick_once(&h.app).await;
    let s = h.service().await;
    assert_eq!(
        (count(&s, "runningCount"), count(&s, "pendingCount")),
        (2, 1),
        "{s}"
    );
    h.agent_catches_up().await;
    tick_once(&h.app).await;
    assert_eq!(count(&h.service().await, "runningCount"), 3);

    // Scaling in stops the surplus.
    h.ok(
        "UpdateService",
        json!({"service": "web", "desiredCount": 1}),
    )
    .await;
    tick_once(&h.app).await;
    h.agent_catches_up().await;
    tick_once(&h.app).await;
    let s = h.service().await;
    assert_eq!(
        (count(&s, "runningCount"), count(&s, "pendingCount")),
        (1, 0),
        "{s}"
    );
}

#[tokio::test]
async fn a_rolling_update_keeps_both_bounds_at_every_tick() {
    let h = cluster_with_web().await;
    h.ok(
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 4,
               "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 150}}),
    )
    .await;
    tick_once(&h.app).await;
    h.agent_catches_up().await;
    tick_once(&h.app).await;
    assert_eq!(count(&h.service().await, "runningCount"), 4);

    h.ok(
        "UpdateService",
        json!({"service": "web", "taskDefinition": "web:2"}),
    )
    .await;
    let mut ticks = 0;
    loop {
        tick_once(&h.app).await;
        // Sampled before the agent acts: what is running, what is placed or still stopping.
        let live: Vec<Value> = h
            .tasks("RUNNING")
            .await
            .into_iter()
            .chain(
                h.tasks("STOPPED")
                    .await
                    .into_iter()
                    .filter(|t| t["lastStatus"] != "STOPPED"),
            )
            .collect();
        let running = live.iter().filter(|t| t["lastStatus"] == "RUNNING").count();
        assert!(running >= 2, "fell below minimumHealthyPercent: {live:?}");
        assert!(
            live.len() <= 6,
            "went above maximumPercent: {} tasks",
            live.len()
        );
        let s = h.service().await;
        if s["deployments"].as_array().unwrap().len() == 1
            && s["deployments"][0]["rolloutState"] == "COMPLETED"
        {
            assert!(
                s["deployments"][0]["taskDefinition"]
                    .as_str()
                    .unwrap()
                    .ends_with("web:2")
            );
            assert_eq!(count(&s, "runningCount"), 4, "{s}");
            break;
        }
        h.agent_catches_up().await;
        ticks += 1;
        assert!(ticks < 20, "the deployment never completed: {s}");
    }
    // 50% / 150% of 4 cannot replace all four at once: it takes two rounds.
    assert!(ticks >= 2, "completed in {ticks} ticks");
}

#[tokio::test]
async fn the_circuit_breaker_trips_and_rolls_back() {
    let h = cluster_with_web().await;
    h.ok(
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 2,
               "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    )
    .await;
    tick_once(&h.app).await;
    h.agent_catches_up().await;
    tick_once(&h.app).await;
    assert_eq!(
        h.service().await["deployments"][0]["rolloutState"],
        "COMPLETED"
    );

    h.ok(
        "UpdateService",
        json!({"service": "web", "taskDefinition": "web:2"}),
    )
    .await;
    // Every task of the new revision fails before it runs; the threshold for 2 tasks is 3.
    let mut ticks = 0;
    let s = loop {
        tick_once(&h.app).await;
        let s = h.service().await;
        let tripped = s["events"].as_array().unwrap().iter().any(|e| {
            e["message"].as_str().unwrap().contains(
                "deployment failed: ECS deployment circuit breaker: tasks failed to start.",
            )
        });
        if tripped {
            break s;
        }
        for t in h.tasks("RUNNING").await {
            if t["lastStatus"] == "PENDING"
                && t["taskDefinitionArn"].as_str().unwrap().ends_with("web:2")
            {
                h.report(&t, "STOPPED").await;
            }
        }
        ticks += 1;
        assert!(ticks < 10, "the breaker never tripped: {s}");
    };
    // Two failures a round: it trips in the round that reaches three.
    assert_eq!(ticks, 2, "{s}");
    let primary = &s["deployments"][0];
    assert_eq!(primary["status"], "PRIMARY");
    assert!(
        primary["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with("web:1"),
        "{s}"
    );
    assert!(
        primary["rolloutStateReason"]
            .as_str()
            .unwrap()
            .contains("rolling back"),
        "{s}"
    );
    assert!(s["taskDefinition"].as_str().unwrap().ends_with("web:1"));
    let failed_tasks = h.tasks("STOPPED").await;
    assert!(
        failed_tasks
            .iter()
            .filter(|t| t["stopCode"] == "TaskFailedToStart")
            .count()
            >= 3,
        "{failed_tasks:?}"
    );

    // The rollback settles on the old revision with the desired count.
    for _ in 0..10 {
        h.agent_catches_up().await;
        tick_once(&h.app).await;
    }
    let s = h.service().await;
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED", "{s}");
    assert_eq!(count(&s, "runningCount"), 2);
}

async fn instance(h: &Harness) -> String {
    instance_with(h, json!([])).await
}

/// An instance registered with these `attributes` besides the ones every instance has.
async fn instance_with(h: &Harness, attributes: Value) -> String {
    h.ok(
        "RegisterContainerInstance",
        json!({"totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}
        ], "attributes": attributes}),
    )
    .await["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn service_named(h: &Harness, name: &str) -> Value {
    h.ok("DescribeServices", json!({"services": [name]})).await["services"][0].clone()
}

/// The instance each task meant to run is on, for tasks of `group`.
async fn placements(h: &Harness, group: &str) -> Vec<String> {
    h.tasks("RUNNING")
        .await
        .into_iter()
        .filter(|t| t["group"] == group)
        .map(|t| t["containerInstanceArn"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn service_tasks_leave_a_draining_instance_standalone_tasks_stay() {
    let h = harness().await;
    let (a, b) = (instance(&h).await, instance(&h).await);
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "web:1", "memory": 128}]}),
    )
    .await;
    h.ok(
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 2}),
    )
    .await;
    tick_once(&h.app).await;
    h.agent_catches_up().await;
    let mut on = placements(&h, "service:web").await;
    on.sort();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(on, both, "spread puts one task on each instance");
    h.ok(
        "StartTask",
        json!({"taskDefinition": "web", "containerInstances": [a.clone()], "group": "batch"}),
    )
    .await;

    h.ok(
        "UpdateContainerInstancesState",
        json!({"containerInstances": [a.clone()], "status": "DRAINING"}),
    )
    .await;
    for _ in 0..6 {
        tick_once(&h.app).await;
        // Never below 100% healthy while moving.
        let s = h.service().await;
        assert!(count(&s, "runningCount") >= 2, "{s}");
        h.agent_catches_up().await;
    }
    assert_eq!(
        placements(&h, "service:web").await,
        vec![b.clone(), b.clone()]
    );
    assert_eq!(
        placements(&h, "batch").await,
        vec![a.clone()],
        "standalone tasks stay"
    );
    assert_eq!(count(&h.service().await, "runningCount"), 2);
}

#[tokio::test]
async fn scaling_in_keeps_the_spread_even() {
    let h = harness().await;
    let instances = [instance(&h).await, instance(&h).await, instance(&h).await];
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "web:1", "memory": 128}]}),
    )
    .await;
    h.ok(
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 6}),
    )
    .await;
    tick_once(&h.app).await;
    h.agent_catches_up().await;
    h.ok(
        "UpdateService",
        json!({"service": "web", "desiredCount": 3}),
    )
    .await;
    tick_once(&h.app).await;
    h.agent_catches_up().await;
    let mut on = placements(&h, "service:web").await;
    on.sort();
    let mut expected = instances.to_vec();
    expected.sort();
    assert_eq!(on, expected, "one task left on each instance");
}

#[tokio::test]
async fn a_daemon_runs_once_on_every_instance_including_new_ones() {
    let h = harness().await;
    let (a, b) = (instance(&h).await, instance(&h).await);
    for image in ["agent:1", "agent:2"] {
        h.ok(
            "RegisterTaskDefinition",
            json!({"family": "logs", "containerDefinitions": [{"name": "logs", "image": image, "memory": 64}]}),
        )
        .await;
    }
    h.ok(
        "CreateService",
        json!({"serviceName": "logs", "taskDefinition": "logs:1", "schedulingStrategy": "DAEMON"}),
    )
    .await;
    tick_once(&h.app).await;
    h.agent_catches_up().await;
    let mut on = placements(&h, "service:logs").await;
    on.sort();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(on, both);
    assert_eq!(count(&service_named(&h, "logs").await, "desiredCount"), 2);

    // A new instance gets one too; a draining one loses its own.
    let c = instance(&h).await;
    h.ok(
        "UpdateContainerInstancesState",
        json!({"containerInstances": [a.clone()], "status": "DRAINING"}),
    )
    .await;
    for _ in 0..3 {
        tick_once(&h.app).await;
        h.agent_catches_up().await;
    }
    let mut on = placements(&h, "service:logs").await;
    on.sort();
    let mut expected = vec![b.clone(), c.clone()];
    expected.sort();
    assert_eq!(on, expected);
    assert_eq!(count(&service_named(&h, "logs").await, "desiredCount"), 2);

    // A new revision replaces each instance's task, never two on one instance.
    h.ok(
        "UpdateService",
        json!({"service": "logs", "taskDefinition": "logs:2"}),
    )
    .await;
    for _ in 0..6 {
        tick_once(&h.app).await;
        let on = placements(&h, "service:logs").await;
        let mut unique = on.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            on.len(),
            "two daemon tasks on one instance: {on:?}"
        );
        h.agent_catches_up().await;
    }
    let s = service_named(&h, "logs").await;
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1, "{s}");
    assert!(
        s["deployments"][0]["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with("logs:2")
    );
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED", "{s}");
    assert_eq!(count(&s, "runningCount"), 2);
}

#[tokio::test]
async fn a_daemon_runs_only_on_instances_with_the_attributes_its_task_definition_requires() {
    let h = harness().await;
    let _plain = instance(&h).await;
    let allowing = instance_with(
        &h,
        json!([{"name": "com.amazonaws.ecs.capability.privileged-container"}]),
    )
    .await;
    // A privileged container requires that attribute.
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "probe", "containerDefinitions": [{"name": "probe", "image": "probe:1", "memory": 64, "privileged": true}]}),
    )
    .await;
    h.ok(
        "CreateService",
        json!({"serviceName": "probe", "taskDefinition": "probe", "schedulingStrategy": "DAEMON"}),
    )
    .await;
    for _ in 0..3 {
        tick_once(&h.app).await;
        h.agent_catches_up().await;
    }
    assert_eq!(placements(&h, "service:probe").await, vec![allowing]);
    let s = service_named(&h, "probe").await;
    assert_eq!(count(&s, "desiredCount"), 1, "{s}");
    assert_eq!(count(&s, "runningCount"), 1, "{s}");
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED", "{s}");
    assert!(
        !s["events"].to_string().contains("unable to place"),
        "the instance without the attribute is not a place it failed to use: {s}"
    );
}

#[tokio::test]
async fn tasks_failing_health_checks_are_replaced_after_the_grace_period() {
    let h = cluster_with_web().await;
    for (name, grace) in [("web", 0), ("patient", 3600)] {
        h.ok(
            "CreateService",
            json!({"serviceName": name, "taskDefinition": "web:1", "desiredCount": 1,
                   "healthCheckGracePeriodSeconds": grace}),
        )
        .await;
    }
    tick_once(&h.app).await;
    h.agent_catches_up().await;
    for t in h.tasks("RUNNING").await {
        h.ok(
            "SubmitTaskStateChange",
            json!({"task": t["taskArn"], "status": "RUNNING", "healthStatus": "UNHEALTHY"}),
        )
        .await;
    }
    tick_once(&h.app).await;

    let stopping: Vec<Value> = h
        .tasks("STOPPED")
        .await
        .into_iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .collect();
    assert_eq!(stopping.len(), 1, "{stopping:?}");
    assert_eq!(stopping[0]["group"], "service:web");
    assert_eq!(
        stopping[0]["stoppedReason"],
        "Task failed container health checks"
    );
    let web = h.service().await;
    assert!(
        web["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"]
                .as_str()
                .unwrap()
                .ends_with("failed container health checks.")),
        "{web}"
    );
    // Its replacement is placed while the unhealthy one stops; the patient service waits.
    assert_eq!(count(&web, "pendingCount"), 1, "{web}");
    let patient = service_named(&h, "patient").await;
    assert_eq!(
        (
            count(&patient, "runningCount"),
            count(&patient, "pendingCount")
        ),
        (1, 0),
        "{patient}"
    );
}

#[tokio::test]
async fn a_lost_instances_tasks_are_placed_elsewhere() {
    let h = harness().await;
    let (a, b) = (instance(&h).await, instance(&h).await);
    let heartbeat = |app: App, instance: String| async move {
        let h = Harness::with_app(app);
        h.ok(
            "DiscoverPollEndpoint",
            json!({"containerInstance": instance}),
        )
        .await;
    };
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "web:1", "memory": 128}]}),
    )
    .await;
    h.ok(
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 2}),
    )
    .await;
    heartbeat(h.app.clone(), a.clone()).await;
    heartbeat(h.app.clone(), b.clone()).await;
    tick_once(&h.app).await;
    h.agent_catches_up().await;
    assert_eq!(placements(&h, "service:web").await.len(), 2);

    // b's agent keeps calling in; a's falls silent.
    let later = h.later(40);
    heartbeat(later.clone(), b.clone()).await;
    instance_health::tick_once(&later).await;
    let described = h
        .ok(
            "DescribeContainerInstances",
            json!({"containerInstances": [a.clone(), b.clone()]}),
        )
        .await;
    let connected: Vec<bool> = described["containerInstances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["agentConnected"].as_bool().unwrap())
        .collect();
    assert_eq!(connected, [false, true], "{described}");
    assert_eq!(placements(&h, "service:web").await.len(), 2, "not lost yet");

    let lost = h.later(100);
    heartbeat(lost.clone(), b.clone()).await;
    instance_health::tick_once(&lost).await;
    let gone: Vec<Value> = h
        .tasks("STOPPED")
        .await
        .into_iter()
        .filter(|t| t["containerInstanceArn"] == a.as_str())
        .collect();
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_eq!(gone[0]["lastStatus"], "STOPPED");
    assert_eq!(gone[0]["stopCode"], "InfrastructureHealth");
    tick_once(&lost).await;
    h.agent_catches_up().await;
    assert_eq!(
        placements(&h, "service:web").await,
        vec![b.clone(), b.clone()]
    );

    // a's agent comes back: connected again, and it gets work again.
    heartbeat(lost.clone(), a.clone()).await;
    let back = h
        .ok(
            "DescribeContainerInstances",
            json!({"containerInstances": [a.clone()]}),
        )
        .await;
    assert_eq!(back["containerInstances"][0]["agentConnected"], true);
}

/// A cluster of one instance, a load balancer whose listener forwards to target group `web`
/// (deregistration delay 30 s), and service `web` of one task behind it, started on host port
/// 49200. Returns the harness, the target group ARN, the instance's ec2InstanceId, the task.
async fn balanced_service(grace: i64) -> (Harness, String, String, Value) {
    let h = harness().await;
    let instance_arn = instance(&h).await;
    let ec2_id = h
        .ok(
            "DescribeContainerInstances",
            json!({"containerInstances": [instance_arn]}),
        )
        .await["containerInstances"][0]["ec2InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "web:1", "memory": 128,
               "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}),
    )
    .await;
    let lb = h
        .elbv2(
            "CreateLoadBalancer",
            &[("Name", "front"), ("Subnets.member.1", "subnet-a")],
        )
        .await;
    let tg = h
        .elbv2(
            "CreateTargetGroup",
            &[
                ("Name", "web"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", "vpc-1"),
            ],
        )
        .await;
    let (lb, tg) = (
        xml_value(&lb, "LoadBalancerArn"),
        xml_value(&tg, "TargetGroupArn"),
    );
    h.elbv2(
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tg),
        ],
    )
    .await;
    h.elbv2(
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "30"),
        ],
    )
    .await;
    h.ok(
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 1, "healthCheckGracePeriodSeconds": grace,
               "loadBalancers": [{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}]}),
    )
    .await;
    tick_once(&h.app).await;
    let task = h.tasks("RUNNING").await.remove(0);
    // The agent starts it on host port 49200.
    h.ok(
        "SubmitTaskStateChange",
        json!({"task": task["taskArn"], "status": "RUNNING", "containers": [
            {"containerName": "web", "status": "RUNNING",
             "networkBindings": [{"containerPort": 8080, "hostPort": 49200, "protocol": "tcp"}]}]}),
    )
    .await;
    tick_once(&h.app).await;
    (h, tg, ec2_id, task)
}

#[tokio::test]
async fn service_tasks_are_registered_in_their_target_group_and_drain_before_they_stop() {
    let (h, tg, ec2_id, task) = balanced_service(0).await;
    let health = h
        .elbv2("DescribeTargetHealth", &[("TargetGroupArn", &tg)])
        .await;
    assert_eq!(xml_value(&health, "Id"), ec2_id, "{health}");
    assert_eq!(xml_value(&health, "Port"), "49200");
    assert_eq!(xml_value(&health, "State"), "initial");

    // Scaled to zero: the target drains first, the task keeps running meanwhile.
    h.ok(
        "UpdateService",
        json!({"service": "web", "desiredCount": 0}),
    )
    .await;
    tick_once(&h.app).await;
    let health = h
        .elbv2("DescribeTargetHealth", &[("TargetGroupArn", &tg)])
        .await;
    assert_eq!(xml_value(&health, "State"), "draining", "{health}");
    let described = h
        .ok("DescribeTasks", json!({"tasks": [task["taskArn"]]}))
        .await;
    assert_eq!(
        described["tasks"][0]["desiredStatus"], "RUNNING",
        "{described}"
    );
    tick_once(&h.later(10)).await;
    let described = h
        .ok("DescribeTasks", json!({"tasks": [task["taskArn"]]}))
        .await;
    assert_eq!(
        described["tasks"][0]["desiredStatus"], "RUNNING",
        "still draining"
    );
    // Past the deregistration delay it stops.
    tick_once(&h.later(31)).await;
    let described = h
        .ok("DescribeTasks", json!({"tasks": [task["taskArn"]]}))
        .await;
    assert_eq!(
        described["tasks"][0]["desiredStatus"], "STOPPED",
        "{described}"
    );
    assert_eq!(
        described["tasks"][0]["stopCode"],
        "ServiceSchedulerInitiated"
    );
}

#[tokio::test]
async fn a_task_failing_its_load_balancer_checks_is_drained_and_replaced_after_the_grace() {
    let (h, tg, ec2_id, task) = balanced_service(60).await;
    // The data plane finds the target unhealthy.
    let tg_id = tg.rsplit('/').next().unwrap();
    let key = berth_server::records::keys::target("us-east-1", tg_id, &ec2_id, 49200);
    let mut target = h
        .app
        .db
        .get::<berth_model::elbv2::RegisteredTarget>(&key)
        .expect("registered")
        .value;
    target.health = berth_model::elbv2::TargetHealth::checked(
        h.app.clock.now(),
        Some((
            "Target.ResponseCodeMismatch",
            "Health checks failed with these codes: [500]",
        )),
    );
    assert!(
        h.app
            .db
            .commit(berth_server::db::Writes::new().put(&key, target))
            .await
            .unwrap()
    );
    // Within the grace period nothing happens.
    tick_once(&h.later(30)).await;
    let t = h
        .ok("DescribeTasks", json!({"tasks": [task["taskArn"]]}))
        .await["tasks"][0]
        .clone();
    assert!(t["stoppingAt"].is_null(), "{t}");
    // Past it: drained (the task still runs) and replaced.
    tick_once(&h.later(61)).await;
    let t = h
        .ok("DescribeTasks", json!({"tasks": [task["taskArn"]]}))
        .await["tasks"][0]
        .clone();
    assert_eq!(t["desiredStatus"], "RUNNING", "{t}");
    assert!(
        t["stoppedReason"].as_str().unwrap().starts_with(
            "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:"
        ),
        "{t}"
    );
    let health = h
        .elbv2("DescribeTargetHealth", &[("TargetGroupArn", &tg)])
        .await;
    assert_eq!(xml_value(&health, "State"), "draining", "{health}");
    tick_once(&h.later(62)).await;
    let s = h.service().await;
    assert_eq!(count(&s, "pendingCount"), 1, "a replacement is placed: {s}");
    let id = task["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let told =
        format!("(service web) (task {id}) failed ELB health checks in (target-group {tg}).");
    assert!(
        s["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"] == told.as_str()),
        "{s}"
    );
}

/// Writes what the data plane's checks found for the target `ec2_id:port` of group `tg`.
async fn set_target_health(h: &Harness, tg: &str, ec2_id: &str, port: u16, healthy: bool) {
    let tg_id = tg.rsplit('/').next().unwrap();
    let key = berth_server::records::keys::target("us-east-1", tg_id, ec2_id, port);
    let mut target = h
        .app
        .db
        .get::<berth_model::elbv2::RegisteredTarget>(&key)
        .unwrap_or_else(|| panic!("{ec2_id}:{port} is registered in {tg}"))
        .value;
    let failure = (!healthy).then_some(("Target.FailedHealthChecks", "Health checks failed"));
    target.health = berth_model::elbv2::TargetHealth::checked(h.app.clock.now(), failure);
    assert!(
        h.app
            .db
            .commit(berth_server::db::Writes::new().put(&key, target))
            .await
            .unwrap()
    );
}

/// Each target of the group by port: its state.
async fn target_states(h: &Harness, tg: &str) -> Vec<(String, String)> {
    let xml = h
        .elbv2("DescribeTargetHealth", &[("TargetGroupArn", tg)])
        .await;
    xml.split("<member>")
        .skip(1)
        .map(|m| (xml_value(m, "Port"), xml_value(m, "State")))
        .collect()
}

#[tokio::test]
async fn a_rolling_update_behind_a_load_balancer_waits_for_the_new_targets_to_be_healthy() {
    // A grace period of 60 s: a new task that fails its first checks is not replaced yet.
    let (h, tg, ec2_id, old) = balanced_service(60).await;
    set_target_health(&h, &tg, &ec2_id, 49200, true).await;
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "web:2", "memory": 128,
               "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}),
    )
    .await;
    h.ok(
        "UpdateService",
        json!({"service": "web", "taskDefinition": "web:2"}),
    )
    .await;
    tick_once(&h.app).await;
    let new = h
        .tasks("RUNNING")
        .await
        .into_iter()
        .find(|t| t["taskArn"] != old["taskArn"])
        .expect("the new revision's task is placed");
    h.ok(
        "SubmitTaskStateChange",
        json!({"task": new["taskArn"], "status": "RUNNING", "containers": [
            {"containerName": "web", "status": "RUNNING",
             "networkBindings": [{"containerPort": 8080, "hostPort": 49201, "protocol": "tcp"}]}]}),
    )
    .await;
    let old_task = || async {
        h.ok("DescribeTasks", json!({"tasks": [old["taskArn"]]}))
            .await["tasks"][0]
            .clone()
    };
    // RUNNING, but its target is not healthy (yet): the old task keeps serving.
    for (seconds, new_state) in [(1, None), (2, Some(false)), (20, None)] {
        if let Some(healthy) = new_state {
            set_target_health(&h, &tg, &ec2_id, 49201, healthy).await;
        }
        tick_once(&h.later(seconds)).await;
        let states = target_states(&h, &tg).await;
        let expected_new = if new_state == Some(false) || seconds > 2 {
            "unhealthy"
        } else {
            "initial"
        };
        assert_eq!(
            states,
            [
                ("49200".to_string(), "healthy".to_string()),
                ("49201".to_string(), expected_new.to_string())
            ],
            "after {seconds} s"
        );
        let t = old_task().await;
        assert!(t["stoppingAt"].is_null(), "after {seconds} s: {t}");
        let s = h.service().await;
        assert_eq!(s["deployments"][0]["rolloutState"], "IN_PROGRESS", "{s}");
    }
    // Healthy: now the old task drains, then stops.
    set_target_health(&h, &tg, &ec2_id, 49201, true).await;
    tick_once(&h.later(21)).await;
    let states = target_states(&h, &tg).await;
    assert_eq!(
        states,
        [
            ("49200".to_string(), "draining".to_string()),
            ("49201".to_string(), "healthy".to_string())
        ]
    );
    let t = old_task().await;
    assert_eq!(t["desiredStatus"], "RUNNING", "draining: {t}");
    assert!(t["stoppingAt"].is_number(), "{t}");
    tick_once(&h.later(52)).await;
    let t = old_task().await;
    assert_eq!(t["desiredStatus"], "STOPPED", "{t}");
    h.report(&t, "STOPPED").await;
    tick_once(&h.later(53)).await;
    let s = h.service().await;
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED", "{s}");
}

#[tokio::test]
async fn a_service_names_target_groups_that_exist_behind_a_load_balancer() {
    let h = cluster_with_web().await;
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "api", "containerDefinitions": [{"name": "api", "image": "api:1", "memory": 64,
               "portMappings": [{"containerPort": 8080}]}]}),
    )
    .await;
    let lonely = h
        .elbv2(
            "CreateTargetGroup",
            &[
                ("Name", "lonely"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", "vpc-1"),
            ],
        )
        .await;
    let lonely = xml_value(&lonely, "TargetGroupArn");
    let missing = lonely.replace("/lonely/", "/missing/");
    for (lbs, expected) in [
        (
            json!([{"containerName": "api", "containerPort": 8080}]),
            "targetGroupArn (or loadBalancerName) is required",
        ),
        (
            json!([{"targetGroupArn": missing, "containerName": "api", "containerPort": 8080}]),
            "does not exist",
        ),
        (
            json!([{"targetGroupArn": lonely, "containerName": "api", "containerPort": 8080}]),
            "does not have an associated load balancer",
        ),
    ] {
        let (status, out) = h
            .call(
                "CreateService",
                json!({"serviceName": "api", "taskDefinition": "api", "desiredCount": 1, "loadBalancers": lbs}),
            )
            .await;
        assert_eq!(status, 400, "{out}");
        assert_eq!(out["__type"], "InvalidParameterException");
        assert!(out["message"].as_str().unwrap().contains(expected), "{out}");
    }
}
