//! Parameter Store in process: validation and its error codes, versions and selectors, labels,
//! the version limit, SecureStrings, paging of the listings, tags and deletion.

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{Harness, harness};

async fn ok(h: &Harness, op: &str, body: Value) -> Value {
    let (status, out) = h.call_service("AmazonSSM", op, body).await;
    assert_eq!(status, StatusCode::OK, "{op}: {out}");
    out
}

/// The call fails with `code` (HTTP 400); its message.
async fn fails(h: &Harness, op: &str, body: Value, code: &str) -> String {
    let (status, out) = h.call_service("AmazonSSM", op, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{op}: {out}");
    assert_eq!(out["__type"], code, "{op}: {out}");
    out["message"].as_str().unwrap_or_default().to_owned()
}

async fn put(h: &Harness, name: &str, value: &str) -> i64 {
    let out = ok(
        h,
        "PutParameter",
        json!({"Name": name, "Value": value, "Type": "String", "Overwrite": true}),
    )
    .await;
    out["Version"].as_i64().unwrap()
}

fn names(out: &Value) -> Vec<String> {
    out["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn versions_selectors_and_labels() {
    let h = harness().await;
    let m = fails(
        &h,
        "PutParameter",
        json!({"Name": "/app/db", "Value": "a"}),
        "ValidationException",
    )
    .await;
    assert!(m.contains("Type"), "{m}");
    let first = ok(
        &h,
        "PutParameter",
        json!({"Name": "/app/db", "Value": "one", "Type": "String", "Description": "the db"}),
    )
    .await;
    assert_eq!(first, json!({"Version": 1, "Tier": "Standard"}));
    let m = fails(
        &h,
        "PutParameter",
        json!({"Name": "/app/db", "Value": "two", "Type": "String"}),
        "ParameterAlreadyExists",
    )
    .await;
    assert!(m.contains("/app/db"), "{m}");
    assert_eq!(put(&h, "/app/db", "two").await, 2);
    assert_eq!(
        put(&h, "/app/db", "two").await,
        3,
        "the same value is a new version too"
    );

    let got = ok(&h, "GetParameter", json!({"Name": "/app/db"})).await["Parameter"].clone();
    assert_eq!(got["Value"], "two");
    assert_eq!(got["Version"], 3);
    assert_eq!(
        got["ARN"],
        "arn:aws:ssm:us-east-1:000000000000:parameter/app/db"
    );
    assert_eq!(got["DataType"], "text");
    assert!(got.get("Selector").is_none(), "{got}");
    let by_arn = ok(&h, "GetParameter", json!({"Name": got["ARN"]})).await;
    assert_eq!(by_arn["Parameter"]["Name"], "/app/db");
    let v1 = ok(&h, "GetParameter", json!({"Name": "/app/db:1"})).await["Parameter"].clone();
    assert_eq!(
        (v1["Value"].clone(), v1["Selector"].clone()),
        (json!("one"), json!(":1"))
    );
    let m = fails(
        &h,
        "GetParameter",
        json!({"Name": "/app/db:9"}),
        "ParameterVersionNotFound",
    )
    .await;
    assert!(m.contains("version 9 of /app/db"), "{m}");
    fails(
        &h,
        "GetParameter",
        json!({"Name": "/app/db:prod"}),
        "ParameterVersionNotFound",
    )
    .await;
    fails(
        &h,
        "GetParameter",
        json!({"Name": "/app/nope"}),
        "ParameterNotFound",
    )
    .await;

    // Labels: invalid ones are answered, a label moves between versions.
    let labelled = ok(
        &h,
        "LabelParameterVersion",
        json!({"Name": "/app/db", "ParameterVersion": 1, "Labels": ["prod", "1bad", "awsx"]}),
    )
    .await;
    assert_eq!(
        labelled,
        json!({"InvalidLabels": ["1bad", "awsx"], "ParameterVersion": 1})
    );
    let prod = ok(&h, "GetParameter", json!({"Name": "/app/db:prod"})).await;
    assert_eq!(prod["Parameter"]["Value"], "one");
    assert_eq!(prod["Parameter"]["Selector"], ":prod");
    let moved = ok(
        &h,
        "LabelParameterVersion",
        json!({"Name": "/app/db", "Labels": ["prod"]}),
    )
    .await;
    assert_eq!(moved["ParameterVersion"], 3);
    let history = ok(&h, "GetParameterHistory", json!({"Name": "/app/db"})).await;
    let labels: Vec<Value> = history["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Labels"].clone())
        .collect();
    assert_eq!(labels, [json!([]), json!([]), json!(["prod"])]);
    assert_eq!(
        history["Parameters"][1]["Description"], "the db",
        "descriptions carry over"
    );
    fails(
        &h,
        "LabelParameterVersion",
        json!({"Name": "/app/db", "ParameterVersion": 7, "Labels": ["x"]}),
        "ParameterVersionNotFound",
    )
    .await;
    let ten: Vec<String> = (0..10).map(|i| format!("l{i}")).collect();
    ok(
        &h,
        "LabelParameterVersion",
        json!({"Name": "/app/db", "ParameterVersion": 2, "Labels": ten}),
    )
    .await;
    fails(
        &h,
        "LabelParameterVersion",
        json!({"Name": "/app/db", "ParameterVersion": 2, "Labels": ["eleventh"]}),
        "ParameterVersionLabelLimitExceeded",
    )
    .await;
    let unlabelled = ok(
        &h,
        "UnlabelParameterVersion",
        json!({"Name": "/app/db", "ParameterVersion": 3, "Labels": ["prod", "l0"]}),
    )
    .await;
    assert_eq!(
        unlabelled,
        json!({"RemovedLabels": ["prod"], "InvalidLabels": ["l0"]})
    );

    // GetParameters answers what it found and names the rest.
    let many = ok(
        &h,
        "GetParameters",
        json!({"Names": ["/app/db", "/app/db:2", "/app/nope", "/app/db:9", "/app/db"]}),
    )
    .await;
    assert_eq!(names(&many), ["/app/db", "/app/db"]);
    assert_eq!(many["Parameters"][1]["Selector"], ":2");
    assert_eq!(many["InvalidParameters"], json!(["/app/nope", "/app/db:9"]));
    let m = fails(
        &h,
        "GetParameters",
        json!({"Names": []}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("Names"), "{m}");
}

#[tokio::test]
async fn input_is_validated_with_parameter_store_codes() {
    let h = harness().await;
    let put_fails = |body: Value, code: &'static str| {
        let h = &h;
        async move { fails(h, "PutParameter", body, code).await }
    };
    for name in ["app/db", "/app/", "bad name", "aws-key", "/ssm/x", "a;b"] {
        let m = put_fails(
            json!({"Name": name, "Value": "v", "Type": "String"}),
            "ValidationException",
        )
        .await;
        assert!(m.starts_with("Name:"), "{name}: {m}");
    }
    put_fails(
        json!({"Name": "/l".repeat(16), "Value": "v", "Type": "String"}),
        "HierarchyLevelLimitExceededException",
    )
    .await;
    let m = put_fails(
        json!({"Name": "big", "Value": "x".repeat(4097), "Type": "String"}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("Value"), "{m}");
    let advanced = ok(
        &h,
        "PutParameter",
        json!({"Name": "big", "Value": "x".repeat(4097), "Type": "String", "Tier": "Advanced"}),
    )
    .await;
    assert_eq!(advanced["Tier"], "Advanced");
    put_fails(
        json!({"Name": "big", "Value": "x", "Type": "String", "Tier": "Standard", "Overwrite": true}),
        "ValidationException",
    )
    .await;
    let m = put_fails(
        json!({"Name": "e", "Value": "", "Type": "String"}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("Value"), "{m}");
    let m = put_fails(
        json!({"Name": "t", "Value": "v", "Type": "String", "Overwrite": true, "Tags": [{"Key": "k", "Value": "v"}]}),
        "ValidationException",
    )
    .await;
    assert!(m.contains("Tags, Overwrite"), "{m}");
    put_fails(
        json!({"Name": "p", "Value": "abc", "Type": "String", "AllowedPattern": "^\\d+$"}),
        "ParameterPatternMismatchException",
    )
    .await;
    put_fails(
        json!({"Name": "p", "Value": "1", "Type": "String", "AllowedPattern": "(unclosed"}),
        "InvalidAllowedPatternException",
    )
    .await;
    ok(
        &h,
        "PutParameter",
        json!({"Name": "p", "Value": "12", "Type": "String", "AllowedPattern": "\\d+"}),
    )
    .await;
    // The pattern carries over to the next version.
    put_fails(
        json!({"Name": "p", "Value": "x1", "Overwrite": true}),
        "ParameterPatternMismatchException",
    )
    .await;
    let m = put_fails(
        json!({"Name": "k", "Value": "v", "Type": "SecureString", "KeyId": "alias/mine"}),
        "InvalidKeyId",
    )
    .await;
    assert!(m.starts_with("KeyId"), "{m}");
    put_fails(
        json!({"Name": "k", "Value": "v", "Type": "String", "KeyId": "alias/aws/ssm"}),
        "ValidationException",
    )
    .await;
    put_fails(
        json!({"Name": "k", "Value": "v", "Type": "String", "Policies": "[]"}),
        "ValidationException",
    )
    .await;
    let m = put_fails(
        json!({"Name": "k", "Value": "v", "Type": "String", "DataType": "aws:ec2:image"}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("DataType"), "{m}");
    let m = put_fails(
        json!({"Name": "k", "Value": "v", "Type": "Text"}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("Type"), "{m}");
    let m = put_fails(
        json!({"Name": "k", "Value": 5, "Type": "String"}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("Value"), "{m}");
    fails(
        &h,
        "GetParameter",
        json!({"Name": "p:"}),
        "ValidationException",
    )
    .await;
    let (status, out) = h.call_service("AmazonSSM", "SendCommand", json!({})).await;
    assert_eq!(
        (status, out["__type"].clone()),
        (StatusCode::BAD_REQUEST, json!("UnknownOperationException"))
    );
}

#[tokio::test]
async fn secure_strings_are_sealed_and_opened_only_with_decryption() {
    let h = harness().await;
    ok(
        &h,
        "PutParameter",
        json!({"Name": "/app/password", "Value": "hunter2-Zk9", "Type": "SecureString", "KeyId": "alias/aws/ssm"}),
    )
    .await;
    let hidden =
        ok(&h, "GetParameter", json!({"Name": "/app/password"})).await["Parameter"].clone();
    assert_eq!(hidden["Type"], "SecureString");
    let sealed = hidden["Value"].as_str().unwrap().to_owned();
    assert!(!sealed.contains("hunter2"), "{sealed}");
    let again = ok(&h, "GetParameter", json!({"Name": "/app/password"})).await;
    assert_eq!(
        again["Parameter"]["Value"],
        sealed.as_str(),
        "the opaque form is stable"
    );
    let open = ok(
        &h,
        "GetParameter",
        json!({"Name": "/app/password", "WithDecryption": true}),
    )
    .await;
    assert_eq!(open["Parameter"]["Value"], "hunter2-Zk9");
    let many = ok(
        &h,
        "GetParameters",
        json!({"Names": ["/app/password"], "WithDecryption": true}),
    )
    .await;
    assert_eq!(many["Parameters"][0]["Value"], "hunter2-Zk9");
    let history = ok(
        &h,
        "GetParameterHistory",
        json!({"Name": "/app/password", "WithDecryption": true}),
    )
    .await;
    assert_eq!(history["Parameters"][0]["Value"], "hunter2-Zk9");
    assert_eq!(history["Parameters"][0]["KeyId"], "alias/aws/ssm");
    // Stored sealed: the record holds no plaintext.
    let key = berth_server::records::keys::parameter("us-east-1", "/app/password");
    let record = h
        .app
        .db
        .get::<berth_server::records::ParameterRecord>(&key)
        .unwrap();
    let stored = serde_json::to_string(&record.value).unwrap();
    assert!(!stored.contains("hunter2"), "{stored}");
    // Overwritten as a String, it is stored in the clear from that version on.
    ok(
        &h,
        "PutParameter",
        json!({"Name": "/app/password", "Value": "plain", "Type": "String", "Overwrite": true}),
    )
    .await;
    let v2 = ok(&h, "GetParameter", json!({"Name": "/app/password"})).await;
    assert_eq!(v2["Parameter"]["Value"], "plain");
    let v1 = ok(
        &h,
        "GetParameter",
        json!({"Name": "/app/password:1", "WithDecryption": true}),
    )
    .await;
    assert_eq!(v1["Parameter"]["Value"], "hunter2-Zk9");
}

#[tokio::test]
async fn a_parameter_keeps_its_last_hundred_versions_unless_the_oldest_is_labelled() {
    let h = harness().await;
    for i in 1..=101 {
        put(&h, "counter", &i.to_string()).await;
    }
    let history = ok(&h, "GetParameterHistory", json!({"Name": "counter"})).await;
    assert_eq!(history["Parameters"][0]["Version"], 2);
    assert!(history["NextToken"].is_string(), "50 a page by default");
    fails(
        &h,
        "GetParameter",
        json!({"Name": "counter:1"}),
        "ParameterVersionNotFound",
    )
    .await;
    ok(
        &h,
        "LabelParameterVersion",
        json!({"Name": "counter", "ParameterVersion": 2, "Labels": ["keep"]}),
    )
    .await;
    let m = fails(
        &h,
        "PutParameter",
        json!({"Name": "counter", "Value": "x", "Overwrite": true}),
        "ParameterMaxVersionLimitExceeded",
    )
    .await;
    assert!(m.contains("keep"), "{m}");
    // Paging through the history: 100 versions, 30 a page.
    let mut versions = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"Name": "counter", "MaxResults": 30});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = ok(&h, "GetParameterHistory", body).await;
        versions.extend(
            page["Parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["Version"].as_i64().unwrap()),
        );
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(versions, (2..=101).collect::<Vec<i64>>());
}

/// Every page of `op` with `body`, following `NextToken`; the names in order.
async fn all_pages(h: &Harness, op: &str, body: Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut body = body;
    loop {
        let page = ok(h, op, body.clone()).await;
        out.extend(names(&page));
        match page["NextToken"].as_str() {
            Some(t) => body["NextToken"] = json!(t),
            None => return out,
        }
    }
}

#[tokio::test]
async fn listings_page_by_path_and_filter() {
    let h = harness().await;
    for i in 0..7 {
        put(&h, &format!("/app/p{i}"), "v").await;
    }
    put(&h, "/app/deep/x", "v").await;
    put(&h, "/application/y", "v").await;
    put(&h, "flat", "v").await;
    ok(
        &h,
        "PutParameter",
        json!({"Name": "/app/secret", "Value": "s", "Type": "SecureString", "Tags": [{"Key": "team", "Value": "web"}]}),
    )
    .await;

    let one_level = all_pages(
        &h,
        "GetParametersByPath",
        json!({"Path": "/app/", "MaxResults": 3}),
    )
    .await;
    let mut want: Vec<String> = (0..7).map(|i| format!("/app/p{i}")).collect();
    want.push("/app/secret".into());
    let mut sorted = one_level.clone();
    sorted.sort();
    assert_eq!(sorted, want, "{one_level:?}");
    let recursive = all_pages(
        &h,
        "GetParametersByPath",
        json!({"Path": "/app", "Recursive": true, "MaxResults": 4}),
    )
    .await;
    assert_eq!(recursive.len(), 9, "{recursive:?}");
    assert!(
        recursive.contains(&"/app/deep/x".to_owned())
            && !recursive.contains(&"/application/y".to_owned())
    );
    let root = all_pages(&h, "GetParametersByPath", json!({"Path": "/"})).await;
    assert_eq!(root, ["flat"], "names without '/' sit at the root");
    let secure = ok(
        &h,
        "GetParametersByPath",
        json!({"Path": "/app", "ParameterFilters": [{"Key": "Type", "Values": ["SecureString"]}], "WithDecryption": true}),
    )
    .await;
    assert_eq!(names(&secure), ["/app/secret"]);
    assert_eq!(secure["Parameters"][0]["Value"], "s");
    fails(
        &h,
        "GetParametersByPath",
        json!({"Path": "/app", "MaxResults": 11}),
        "ValidationException",
    )
    .await;
    fails(
        &h,
        "GetParametersByPath",
        json!({"Path": "app"}),
        "ValidationException",
    )
    .await;
    fails(
        &h,
        "GetParametersByPath",
        json!({"Path": "/app", "NextToken": "zz"}),
        "InvalidNextToken",
    )
    .await;
    fails(
        &h,
        "GetParametersByPath",
        json!({"Path": "/app", "ParameterFilters": [{"Key": "Name", "Values": ["x"]}]}),
        "InvalidFilterKey",
    )
    .await;

    let described = all_pages(&h, "DescribeParameters", json!({"MaxResults": 4})).await;
    assert_eq!(described.len(), 11, "{described:?}");
    let by_path = all_pages(
        &h,
        "DescribeParameters",
        json!({"ParameterFilters": [{"Key": "Path", "Option": "Recursive", "Values": ["/app"]}, {"Key": "tag:team"}]}),
    )
    .await;
    assert_eq!(by_path, ["/app/secret"]);
    let meta = ok(
        &h,
        "DescribeParameters",
        json!({"Filters": [{"Key": "Name", "Values": ["/app/secret"]}]}),
    )
    .await;
    let p = &meta["Parameters"][0];
    assert_eq!(p["KeyId"], "alias/aws/ssm");
    assert_eq!(
        p["ARN"],
        "arn:aws:ssm:us-east-1:000000000000:parameter/app/secret"
    );
    assert_eq!(p["Version"], 1);
    assert!(p.get("Value").is_none(), "{p}");
    let types = all_pages(
        &h,
        "DescribeParameters",
        json!({"ParameterFilters": [{"Key": "Name", "Option": "BeginsWith", "Values": ["fl"]}]}),
    )
    .await;
    assert_eq!(types, ["flat"]);
    fails(
        &h,
        "DescribeParameters",
        json!({"Filters": [{"Key": "Name", "Values": ["a"]}], "ParameterFilters": [{"Key": "Name", "Values": ["a"]}]}),
        "ValidationException",
    )
    .await;
    fails(
        &h,
        "DescribeParameters",
        json!({"MaxResults": 51}),
        "ValidationException",
    )
    .await;
    fails(
        &h,
        "DescribeParameters",
        json!({"ParameterFilters": [{"Key": "Type", "Option": "Contains", "Values": ["S"]}]}),
        "InvalidFilterOption",
    )
    .await;
}

#[tokio::test]
async fn tags_and_deletion() {
    let h = harness().await;
    put(&h, "/app/a", "1").await;
    put(&h, "/app/b", "2").await;
    let tag = |body: Value| {
        let mut b = json!({"ResourceType": "Parameter", "ResourceId": "/app/a"});
        b.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        b
    };
    ok(
        &h,
        "AddTagsToResource",
        tag(json!({"Tags": [{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "prod"}]})),
    )
    .await;
    ok(
        &h,
        "AddTagsToResource",
        tag(json!({"Tags": [{"Key": "env", "Value": "dev"}]})),
    )
    .await;
    ok(
        &h,
        "RemoveTagsFromResource",
        tag(json!({"TagKeys": ["team"]})),
    )
    .await;
    let listed = ok(&h, "ListTagsForResource", tag(json!({}))).await;
    assert_eq!(listed, json!({"TagList": [{"Key": "env", "Value": "dev"}]}));
    let many: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    fails(
        &h,
        "AddTagsToResource",
        tag(json!({"Tags": many})),
        "TooManyTagsError",
    )
    .await;
    fails(
        &h,
        "ListTagsForResource",
        json!({"ResourceType": "Document", "ResourceId": "/app/a"}),
        "InvalidResourceType",
    )
    .await;
    fails(
        &h,
        "ListTagsForResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/app/zz"}),
        "InvalidResourceId",
    )
    .await;

    ok(&h, "DeleteParameter", json!({"Name": "/app/a"})).await;
    fails(
        &h,
        "DeleteParameter",
        json!({"Name": "/app/a"}),
        "ParameterNotFound",
    )
    .await;
    let deleted = ok(
        &h,
        "DeleteParameters",
        json!({"Names": ["/app/b", "/app/a"]}),
    )
    .await;
    assert_eq!(
        deleted,
        json!({"DeletedParameters": ["/app/b"], "InvalidParameters": ["/app/a"]})
    );
    // A name made again starts at version 1.
    assert_eq!(put(&h, "/app/a", "again").await, 1);
}

/// A SecureString sealed under another server's key is counted, so that the server can warn
/// that servers sharing a store must share `secrets.key`; plain Strings are not.
#[tokio::test]
async fn secure_strings_sealed_with_another_key_are_counted() {
    let h = harness().await;
    put(&h, "/plain", "visible").await;
    ok(
        &h,
        "PutParameter",
        json!({"Name": "/sealed", "Value": "hidden", "Type": "SecureString"}),
    )
    .await;
    let mine = h.app.secrets_key.fingerprint().to_owned();
    assert_eq!(berth_server::ssm::sealed_with_other_keys(&h.app, &mine), 0);
    let dir = tempfile::tempdir().unwrap();
    let other =
        berth_server::seal::SecretsKey::open_or_create(&dir.path().join("other.key")).unwrap();
    assert_ne!(other.fingerprint(), mine);
    assert_eq!(
        berth_server::ssm::sealed_with_other_keys(&h.app, other.fingerprint()),
        1
    );
}
