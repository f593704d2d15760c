//! AWS Secrets Manager (`secretsmanager`, JSON 1.1, SigV4 service `secretsmanager`), the part
//! tasks need: CreateSecret, GetSecretValue, PutSecretValue, UpdateSecret, DescribeSecret,
//! ListSecrets ([`list`]), DeleteSecret, RestoreSecret, TagResource and UntagResource.
//!
//! Contract:
//! - One record per secret, keyed by its name (unique in a region, a secret waiting for its
//!   deletion included); its ARN is `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`
//!   with six random characters, so a secret made again under the same name has a new ARN.
//!   `SecretId` is the name, the full ARN or the ARN without its suffix.
//! - Versions: a secret keeps its AWSCURRENT version and the AWSPREVIOUS one before it, no more.
//!   A new value (PutSecretValue, UpdateSecret) becomes AWSCURRENT. `ClientRequestToken` is the
//!   new version's id: sent again with the same value it changes nothing, with another value it
//!   is refused (`ResourceExistsException`).
//! - Values are stored sealed with the server's key ([`crate::seal`]: AES-256-GCM, the key file in
//!   the data directory), never in the clear.
//! - DeleteSecret with a recovery window (7–30 days, 30 by default) schedules the deletion:
//!   until then the secret is described and restorable, and GetSecretValue, PutSecretValue,
//!   UpdateSecret and tagging refuse it (`InvalidRequestException`). Once the window has passed
//!   it is gone for every call, and the janitor removes its record ([`purge`]).
//!   ForceDeleteWithoutRecovery removes it at once.
//! - Not served: rotation, replication, resource policies, KMS keys (`KmsKeyId` is refused),
//!   version staging labels other than AWSCURRENT and AWSPREVIOUS, LastAccessedDate.

pub mod list;

use crate::db::{Db, Versioned, Writes};
use crate::records::keys;
use crate::seal::{SealError, Sealed};
use crate::{App, Ctx};
use base64::Engine;
use berth_api::secretsmanager::*;
use berth_api::{ApiError, json};
use berth_model::Timestamp;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// One version of a secret's value, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersion {
    pub version_id: String,
    /// AWSCURRENT or AWSPREVIOUS.
    pub stage: String,
    pub created_date: Timestamp,
    pub value: Sealed,
}

/// A secret as stored: its metadata and its (at most two) versions, the current one first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRecord {
    pub arn: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_date: Timestamp,
    pub last_changed_date: Timestamp,
    /// When DeleteSecret scheduled the deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_date: Option<Timestamp>,
    /// When the scheduled deletion takes effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<Timestamp>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub versions: Vec<SecretVersion>,
}

impl SecretRecord {
    /// Whether its recovery window has passed: it no longer exists for any call.
    fn expired(&self, now: Timestamp) -> bool {
        self.deletion_date.is_some_and(|d| d <= now)
    }

    fn metadata(&self) -> SecretMetadata {
        SecretMetadata {
            arn: self.arn.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            last_changed_date: self.last_changed_date,
            deleted_date: self.deleted_date,
            tags: self.tags.clone(),
            created_date: self.created_date,
        }
    }

    fn versions_to_stages(&self) -> VersionsToStages {
        self.versions
            .iter()
            .map(|v| (v.version_id.clone(), vec![v.stage.clone()]))
            .collect()
    }

    /// Makes `version` AWSCURRENT, the current one AWSPREVIOUS, and forgets the one before.
    fn push_version(&mut self, mut version: SecretVersion) {
        version.stage = AWSCURRENT.into();
        self.versions.retain(|v| v.stage == AWSCURRENT);
        for v in &mut self.versions {
            v.stage = AWSPREVIOUS.into();
        }
        self.versions.insert(0, version);
    }
}

/// A sealing failure as Secrets Manager reports it.
fn sealing(e: SealError) -> ApiError {
    match e {
        SealError::Seal(_) => ApiError::sm_internal(format!("secret {e}")),
        SealError::ForeignKey { .. } | SealError::Corrupt => {
            ApiError::sm_decryption_failure(format!("secret {e}"))
        }
    }
}

/// What sealed values are bound to: the secret and the version.
fn context(arn: &str, version_id: &str) -> String {
    format!("{arn}\n{version_id}")
}

/// What follows `secret:` in an ARN of this region and account: `NAME-XXXXXX` or `NAME`.
fn name_in_arn<'a>(ctx: &Ctx, arn: &'a str) -> Option<&'a str> {
    let prefix = format!(
        "arn:aws:secretsmanager:{}:{}:secret:",
        ctx.region, ctx.account
    );
    arn.strip_prefix(&prefix).filter(|rest| !rest.is_empty())
}

