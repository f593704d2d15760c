//! Secrets Manager through the unmodified AWS CLI (`aws secretsmanager …`) against the real
//! `berth server`: versions, lookups by name and ARN, listing, deletion with a recovery window
//! and without, restore, tags, and the errors Secrets Manager answers with. Values must not be
//! readable in the data directory.

mod support;

use support::{ACCOUNT, Berth, REGION, occurs_in_files, s};

#[test]
fn secrets_through_the_aws_cli() {
    let mut berth = Berth::start();
    let sm = |args: &[&str]| {
        let mut all = vec!["secretsmanager"];
        all.extend_from_slice(args);
        berth.aws(&all)
    };

    let created = sm(&[
        "create-secret",
        "--name",
        "prod/db",
        "--secret-string",
        "first-Xq7-value",
        "--description",
        "the database password",
        "--tags",
        "Key=team,Value=web",
    ])
    .ok();
    let arn = s(&created["ARN"]);
    let prefix = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/db-");
    let suffix = arn.strip_prefix(&prefix).unwrap_or_else(|| panic!("{arn}"));
    assert!(
        suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_alphanumeric()),
        "{arn}"
    );
    assert_eq!(created["Name"], "prod/db");
    let first_version = s(&created["VersionId"]);

    // By name, by ARN and by the ARN without its suffix.
    let partial = arn
        .trim_end_matches(suffix)
        .trim_end_matches('-')
        .to_owned();
    for id in ["prod/db", arn.as_str(), partial.as_str()] {
        let got = sm(&["get-secret-value", "--secret-id", id]).ok();
        assert_eq!(got["SecretString"], "first-Xq7-value", "{id}: {got}");
        assert_eq!(got["ARN"], arn.as_str());
        assert_eq!(got["VersionId"], first_version.as_str());
        assert_eq!(got["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    }

    // A new value becomes AWSCURRENT, the old one AWSPREVIOUS.
    let put = sm(&[
        "put-secret-value",
        "--secret-id",
        "prod/db",
        "--secret-string",
        "second-value",
    ])
    .ok();
    let second_version = s(&put["VersionId"]);
    assert_ne!(second_version, first_version);
    assert_eq!(put["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    let current = sm(&["get-secret-value", "--secret-id", &arn]).ok();
    assert_eq!(current["SecretString"], "second-value");
    let previous = sm(&[
        "get-secret-value",
        "--secret-id",
        "prod/db",
        "--version-stage",
        "AWSPREVIOUS",
    ])
    .ok();
    assert_eq!(previous["SecretString"], "first-Xq7-value");
    assert_eq!(previous["VersionId"], first_version.as_str());
    let by_id = sm(&[
        "get-secret-value",
        "--secret-id",
        "prod/db",
        "--version-id",
        &first_version,
    ])
    .ok();
    assert_eq!(by_id["VersionStages"], serde_json::json!(["AWSPREVIOUS"]));

    let described = sm(&["describe-secret", "--secret-id", "prod/db"]).ok();
    assert_eq!(described["Description"], "the database password");
    assert_eq!(
        described["Tags"],
        serde_json::json!([{"Key": "team", "Value": "web"}])
    );
    let stages = &described["VersionIdsToStages"];
    assert_eq!(stages[&second_version], serde_json::json!(["AWSCURRENT"]));
    assert_eq!(stages[&first_version], serde_json::json!(["AWSPREVIOUS"]));
    assert!(described.get("DeletedDate").is_none(), "{described}");

    // A third value: only the current and the previous version are kept.
    sm(&[
        "update-secret",
        "--secret-id",
        "prod/db",
        "--secret-string",
        "third",
        "--description",
        "rotated",
    ])
    .ok();
    let described = sm(&["describe-secret", "--secret-id", "prod/db"]).ok();
    assert_eq!(described["Description"], "rotated");
    let stages = described["VersionIdsToStages"].as_object().unwrap();
    assert_eq!(stages.len(), 2, "{described}");
    assert_eq!(stages[&second_version], serde_json::json!(["AWSPREVIOUS"]));

    // Values are stored encrypted, and read again after a restart (the key file stays).
    assert!(!occurs_in_files(&berth.data_dir(), b"first-Xq7-value"));
    assert!(berth.data_dir().join("secrets.key").exists());

    // Binary values travel base64-encoded.
    let bytes = berth.file("blob.bin", "binary\u{1}value");
    let path = bytes.trim_start_matches("file://");
    sm(&[
        "create-secret",
        "--name",
        "blob",
        "--secret-binary",
        &format!("fileb://{path}"),
    ])
    .ok();
    let got = sm(&["get-secret-value", "--secret-id", "blob"]).ok();
    assert_eq!(got["SecretBinary"], "YmluYXJ5AXZhbHVl", "{got}");
    assert!(got.get("SecretString").is_none());

    sm(&["create-secret", "--name", "api-key", "--secret-string", "k"]).ok();
    let listed = sm(&["list-secrets", "--page-size", "1"]).ok();
    let names: Vec<String> = listed["SecretList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["Name"]))
        .collect();
    // The CLI follows NextToken through pages of one; created-date order.
    assert_eq!(names, ["prod/db", "blob", "api-key"]);
    // Given MaxResults itself, the CLI asks for one page.
    let page = sm(&["list-secrets", "--max-results", "1"]).ok();
    assert_eq!(page["SecretList"].as_array().unwrap().len(), 1);
    assert!(page["NextToken"].is_string(), "{page}");
    let filtered = sm(&["list-secrets", "--filters", "Key=name,Values=prod/"]).ok();
    assert_eq!(filtered["SecretList"].as_array().unwrap().len(), 1);
    assert_eq!(
        filtered["SecretList"][0]["SecretVersionsToStages"][&second_version],
        serde_json::json!(["AWSPREVIOUS"])
    );

    sm(&[
        "tag-resource",
        "--secret-id",
        "api-key",
        "--tags",
        "Key=env,Value=prod",
    ])
    .ok();
    sm(&[
        "untag-resource",
        "--secret-id",
        "prod/db",
        "--tag-keys",
        "team",
    ])
    .ok();
    let tagged = sm(&["describe-secret", "--secret-id", "api-key"]).ok();
    assert_eq!(
        tagged["Tags"],
        serde_json::json!([{"Key": "env", "Value": "prod"}])
    );
    let untagged = sm(&["describe-secret", "--secret-id", "prod/db"]).ok();
    assert!(untagged.get("Tags").is_none(), "{untagged}");

    berth.restart();
    let sm = |args: &[&str]| {
        let mut all = vec!["secretsmanager"];
        all.extend_from_slice(args);
        berth.aws(&all)
    };
    assert_eq!(
        sm(&["get-secret-value", "--secret-id", "prod/db"]).ok()["SecretString"],
        "third"
    );

    // Deletion with a recovery window: described, not readable, restorable.
    let deleted = sm(&[
        "delete-secret",
        "--secret-id",
        "prod/db",
        "--recovery-window-in-days",
        "7",
    ])
    .ok();
    assert_eq!(deleted["ARN"], arn.as_str());
    let deletion = deleted["DeletionDate"].as_f64().expect("DeletionDate");
    let refused =
        sm(&["get-secret-value", "--secret-id", "prod/db"]).fails_with("InvalidRequestException");
    assert!(refused.contains("marked for deletion"), "{refused}");
    sm(&[
        "put-secret-value",
        "--secret-id",
        "prod/db",
        "--secret-string",
        "x",
    ])
    .fails_with("InvalidRequestException");
    let described = sm(&["describe-secret", "--secret-id", "prod/db"]).ok();
    let deleted_at = described["DeletedDate"].as_f64().expect("DeletedDate");
    let recovery = deletion - deleted_at;
    assert!((recovery - 7.0 * 86400.0).abs() < 1.0, "{recovery}");
    let listed = sm(&["list-secrets"]).ok();
    assert_eq!(listed["SecretList"].as_array().unwrap().len(), 2);
    let listed = sm(&["list-secrets", "--include-planned-deletion"]).ok();
    assert_eq!(listed["SecretList"].as_array().unwrap().len(), 3);
    sm(&["create-secret", "--name", "prod/db", "--secret-string", "y"])
        .fails_with("InvalidRequestException");
    let restored = sm(&["restore-secret", "--secret-id", &arn]).ok();
    assert_eq!(restored["Name"], "prod/db");
    assert_eq!(
        sm(&["get-secret-value", "--secret-id", "prod/db"]).ok()["SecretString"],
        "third"
    );

    // Forced deletion: gone at once, and the name is free again (under a new ARN).
    sm(&[
        "delete-secret",
        "--secret-id",
        "prod/db",
        "--force-delete-without-recovery",
    ])
    .ok();
    sm(&["get-secret-value", "--secret-id", "prod/db"]).fails_with("ResourceNotFoundException");
    sm(&["describe-secret", "--secret-id", &arn]).fails_with("ResourceNotFoundException");
    let again = sm(&[
        "create-secret",
        "--name",
        "prod/db",
        "--secret-string",
        "new",
    ])
    .ok();
    assert_ne!(again["ARN"], arn.as_str());
    sm(&["get-secret-value", "--secret-id", &arn]).fails_with("ResourceNotFoundException");

    // Errors as Secrets Manager answers them.
    let exists = sm(&["create-secret", "--name", "api-key", "--secret-string", "z"])
        .fails_with("ResourceExistsException");
    assert!(exists.contains("api-key"), "{exists}");
    let window = sm(&[
        "delete-secret",
        "--secret-id",
        "api-key",
        "--recovery-window-in-days",
        "3",
    ])
    .fails_with("InvalidParameterException");
    assert!(window.contains("RecoveryWindowInDays"), "{window}");
    let name = sm(&[
        "create-secret",
        "--name",
        "bad name",
        "--secret-string",
        "z",
    ])
    .fails_with("InvalidParameterException");
    assert!(name.contains("Name"), "{name}");
    sm(&[
        "get-secret-value",
        "--secret-id",
        "api-key",
        "--version-stage",
        "AWSPREVIOUS",
    ])
    .fails_with("ResourceNotFoundException");
    sm(&["get-secret-value", "--secret-id", "nope"]).fails_with("ResourceNotFoundException");
}
