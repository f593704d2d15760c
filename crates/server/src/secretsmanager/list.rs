//! ListSecrets: the region's secrets (those waiting for their deletion only with
//! `IncludePlannedDeletion`), sorted by `SortBy` (`created-date` by default, `last-changed-date`
//! or `name`) in `SortOrder`, narrowed by `Filters` (`name`, `tag-key` and `tag-value`: prefixes,
//! case-sensitive; `description`: a prefix, any case; values ORed within a filter, a value
//! starting with `!` excludes, filters ANDed), in pages of `MaxResults` (1–100, 100 by default)
//! whose `NextToken` names the sort key to continue after, so a page never repeats or skips a
//! secret that stays put.

use super::SecretRecord;
use crate::ecs::paging::{after_key_or, paginate_ordered};
use crate::records::keys;
use crate::{App, Ctx};
use berth_api::secretsmanager::{Filter, ListSecretsRequest, ListSecretsResponse, SecretListEntry};
use berth_api::{ApiError, json};

/// What a filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Description,
    TagKey,
    TagValue,
}

/// One filter: the field, and its values (`true`: negated).
struct Matcher {
    field: Field,
    values: Vec<(bool, String)>,
}

impl Matcher {
    fn parse(filter: &Filter) -> Result<Matcher, ApiError> {
        let field = match filter.key.as_str() {
            "name" => Field::Name,
            "description" => Field::Description,
            "tag-key" => Field::TagKey,
            "tag-value" => Field::TagValue,
            other => {
                return Err(ApiError::invalid_parameter(format!(
                    "Filters: the key '{other}' is not supported by Berth (name, description, tag-key, tag-value)"
                )));
            }
        };
        if filter.values.is_empty() || filter.values.len() > 10 {
            return Err(ApiError::invalid_parameter(format!(
                "Filters: the '{}' filter needs 1 to 10 values",
                filter.key
            )));
        }
        let values = filter
            .values
            .iter()
            .map(|v| match v.strip_prefix('!') {
                Some(rest) => (true, rest.to_string()),
                None => (false, v.clone()),
            })
            .collect();
        Ok(Matcher { field, values })
    }

    fn hit(&self, s: &SecretRecord, value: &str) -> bool {
        match self.field {
            Field::Name => s.name.starts_with(value),
            Field::Description => s
                .description
                .as_deref()
                .is_some_and(|d| d.to_lowercase().starts_with(&value.to_lowercase())),
            Field::TagKey => s.tags.iter().any(|t| t.key.starts_with(value)),
            Field::TagValue => s.tags.iter().any(|t| t.value.starts_with(value)),
        }
    }

    fn matches(&self, s: &SecretRecord) -> bool {
        let mut wanted = self.values.iter().filter(|(neg, _)| !neg).peekable();
        let positive = wanted.peek().is_none() || wanted.any(|(_, v)| self.hit(s, v));
        positive && !self.values.iter().any(|(neg, v)| *neg && self.hit(s, v))
    }
}

/// The key a secret sorts by.
fn sort_key(sort_by: &str) -> Result<fn(&SecretRecord) -> String, ApiError> {
    match sort_by {
        "created-date" => Ok(|s| format!("{:020} {}", s.created_date.millis(), s.name)),
        "last-changed-date" => Ok(|s| format!("{:020} {}", s.last_changed_date.millis(), s.name)),
        "name" => Ok(|s| s.name.clone()),
        "last-accessed-date" => Err(ApiError::invalid_parameter(
            "SortBy: Berth does not track when secrets were last accessed",
        )),
        other => Err(ApiError::invalid_parameter(format!(
            "SortBy: '{other}' is not created-date, last-accessed-date, last-changed-date or name"
        ))),
    }
}

pub fn list(app: &App, ctx: &Ctx, input: ListSecretsRequest) -> Result<Vec<u8>, ApiError> {
    let size = match input.max_results {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return Err(ApiError::invalid_parameter(format!(
                "MaxResults: {n} is not between 1 and 100"
            )));
        }
    };
    let descending = match input.sort_order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "SortOrder: '{other}' is not asc or desc"
            )));
        }
    };
    let key_of = sort_key(input.sort_by.as_deref().unwrap_or("created-date"))?;
    let filters = input.filters.unwrap_or_default();
    if filters.len() > 10 {
        return Err(ApiError::invalid_parameter(
            "Filters: at most 10 filters can be given",
        ));
    }
    let matchers = filters
        .iter()
        .map(Matcher::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let after = after_key_or(input.next_token.as_deref(), || {
        ApiError::sm_invalid_next_token("NextToken: not a token a previous ListSecrets returned")
    })?;
    let with_deleted = input.include_planned_deletion == Some(true);
    let mut all: Vec<(String, SecretRecord)> = app
        .db
        .list::<SecretRecord>(&keys::secrets(&ctx.region))
        .into_iter()
        .map(|s| s.value)
        .filter(|s| !s.expired(ctx.now) && (with_deleted || s.deleted_date.is_none()))
        .filter(|s| matchers.iter().all(|m| m.matches(s)))
        .map(|s| (key_of(&s), s))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        all.reverse();
    }
    let page = paginate_ordered(all, after.as_deref(), size, descending);
    json::encode(&ListSecretsResponse {
        secret_list: page
            .items
            .into_iter()
            .map(|s| SecretListEntry {
                metadata: s.metadata(),
                secret_versions_to_stages: s.versions_to_stages(),
            })
            .collect(),
        next_token: page.next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::secretsmanager::Tag;
    use berth_model::Timestamp;

    fn secret(name: &str, description: Option<&str>, tags: &[(&str, &str)]) -> SecretRecord {
        SecretRecord {
            arn: format!("arn:{name}"),
            name: name.into(),
            description: description.map(str::to_owned),
            created_date: Timestamp(0),
            last_changed_date: Timestamp(0),
            deleted_date: None,
            deletion_date: None,
            tags: tags
                .iter()
                .map(|(k, v)| Tag {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            versions: Vec::new(),
        }
    }

    fn matcher(key: &str, values: &[&str]) -> Matcher {
        Matcher::parse(&Filter {
            key: key.into(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        })
        .unwrap()
    }

    #[test]
    fn filters_match_prefixes_and_negations() {
        let db = secret("prod/db", Some("The Database"), &[("team", "web")]);
        assert!(matcher("name", &["prod/"]).matches(&db));
        assert!(!matcher("name", &["db"]).matches(&db));
        assert!(matcher("name", &["x", "prod"]).matches(&db));
        assert!(!matcher("name", &["!prod"]).matches(&db));
        assert!(matcher("name", &["!dev"]).matches(&db));
        assert!(matcher("description", &["the data"]).matches(&db));
        assert!(matcher("tag-key", &["te"]).matches(&db));
        assert!(matcher("tag-value", &["we"]).matches(&db));
        assert!(!matcher("tag-value", &["team"]).matches(&db));
        let all = Filter {
            key: "all".into(),
            values: vec!["x".into()],
        };
        assert!(Matcher::parse(&all).is_err());
    }

    #[test]
    fn sort_keys_order_by_date_then_name() {
        let mut a = secret("b", None, &[]);
        a.created_date = Timestamp(5);
        let b = secret("a", None, &[]);
        let created = sort_key("created-date").unwrap();
        assert!(created(&b) < created(&a));
        assert!(sort_key("name").unwrap()(&b) < sort_key("name").unwrap()(&a));
        assert!(sort_key("last-accessed-date").is_err());
    }
}
