//! AWS Systems Manager Parameter Store (`AmazonSSM`, JSON 1.1, SigV4 service `ssm`), the part
//! tasks need: PutParameter, GetParameter, GetParameters, DeleteParameter, DeleteParameters,
//! LabelParameterVersion, UnlabelParameterVersion and the tagging calls here;
//! GetParametersByPath, DescribeParameters and GetParameterHistory in [`list`], their
//! `ParameterFilters` in [`filters`].
//!
//! Contract:
//! - One record per parameter, keyed by its name (unique in a region), holding its versions in
//!   ascending order, the last the current one. Its ARN is
//!   `arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`, the name's leading `/` not doubled. A `Name`
//!   in a request may be the name or that ARN, and, where a value is read, followed by
//!   `:VERSION` or `:LABEL` (the `Selector` of the answer).
//! - PutParameter makes version 1, or with `Overwrite` the next version (even for the same
//!   value); `Description`, `AllowedPattern` and the tier carry over from the current version
//!   when not given again. A parameter keeps 100 versions: the 101st drops the oldest, unless it
//!   carries a label (`ParameterMaxVersionLimitExceeded`). A region holds at most 10,000
//!   parameters (`ParameterLimitExceeded`).
//! - `AllowedPattern` is a regular expression the whole value must match.
//! - SecureString values are stored sealed with the server's key ([`crate::seal`], the same as
//!   Secrets Manager's), bound to the region, name and version; they are answered in the clear
//!   only `WithDecryption`, otherwise as the base64 ciphertext (stable for a version). There is
//!   no KMS: `KeyId` may only be `alias/aws/ssm`.
//! - A label names one version of a parameter: labelling another version moves it. A version
//!   carries at most 10 labels.
//! - Not served: parameter policies, data types other than `text`, shared parameters, public
//!   parameters (`/aws/service/…`).

pub mod filters;
pub mod list;

use crate::db::{Db, Versioned, Writes};
use crate::records::keys;
use crate::seal::{SealError, Sealed};
use crate::{App, Ctx};
use berth_api::secretsmanager::SecretValue;
use berth_api::ssm::*;
use berth_api::{ApiError, json};
use berth_model::Timestamp;
use serde::{Deserialize, Serialize};

/// The most parameters a region holds.
const MAX_PARAMETERS: usize = 10_000;

/// A version's value as stored: in the clear, or sealed (SecureString).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StoredValue {
    Plain(String),
    Sealed(Sealed),
}

/// One version of a parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterVersion {
    pub version: i64,
    pub r#type: ParameterType,
    pub value: StoredValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    pub tier: ParameterTier,
    pub last_modified_date: Timestamp,
    pub last_modified_user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// A parameter as stored: its name, tags and versions (ascending, never empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterRecord {
    pub name: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub versions: Vec<ParameterVersion>,
}

impl ParameterRecord {
    /// The current version.
    pub fn current(&self) -> &ParameterVersion {
        self.versions.last().expect("a parameter has a version")
    }

    /// The version `selector` names (the current one without a selector).
    fn select(&self, selector: Option<&Selector>) -> Option<&ParameterVersion> {
        match selector {
            None => Some(self.current()),
            Some(Selector::Version(n)) => self.versions.iter().find(|v| v.version == *n),
            Some(Selector::Label(l)) => self.versions.iter().find(|v| v.labels.contains(l)),
        }
    }

    /// The path its name sits in as GetParametersByPath sees it: a name without `/` is at
    /// the root.
    pub fn full_path(&self) -> String {
        if self.name.starts_with('/') {
            self.name.clone()
        } else {
            format!("/{}", self.name)
        }
    }
}

/// The ARN of the parameter `name` in the caller's region and account.
pub fn arn(ctx: &Ctx, name: &str) -> String {
    format!(
        "arn:aws:ssm:{}:{}:parameter/{}",
        ctx.region,
        ctx.account,
        name.trim_start_matches('/')
    )
}

