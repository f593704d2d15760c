//! `ParameterFilters` (DescribeParameters, GetParametersByPath) and DescribeParameters' older
//! `Filters`, checked and matched as Parameter Store does.
//!
//! Keys: `Name` (options `Equals`, the default, `BeginsWith` or `Contains`; the leading `/` is
//! optional), `Path` (`OneLevel`, the default, or `Recursive`), `Type`, `KeyId`, `Tier`,
//! `DataType` and `Label` (`Equals`), and `tag:KEY` (`Equals`, `BeginsWith` or `Contains`; with no
//! values, the tag's presence). DescribeParameters takes every key but `Label`;
//! GetParametersByPath takes `Type`, `KeyId`, `Label` and tags. Values are ORed within a filter,
//! filters ANDed. A parameter matches through its current version, or, with a `Label` filter,
//! through the version carrying the label, which is the one answered. Unknown keys are
//! `InvalidFilterKey`, options `InvalidFilterOption`, missing or malformed values
//! `InvalidFilterValue`. The older `Filters` (`Name`: a prefix, `Type`, `KeyId`) read the same.

use super::{ParameterRecord, ParameterVersion};
use berth_api::ApiError;
use berth_api::ssm::{
    DEFAULT_KEY_ID, ParameterStringFilter, ParameterType, ParametersFilter, TEXT, check_levels,
};

/// Which operation the filters are for: each takes its own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Describe,
    ByPath,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    BeginsWith,
    Contains,
}

impl Op {
    fn test(self, have: &str, want: &str) -> bool {
        match self {
            Op::Equals => have == want,
            Op::BeginsWith => have.starts_with(want),
            Op::Contains => have.contains(want),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Type,
    KeyId,
    Tier,
    DataType,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    Field(Field, Op, Vec<String>),
    Path {
        recursive: bool,
        paths: Vec<String>,
    },
    Label(Vec<String>),
    /// A tag's key, and the values its value is compared with (none: any value).
    Tag(String, Op, Vec<String>),
}

/// Checked filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(Vec<Test>);

/// A path as GetParametersByPath and the `Path` filter take it: begins with `/`, its trailing
/// `/` dropped (but for the root), of at most 15 levels.
pub fn normalize_path(path: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.-/".contains(c);
    if !path.starts_with('/') || !path.chars().all(allowed) || path.contains("//") {
        return Err(format!(
            "'{path}' is not a path: it must begin with '/' and hold only ASCII letters, digits and _.-/"
        ));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    })
}

/// Whether a parameter at `full` (its name, with a leading `/`) is in `path`: right in it, or
/// anywhere below it when `recursive`.
pub fn in_path(full: &str, path: &str, recursive: bool) -> bool {
    if recursive {
        return path == "/" || full.starts_with(&format!("{path}/"));
    }
    let parent = match full.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((parent, _)) => parent,
    };
    parent == path
}

fn type_name(t: ParameterType) -> &'static str {
    match t {
        ParameterType::String => "String",
        ParameterType::StringList => "StringList",
        ParameterType::SecureString => "SecureString",
    }
}

fn invalid_key(key: &str, operation: Operation) -> ApiError {
    let valid = match operation {
        Operation::Describe => "Name, Path, Type, KeyId, Tier, DataType, tag:KEY",
        Operation::ByPath => "Type, KeyId, Label, tag:KEY",
    };
    ApiError::ssm_invalid_filter_key(format!(
        "ParameterFilters: the filter key '{key}' is not valid here; valid keys: {valid}"
    ))
}

