//! The registry end to end: the real `berth server`, the real AWS CLI for ECR and the real
//! docker CLI logging in, pushing, pulling from a clean cache and running the pulled image.
//! Needs a Docker Engine (which allows plain HTTP to 127.0.0.0/8 registries) and Debian's
//! `busybox-static`.

mod support;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};
use support::images::{build_busybox_image, docker_in};
use support::*;

/// Removes every image the test made (by id, so no tag or pulled digest is left), even when
/// it fails.
struct Made(Vec<String>);

impl Drop for Made {
    fn drop(&mut self) {
        for image in &self.0 {
            docker_in(None, &["rmi", "-f", image], None);
        }
    }
}

fn image_id(tag: &str) -> String {
    let out = docker_in(None, &["image", "inspect", "-f", "{{.Id}}", tag], None);
    assert!(out.status.success(), "no image {tag}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[track_caller]
fn docker_ok(config: &Path, args: &[&str]) -> String {
    let out = docker_in(Some(config), args, None);
    assert!(
        out.status.success(),
        "docker {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn tags_of(berth: &Berth, repo: &str) -> Vec<String> {
    let listed = berth
        .aws(&["ecr", "list-images", "--repository-name", repo])
        .ok();
    let mut tags: Vec<String> = listed["imageIds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|id| id["imageTag"].as_str().map(str::to_string))
        .collect();
    tags.sort();
    tags
}

#[test]
fn docker_pushes_to_berth_and_pulls_and_runs_from_a_clean_cache() {
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    let source = format!("berth-test/registry-source:{nonce}");
    let other = format!("berth-test/registry-other:{nonce}");
    let mut made = Made(vec![source.clone(), other.clone()]);
    build_busybox_image(&source, Some(&format!("registry test {nonce}")));
    build_busybox_image(&other, Some(&format!("other image {nonce}")));
    made.0 = vec![image_id(&source), image_id(&other)];

    let berth = Berth::start();
    let registry = format!("127.0.0.1:{}", berth.port);
    let repo = "berth-test/web";
    let created = berth
        .aws(&["ecr", "create-repository", "--repository-name", repo])
        .ok();
    let uri = created["repository"]["repositoryUri"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(uri, format!("{registry}/{repo}"));

    let token = berth.aws(&["ecr", "get-authorization-token"]).ok();
    let data = only(&token, "authorizationData");
    assert_eq!(data["proxyEndpoint"], format!("http://{registry}"));
    let password = berth
        .aws(&["ecr", "get-login-password"])
        .ok()
        .as_str()
        .unwrap()
        .trim()
        .to_string();

    let config = tempfile::tempdir().unwrap();
    let config = config.path();
    let refused = docker_in(
        Some(config),
        &["login", "-u", "AWS", "--password-stdin", &registry],
        Some("not-a-token"),
    );
    assert!(!refused.status.success(), "a bad password logs in");
    let login = docker_in(
        Some(config),
        &["login", "-u", "AWS", "--password-stdin", &registry],
        Some(&password),
    );
    assert!(
        login.status.success(),
        "docker login failed:\n{}",
        String::from_utf8_lossy(&login.stderr)
    );

    // Push under two tags: the second push finds every layer there already.
    let v1 = format!("{uri}:v1");
    let v2 = format!("{uri}:v2");
    docker_ok(config, &["tag", &source, &v1]);
    docker_ok(config, &["tag", &source, &v2]);
    docker_ok(config, &["push", &v1]);
    let second = docker_ok(config, &["push", &v2]);
    assert!(second.contains("Layer already exists"), "{second}");
    let blobs = walk(&berth.data_dir().join("registry/blobs"));
    assert_eq!(blobs, 4, "a config and three layers, each stored once");

    let described = berth
        .aws(&["ecr", "describe-images", "--repository-name", repo])
        .ok();
    let detail = only(&described, "imageDetails");
    let mut image_tags = strings(&detail["imageTags"]);
    image_tags.sort();
    assert_eq!(image_tags, ["v1", "v2"]);
    assert_eq!(
        detail["imageManifestMediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert!(detail["imageSizeInBytes"].as_i64().unwrap() > 500_000);
    assert_eq!(tags_of(&berth, repo), ["v1", "v2"]);

    // A clean cache: every tag of the image gone, then pulled back from Berth and run.
    docker_ok(config, &["rmi", &v1, &v2, &source]);
    assert!(
        !docker_in(None, &["image", "inspect", &v1], None)
            .status
            .success()
    );
    let pulled = docker_ok(config, &["pull", &v1]);
    assert!(pulled.contains("Pull complete"), "{pulled}");
    let ran = docker_ok(config, &["run", "--rm", &v1, "echo", "ok"]);
    assert_eq!(ran.trim(), "ok");

    let deleted = berth
        .aws(&[
            "ecr",
            "batch-delete-image",
            "--repository-name",
            repo,
            "--image-ids",
            "imageTag=v2",
        ])
        .ok();
    assert_eq!(deleted["failures"], serde_json::json!([]));
    assert_eq!(tags_of(&berth, repo), ["v1"]);

    // An IMMUTABLE repository refuses to move a tag.
    let locked = "berth-test/locked";
    let created = berth
        .aws(&[
            "ecr",
            "create-repository",
            "--repository-name",
            locked,
            "--image-tag-mutability",
            "IMMUTABLE",
        ])
        .ok();
    assert_eq!(created["repository"]["imageTagMutability"], "IMMUTABLE");
    let fixed = format!("{registry}/{locked}:v1");
    docker_ok(config, &["tag", &v1, &fixed]);
    docker_ok(config, &["push", &fixed]);
    docker_ok(config, &["tag", &other, &fixed]);
    let overwrite = docker_in(Some(config), &["push", &fixed], None);
    assert!(
        !overwrite.status.success(),
        "an immutable tag was overwritten"
    );
    let said = String::from_utf8_lossy(&overwrite.stderr);
    assert!(said.contains("cannot be overwritten"), "{said}");

    berth
        .aws(&["ecr", "delete-repository", "--repository-name", repo])
        .fails_with("RepositoryNotEmptyException");
    berth
        .aws(&[
            "ecr",
            "delete-repository",
            "--repository-name",
            repo,
            "--force",
        ])
        .ok();
    berth
        .aws(&["ecr", "describe-repositories", "--repository-names", repo])
        .fails_with("RepositoryNotFoundException");
    docker_in(Some(config), &["logout", &registry], None);
}

/// How many files are under `dir`.
fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Lifecycle policies through the real AWS CLI (no Docker needed): the shapes botocore
/// expects, its waiter, and ECR's error codes.
#[test]
fn the_aws_cli_puts_previews_and_deletes_a_lifecycle_policy() {
    let berth = Berth::start();
    let repo = "berth-test/lifecycle";
    berth
        .aws(&["ecr", "create-repository", "--repository-name", repo])
        .ok();
    let policy = r#"{"rules":[{"rulePriority":1,"description":"expire untagged images two weeks after their push","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;
    berth
        .aws(&["ecr", "get-lifecycle-policy", "--repository-name", repo])
        .fails_with("LifecyclePolicyNotFoundException");
    let put = berth
        .aws(&[
            "ecr",
            "put-lifecycle-policy",
            "--repository-name",
            repo,
            "--lifecycle-policy-text",
            policy,
        ])
        .ok();
    assert_eq!(put["lifecyclePolicyText"], policy);
    assert_eq!(put["repositoryName"], repo);
    let got = berth
        .aws(&["ecr", "get-lifecycle-policy", "--repository-name", repo])
        .ok();
    assert_eq!(got["lifecyclePolicyText"], policy);

    let tagged_without_prefix = policy.replace("untagged", "tagged");
    let refused = berth
        .aws(&[
            "ecr",
            "put-lifecycle-policy",
            "--repository-name",
            repo,
            "--lifecycle-policy-text",
            &tagged_without_prefix,
        ])
        .fails_with("InvalidParameterException");
    assert!(refused.contains("tagPrefixList"), "{refused}");

    let started = berth
        .aws(&[
            "ecr",
            "start-lifecycle-policy-preview",
            "--repository-name",
            repo,
        ])
        .ok();
    assert_eq!(started["status"], "COMPLETE");
    berth
        .aws(&[
            "ecr",
            "wait",
            "lifecycle-policy-preview-complete",
            "--repository-name",
            repo,
        ])
        .ok();
    let preview = berth
        .aws(&[
            "ecr",
            "get-lifecycle-policy-preview",
            "--repository-name",
            repo,
        ])
        .ok();
    assert_eq!(preview["previewResults"], serde_json::json!([]));
    assert_eq!(preview["summary"]["expiringImageTotalCount"], 0);

    let deleted = berth
        .aws(&["ecr", "delete-lifecycle-policy", "--repository-name", repo])
        .ok();
    assert_eq!(deleted["lifecyclePolicyText"], policy);
    berth
        .aws(&["ecr", "delete-lifecycle-policy", "--repository-name", repo])
        .fails_with("LifecyclePolicyNotFoundException");
}
