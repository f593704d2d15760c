//! Turning the references a request gives (a name, or an ARN) into stored records, with ECS's
//! errors when they are missing.

use crate::Ctx;
use crate::db::{Db, Versioned, Writes};
use crate::records::keys;
use berth_api::ApiError;
use berth_model::cluster::{Cluster, ClusterStatus, DEFAULT_CLUSTER_NAME, validate_cluster_name};
use berth_model::{Arn, ResourceKind};

impl Ctx {
    pub fn arn(&self, kind: ResourceKind, resource: impl Into<String>) -> String {
        Arn::new(&self.region, &self.account, kind, resource).to_string()
    }
    pub fn cluster_arn(&self, name: &str) -> String {
        self.arn(ResourceKind::Cluster, name)
    }
    /// The ARN a describe call reports a missing resource under: the reference itself when it
    /// is an ARN, else the long ARN of `kind` in `cluster` (or the cluster's, for a cluster).
    pub fn arn_of_reference(&self, kind: ResourceKind, cluster: &str, reference: &str) -> String {
        if reference.starts_with("arn:") {
            reference.to_string()
        } else if kind == ResourceKind::Cluster {
            self.cluster_arn(reference)
        } else {
            self.arn(kind, format!("{cluster}/{reference}"))
        }
    }
}

/// The cluster name a `cluster` member names (a name or a cluster ARN; absent means `default`).
pub fn cluster_name(ctx: &Ctx, reference: Option<&str>) -> Result<String, ApiError> {
    let reference = reference.unwrap_or(DEFAULT_CLUSTER_NAME);
    let name = if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)
            .filter(|a| a.kind == ResourceKind::Cluster)
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "cluster: '{reference}' is not a cluster name or cluster ARN"
                ))
            })?;
        if arn.region != ctx.region || arn.account != ctx.account {
            return Err(ApiError::cluster_not_found("Cluster not found."));
        }
        arn.resource
    } else {
        reference.to_string()
    };
    validate_cluster_name(&name).map_err(|_| {
        ApiError::invalid_parameter(format!(
            "cluster: '{reference}' is not a valid cluster name or ARN"
        ))
    })?;
    Ok(name)
}

/// The ACTIVE cluster a request names. When the request names none, the `default` cluster is
/// created on first use, as ECS does for the default cluster.
pub async fn active_cluster(
    db: &Db,
    ctx: &Ctx,
    reference: Option<&str>,
) -> Result<Versioned<Cluster>, ApiError> {
    let name = cluster_name(ctx, reference)?;
    let key = keys::cluster(&ctx.region, &name);
    match db.get::<Cluster>(&key) {
        Some(c) if c.value.status == ClusterStatus::Active => Ok(c),
        found if reference.is_none() && name == DEFAULT_CLUSTER_NAME => {
            let revision = found.map_or(0, |c| c.revision);
            let cluster = Cluster::new(ctx.cluster_arn(&name), &name);
            db.commit(Writes::new().expect(&key, revision).put(&key, cluster))
                .await?;
            db.get::<Cluster>(&key)
                .filter(|c| c.value.status == ClusterStatus::Active)
                .ok_or_else(|| ApiError::cluster_not_found("Cluster not found."))
        }
        _ => Err(ApiError::cluster_not_found("Cluster not found.")),
    }
}

/// Like [`active_cluster`], for use inside a transaction plan (no implicit creation).
pub fn existing_active_cluster(
    db: &Db,
    ctx: &Ctx,
    name: &str,
) -> Result<Versioned<Cluster>, ApiError> {
    db.get::<Cluster>(&keys::cluster(&ctx.region, name))
        .filter(|c| c.value.status == ClusterStatus::Active)
        .ok_or_else(|| ApiError::cluster_not_found("Cluster not found."))
}

/// The id inside a task or container-instance reference: a bare id or a long-format ARN within
/// `cluster`. A short-format ARN (`task/ID`) is accepted too.
pub fn resource_id(
    ctx: &Ctx,
    kind: ResourceKind,
    member: &str,
    reference: &str,
    cluster: &str,
) -> Result<String, ApiError> {
    let id = if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)
            .filter(|a| a.kind == kind && a.region == ctx.region && a.account == ctx.account)
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "{member}: '{reference}' is not a {} ARN of this account and region",
                    kind.as_str()
                ))
            })?;
        if let Some((c, _)) = arn.resource.split_once('/')
            && c != cluster
        {
            return Err(ApiError::invalid_parameter(format!(
                "{member}: '{reference}' belongs to cluster '{c}', not '{cluster}'"
            )));
        }
        arn.id().to_string()
    } else {
        reference.to_string()
    };
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(ApiError::invalid_parameter(format!(
            "{member}: '{reference}' is not a valid {} id or ARN",
            kind.as_str()
        )));
    }
    Ok(id)
}

/// Reads a describe call's `include` list: whether it asks for `TAGS`. `others` are further
/// values the operation accepts (and ignores here); anything else is refused by position.
pub fn includes_tags(include: Option<&[String]>, others: &[&str]) -> Result<bool, ApiError> {
    let mut tags = false;
    for (i, item) in include.unwrap_or_default().iter().enumerate() {
        match item.as_str() {
            "TAGS" => tags = true,
            other if others.contains(&other) => {}
            other if others.is_empty() => {
                return Err(ApiError::invalid_parameter(format!(
                    "include[{i}]: '{other}' is not TAGS"
                )));
            }
            other => {
                return Err(ApiError::invalid_parameter(format!(
                    "include[{i}]: '{other}' is not one of TAGS, {}",
                    others.join(", ")
                )));
            }
        }
    }
    Ok(tags)
}