/// The names an ARN of this region and account may stand for: `parameter/a/b` is `/a/b`,
/// `parameter/db` is `db` or else `/db`.
fn names_in_arn(ctx: &Ctx, id: &str) -> Vec<String> {
    let prefix = format!("arn:aws:ssm:{}:{}:parameter/", ctx.region, ctx.account);
    match id.strip_prefix(&prefix).filter(|rest| !rest.is_empty()) {
        None => Vec::new(),
        Some(rest) if rest.contains('/') => vec![format!("/{rest}")],
        Some(rest) => vec![rest.to_owned(), format!("/{rest}")],
    }
}

/// The parameter `id` names, by name or ARN (without a selector).
pub fn find(db: &Db, ctx: &Ctx, id: &str) -> Option<Versioned<ParameterRecord>> {
    let get = |name: &str| db.get::<ParameterRecord>(&keys::parameter(&ctx.region, name));
    if id.starts_with("arn:") {
        return names_in_arn(ctx, id).iter().find_map(|n| get(n));
    }
    get(id)
}

fn not_found(name: &str) -> ApiError {
    ApiError::ssm_parameter_not_found(format!("Parameter {name} not found."))
}

fn lookup(db: &Db, ctx: &Ctx, id: &str) -> Result<Versioned<ParameterRecord>, ApiError> {
    find(db, ctx, id).ok_or_else(|| not_found(id))
}

/// A sealing failure as Parameter Store reports it: a fault of the server.
fn sealing(e: SealError) -> ApiError {
    ApiError::ssm_internal(format!("SecureString {e}"))
}

/// What a SecureString version is bound to.
fn context(region: &str, name: &str, version: i64) -> String {
    format!("ssm\n{region}\n{name}\n{version}")
}

/// A version's value as answered: SecureStrings in the clear only `decrypt`.
fn value_of(
    app: &App,
    ctx: &Ctx,
    name: &str,
    v: &ParameterVersion,
    decrypt: bool,
) -> Result<String, ApiError> {
    match &v.value {
        StoredValue::Plain(s) => Ok(s.clone()),
        StoredValue::Sealed(sealed) if !decrypt => Ok(sealed.data.clone()),
        StoredValue::Sealed(sealed) => {
            match app
                .secrets_key
                .open(&context(&ctx.region, name, v.version), sealed)
                .map_err(sealing)?
            {
                SecretValue::String(s) => Ok(s),
                SecretValue::Binary(_) => Err(sealing(SealError::Corrupt)),
            }
        }
    }
}

/// A version as GetParameter answers it.
fn parameter_out(
    app: &App,
    ctx: &Ctx,
    record: &ParameterRecord,
    v: &ParameterVersion,
    selector: Option<&Selector>,
    decrypt: bool,
) -> Result<Parameter, ApiError> {
    Ok(Parameter {
        name: record.name.clone(),
        r#type: v.r#type,
        value: value_of(app, ctx, &record.name, v, decrypt)?,
        version: v.version,
        selector: selector.map(Selector::to_string),
        last_modified_date: v.last_modified_date,
        arn: arn(ctx, &record.name),
        data_type: TEXT.into(),
    })
}

/// A version's metadata, as DescribeParameters and GetParameterHistory tell it.
fn metadata(name: &str, v: &ParameterVersion) -> ParameterMetadata {
    ParameterMetadata {
        name: name.to_owned(),
        r#type: v.r#type,
        key_id: (v.r#type == ParameterType::SecureString).then(|| DEFAULT_KEY_ID.to_owned()),
        last_modified_date: v.last_modified_date,
        last_modified_user: v.last_modified_user.clone(),
        description: v.description.clone(),
        allowed_pattern: v.allowed_pattern.clone(),
        version: v.version,
        tier: v.tier,
        policies: Vec::new(),
        data_type: TEXT.into(),
    }
}

/// Compiles an `AllowedPattern` to match whole values.
fn allowed_pattern(pattern: &str) -> Result<regex::Regex, ApiError> {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(ApiError::ssm_validation(format!(
            "AllowedPattern: longer than {MAX_PATTERN_CHARS} characters"
        )));
    }
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        ApiError::ssm_invalid_allowed_pattern(format!(
            "AllowedPattern: '{pattern}' is not a valid regular expression: {e}"
        ))
    })
}