fn parse_one(f: &ParameterStringFilter, operation: Operation) -> Result<Test, ApiError> {
    let key = f.key.as_str();
    let values = f.values.clone().unwrap_or_default();
    let option = f.option.as_deref();
    let bad_option = |valid: &str| {
        ApiError::ssm_invalid_filter_option(format!(
            "ParameterFilters: the option '{}' is not valid for the key {key}; valid options: {valid}",
            option.unwrap_or_default()
        ))
    };
    if values.len() > 50 || values.iter().any(|v| v.is_empty() || v.len() > 1024) {
        return Err(ApiError::ssm_invalid_filter_value(format!(
            "ParameterFilters: the {key} filter takes 1 to 50 values of 1 to 1024 characters"
        )));
    }
    if let Some(tag) = key.strip_prefix("tag:").filter(|t| !t.is_empty()) {
        let op = match option {
            None | Some("Equals") => Op::Equals,
            Some("BeginsWith") => Op::BeginsWith,
            Some("Contains") => Op::Contains,
            Some(_) => return Err(bad_option("Equals, BeginsWith, Contains")),
        };
        return Ok(Test::Tag(tag.to_owned(), op, values));
    }
    let allowed = match operation {
        Operation::Describe => key != "Label",
        Operation::ByPath => matches!(key, "Type" | "KeyId" | "Label"),
    };
    if !allowed {
        return Err(invalid_key(key, operation));
    }
    if values.is_empty() {
        return Err(ApiError::ssm_invalid_filter_value(format!(
            "ParameterFilters: the {key} filter needs at least one value"
        )));
    }
    let equals_only = |field| match option {
        None | Some("Equals") => Ok(Test::Field(field, Op::Equals, values.clone())),
        Some(_) => Err(bad_option("Equals")),
    };
    match key {
        "Name" => {
            let op = match option {
                None | Some("Equals") => Op::Equals,
                Some("BeginsWith") => Op::BeginsWith,
                Some("Contains") => Op::Contains,
                Some(_) => return Err(bad_option("Equals, BeginsWith, Contains")),
            };
            Ok(Test::Field(Field::Name, op, values))
        }
        "Path" => {
            let recursive = match option {
                None | Some("OneLevel") => false,
                Some("Recursive") => true,
                Some(_) => return Err(bad_option("OneLevel, Recursive")),
            };
            let paths = values
                .iter()
                .map(|p| {
                    let path = normalize_path(p).map_err(|why| {
                        ApiError::ssm_invalid_filter_value(format!("ParameterFilters: Path {why}"))
                    })?;
                    check_levels(&path)?;
                    Ok(path)
                })
                .collect::<Result<_, ApiError>>()?;
            Ok(Test::Path { recursive, paths })
        }
        "Type" => equals_only(Field::Type),
        "KeyId" => equals_only(Field::KeyId),
        "Tier" => equals_only(Field::Tier),
        "DataType" => equals_only(Field::DataType),
        "Label" => match option {
            None | Some("Equals") => Ok(Test::Label(values)),
            Some(_) => Err(bad_option("Equals")),
        },
        _ => Err(invalid_key(key, operation)),
    }
}

impl Filters {
    /// Checks `ParameterFilters` for `operation`.
    pub fn parse(
        filters: &[ParameterStringFilter],
        operation: Operation,
    ) -> Result<Self, ApiError> {
        filters
            .iter()
            .map(|f| parse_one(f, operation))
            .collect::<Result<_, _>>()
            .map(Filters)
    }

