//! The official Rust SDK (`aws-sdk-ecs`) against the real binary: another client stack with its
//! own serializers, signer, paginators and error parsing.

mod support;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::Region;
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::{
    ClusterField, ContainerDefinition, KeyValuePair, PortMapping, TransportProtocol,
};
use support::{ACCESS_KEY, ACCOUNT, Berth, REGION, SECRET_KEY};

fn client(berth: &Berth, secret: &str) -> Client {
    let credentials =
        aws_credential_types::Credentials::new(ACCESS_KEY, secret, None, None, "berth-test");
    let config = aws_sdk_ecs::config::Builder::new()
        .behavior_version_latest()
        .endpoint_url(&berth.endpoint)
        .region(Region::new(REGION))
        .credentials_provider(credentials)
        .build();
    Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_sdk_creates_registers_lists_and_describes() {
    let berth = Berth::start();
    let ecs = client(&berth, SECRET_KEY);

    let created = ecs
        .create_cluster()
        .cluster_name("sdk01")
        .send()
        .await
        .expect("create_cluster");
    let cluster = created.cluster().expect("cluster");
    assert_eq!(cluster.cluster_name(), Some("sdk01"));
    assert_eq!(cluster.status(), Some("ACTIVE"));
    assert_eq!(
        cluster.cluster_arn(),
        Some(format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/sdk01").as_str())
    );
    for name in ["sdk02", "sdk03"] {
        ecs.create_cluster()
            .cluster_name(name)
            .send()
            .await
            .expect("create_cluster");
    }

    let web = ContainerDefinition::builder()
        .name("web")
        .image("httpd:2.4")
        .cpu(256)
        .memory(128)
        .essential(true)
        .port_mappings(
            PortMapping::builder()
                .container_port(80)
                .host_port(0)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .environment(KeyValuePair::builder().name("STAGE").value("01").build())
        .build();
    let registered = ecs
        .register_task_definition()
        .family("sdkweb")
        .container_definitions(web)
        .send()
        .await
        .expect("register_task_definition");
    let td = registered.task_definition().expect("taskDefinition");
    assert_eq!(td.family(), Some("sdkweb"));
    assert_eq!(td.revision(), 1);
    assert_eq!(
        td.task_definition_arn(),
        Some(format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/sdkweb:1").as_str())
    );
    let c = &td.container_definitions()[0];
    assert_eq!(c.image(), Some("httpd:2.4"));
    assert_eq!(c.cpu(), 256);
    assert_eq!(c.memory(), Some(128));
    assert_eq!(c.port_mappings()[0].container_port(), Some(80));
    assert_eq!(c.port_mappings()[0].host_port(), Some(0));
    assert_eq!(c.environment()[0].value(), Some("01"));
    assert!(
        td.registered_at().is_some(),
        "registeredAt did not parse as a timestamp"
    );

    // The paginator follows nextToken one cluster at a time.
    let mut arns: Vec<String> = ecs
        .list_clusters()
        .max_results(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("list_clusters pages");
    arns.sort();
    assert_eq!(
        arns,
        ["sdk01", "sdk02", "sdk03"].map(|n| format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{n}"))
    );
    let pages = ecs
        .list_clusters()
        .max_results(1)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("pages");
    assert!(
        pages.len() >= 3,
        "expected at least three pages, got {}",
        pages.len()
    );

    let described = ecs
        .describe_clusters()
        .clusters("sdk01")
        .clusters("nope")
        .include(ClusterField::Statistics)
        .include(ClusterField::Settings)
        .send()
        .await
        .expect("describe_clusters");
    assert_eq!(described.clusters().len(), 1);
    let c = &described.clusters()[0];
    assert_eq!(c.cluster_name(), Some("sdk01"));
    assert_eq!(c.registered_container_instances_count(), 0);
    assert!(
        c.statistics()
            .iter()
            .any(|s| s.name() == Some("runningEC2TasksCount") && s.value() == Some("0")),
        "{:?}",
        c.statistics()
    );
    assert_eq!(described.failures().len(), 1);
    assert_eq!(described.failures()[0].reason(), Some("MISSING"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_sdk_sees_modelled_errors() {
    let berth = Berth::start();
    let ecs = client(&berth, SECRET_KEY);
    let err = ecs
        .describe_services()
        .cluster("missing")
        .services("web")
        .send()
        .await
        .expect_err("missing cluster must fail");
    let service_error = err.into_service_error();
    assert!(
        service_error.is_cluster_not_found_exception(),
        "expected ClusterNotFoundException, got {service_error:?}"
    );
    assert!(
        service_error.message().is_some_and(|m| !m.is_empty()),
        "no message: {service_error:?}"
    );

    let err = ecs
        .run_task()
        .cluster("missing")
        .task_definition("web")
        .send()
        .await
        .expect_err("must fail");
    assert!(err.into_service_error().is_cluster_not_found_exception());

    let wrong = client(&berth, "not-the-secret");
    let err = wrong
        .list_clusters()
        .send()
        .await
        .expect_err("a wrong secret must fail");
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
}
