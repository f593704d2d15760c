//! Lifecycle policies: ECR's JSON rules that expire a repository's old images, their
//! validation ([`parse_policy`]), their evaluation ([`evaluate`], pure, with `now` passed in)
//! and the pass that applies every repository's policy ([`apply_lifecycle_policies`]).
//!
//! The semantics are ECR's: rules are evaluated in ascending `rulePriority`; a rule selects
//! the images its `tagStatus` (and prefixes or patterns) match, newest push first;
//! `imageCountMoreThan N` expires all but the newest N of them and `sinceImagePushed N days`
//! those pushed more than N days ago. An image is expired by at most one rule, and an image
//! a rule selected is never expired by a rule of lower priority, though that rule still
//! counts it. With several prefixes (or patterns), an image must have a tag matching each.
//!
//! Berth evaluates only top-level images: the children of an index and the referrers of a
//! manifest that is stored belong to it, and are not expired on their own.
//!
//! Expiring an image deletes its manifest and tags in one transaction per repository, with
//! the same plan as BatchDeleteImage ([`images::plan_delete_image`]); the blobs it leaves
//! unreferenced go with the next garbage collection (`super::gc`).

use super::images::{self, DOCKER_MANIFEST_LIST, OCI_INDEX, tags_by_digest};
use super::meta::{ImageRecord, LifecyclePolicyRecord};
use crate::App;
use crate::db::{Db, Versioned, Writes};
use crate::records::keys;
use berth_api::ApiError;
use berth_model::Timestamp;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

const DAY_MILLIS: i64 = 24 * 3600 * 1000;
/// At most this many `*` in one `tagPatternList` entry, as ECR allows.
const MAX_WILDCARDS: usize = 4;

/// Which images a rule looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSelection {
    /// Tagged images with, for each prefix (pattern), a tag that starts with (matches) it.
    Tagged {
        prefixes: Vec<String>,
        patterns: Vec<String>,
    },
    Untagged,
    Any,
}

/// Which of the selected images a rule expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// `imageCountMoreThan`: all but the newest N.
    MoreThan(u64),
    /// `sinceImagePushed` with `countUnit` `days`: those pushed more than N days ago.
    SincePushedDays(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub priority: i32,
    pub selection: TagSelection,
    pub count: Count,
}

/// A valid policy: its rules in the order they are evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

fn at(path: &str, member: &str) -> String {
    format!("{path}.{member}")
}

/// `v` as an object with no members but `allowed`.
fn object<'a>(
    v: &'a Value,
    path: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, String> {
    let map = v
        .as_object()
        .ok_or_else(|| format!("{path} must be a JSON object"))?;
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "{} is not a member of a lifecycle policy {path} (allowed: {})",
            at(path, unknown),
            allowed.join(", ")
        ));
    }
    Ok(map)
}

fn required<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    member: &str,
) -> Result<&'a Value, String> {
    map.get(member)
        .ok_or_else(|| format!("{} is missing", at(path, member)))
}

fn string<'a>(map: &'a Map<String, Value>, path: &str, member: &str) -> Result<&'a str, String> {
    required(map, path, member)?
        .as_str()
        .ok_or_else(|| format!("{} must be a string", at(path, member)))
}

/// A list of non-empty strings, if present.
fn strings(
    map: &Map<String, Value>,
    path: &str,
    member: &str,
) -> Result<Option<Vec<String>>, String> {
    let Some(v) = map.get(member) else {
        return Ok(None);
    };
    let list = v
        .as_array()
        .ok_or_else(|| format!("{} must be a list of strings", at(path, member)))?;
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        match item.as_str() {
            Some(s) if !s.is_empty() => out.push(s.to_string()),
            _ => {
                return Err(format!(
                    "{}[{i}] must be a non-empty string",
                    at(path, member)
                ));
            }
        }
    }
    Ok(Some(out))
}