/// The secret `id` names — by name, full ARN or ARN without the suffix — unless there is none
/// or its recovery window has passed.
pub fn find(db: &Db, ctx: &Ctx, id: &str) -> Option<Versioned<SecretRecord>> {
    let get = |name: &str| {
        db.get::<SecretRecord>(&keys::secret(&ctx.region, name))
            .filter(|s| s.value.name == name && !s.value.expired(ctx.now))
    };
    if !id.starts_with("arn:") {
        return get(id);
    }
    let rest = name_in_arn(ctx, id)?;
    // A full ARN: NAME-XXXXXX, matched exactly.
    if let Some((name, suffix)) = rest.rsplit_once('-')
        && suffix.len() == 6
        && let Some(found) = get(name).filter(|s| s.value.arn == id)
    {
        return Some(found);
    }
    // A partial ARN: the name alone.
    get(rest)
}

fn not_found() -> ApiError {
    ApiError::resource_not_found("Secrets Manager can't find the specified secret.")
}

fn lookup(db: &Db, ctx: &Ctx, id: &str) -> Result<Versioned<SecretRecord>, ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid_parameter("SecretId: must not be empty"));
    }
    find(db, ctx, id).ok_or_else(not_found)
}

/// Like [`lookup`], refusing a secret that waits for its deletion.
fn lookup_active(db: &Db, ctx: &Ctx, id: &str) -> Result<Versioned<SecretRecord>, ApiError> {
    let found = lookup(db, ctx, id)?;
    if found.value.deleted_date.is_some() {
        return Err(ApiError::sm_invalid_request(format!(
            "You can't perform this operation on the secret '{}' because it was marked for deletion (RestoreSecret cancels the deletion).",
            found.value.name
        )));
    }
    Ok(found)
}

fn new_arn(ctx: &Ctx, name: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(6)
        .map(char::from)
        .collect();
    format!(
        "arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}",
        ctx.region, ctx.account
    )
}

/// The version id a request asks for: its `ClientRequestToken`, else a new UUID.
fn version_id(token: Option<&str>) -> Result<String, ApiError> {
    match token {
        Some(t) => {
            check_token(t)?;
            Ok(t.to_string())
        }
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

fn refuse_kms(kms_key_id: Option<&String>) -> Result<(), ApiError> {
    if kms_key_id.is_some_and(|k| !k.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "KmsKeyId: Berth has no KMS; secret values are encrypted with the server's own key",
        ));
    }
    Ok(())
}

/// Whether `record` already has a version `version_id`: `Ok(true)` when it holds `value` (a
/// retry: nothing to do), refused when it holds another.
fn has_version(
    app: &App,
    record: &SecretRecord,
    version_id: &str,
    value: &SecretValue,
) -> Result<bool, ApiError> {
    let Some(existing) = record.versions.iter().find(|v| v.version_id == version_id) else {
        return Ok(false);
    };
    let stored = app
        .secrets_key
        .open(&context(&record.arn, version_id), &existing.value)
        .map_err(sealing)?;
    if &stored != value {
        return Err(ApiError::sm_resource_exists(format!(
            "ClientRequestToken: version '{version_id}' of the secret already exists with another value; you can't modify an existing version, only create new ones"
        )));
    }
    Ok(true)
}

