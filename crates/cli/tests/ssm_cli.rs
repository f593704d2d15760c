//! Parameter Store through the unmodified AWS CLI (`aws ssm …`) against the real `berth
//! server`: versions and selectors, hierarchies by path (the CLI following `NextToken`),
//! describe with filters, history and labels, tags, deletion, the errors Parameter Store
//! answers with, a restart, and SecureString values unreadable in the data directory.

mod support;

use support::{ACCOUNT, Berth, REGION, occurs_in_files, s};

/// The `Name`s of a listing's `Parameters`, in order.
fn names(out: &serde_json::Value) -> Vec<String> {
    out["Parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("no Parameters in {out}"))
        .iter()
        .map(|p| s(&p["Name"]))
        .collect()
}

#[test]
fn parameters_through_the_aws_cli() {
    let mut berth = Berth::start();
    let ssm = |args: &[&str]| {
        let mut all = vec!["ssm"];
        all.extend_from_slice(args);
        berth.aws(&all)
    };

    let put = ssm(&[
        "put-parameter",
        "--name",
        "/app/prod/db-url",
        "--value",
        "postgres-one",
        "--type",
        "String",
        "--description",
        "where the database is",
        "--tags",
        "Key=team,Value=web",
    ])
    .ok();
    assert_eq!(put, serde_json::json!({"Version": 1, "Tier": "Standard"}));
    ssm(&[
        "put-parameter",
        "--name",
        "/app/prod/db-url",
        "--value",
        "postgres-two",
        "--type",
        "String",
    ])
    .fails_with("ParameterAlreadyExists");
    let overwritten = ssm(&[
        "put-parameter",
        "--name",
        "/app/prod/db-url",
        "--value",
        "postgres-two",
        "--overwrite",
    ])
    .ok();
    assert_eq!(overwritten["Version"], 2);

    let got = ssm(&["get-parameter", "--name", "/app/prod/db-url"]).ok();
    let p = &got["Parameter"];
    assert_eq!(p["Value"], "postgres-two");
    assert_eq!(p["Version"], 2);
    assert_eq!(p["Type"], "String");
    let arn = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/prod/db-url");
    assert_eq!(p["ARN"], arn.as_str());
    let v1 = ssm(&["get-parameter", "--name", "/app/prod/db-url:1"]).ok();
    assert_eq!(v1["Parameter"]["Value"], "postgres-one");
    assert_eq!(v1["Parameter"]["Selector"], ":1");
    let by_arn = ssm(&["get-parameter", "--name", &arn]).ok();
    assert_eq!(by_arn["Parameter"]["Value"], "postgres-two");

    // Labels select a version.
    let labelled = ssm(&[
        "label-parameter-version",
        "--name",
        "/app/prod/db-url",
        "--parameter-version",
        "1",
        "--labels",
        "stable",
    ])
    .ok();
    assert_eq!(labelled["ParameterVersion"], 1);
    let stable = ssm(&["get-parameter", "--name", "/app/prod/db-url:stable"]).ok();
    assert_eq!(stable["Parameter"]["Value"], "postgres-one");
    let history = ssm(&["get-parameter-history", "--name", "/app/prod/db-url"]).ok();
    let versions: Vec<i64> = history["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(
        history["Parameters"][0]["Labels"],
        serde_json::json!(["stable"])
    );

    // A SecureString: opaque unless decrypted.
    ssm(&[
        "put-parameter",
        "--name",
        "/app/prod/password",
        "--value",
        "pw-Qj4-plaintext",
        "--type",
        "SecureString",
    ])
    .ok();
    let hidden = ssm(&["get-parameter", "--name", "/app/prod/password"]).ok();
    assert_ne!(hidden["Parameter"]["Value"], "pw-Qj4-plaintext");
    let open = ssm(&[
        "get-parameter",
        "--name",
        "/app/prod/password",
        "--with-decryption",
    ])
    .ok();
    assert_eq!(open["Parameter"]["Value"], "pw-Qj4-plaintext");
    assert!(!occurs_in_files(&berth.data_dir(), b"pw-Qj4-plaintext"));

    for i in 0..3 {
        ssm(&[
            "put-parameter",
            "--name",
            &format!("/app/dev/p{i}"),
            "--value",
            "v",
            "--type",
            "StringList",
        ])
        .ok();
    }
    ssm(&[
        "put-parameter",
        "--name",
        "flat",
        "--value",
        "x",
        "--type",
        "String",
    ])
    .ok();

    // By path, one level or recursively; the CLI follows NextToken through pages of one.
    let dev = ssm(&[
        "get-parameters-by-path",
        "--path",
        "/app/dev",
        "--page-size",
        "1",
    ])
    .ok();
    assert_eq!(names(&dev), ["/app/dev/p0", "/app/dev/p1", "/app/dev/p2"]);
    let none = ssm(&["get-parameters-by-path", "--path", "/app"]).ok();
    assert!(names(&none).is_empty(), "{none}");
    let all = ssm(&[
        "get-parameters-by-path",
        "--path",
        "/app",
        "--recursive",
        "--with-decryption",
        "--page-size",
        "2",
    ])
    .ok();
    let mut found = names(&all);
    found.sort();
    assert_eq!(
        found,
        [
            "/app/dev/p0",
            "/app/dev/p1",
            "/app/dev/p2",
            "/app/prod/db-url",
            "/app/prod/password"
        ]
    );
    assert!(
        all["Parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["Value"] == "pw-Qj4-plaintext")
    );

    let described = ssm(&[
        "describe-parameters",
        "--parameter-filters",
        "Key=Type,Values=SecureString",
    ])
    .ok();
    assert_eq!(names(&described), ["/app/prod/password"]);
    assert_eq!(described["Parameters"][0]["KeyId"], "alias/aws/ssm");
    let every = ssm(&["describe-parameters", "--page-size", "2"]).ok();
    assert_eq!(names(&every).len(), 6, "{every}");
    let prefixed = ssm(&[
        "describe-parameters",
        "--parameter-filters",
        "Key=Name,Option=BeginsWith,Values=/app/prod",
    ])
    .ok();
    assert_eq!(names(&prefixed).len(), 2, "{prefixed}");

    let many = ssm(&[
        "get-parameters",
        "--names",
        "/app/prod/db-url",
        "/app/missing",
        "/app/prod/db-url:7",
    ])
    .ok();
    assert_eq!(names(&many), ["/app/prod/db-url"]);
    assert_eq!(
        many["InvalidParameters"],
        serde_json::json!(["/app/missing", "/app/prod/db-url:7"])
    );

    // Tags.
    ssm(&[
        "add-tags-to-resource",
        "--resource-type",
        "Parameter",
        "--resource-id",
        "/app/prod/db-url",
        "--tags",
        "Key=env,Value=prod",
    ])
    .ok();
    let tags = ssm(&[
        "list-tags-for-resource",
        "--resource-type",
        "Parameter",
        "--resource-id",
        "/app/prod/db-url",
    ])
    .ok();
    assert_eq!(
        tags["TagList"],
        serde_json::json!([{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "prod"}])
    );

    // Everything is still there after a restart, SecureStrings still open.
    berth.restart();
    let ssm = |args: &[&str]| {
        let mut all = vec!["ssm"];
        all.extend_from_slice(args);
        berth.aws(&all)
    };
    let open = ssm(&[
        "get-parameter",
        "--name",
        "/app/prod/password",
        "--with-decryption",
    ])
    .ok();
    assert_eq!(open["Parameter"]["Value"], "pw-Qj4-plaintext");
    let v1 = ssm(&["get-parameter", "--name", "/app/prod/db-url:stable"]).ok();
    assert_eq!(v1["Parameter"]["Version"], 1);

    // Errors as Parameter Store answers them.
    let missing = ssm(&["get-parameter", "--name", "/app/nope"]).fails_with("ParameterNotFound");
    assert!(missing.contains("/app/nope"), "{missing}");
    ssm(&["get-parameter", "--name", "/app/prod/db-url:9"]).fails_with("ParameterVersionNotFound");
    let bad = ssm(&[
        "put-parameter",
        "--name",
        "app/x",
        "--value",
        "v",
        "--type",
        "String",
    ])
    .fails_with("ValidationException");
    assert!(bad.contains("Name"), "{bad}");
    ssm(&[
        "put-parameter",
        "--name",
        &"/l".repeat(16),
        "--value",
        "v",
        "--type",
        "String",
    ])
    .fails_with("HierarchyLevelLimitExceededException");
    ssm(&[
        "put-parameter",
        "--name",
        "big",
        "--value",
        &"x".repeat(4097),
        "--type",
        "String",
    ])
    .fails_with("ValidationException");
    ssm(&[
        "put-parameter",
        "--name",
        "k",
        "--value",
        "v",
        "--type",
        "SecureString",
        "--key-id",
        "alias/mine",
    ])
    .fails_with("InvalidKeyId");

    // Deletion.
    ssm(&["delete-parameter", "--name", "/app/prod/db-url"]).ok();
    ssm(&["delete-parameter", "--name", "/app/prod/db-url"]).fails_with("ParameterNotFound");
    let deleted = ssm(&["delete-parameters", "--names", "/app/dev/p0", "/app/gone"]).ok();
    assert_eq!(
        deleted["DeletedParameters"],
        serde_json::json!(["/app/dev/p0"])
    );
    assert_eq!(
        deleted["InvalidParameters"],
        serde_json::json!(["/app/gone"])
    );
    let left = ssm(&["get-parameters-by-path", "--path", "/", "--recursive"]).ok();
    assert_eq!(
        names(&left),
        ["/app/dev/p1", "/app/dev/p2", "/app/prod/password", "flat"]
    );
}