/// The checks of PutParameter that need no stored state.
fn check_put(input: &PutParameterRequest) -> Result<(), ApiError> {
    check_name(&input.name)?;
    if input.value.is_empty() {
        return Err(ApiError::ssm_validation(
            "Value: must have at least 1 character",
        ));
    }
    if let Some(d) = &input.description
        && d.chars().count() > MAX_DESCRIPTION_CHARS
    {
        return Err(ApiError::ssm_validation(format!(
            "Description: longer than {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    if input.policies.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(ApiError::ssm_validation(
            "Policies: Berth does not serve parameter policies",
        ));
    }
    if let Some(t) = input.data_type.as_deref().filter(|t| *t != TEXT) {
        return Err(ApiError::ssm_validation(format!(
            "DataType: the data type '{t}' is not supported by Berth (only 'text')"
        )));
    }
    if let Some(key) = &input.key_id {
        if input.r#type != Some(ParameterType::SecureString) {
            return Err(ApiError::ssm_validation(
                "KeyId: a KeyId is given only for a SecureString parameter",
            ));
        }
        if key != DEFAULT_KEY_ID {
            return Err(ApiError::ssm_invalid_key_id(format!(
                "KeyId: '{key}': Berth has no KMS; SecureString values are sealed with the server's own key (give no KeyId, or {DEFAULT_KEY_ID})"
            )));
        }
    }
    let tags = input.tags.as_deref().unwrap_or_default();
    if input.overwrite == Some(true) && !tags.is_empty() {
        return Err(ApiError::ssm_validation(
            "Tags, Overwrite: tags and overwrite can't be used together; to change the tags of an existing parameter use AddTagsToResource or RemoveTagsFromResource",
        ));
    }
    check_tags(tags)?;
    check_tag_count(tags.len())
}

/// The tier a new version gets: as asked (Intelligent-Tiering picks by the value's size), else
/// the current version's; an advanced parameter never goes back to standard.
fn tier_of(
    asked: Option<ParameterTier>,
    current: Option<ParameterTier>,
    value: &str,
) -> Result<ParameterTier, ApiError> {
    let len = value.chars().count();
    let tier = match asked {
        Some(ParameterTier::IntelligentTiering) => {
            if len > ParameterTier::Standard.max_value_chars()
                || current == Some(ParameterTier::Advanced)
            {
                ParameterTier::Advanced
            } else {
                ParameterTier::Standard
            }
        }
        Some(t) => t,
        None => current.unwrap_or(ParameterTier::Standard),
    };
    if tier == ParameterTier::Standard && current == Some(ParameterTier::Advanced) {
        return Err(ApiError::ssm_validation(
            "Tier: this parameter uses the advanced tier; it can't go back to the standard tier",
        ));
    }
    if len > tier.max_value_chars() {
        return Err(ApiError::ssm_validation(format!(
            "Value: {len} characters is more than a {tier:?} parameter holds ({})",
            tier.max_value_chars()
        )));
    }
    Ok(tier)
}

/// The number of parameters the region holds, counted up to the limit.
fn count_reaches_limit(db: &Db, ctx: &Ctx) -> bool {
    let mut n = 0usize;
    db.scan::<ParameterRecord>(&keys::parameters(&ctx.region), |_, _| {
        n += 1;
        n < MAX_PARAMETERS
    });
    n >= MAX_PARAMETERS
}