async fn create(app: &App, ctx: &Ctx, input: CreateSecretRequest) -> Result<Vec<u8>, ApiError> {
    check_name(&input.name)?;
    if let Some(d) = &input.description {
        check_description(d)?;
    }
    let tags = input.tags.unwrap_or_default();
    check_tags(&tags)?;
    refuse_kms(input.kms_key_id.as_ref())?;
    if input.add_replica_regions.is_some() {
        return Err(ApiError::invalid_parameter(
            "AddReplicaRegions: Berth does not replicate secrets to other regions",
        ));
    }
    let value = value_of(input.secret_string, input.secret_binary)?;
    let version_id = value
        .is_some()
        .then(|| version_id(input.client_request_token.as_deref()))
        .transpose()?;
    let key = keys::secret(&ctx.region, &input.name);
    let arn = new_arn(ctx, &input.name);
    let out = app
        .db
        .transact(|db| {
            let existing = db.get::<SecretRecord>(&key);
            if let Some(e) = existing.as_ref().filter(|e| !e.value.expired(ctx.now)) {
                let retry = match (&version_id, &value) {
                    (Some(id), Some(v)) => {
                        e.value.deleted_date.is_none() && has_version(app, &e.value, id, v)?
                    }
                    _ => false,
                };
                if retry {
                    let out = CreateSecretResponse {
                        arn: e.value.arn.clone(),
                        name: e.value.name.clone(),
                        version_id: version_id.clone(),
                    };
                    return Ok((Writes::new(), out));
                }
                if e.value.deleted_date.is_some() {
                    return Err(ApiError::sm_invalid_request(format!(
                        "You can't create the secret '{}' because a secret with this name is already scheduled for deletion.",
                        input.name
                    )));
                }
                return Err(ApiError::sm_resource_exists(format!(
                    "The operation failed because the secret {} already exists.",
                    input.name
                )));
            }
            let mut record = SecretRecord {
                arn: arn.clone(),
                name: input.name.clone(),
                description: input.description.clone(),
                created_date: ctx.now,
                last_changed_date: ctx.now,
                deleted_date: None,
                deletion_date: None,
                tags: tags.clone(),
                versions: Vec::new(),
            };
            if let (Some(id), Some(v)) = (&version_id, &value) {
                record.push_version(SecretVersion {
                    version_id: id.clone(),
                    stage: AWSCURRENT.into(),
                    created_date: ctx.now,
                    value: app.secrets_key.seal(&context(&arn, id), v)
                        .map_err(sealing)?,
                });
            }
            // An expired secret's record is replaced.
            let writes = match &existing {
                Some(e) => Writes::new().expect_unchanged(e),
                None => Writes::new().expect(&key, 0),
            };
            let out = CreateSecretResponse {
                arn: arn.clone(),
                name: input.name.clone(),
                version_id: version_id.clone(),
            };
            Ok((writes.put(&key, record), out))
        })
        .await?;
    json::encode(&out)
}

fn get_value(app: &App, ctx: &Ctx, input: GetSecretValueRequest) -> Result<Vec<u8>, ApiError> {
    let secret = lookup_active(&app.db, ctx, &input.secret_id)?.value;
    let stage = input.version_stage.as_deref();
    let version = match (input.version_id.as_deref(), stage) {
        (Some(id), _) => secret.versions.iter().find(|v| v.version_id == id),
        (None, stage) => {
            let stage = stage.unwrap_or(AWSCURRENT);
            secret.versions.iter().find(|v| v.stage == stage)
        }
    };
    let version = version
        .filter(|v| stage.is_none_or(|s| v.stage == s))
        .ok_or_else(|| {
            let which = match (input.version_id.as_deref(), stage) {
                (Some(id), Some(s)) => format!("VersionId: {id} and staging label: {s}"),
                (Some(id), None) => format!("VersionId: {id}"),
                (None, s) => format!("staging label: {}", s.unwrap_or(AWSCURRENT)),
            };
            ApiError::resource_not_found(format!(
                "Secrets Manager can't find the specified secret value for {which}"
            ))
        })?;
    let value = app
        .secrets_key
        .open(&context(&secret.arn, &version.version_id), &version.value)
        .map_err(sealing)?;
    let (secret_string, secret_binary) = match value {
        SecretValue::String(s) => (Some(s), None),
        SecretValue::Binary(b) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
    };
    json::encode(&GetSecretValueResponse {
        arn: secret.arn.clone(),
        name: secret.name.clone(),
        version_id: version.version_id.clone(),
        secret_binary,
        secret_string,
        version_stages: vec![version.stage.clone()],
        created_date: version.created_date,
    })
}

/// Adds `value` as the secret's new current version `version_id` (or finds it already
/// there), applying `change` to the record too; returns the record as written.
async fn new_version(
    app: &App,
    ctx: &Ctx,
    secret_id: &str,
    new: Option<(String, SecretValue)>,
    change: impl Fn(&mut SecretRecord) -> Result<(), ApiError>,
) -> Result<SecretRecord, ApiError> {
    app.db
        .transact(|db| {
            let found = lookup_active(db, ctx, secret_id)?;
            let mut record = found.value.clone();
            if let Some((id, value)) = &new
                && !has_version(app, &record, id, value)?
            {
                record.push_version(SecretVersion {
                    version_id: id.clone(),
                    stage: AWSCURRENT.into(),
                    created_date: ctx.now,
                    value: app
                        .secrets_key
                        .seal(&context(&record.arn, id), value)
                        .map_err(sealing)?,
                });
            }
            change(&mut record)?;
            if record == found.value {
                return Ok((Writes::new(), record));
            }
            record.last_changed_date = ctx.now;
            let writes = Writes::new()
                .expect_unchanged(&found)
                .put(&found.key, record.clone());
            Ok((writes, record))
        })
        .await
}