fn parse_selection(v: &Value, path: &str) -> Result<(TagSelection, Count), String> {
    let map = object(
        v,
        path,
        &[
            "tagStatus",
            "tagPrefixList",
            "tagPatternList",
            "countType",
            "countUnit",
            "countNumber",
        ],
    )?;
    let prefixes = strings(map, path, "tagPrefixList")?;
    let patterns = strings(map, path, "tagPatternList")?;
    if let Some(patterns) = &patterns {
        for (i, p) in patterns.iter().enumerate() {
            if p.matches('*').count() > MAX_WILDCARDS {
                return Err(format!(
                    "{}[{i}] '{p}' has more than {MAX_WILDCARDS} wildcards",
                    at(path, "tagPatternList")
                ));
            }
        }
    }
    let status = string(map, path, "tagStatus")?;
    let selection = match status {
        "tagged" => match (prefixes, patterns) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{path} has both tagPrefixList and tagPatternList; give one of them"
                ));
            }
            (Some(prefixes), None) if !prefixes.is_empty() => TagSelection::Tagged {
                prefixes,
                patterns: Vec::new(),
            },
            (None, Some(patterns)) if !patterns.is_empty() => TagSelection::Tagged {
                prefixes: Vec::new(),
                patterns,
            },
            _ => {
                return Err(format!(
                    "{} or {} (a non-empty list) is required when tagStatus is tagged",
                    at(path, "tagPrefixList"),
                    at(path, "tagPatternList")
                ));
            }
        },
        "untagged" | "any" => {
            if prefixes.is_some() || patterns.is_some() {
                return Err(format!(
                    "{path}: tagPrefixList and tagPatternList are allowed only when tagStatus is tagged, not {status}"
                ));
            }
            if status == "any" {
                TagSelection::Any
            } else {
                TagSelection::Untagged
            }
        }
        other => {
            return Err(format!(
                "{} must be tagged, untagged or any, not '{other}'",
                at(path, "tagStatus")
            ));
        }
    };
    let number = required(map, path, "countNumber")?;
    let number = number.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
        format!(
            "{} must be a whole number of at least 1, not {number}",
            at(path, "countNumber")
        )
    })?;
    let unit = match map.get("countUnit") {
        None => None,
        Some(u) => Some(
            u.as_str()
                .ok_or_else(|| format!("{} must be a string", at(path, "countUnit")))?,
        ),
    };
    let count = match string(map, path, "countType")? {
        "imageCountMoreThan" => match unit {
            None => Count::MoreThan(number),
            Some(_) => {
                return Err(format!(
                    "{} is allowed only with countType sinceImagePushed",
                    at(path, "countUnit")
                ));
            }
        },
        "sinceImagePushed" => match unit {
            Some("days") => Count::SincePushedDays(number),
            Some(other) => {
                return Err(format!(
                    "{} must be days, not '{other}'",
                    at(path, "countUnit")
                ));
            }
            None => {
                return Err(format!(
                    "{} (days) is required with countType sinceImagePushed",
                    at(path, "countUnit")
                ));
            }
        },
        other => {
            return Err(format!(
                "{} must be imageCountMoreThan or sinceImagePushed, not '{other}'",
                at(path, "countType")
            ));
        }
    };
    Ok((selection, count))
}

fn parse_rule(v: &Value, path: &str) -> Result<Rule, String> {
    let map = object(
        v,
        path,
        &["rulePriority", "description", "selection", "action"],
    )?;
    let priority = required(map, path, "rulePriority")?;
    let priority = priority
        .as_i64()
        .filter(|p| *p >= 1)
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| {
            format!(
                "{} must be a whole number of at least 1, not {priority}",
                at(path, "rulePriority")
            )
        })?;
    if map.get("description").is_some_and(|d| !d.is_string()) {
        return Err(format!("{} must be a string", at(path, "description")));
    }
    let selection_path = at(path, "selection");
    let (selection, count) = parse_selection(required(map, path, "selection")?, &selection_path)?;
    let action_path = at(path, "action");
    let action = object(required(map, path, "action")?, &action_path, &["type"])?;
    match string(action, &action_path, "type")? {
        "expire" => {}
        other => {
            return Err(format!(
                "{} must be expire, not '{other}'",
                at(&action_path, "type")
            ));
        }
    }
    Ok(Rule {
        priority,
        selection,
        count,
    })
}

