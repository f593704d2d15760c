//! A container's `environmentFiles` (and those of its container override), read on the agent's
//! host: each `value` is an absolute path or a `file://` URL there. Berth has no S3, so an S3
//! ARN cannot be fetched and the task fails with a reason that says so.
//!
//! The format is ECS's: one `VARIABLE=VALUE` per line, `#` starts a comment line, blank lines
//! are skipped, nothing is unquoted. Files are read top down, a later file's value replacing an
//! earlier one's; variables from `environment` win over every file.

use berth_model::task::Task;
use berth_model::task_definition::ContainerDefinition;

/// The variables `container`'s environment files give, in order.
pub async fn load(
    task: &Task,
    container: &ContainerDefinition,
) -> Result<Vec<(String, String)>, String> {
    let name = container.name.as_deref().unwrap_or_default();
    let overriding = task
        .overrides
        .as_ref()
        .and_then(|o| o.container(name))
        .and_then(|o| o.environment_files.as_ref());
    let mut variables = Vec::new();
    for file in container
        .environment_files
        .iter()
        .flatten()
        .chain(overriding.into_iter().flatten())
    {
        let failed = |why: String| {
            format!(
                "ResourceInitializationError: environment file '{}' of container '{name}': {why}",
                file.value
            )
        };
        let path = local_path(&file.value).ok_or_else(|| {
            failed("Berth reads environment files from the agent host's disk; give an absolute path or a file:// URL (S3 is not available)".into())
        })?;
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| failed(e.to_string()))?;
        variables.extend(parse(&text).map_err(failed)?);
    }
    Ok(variables)
}

fn local_path(value: &str) -> Option<&str> {
    let path = value.strip_prefix("file://").unwrap_or(value);
    path.starts_with('/').then_some(path)
}

/// The variables of one file, in order.
fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                out.push((name.trim().to_owned(), value.to_owned()));
            }
            _ => return Err(format!("line {} is not VARIABLE=VALUE", n + 1)),
        }
    }
    Ok(out)
}

/// Adds the file variables to `environment` (`NAME=VALUE` entries) under those already there.
pub fn merge_under(environment: &mut Vec<String>, variables: Vec<(String, String)>) {
    let mut from_files: Vec<(String, String)> = Vec::new();
    for (name, value) in variables {
        match from_files.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = value,
            None => from_files.push((name, value)),
        }
    }
    let given = |name: &str| {
        environment
            .iter()
            .any(|kv| kv.split_once('=').is_some_and(|(n, _)| n == name))
    };
    let added: Vec<String> = from_files
        .into_iter()
        .filter(|(name, _)| !given(name))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    environment.extend(added);
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::time::Timestamp;
    use serde_json::json;

    #[test]
    fn parses_lines_comments_and_refuses_garbage() {
        let vars = parse("# settings\nA=1\n\nB=x=y\n  # indented comment\nC=\n").unwrap();
        let want = [("A", "1"), ("B", "x=y"), ("C", "")];
        assert_eq!(
            vars,
            want.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
        assert_eq!(
            parse("A=1\nnot a variable\n").unwrap_err(),
            "line 2 is not VARIABLE=VALUE"
        );
        assert!(parse("=1").is_err());
    }

    #[test]
    fn environment_wins_over_files_and_later_files_over_earlier() {
        let mut env = vec!["A=from-environment".to_owned()];
        let files = [("A", "file"), ("B", "first"), ("B", "second")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec();
        merge_under(&mut env, files);
        assert_eq!(env, ["A=from-environment", "B=second"]);
    }

    #[tokio::test]
    async fn reads_host_files_and_explains_s3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.env");
        std::fs::write(&path, "GREETING=hello\n").unwrap();
        let container = |value: String| -> ContainerDefinition {
            serde_json::from_value(json!({
                "name": "app", "image": "x",
                "environmentFiles": [{"value": value, "type": "s3"}],
            }))
            .unwrap()
        };
        let task = Task::new("arn:t/1", "arn:c", "arn:td", Timestamp(0));
        let local = container(format!("file://{}", path.display()));
        assert_eq!(
            load(&task, &local).await.unwrap(),
            [("GREETING".to_owned(), "hello".to_owned())]
        );
        let s3 = container("arn:aws:s3:::bucket/app.env".into());
        let reason = load(&task, &s3).await.unwrap_err();
        assert!(
            reason.starts_with("ResourceInitializationError:")
                && reason.contains("arn:aws:s3:::bucket/app.env"),
            "{reason}"
        );
        let missing = container("/nonexistent/app.env".into());
        assert!(
            load(&task, &missing)
                .await
                .unwrap_err()
                .contains("/nonexistent/app.env")
        );
    }
}