async fn put_value(
    app: &App,
    ctx: &Ctx,
    input: PutSecretValueRequest,
) -> Result<Vec<u8>, ApiError> {
    let value = value_of(input.secret_string, input.secret_binary)?.ok_or_else(|| {
        ApiError::sm_invalid_request("SecretString, SecretBinary: you must give one of them")
    })?;
    if let Some(stages) = &input.version_stages
        && stages.iter().any(|s| s != AWSCURRENT)
    {
        return Err(ApiError::invalid_parameter(format!(
            "VersionStages: {stages:?}: Berth keeps only the AWSCURRENT and AWSPREVIOUS versions, and a new version becomes AWSCURRENT"
        )));
    }
    let id = version_id(input.client_request_token.as_deref())?;
    let new = Some((id.clone(), value));
    let record = new_version(app, ctx, &input.secret_id, new, |_| Ok(())).await?;
    let stage = record
        .versions
        .iter()
        .find(|v| v.version_id == id)
        .map(|v| v.stage.clone())
        .unwrap_or_else(|| AWSCURRENT.into());
    json::encode(&PutSecretValueResponse {
        arn: record.arn,
        name: record.name,
        version_id: id,
        version_stages: vec![stage],
    })
}

async fn update(app: &App, ctx: &Ctx, input: UpdateSecretRequest) -> Result<Vec<u8>, ApiError> {
    if let Some(d) = &input.description {
        check_description(d)?;
    }
    refuse_kms(input.kms_key_id.as_ref())?;
    let value = value_of(input.secret_string, input.secret_binary)?;
    let new = match value {
        Some(v) => Some((version_id(input.client_request_token.as_deref())?, v)),
        None => None,
    };
    let version = new.as_ref().map(|(id, _)| id.clone());
    let description = input.description;
    let record = new_version(app, ctx, &input.secret_id, new, |r| {
        if let Some(d) = &description {
            r.description = Some(d.clone()).filter(|d| !d.is_empty());
        }
        Ok(())
    })
    .await?;
    json::encode(&UpdateSecretResponse {
        arn: record.arn,
        name: record.name,
        version_id: version,
    })
}

fn describe(app: &App, ctx: &Ctx, input: SecretIdRequest) -> Result<Vec<u8>, ApiError> {
    let secret = lookup(&app.db, ctx, &input.secret_id)?.value;
    json::encode(&DescribeSecretResponse {
        metadata: secret.metadata(),
        version_ids_to_stages: secret.versions_to_stages(),
    })
}

async fn delete(app: &App, ctx: &Ctx, input: DeleteSecretRequest) -> Result<Vec<u8>, ApiError> {
    let force = input.force_delete_without_recovery == Some(true);
    let days = match (input.recovery_window_in_days, force) {
        (Some(_), true) => {
            return Err(ApiError::invalid_parameter(
                "RecoveryWindowInDays, ForceDeleteWithoutRecovery: give one or the other, not both",
            ));
        }
        (Some(d @ 7..=30), false) => d,
        (Some(d), false) => {
            return Err(ApiError::invalid_parameter(format!(
                "RecoveryWindowInDays: {d} is not between 7 and 30 days"
            )));
        }
        (None, _) => 30,
    };
    let out = app
        .db
        .transact(|db| {
            if force {
                // As Secrets Manager: forcing the deletion of a secret that does not exist
                // is not an error.
                let Some(found) = find(db, ctx, &input.secret_id) else {
                    let out = DeleteSecretResponse {
                        arn: input
                            .secret_id
                            .starts_with("arn:")
                            .then(|| input.secret_id.clone()),
                        name: input.secret_id.clone(),
                        deletion_date: ctx.now,
                    };
                    return Ok((Writes::new(), out));
                };
                let out = DeleteSecretResponse {
                    arn: Some(found.value.arn.clone()),
                    name: found.value.name.clone(),
                    deletion_date: ctx.now,
                };
                let writes = Writes::new().expect_unchanged(&found).delete(&found.key);
                return Ok((writes, out));
            }
            let found = lookup(db, ctx, &input.secret_id)?;
            if found.value.deleted_date.is_some() {
                return Err(ApiError::sm_invalid_request(format!(
                    "The secret '{}' is already scheduled for deletion; RestoreSecret cancels it, ForceDeleteWithoutRecovery deletes it now",
                    found.value.name
                )));
            }
            let mut record = found.value.clone();
            let deletion_date = ctx.now.plus_millis(days * DAY_MS);
            record.deleted_date = Some(ctx.now);
            record.deletion_date = Some(deletion_date);
            let out = DeleteSecretResponse {
                arn: Some(record.arn.clone()),
                name: record.name.clone(),
                deletion_date,
            };
            let writes = Writes::new()
                .expect_unchanged(&found)
                .put(&found.key, record);
            Ok((writes, out))
        })
        .await?;
    json::encode(&out)
}