/// Checks a lifecycle policy's text and reads its rules; the error names what is wrong,
/// by its path in the policy (`rules[1].selection.countNumber`).
pub fn parse_policy(text: &str) -> Result<Policy, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("the policy is not valid JSON: {e}"))?;
    let top = v
        .as_object()
        .ok_or("the policy must be a JSON object with rules")?;
    if let Some(unknown) = top.keys().find(|k| *k != "rules") {
        return Err(format!(
            "'{unknown}' is not a member of a lifecycle policy (only rules is)"
        ));
    }
    let list = top
        .get("rules")
        .ok_or("rules is missing")?
        .as_array()
        .ok_or("rules must be a list")?;
    if list.is_empty() {
        return Err("rules must hold at least one rule".into());
    }
    let mut rules = Vec::new();
    for (i, rule) in list.iter().enumerate() {
        let path = format!("rules[{i}]");
        let rule = parse_rule(rule, &path)?;
        for (j, earlier) in rules.iter().enumerate() {
            let earlier: &Rule = earlier;
            if earlier.priority == rule.priority {
                return Err(format!(
                    "{path}.rulePriority {} is also the priority of rules[{j}]; priorities must be unique",
                    rule.priority
                ));
            }
            if earlier.selection == TagSelection::Untagged
                && rule.selection == TagSelection::Untagged
            {
                return Err(format!(
                    "{path} selects untagged images as rules[{j}] does; only one rule may"
                ));
            }
            if let (
                TagSelection::Tagged {
                    prefixes: a,
                    patterns: pa,
                },
                TagSelection::Tagged {
                    prefixes: b,
                    patterns: pb,
                },
            ) = (&earlier.selection, &rule.selection)
            {
                let set = |l: &Vec<String>| l.iter().cloned().collect::<BTreeSet<_>>();
                if set(a) == set(b) && set(pa) == set(pb) {
                    return Err(format!(
                        "{path}.selection selects the same tags as rules[{j}]; each tagged rule needs its own prefixes or patterns"
                    ));
                }
            }
        }
        rules.push(rule);
    }
    let highest = rules.iter().map(|r| r.priority).max().unwrap_or(1);
    if let Some(i) = rules
        .iter()
        .position(|r| r.selection == TagSelection::Any && r.priority != highest)
    {
        return Err(format!(
            "rules[{i}] has tagStatus any, so its rulePriority must be the highest (it is evaluated last)"
        ));
    }
    rules.sort_by_key(|r| r.priority);
    Ok(Policy { rules })
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn matches_pattern(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has taken so far.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

impl TagSelection {
    pub fn selects(&self, tags: &[String]) -> bool {
        match self {
            TagSelection::Any => true,
            TagSelection::Untagged => tags.is_empty(),
            TagSelection::Tagged { prefixes, patterns } => {
                !tags.is_empty()
                    && prefixes
                        .iter()
                        .all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
                    && patterns
                        .iter()
                        .all(|p| tags.iter().any(|t| matches_pattern(p, t)))
            }
        }
    }
}

/// An image as a policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Timestamp,
}

/// The images `policy` expires at `now`: their indices in `images`, each with the priority
/// of the rule that expires it.
pub fn evaluate(policy: &Policy, images: &[Candidate], now: Timestamp) -> Vec<(usize, i32)> {
    let mut newest_first: Vec<usize> = (0..images.len()).collect();
    newest_first.sort_by(|&a, &b| {
        images[b]
            .pushed_at
            .cmp(&images[a].pushed_at)
            .then_with(|| images[a].digest.cmp(&images[b].digest))
    });
    let mut selected_before = vec![false; images.len()];
    let mut expired = Vec::new();
    for rule in &policy.rules {
        let selected: Vec<usize> = newest_first
            .iter()
            .copied()
            .filter(|&i| rule.selection.selects(&images[i].tags))
            .collect();
        let doomed: Vec<usize> = match rule.count {
            Count::MoreThan(keep) => selected
                .iter()
                .copied()
                .skip(usize::try_from(keep).unwrap_or(usize::MAX))
                .collect(),
            Count::SincePushedDays(days) => {
                let age = i64::try_from(days)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(DAY_MILLIS);
                let cutoff = now.millis().saturating_sub(age);
                selected
                    .iter()
                    .copied()
                    .filter(|&i| images[i].pushed_at.millis() < cutoff)
                    .collect()
            }
        };
        for i in doomed {
            if !selected_before[i] {
                expired.push((i, rule.priority));
            }
        }
        for i in selected {
            selected_before[i] = true;
        }
    }
    expired
}

/// An image a policy expires.
#[derive(Debug, Clone)]
pub struct Expiring {
    pub image: Versioned<ImageRecord>,
    pub tags: Vec<String>,
    pub rule_priority: i32,
}

