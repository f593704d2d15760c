//! Writes the `berth` profile into the AWS CLI's config and credentials files, leaving every
//! other profile and line as it was. Honours `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`.

use anyhow::Context;
use std::path::{Path, PathBuf};

pub struct Written {
    pub config: PathBuf,
    pub credentials: PathBuf,
}

pub fn write(
    endpoint: &str,
    region: &str,
    access_key_id: &str,
    secret: &str,
) -> anyhow::Result<Written> {
    let home = dirs::home_dir().context("no home directory is known; pass --no-profile")?;
    let config = std::env::var_os("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let credentials = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    update_section(
        &config,
        "profile berth",
        &[
            ("region", region),
            ("endpoint_url", endpoint),
            ("output", "json"),
        ],
    )?;
    update_section(
        &credentials,
        "berth",
        &[
            ("aws_access_key_id", access_key_id),
            ("aws_secret_access_key", secret),
        ],
    )?;
    Ok(Written {
        config,
        credentials,
    })
}

fn update_section(path: &Path, section: &str, entries: &[(&str, &str)]) -> anyhow::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    let updated = replace_section(&existing, section, entries);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, updated).with_context(|| format!("could not write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("could not replace {}", path.display()))
}

/// Replaces the body of `[section]` in an INI text (or appends the section), keeping the rest.
fn replace_section(text: &str, section: &str, entries: &[(&str, &str)]) -> String {
    let header = format!("[{section}]");
    let body: String = entries
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    let mut out = String::new();
    let mut in_target = false;
    let mut written = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            in_target = trimmed == header;
            if in_target {
                out.push_str(&header);
                out.push('\n');
                out.push_str(&body);
                written = true;
                continue;
            }
        }
        if !in_target {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !written {
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&header);
        out.push('\n');
        out.push_str(&body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_its_own_section() {
        let before = "[default]\nregion = eu-west-1\n\n[profile berth]\nregion = old\nstale = 1\n[profile other]\nregion = ap-south-1\n";
        let after = replace_section(before, "profile berth", &[("region", "us-east-1")]);
        assert_eq!(
            after,
            "[default]\nregion = eu-west-1\n\n[profile berth]\nregion = us-east-1\n[profile other]\nregion = ap-south-1\n"
        );
    }

    #[test]
    fn appends_when_absent() {
        let after = replace_section("[default]\nregion = x\n", "berth", &[("a", "b")]);
        assert_eq!(after, "[default]\nregion = x\n\n[berth]\na = b\n");
        assert_eq!(
            replace_section("", "berth", &[("a", "b")]),
            "[berth]\na = b\n"
        );
    }
}