async fn restore(app: &App, ctx: &Ctx, input: SecretIdRequest) -> Result<Vec<u8>, ApiError> {
    let out = app
        .db
        .transact(|db| {
            let found = lookup(db, ctx, &input.secret_id)?;
            let out = RestoreSecretResponse {
                arn: found.value.arn.clone(),
                name: found.value.name.clone(),
            };
            if found.value.deleted_date.is_none() {
                return Ok((Writes::new(), out));
            }
            let mut record = found.value.clone();
            record.deleted_date = None;
            record.deletion_date = None;
            let writes = Writes::new()
                .expect_unchanged(&found)
                .put(&found.key, record);
            Ok((writes, out))
        })
        .await?;
    json::encode(&out)
}

async fn tag(app: &App, ctx: &Ctx, input: TagResourceRequest) -> Result<Vec<u8>, ApiError> {
    check_tags(&input.tags)?;
    new_version(app, ctx, &input.secret_id, None, |r| {
        for t in &input.tags {
            match r.tags.iter_mut().find(|e| e.key == t.key) {
                Some(e) => e.value = t.value.clone(),
                None => r.tags.push(t.clone()),
            }
        }
        check_tags(&r.tags)
    })
    .await?;
    json::encode(&serde_json::json!({}))
}

async fn untag(app: &App, ctx: &Ctx, input: UntagResourceRequest) -> Result<Vec<u8>, ApiError> {
    new_version(app, ctx, &input.secret_id, None, |r| {
        r.tags.retain(|t| !input.tag_keys.contains(&t.key));
        Ok(())
    })
    .await?;
    json::encode(&serde_json::json!({}))
}

/// Removes the records of secrets whose recovery window has passed; returns how many.
pub async fn purge(app: &App) -> Result<usize, ApiError> {
    let now = app.clock.now();
    let mut keys = Vec::new();
    app.db.scan::<SecretRecord>(&keys::all_secrets(), |key, s| {
        if s.expired(now) {
            keys.push(key.to_string());
        }
        true
    });
    app.db
        .transact(|db| {
            let mut writes = Writes::new();
            let mut n = 0;
            for key in &keys {
                if let Some(s) = db.get::<SecretRecord>(key).filter(|s| s.value.expired(now)) {
                    writes = writes.expect_unchanged(&s).delete(key);
                    n += 1;
                }
            }
            Ok((writes, n))
        })
        .await
}

/// How many stored secret versions were sealed with another key than `mine`.
pub fn sealed_with_other_keys(app: &App, mine: &str) -> usize {
    let mut foreign = 0usize;
    app.db.scan::<SecretRecord>(&keys::all_secrets(), |_, s| {
        foreign += s.versions.iter().filter(|v| v.value.key != mine).count();
        true
    });
    foreign
}

/// Runs the Secrets Manager operation `op` with the JSON `body`.
pub async fn dispatch(app: App, ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let (app, ctx) = (&app, &ctx);
    match op {
        "CreateSecret" => create(app, ctx, json::decode(body)?).await,
        "GetSecretValue" => get_value(app, ctx, json::decode(body)?),
        "PutSecretValue" => put_value(app, ctx, json::decode(body)?).await,
        "UpdateSecret" => update(app, ctx, json::decode(body)?).await,
        "DescribeSecret" => describe(app, ctx, json::decode(body)?),
        "ListSecrets" => list::list(app, ctx, json::decode(body)?),
        "DeleteSecret" => delete(app, ctx, json::decode(body)?).await,
        "RestoreSecret" => restore(app, ctx, json::decode(body)?).await,
        "TagResource" => tag(app, ctx, json::decode(body)?).await,
        "UntagResource" => untag(app, ctx, json::decode(body)?).await,
        _ => Err(ApiError::unknown_operation(format!(
            "Secrets Manager operation '{op}' is not supported by Berth"
        ))),
    }
}