/// The images of a repository that `policy` expires at `now`.
pub fn expiring(
    db: &Db,
    region: &str,
    repository: &str,
    policy: &Policy,
    now: Timestamp,
) -> Vec<Expiring> {
    let stored = db.list::<ImageRecord>(&keys::images(region, repository));
    // Children of an index and referrers of a stored manifest belong to it.
    let dependent: BTreeSet<String> = {
        let present: BTreeSet<&str> = stored.iter().map(|i| i.value.digest.as_str()).collect();
        let mut dependent = BTreeSet::new();
        for image in &stored {
            let image = &image.value;
            if matches!(image.media_type.as_str(), OCI_INDEX | DOCKER_MANIFEST_LIST)
                && let Ok(parsed) =
                    images::parse(image.manifest.as_bytes(), Some(image.media_type.as_str()))
            {
                dependent.extend(parsed.children);
            }
            if image
                .subject
                .as_deref()
                .is_some_and(|s| present.contains(s))
            {
                dependent.insert(image.digest.clone());
            }
        }
        dependent
    };
    let mut tags = tags_by_digest(db, region, repository);
    let top: Vec<Versioned<ImageRecord>> = stored
        .into_iter()
        .filter(|i| !dependent.contains(&i.value.digest))
        .collect();
    let candidates: Vec<Candidate> = top
        .iter()
        .map(|i| Candidate {
            digest: i.value.digest.clone(),
            tags: tags.remove(&i.value.digest).unwrap_or_default(),
            pushed_at: i.value.pushed_at,
        })
        .collect();
    evaluate(policy, &candidates, now)
        .into_iter()
        .map(|(i, rule_priority)| Expiring {
            image: top[i].clone(),
            tags: candidates[i].tags.clone(),
            rule_priority,
        })
        .collect()
}

/// Applies one repository's policy at `now`; returns how many images it expired.
async fn apply(
    app: &App,
    region: &str,
    repository: &str,
    now: Timestamp,
) -> Result<usize, ApiError> {
    let key = keys::lifecycle_policy(region, repository);
    app.db
        .transact(|db| {
            let Some(stored) = db.get::<LifecyclePolicyRecord>(&key) else {
                return Ok((Writes::new(), 0));
            };
            let policy = match parse_policy(&stored.value.text) {
                Ok(policy) => policy,
                Err(e) => {
                    tracing::warn!(region, repository, error = %e, "stored lifecycle policy is not valid");
                    return Ok((Writes::new(), 0));
                }
            };
            let mut writes = Writes::new().expect_unchanged(&stored).put(
                &key,
                LifecyclePolicyRecord {
                    last_evaluated_at: Some(now),
                    ..stored.value.clone()
                },
            );
            let expiring = expiring(db, region, repository, &policy, now);
            for e in &expiring {
                writes = images::plan_delete_image(db, region, repository, &e.image, writes);
            }
            Ok((writes, expiring.len()))
        })
        .await
}