    /// Reads DescribeParameters' older `Filters`.
    pub fn legacy(filters: &[ParametersFilter]) -> Result<Self, ApiError> {
        let converted = filters
            .iter()
            .map(|f| {
                let option = match f.key.as_str() {
                    "Name" => "BeginsWith",
                    "Type" | "KeyId" => "Equals",
                    other => {
                        return Err(ApiError::ssm_invalid_filter_key(format!(
                            "Filters: the filter key '{other}' is not valid; valid keys: Name, Type, KeyId"
                        )));
                    }
                };
                if f.values.is_empty() {
                    return Err(ApiError::ssm_invalid_filter_value(format!(
                        "Filters: the {} filter needs at least one value",
                        f.key
                    )));
                }
                Ok(ParameterStringFilter {
                    key: f.key.clone(),
                    option: Some(option.into()),
                    values: Some(f.values.clone()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::parse(&converted, Operation::Describe)
    }

    /// The version of `record` the filters select — the current one, or the one a `Label`
    /// filter names — when it matches them all.
    pub fn select<'a>(&self, record: &'a ParameterRecord) -> Option<&'a ParameterVersion> {
        let labelled = self.0.iter().find_map(|t| match t {
            Test::Label(labels) => Some(labels),
            _ => None,
        });
        let version = match labelled {
            Some(labels) => record
                .versions
                .iter()
                .rev()
                .find(|v| v.labels.iter().any(|l| labels.contains(l)))?,
            None => record.current(),
        };
        self.0
            .iter()
            .all(|t| matches(t, record, version))
            .then_some(version)
    }
}

fn matches(test: &Test, record: &ParameterRecord, v: &ParameterVersion) -> bool {
    match test {
        Test::Field(field, op, values) => {
            let have = match field {
                Field::Name => record.name.as_str(),
                Field::Type => type_name(v.r#type),
                Field::KeyId if v.r#type == ParameterType::SecureString => DEFAULT_KEY_ID,
                Field::KeyId => return false,
                Field::Tier => return values.iter().any(|want| tier_is(v, want)),
                Field::DataType => TEXT,
            };
            values.iter().any(|want| {
                op.test(have, want)
                    || (*field == Field::Name
                        && !want.starts_with('/')
                        && op.test(have.trim_start_matches('/'), want))
            })
        }
        Test::Path { recursive, paths } => {
            let full = record.full_path();
            paths.iter().any(|p| in_path(&full, p, *recursive))
        }
        Test::Label(_) => true,
        Test::Tag(key, op, values) => record
            .tags
            .iter()
            .filter(|t| &t.key == key)
            .any(|t| values.is_empty() || values.iter().any(|want| op.test(&t.value, want))),
    }
}

fn tier_is(v: &ParameterVersion, want: &str) -> bool {
    serde_json::to_value(v.tier).is_ok_and(|t| t == want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssm::StoredValue;
    use berth_api::ssm::{ParameterTier, Tag};
    use berth_model::Timestamp;

    fn version(n: i64, t: ParameterType, labels: &[&str]) -> ParameterVersion {
        ParameterVersion {
            version: n,
            r#type: t,
            value: StoredValue::Plain(format!("v{n}")),
            description: None,
            allowed_pattern: None,
            tier: ParameterTier::Standard,
            last_modified_date: Timestamp(0),
            last_modified_user: "me".into(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    fn record(name: &str) -> ParameterRecord {
        ParameterRecord {
            name: name.into(),
            tags: vec![Tag {
                key: "team".into(),
                value: "web".into(),
            }],
            versions: vec![
                version(1, ParameterType::String, &["prod"]),
                version(2, ParameterType::SecureString, &[]),
            ],
        }
    }

    fn filter(key: &str, option: Option<&str>, values: &[&str]) -> ParameterStringFilter {
        ParameterStringFilter {
            key: key.into(),
            option: option.map(str::to_owned),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn selects(
        filters: &[ParameterStringFilter],
        op: Operation,
        r: &ParameterRecord,
    ) -> Option<i64> {
        Filters::parse(filters, op)
            .unwrap()
            .select(r)
            .map(|v| v.version)
    }

    #[test]
    fn filters_match_names_types_paths_tags_and_labels() {
        let r = record("/app/prod/db");
        let d = Operation::Describe;
        assert_eq!(selects(&[], d, &r), Some(2));
        assert_eq!(
            selects(&[filter("Name", None, &["/app/prod/db"])], d, &r),
            Some(2)
        );
        assert_eq!(
            selects(&[filter("Name", Some("BeginsWith"), &["app/"])], d, &r),
            Some(2)
        );
        assert_eq!(
            selects(&[filter("Name", Some("Contains"), &["prod"])], d, &r),
            Some(2)
        );
        assert_eq!(selects(&[filter("Name", None, &["/app"])], d, &r), None);
        assert_eq!(
            selects(&[filter("Type", None, &["String", "SecureString"])], d, &r),
            Some(2)
        );
        assert_eq!(
            selects(&[filter("KeyId", None, &[DEFAULT_KEY_ID])], d, &r),
            Some(2)
        );
        assert_eq!(
            selects(&[filter("Tier", None, &["Standard"])], d, &r),
            Some(2)
        );
        assert_eq!(
            selects(&[filter("Path", None, &["/app/prod/"])], d, &r),
            Some(2)
        );
        assert_eq!(selects(&[filter("Path", None, &["/app"])], d, &r), None);
        assert_eq!(
            selects(&[filter("Path", Some("Recursive"), &["/app"])], d, &r),
            Some(2)
        );
        let tag = |vals: &[&str]| ParameterStringFilter {
            key: "tag:team".into(),
            option: None,
            values: (!vals.is_empty()).then(|| vals.iter().map(|v| (*v).to_owned()).collect()),
        };
        assert_eq!(selects(&[tag(&[])], d, &r), Some(2));
        assert_eq!(selects(&[tag(&["web"])], d, &r), Some(2));
        assert_eq!(selects(&[tag(&["db"])], d, &r), None);
        // A label picks its version (by path only).
        let b = Operation::ByPath;
        assert_eq!(selects(&[filter("Label", None, &["prod"])], b, &r), Some(1));
        assert_eq!(selects(&[filter("Label", None, &["x"])], b, &r), None);
        assert_eq!(
            selects(
                &[
                    filter("Label", None, &["prod"]),
                    filter("Type", None, &["SecureString"])
                ],
                b,
                &r
            ),
            None
        );
    }

    #[test]
    fn bad_filters_are_refused_with_their_codes() {
        let code = |f: ParameterStringFilter, op| Filters::parse(&[f], op).unwrap_err().code;
        assert_eq!(
            code(filter("Label", None, &["x"]), Operation::Describe),
            "InvalidFilterKey"
        );
        assert_eq!(
            code(filter("Name", None, &["x"]), Operation::ByPath),
            "InvalidFilterKey"
        );
        assert_eq!(
            code(filter("Color", None, &["x"]), Operation::Describe),
            "InvalidFilterKey"
        );
        assert_eq!(
            code(
                filter("Type", Some("BeginsWith"), &["S"]),
                Operation::Describe
            ),
            "InvalidFilterOption"
        );
        assert_eq!(
            code(filter("Type", None, &[]), Operation::Describe),
            "InvalidFilterValue"
        );
        assert_eq!(
            code(filter("Path", None, &["app"]), Operation::Describe),
            "InvalidFilterValue"
        );
        let legacy = ParametersFilter {
            key: "Name".into(),
            values: vec!["/app".into()],
        };
        let f = Filters::legacy(&[legacy]).unwrap();
        assert!(f.select(&record("/app/db")).is_some());
        let bad = ParametersFilter {
            key: "Path".into(),
            values: vec!["/".into()],
        };
        assert_eq!(
            Filters::legacy(&[bad]).unwrap_err().code,
            "InvalidFilterKey"
        );
    }

    #[test]
    fn paths_hold_their_children() {
        assert_eq!(normalize_path("/app/").unwrap(), "/app");
        assert_eq!(normalize_path("/").unwrap(), "/");
        assert!(normalize_path("app").is_err() && normalize_path("/a b").is_err());
        assert!(in_path("/app/db", "/app", false));
        assert!(!in_path("/app/prod/db", "/app", false));
        assert!(in_path("/app/prod/db", "/app", true));
        assert!(!in_path("/application/db", "/app", true));
        assert!(in_path("/db", "/", false) && in_path("/app/db", "/", true));
        assert!(!in_path("/app/db", "/", false));
    }
}