async fn put(app: &App, ctx: &Ctx, input: PutParameterRequest) -> Result<Vec<u8>, ApiError> {
    check_put(&input)?;
    if let Some(p) = &input.allowed_pattern {
        allowed_pattern(p)?;
    }
    let key = keys::parameter(&ctx.region, &input.name);
    let out = app
        .db
        .transact(|db| {
            let existing = db.get::<ParameterRecord>(&key);
            let current = existing.as_ref().map(|e| e.value.current());
            if current.is_some() && input.overwrite != Some(true) {
                return Err(ApiError::ssm_parameter_already_exists(format!(
                    "The parameter {} already exists. To overwrite this value, set the overwrite option in the request to true.",
                    input.name
                )));
            }
            if current.is_none() && count_reaches_limit(db, ctx) {
                return Err(ApiError::ssm_parameter_limit(format!(
                    "a region holds at most {MAX_PARAMETERS} parameters; delete some first"
                )));
            }
            let r#type = input.r#type.or(current.map(|c| c.r#type)).ok_or_else(|| {
                ApiError::ssm_validation("Type: a parameter type is required when you create a parameter")
            })?;
            let pattern = input
                .allowed_pattern
                .clone()
                .or_else(|| current.and_then(|c| c.allowed_pattern.clone()))
                .filter(|p| !p.is_empty());
            if let Some(p) = &pattern
                && !allowed_pattern(p)?.is_match(&input.value)
            {
                return Err(ApiError::ssm_pattern_mismatch(format!(
                    "Value: the value does not match the parameter's AllowedPattern {p}"
                )));
            }
            let tier = tier_of(input.tier, current.map(|c| c.tier), &input.value)?;
            let version = current.map_or(1, |c| c.version + 1);
            let value = match r#type {
                ParameterType::SecureString => StoredValue::Sealed(
                    app.secrets_key
                        .seal(
                            &context(&ctx.region, &input.name, version),
                            &SecretValue::String(input.value.clone()),
                        )
                        .map_err(sealing)?,
                ),
                _ => StoredValue::Plain(input.value.clone()),
            };
            let mut record = match &existing {
                Some(e) => e.value.clone(),
                None => ParameterRecord {
                    name: input.name.clone(),
                    tags: input.tags.clone().unwrap_or_default(),
                    versions: Vec::new(),
                },
            };
            record.versions.push(ParameterVersion {
                version,
                r#type,
                value,
                description: input
                    .description
                    .clone()
                    .or_else(|| current.and_then(|c| c.description.clone()))
                    .filter(|d| !d.is_empty()),
                allowed_pattern: pattern,
                tier,
                last_modified_date: ctx.now,
                last_modified_user: ctx.principal.clone(),
                labels: Vec::new(),
            });
            if record.versions.len() > MAX_VERSIONS {
                let oldest = record.versions.remove(0);
                if !oldest.labels.is_empty() {
                    return Err(ApiError::ssm_max_version_limit(format!(
                        "{}: the oldest of its {MAX_VERSIONS} versions, {}, carries labels ({}); move or remove them before adding a version",
                        input.name,
                        oldest.version,
                        oldest.labels.join(", ")
                    )));
                }
            }
            let writes = match &existing {
                Some(e) => Writes::new().expect_unchanged(e),
                None => Writes::new().expect(&key, 0),
            };
            Ok((
                writes.put(&key, record),
                PutParameterResult { version, tier },
            ))
        })
        .await?;
    json::encode(&out)
}

/// Reads one `NAME[:SELECTOR]`: the inner `Err` when there is no such parameter or version.
fn read_one(
    app: &App,
    ctx: &Ctx,
    name: &str,
    decrypt: bool,
) -> Result<Result<Parameter, ApiError>, ApiError> {
    let (base, selector) = split_selector(name)?;
    let Some(found) = find(&app.db, ctx, base) else {
        return Ok(Err(not_found(name)));
    };
    let record = &found.value;
    let Some(v) = record.select(selector.as_ref()) else {
        let which = match &selector {
            Some(Selector::Version(n)) => format!("version {n}"),
            Some(Selector::Label(l)) => format!("the version labelled {l}"),
            None => "the current version".into(),
        };
        return Ok(Err(ApiError::ssm_version_not_found(format!(
            "Systems Manager could not find {which} of {}. Verify the version and try again.",
            record.name
        ))));
    };
    parameter_out(app, ctx, record, v, selector.as_ref(), decrypt).map(Ok)
}

fn get(app: &App, ctx: &Ctx, input: GetParameterRequest) -> Result<Vec<u8>, ApiError> {
    let parameter = read_one(
        app,
        ctx,
        &input.name,
        input.with_decryption.unwrap_or(false),
    )??;
    json::encode(&GetParameterResult { parameter })
}