/// Applies every repository's lifecycle policy, in every region, at `now`; returns how many
/// images were expired. The background sweep calls it with the clock's time; tests call it
/// with the time they want.
pub async fn apply_lifecycle_policies(app: &App, now: Timestamp) -> Result<usize, ApiError> {
    let mut policies = Vec::new();
    app.db
        .scan::<LifecyclePolicyRecord>(&keys::all_ecr(), |key, policy| {
            // `/ecr/{region}/lifecycle-policies/{repo}`
            if let Some(region) = key.split('/').nth(2) {
                policies.push((region.to_string(), policy.repository.clone()));
            }
            true
        });
    let mut expired = 0;
    for (region, repository) in policies {
        let n = apply(app, &region, &repository, now).await?;
        if n > 0 {
            tracing::info!(
                region,
                repository,
                images = n,
                "lifecycle policy expired images"
            );
        }
        expired += n;
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: Value) -> Result<Policy, String> {
        parse_policy(&serde_json::json!({ "rules": rules }).to_string())
    }

    fn rule(priority: i64, selection: Value) -> Value {
        serde_json::json!({"rulePriority": priority, "selection": selection, "action": {"type": "expire"}})
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        use serde_json::json;
        let untagged =
            json!({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1});
        let cases = [
            (json!([]), "at least one rule"),
            (
                json!([{"selection": untagged, "action": {"type": "expire"}}]),
                "rules[0].rulePriority is missing",
            ),
            (
                json!([rule(0, untagged.clone())]),
                "rules[0].rulePriority must be a whole number",
            ),
            (
                json!([
                    rule(1, untagged.clone()),
                    rule(
                        1,
                        json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1})
                    )
                ]),
                "rules[1].rulePriority 1 is also",
            ),
            (
                json!([rule(1, untagged.clone()), rule(2, untagged.clone())]),
                "only one rule may",
            ),
            (
                json!([rule(
                    1,
                    json!({"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1})
                )]),
                "rules[0].selection.tagPrefixList or",
            ),
            (
                json!([rule(
                    1,
                    json!({"tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["b*"], "countType": "imageCountMoreThan", "countNumber": 1})
                )]),
                "both tagPrefixList and tagPatternList",
            ),
            (
                json!([rule(
                    1,
                    json!({"tagStatus": "untagged", "tagPrefixList": ["a"], "countType": "imageCountMoreThan", "countNumber": 1})
                )]),
                "only when tagStatus is tagged",
            ),
            (
                json!([rule(
                    1,
                    json!({"tagStatus": "some", "countType": "imageCountMoreThan", "countNumber": 1})
                )]),
                "rules[0].selection.tagStatus must be",
            ),
            (
                json!([rule(
                    1,
                    json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 0})
                )]),
                "rules[0].selection.countNumber must be",
            ),
            (
                json!([rule(
                    1,
                    json!({"tagStatus": "any", "countType": "sinceImagePushed", "countNumber": 3})
                )]),
                "rules[0].selection.countUnit (days) is required",
            ),
            (
                json!([rule(
                    1,
                    json!({"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "hours", "countNumber": 3})
                )]),
                "countUnit must be days",
            ),
            (
                json!([rule(
                    1,
                    json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 3})
                )]),
                "countUnit is allowed only",
            ),
            (
                json!([rule(
                    1,
                    json!({"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 3})
                )]),
                "countType must be",
            ),
            (
                json!([rule(
                    1,
                    json!({"tagStatus": "tagged", "tagPatternList": ["*a*b*c*d*e"], "countType": "imageCountMoreThan", "countNumber": 1})
                )]),
                "more than 4 wildcards",
            ),
            (
                json!([
                    rule(
                        1,
                        json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1})
                    ),
                    rule(2, untagged.clone())
                ]),
                "rules[0] has tagStatus any",
            ),
            (
                json!([
                    rule(
                        1,
                        json!({"tagStatus": "tagged", "tagPrefixList": ["a", "b"], "countType": "imageCountMoreThan", "countNumber": 1})
                    ),
                    rule(
                        2,
                        json!({"tagStatus": "tagged", "tagPrefixList": ["b", "a"], "countType": "imageCountMoreThan", "countNumber": 2})
                    )
                ]),
                "selects the same tags as rules[0]",
            ),
            (
                json!([{"rulePriority": 1, "selection": untagged, "action": {"type": "transition"}}]),
                "rules[0].action.type must be expire",
            ),
            (
                json!([{"rulePriority": 1, "selection": untagged, "action": {"type": "expire"}, "extra": 1}]),
                "rules[0].extra is not a member",
            ),
        ];
        for (rules, expected) in cases {
            let e = policy(rules.clone()).unwrap_err();
            assert!(e.contains(expected), "{rules}: {e}");
        }
        assert!(parse_policy("{").unwrap_err().contains("not valid JSON"));
        assert!(
            parse_policy(r#"{"rules": [], "x": 1}"#)
                .unwrap_err()
                .contains("'x'")
        );
    }

    #[test]
    fn patterns_match_whole_tags() {
        assert!(matches_pattern("prod*", "prod-1"));
        assert!(matches_pattern("*-rc*", "v1-rc2"));
        assert!(matches_pattern("a*b*c", "aXXbYYc"));
        assert!(!matches_pattern("a*b*c", "aXXbYYcd"));
        assert!(!matches_pattern("prod", "prod-1"));
        assert!(matches_pattern("*", ""));
    }

    fn image(digest: &str, tags: &[&str], day: i64) -> Candidate {
        Candidate {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: Timestamp::from_millis(day * DAY_MILLIS),
        }
    }

    #[test]
    fn rules_run_in_priority_order_and_expire_an_image_once() {
        use serde_json::json;
        let p = policy(json!([
            rule(20, json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3})),
            rule(10, json!({"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 1})),
        ]))
        .unwrap();
        assert_eq!(p.rules[0].priority, 10, "sorted by priority");
        let images = [
            image("p1", &["prod-1"], 1),
            image("p2", &["prod-2"], 2),
            image("p3", &["prod-3"], 3),
            image("d1", &["dev-1"], 4),
            image("u1", &[], 5),
        ];
        let mut expired = evaluate(&p, &images, Timestamp::from_millis(10 * DAY_MILLIS));
        expired.sort();
        // prod: keeps p3, expires p1 and p2 (rule 10). any: keeps u1, d1, p3 (newest 3); p1
        // and p2 are past it too, but rule 10 selected them first, and it expires them once.
        assert_eq!(expired, vec![(0, 10), (1, 10)]);

        let p = policy(json!([rule(
            1,
            json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 3})
        )]))
        .unwrap();
        let images = [
            image("old", &[], 1),
            image("new", &[], 8),
            image("t", &["x"], 1),
        ];
        let expired = evaluate(&p, &images, Timestamp::from_millis(10 * DAY_MILLIS));
        assert_eq!(expired, vec![(0, 1)]);
    }
}
