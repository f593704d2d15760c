//! DESIGN.md §4's rules of direction, checked against `cargo metadata`.

use std::collections::BTreeMap;
use std::process::Command;

/// Each workspace crate's normal (non-dev) dependencies, by crate name.
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let mut map = BTreeMap::new();
    for package in meta["packages"].as_array().expect("packages") {
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().expect("name").to_string())
            .collect();
        map.insert(package["name"].as_str().expect("name").to_string(), deps);
    }
    map
}

fn internal(deps: &[String]) -> Vec<&str> {
    deps.iter()
        .map(String::as_str)
        .filter(|d| d.starts_with("berth-"))
        .collect()
}

#[test]
fn crates_keep_the_rules_of_direction() {
    let all = dependencies();
    assert!(
        all.contains_key("berth-model") && all.contains_key("berth-server"),
        "workspace crates found: {:?}",
        all.keys()
    );
    for leaf in ["berth-model", "berth-sigv4", "berth-store"] {
        assert_eq!(
            internal(&all[leaf]),
            Vec::<&str>::new(),
            "{leaf} must depend on no other Berth crate"
        );
    }
    for pure in ["berth-api", "berth-scheduler"] {
        assert_eq!(
            internal(&all[pure]),
            vec!["berth-model"],
            "{pure} may depend on berth-model only"
        );
        for forbidden in ["tokio", "futures", "async-trait", "rand", "berth-store"] {
            assert!(
                !all[pure].iter().any(|d| d == forbidden),
                "{pure} must stay synchronous and pure, but depends on {forbidden}"
            );
        }
    }
    for part in internal(&all["berth-client"]) {
        assert!(
            ["berth-model", "berth-api", "berth-sigv4"].contains(&part),
            "berth-client speaks to the server over HTTP only, but depends on {part}"
        );
    }
    assert!(
        all.contains_key("berth-lb"),
        "the load balancer crate exists"
    );
    for part in internal(&all["berth-lb"]) {
        assert!(
            ["berth-model", "berth-client"].contains(&part),
            "berth-lb reaches state through berth-client over HTTP only, but depends on {part}"
        );
    }
    for (name, deps) in &all {
        if deps.iter().any(|d| d == "berth-store") {
            assert!(
                name == "berth-server" || name == "berth-cli",
                "only the server writes to the store, but {name} depends on berth-store"
            );
        }
        if deps.iter().any(|d| d == "bollard") {
            assert_eq!(
                name, "berth-agent",
                "bollard belongs to the agent's docker runtime only, but {name} uses it"
            );
        }
        assert!(
            !deps.iter().any(|d| d == "berth-testkit"),
            "berth-testkit is a dev-dependency only, but {name} depends on it"
        );
    }
}