fn get_many(app: &App, ctx: &Ctx, input: GetParametersRequest) -> Result<Vec<u8>, ApiError> {
    check_names_count(&input.names)?;
    let decrypt = input.with_decryption.unwrap_or(false);
    let mut out = GetParametersResult {
        parameters: Vec::new(),
        invalid_parameters: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for name in &input.names {
        if !seen.insert(name) {
            continue;
        }
        if split_selector(name).is_err() {
            out.invalid_parameters.push(name.clone());
            continue;
        }
        match read_one(app, ctx, name, decrypt)? {
            Ok(p) => out.parameters.push(p),
            Err(_) => out.invalid_parameters.push(name.clone()),
        }
    }
    json::encode(&out)
}

async fn delete(app: &App, ctx: &Ctx, input: DeleteParameterRequest) -> Result<Vec<u8>, ApiError> {
    app.db
        .transact(|db| {
            let found = lookup(db, ctx, &input.name)?;
            let writes = Writes::new().expect_unchanged(&found).delete(&found.key);
            Ok((writes, ()))
        })
        .await?;
    json::encode(&serde_json::json!({}))
}

async fn delete_many(
    app: &App,
    ctx: &Ctx,
    input: DeleteParametersRequest,
) -> Result<Vec<u8>, ApiError> {
    check_names_count(&input.names)?;
    let out = app
        .db
        .transact(|db| {
            let mut writes = Writes::new();
            let mut out = DeleteParametersResult {
                deleted_parameters: Vec::new(),
                invalid_parameters: Vec::new(),
            };
            let mut deleted = std::collections::HashSet::new();
            for name in &input.names {
                match find(db, ctx, name) {
                    Some(found) if deleted.insert(found.key.clone()) => {
                        writes = writes.expect_unchanged(&found).delete(&found.key);
                        out.deleted_parameters.push(name.clone());
                    }
                    Some(_) => {}
                    None => out.invalid_parameters.push(name.clone()),
                }
            }
            Ok((writes, out))
        })
        .await?;
    json::encode(&out)
}

/// Changes the parameter `id` with `change`, which returns the answer; writes it if it changed.
async fn modify<R>(
    app: &App,
    ctx: &Ctx,
    id: &str,
    missing: fn(&str) -> ApiError,
    change: impl Fn(&mut ParameterRecord) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    app.db
        .transact(|db| {
            let found = find(db, ctx, id).ok_or_else(|| missing(id))?;
            let mut record = found.value.clone();
            let out = change(&mut record)?;
            if record == found.value {
                return Ok((Writes::new(), out));
            }
            let writes = Writes::new()
                .expect_unchanged(&found)
                .put(&found.key, record);
            Ok((writes, out))
        })
        .await
}

fn version_not_found(name: &str, version: i64) -> ApiError {
    ApiError::ssm_version_not_found(format!(
        "Systems Manager could not find version {version} of {name}. Verify the version and try again."
    ))
}

async fn label(
    app: &App,
    ctx: &Ctx,
    input: LabelParameterVersionRequest,
) -> Result<Vec<u8>, ApiError> {
    check_label_count(&input.labels)?;
    let (valid, invalid): (Vec<String>, Vec<String>) =
        input.labels.iter().cloned().partition(|l| valid_label(l));
    let out = modify(app, ctx, &input.name, not_found, |record| {
        let version = input
            .parameter_version
            .unwrap_or_else(|| record.current().version);
        let name = record.name.clone();
        if !record.versions.iter().any(|v| v.version == version) {
            return Err(version_not_found(&name, version));
        }
        for v in &mut record.versions {
            if v.version == version {
                for l in &valid {
                    if !v.labels.contains(l) {
                        v.labels.push(l.clone());
                    }
                }
                if v.labels.len() > MAX_LABELS {
                    return Err(ApiError::ssm_label_limit(format!(
                        "version {version} of {name} would carry {} labels; a version carries at most {MAX_LABELS}",
                        v.labels.len()
                    )));
                }
            } else {
                v.labels.retain(|l| !valid.contains(l));
            }
        }
        Ok(LabelParameterVersionResult {
            invalid_labels: invalid.clone(),
            parameter_version: version,
        })
    })
    .await?;
    json::encode(&out)
}

async fn unlabel(
    app: &App,
    ctx: &Ctx,
    input: LabelParameterVersionRequest,
) -> Result<Vec<u8>, ApiError> {
    check_label_count(&input.labels)?;
    let version = input
        .parameter_version
        .ok_or_else(|| ApiError::ssm_validation("ParameterVersion: required"))?;
    let out = modify(app, ctx, &input.name, not_found, |record| {
        let name = record.name.clone();
        let v = record
            .versions
            .iter_mut()
            .find(|v| v.version == version)
            .ok_or_else(|| version_not_found(&name, version))?;
        let (removed, invalid): (Vec<String>, Vec<String>) = input
            .labels
            .iter()
            .cloned()
            .partition(|l| v.labels.contains(l));
        v.labels.retain(|l| !removed.contains(l));
        Ok(UnlabelParameterVersionResult {
            removed_labels: removed,
            invalid_labels: invalid,
        })
    })
    .await?;
    json::encode(&out)
}

/// Refuses a resource type other than `Parameter`.
fn check_resource_type(resource_type: &str) -> Result<(), ApiError> {
    if resource_type != "Parameter" {
        return Err(ApiError::ssm_invalid_resource_type(format!(
            "ResourceType: '{resource_type}': Berth tags only Parameter resources"
        )));
    }
    Ok(())
}

fn no_resource(id: &str) -> ApiError {
    ApiError::ssm_invalid_resource_id(format!("ResourceId: there is no parameter {id}"))
}

async fn add_tags(
    app: &App,
    ctx: &Ctx,
    input: AddTagsToResourceRequest,
) -> Result<Vec<u8>, ApiError> {
    check_resource_type(&input.resource_type)?;
    check_tags(&input.tags)?;
    modify(app, ctx, &input.resource_id, no_resource, |record| {
        for t in &input.tags {
            match record.tags.iter_mut().find(|e| e.key == t.key) {
                Some(e) => e.value = t.value.clone(),
                None => record.tags.push(t.clone()),
            }
        }
        check_tag_count(record.tags.len())
    })
    .await?;
    json::encode(&serde_json::json!({}))
}

async fn remove_tags(
    app: &App,
    ctx: &Ctx,
    input: RemoveTagsFromResourceRequest,
) -> Result<Vec<u8>, ApiError> {
    check_resource_type(&input.resource_type)?;
    modify(app, ctx, &input.resource_id, no_resource, |record| {
        record.tags.retain(|t| !input.tag_keys.contains(&t.key));
        Ok(())
    })
    .await?;
    json::encode(&serde_json::json!({}))
}

fn list_tags(app: &App, ctx: &Ctx, input: ListTagsForResourceRequest) -> Result<Vec<u8>, ApiError> {
    check_resource_type(&input.resource_type)?;
    let found =
        find(&app.db, ctx, &input.resource_id).ok_or_else(|| no_resource(&input.resource_id))?;
    json::encode(&ListTagsForResourceResult {
        tag_list: found.value.tags,
    })
}

/// How many stored SecureString versions were sealed with another key than `mine`.
pub fn sealed_with_other_keys(app: &App, mine: &str) -> usize {
    let mut foreign = 0usize;
    app.db
        .scan::<ParameterRecord>(&keys::all_parameters(), |_, p| {
            foreign += p
                .versions
                .iter()
                .filter(|v| matches!(&v.value, StoredValue::Sealed(s) if s.key != mine))
                .count();
            true
        });
    foreign
}

/// Runs the Parameter Store operation `op` with the JSON `body`.
pub async fn dispatch(app: App, ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let (app, ctx) = (&app, &ctx);
    match op {
        "PutParameter" => put(app, ctx, decode(body)?).await,
        "GetParameter" => get(app, ctx, decode(body)?),
        "GetParameters" => get_many(app, ctx, decode(body)?),
        "GetParametersByPath" => list::by_path(app, ctx, decode(body)?),
        "DescribeParameters" => list::describe(app, ctx, decode(body)?),
        "GetParameterHistory" => list::history(app, ctx, decode(body)?),
        "DeleteParameter" => delete(app, ctx, decode(body)?).await,
        "DeleteParameters" => delete_many(app, ctx, decode(body)?).await,
        "LabelParameterVersion" => label(app, ctx, decode(body)?).await,
        "UnlabelParameterVersion" => unlabel(app, ctx, decode(body)?).await,
        "AddTagsToResource" => add_tags(app, ctx, decode(body)?).await,
        "RemoveTagsFromResource" => remove_tags(app, ctx, decode(body)?).await,
        "ListTagsForResource" => list_tags(app, ctx, decode(body)?),
        _ => Err(ApiError::unknown_operation(format!(
            "Systems Manager operation '{op}' is not supported by Berth"
        ))),
    }
}
