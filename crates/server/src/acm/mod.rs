//! AWS Certificate Manager (`CertificateManager`, SigV4 service `acm`) for certificates the
//! user brings: ImportCertificate (also re-import under an ARN), DescribeCertificate,
//! ListCertificates, GetCertificate and DeleteCertificate. The PEM files are checked and read
//! on import ([`pem`]) and kept, private key included, in one record per certificate; HTTPS
//! listeners name certificates by ARN, and the load balancer data plane receives the PEMs in
//! its (signed) configuration. A certificate a listener uses cannot be deleted: listeners
//! touch the certificates they name, so the check holds against concurrent writes too.
//! Requesting certificates (RequestCertificate, validation, renewal) is not served.

pub mod pem;

use crate::db::{Db, Versioned, Writes};
use crate::records::keys;
use crate::{App, Ctx};
use base64::Engine;
use berth_api::acm::*;
use berth_api::{ApiError, json};
use berth_model::Timestamp;
use berth_model::elbv2::Listener;
use serde::{Deserialize, Serialize};

/// How many certificates a region may hold (ACM's default quota for imports is 2500 a year).
const MAX_CERTIFICATES: usize = 2500;

/// An imported certificate as stored, its private key included.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRecord {
    pub arn: String,
    pub id: String,
    pub certificate_pem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_pem: Option<String>,
    pub private_key_pem: String,
    pub domain_name: String,
    pub subject_alternative_names: Vec<String>,
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub key_algorithm: String,
    pub signature_algorithm: String,
    pub imported_at: Timestamp,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl std::fmt::Debug for CertificateRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateRecord")
            .field("arn", &self.arn)
            .field("domain_name", &self.domain_name)
            .finish_non_exhaustive()
    }
}

impl CertificateRecord {
    /// The certificate followed by its chain, as a TLS server sends them.
    pub fn full_chain_pem(&self) -> String {
        let mut pem = self.certificate_pem.clone();
        if let Some(chain) = &self.chain_pem {
            if !pem.ends_with('\n') {
                pem.push('\n');
            }
            pem.push_str(chain);
        }
        pem
    }

    fn status(&self, now: Timestamp) -> CertificateStatus {
        if now > self.not_after {
            CertificateStatus::Expired
        } else {
            CertificateStatus::Issued
        }
    }
}

/// The id an ACM ARN names, when it is one of this region and account.
fn id_of<'a>(ctx: &Ctx, arn: &'a str) -> Option<&'a str> {
    let prefix = format!("arn:aws:acm:{}:{}:certificate/", ctx.region, ctx.account);
    arn.strip_prefix(&prefix)
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
}

/// The certificate `arn` names, `None` when there is none (or the ARN is not an ACM one of
/// this region and account).
pub fn find(db: &Db, ctx: &Ctx, arn: &str) -> Option<Versioned<CertificateRecord>> {
    let id = id_of(ctx, arn)?;
    db.get::<CertificateRecord>(&keys::certificate(&ctx.region, id))
        .filter(|c| c.value.arn == arn)
}

fn lookup(db: &Db, ctx: &Ctx, arn: &str) -> Result<Versioned<CertificateRecord>, ApiError> {
    if !arn.starts_with("arn:aws:acm:") {
        return Err(ApiError::acm_invalid_arn(format!(
            "CertificateArn: '{arn}' is not an ACM certificate ARN"
        )));
    }
    find(db, ctx, arn).ok_or_else(|| {
        ApiError::acm_resource_not_found(format!("Could not find certificate {arn}."))
    })
}

/// The listeners (their ARNs) that serve each certificate.
fn users(db: &Db, ctx: &Ctx) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    db.scan::<Listener>(&keys::listeners(&ctx.region), |_, l| {
        for c in &l.certificates {
            out.entry(c.clone()).or_default().push(l.arn.clone());
        }
        true
    });
    out
}

fn decode_blob(member: &str, value: &str, max: usize) -> Result<Vec<u8>, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| ApiError::acm_validation(format!("{member}: not base64 ({e})")))?;
    if bytes.is_empty() || bytes.len() > max {
        return Err(ApiError::acm_validation(format!(
            "{member}: must be 1 to {max} bytes"
        )));
    }
    Ok(bytes)
}

fn text(member: &str, bytes: Vec<u8>) -> Result<String, ApiError> {
    String::from_utf8(bytes)
        .map_err(|_| ApiError::acm_validation(format!("{member}: PEM must be text")))
}

async fn import(
    app: &App,
    ctx: &Ctx,
    input: ImportCertificateRequest,
) -> Result<ImportCertificateResponse, ApiError> {
    let certificate = decode_blob("Certificate", &input.certificate, MAX_CERTIFICATE_BYTES)?;
    let key = decode_blob("PrivateKey", &input.private_key, MAX_PRIVATE_KEY_BYTES)?;
    let chain = input
        .certificate_chain
        .as_deref()
        .map(|c| decode_blob("CertificateChain", c, MAX_CHAIN_BYTES))
        .transpose()?;
    let tags = input.tags.unwrap_or_default();
    check_tags(&tags)?;
    if input.certificate_arn.is_some() && !tags.is_empty() {
        return Err(ApiError::acm_validation(
            "Tags: tags cannot be given when a certificate is re-imported",
        ));
    }
    let inspected = pem::inspect(&certificate, &key, chain.as_deref(), ctx.now)?;
    let certificate_pem = text("Certificate", certificate)?;
    let private_key_pem = text("PrivateKey", key)?;
    let chain_pem = chain.map(|c| text("CertificateChain", c)).transpose()?;
    let new_id = {
        let hex = crate::clock::new_id();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    };
    let arn = app
        .db
        .transact(|db| {
            let (existing, id, arn) = match &input.certificate_arn {
                Some(arn) => {
                    let found = lookup(db, ctx, arn)?;
                    let id = found.value.id.clone();
                    (Some(found), id, arn.clone())
                }
                None => {
                    let arn = format!(
                        "arn:aws:acm:{}:{}:certificate/{new_id}",
                        ctx.region, ctx.account
                    );
                    (None, new_id.clone(), arn)
                }
            };
            if existing.is_none()
                && db
                    .list::<CertificateRecord>(&keys::certificates(&ctx.region))
                    .len()
                    >= MAX_CERTIFICATES
            {
                return Err(ApiError::acm_limit_exceeded(format!(
                    "a region can hold at most {MAX_CERTIFICATES} certificates"
                )));
            }
            let key = keys::certificate(&ctx.region, &id);
            let record = CertificateRecord {
                arn: arn.clone(),
                id,
                certificate_pem: certificate_pem.clone(),
                chain_pem: chain_pem.clone(),
                private_key_pem: private_key_pem.clone(),
                domain_name: inspected.domain_name.clone(),
                subject_alternative_names: inspected.subject_alternative_names.clone(),
                serial: inspected.serial.clone(),
                subject: inspected.subject.clone(),
                issuer: inspected.issuer.clone(),
                not_before: inspected.not_before,
                not_after: inspected.not_after,
                key_algorithm: inspected.key_algorithm.clone(),
                signature_algorithm: inspected.signature_algorithm.clone(),
                imported_at: ctx.now,
                tags: match &existing {
                    Some(e) => e.value.tags.clone(),
                    None => tags.clone(),
                },
            };
            let writes = match &existing {
                Some(e) => Writes::new().expect_unchanged(e),
                None => Writes::new().expect(&key, 0),
            };
            Ok((writes.put(&key, record), arn))
        })
        .await?;
    Ok(ImportCertificateResponse {
        certificate_arn: arn,
    })
}

fn describe(app: &App, ctx: &Ctx, input: CertificateArnRequest) -> Result<Vec<u8>, ApiError> {
    let c = lookup(&app.db, ctx, &input.certificate_arn)?.value;
    let in_use_by = users(&app.db, ctx).remove(&c.arn).unwrap_or_default();
    json::encode(&DescribeCertificateResponse {
        certificate: CertificateDetail {
            status: c.status(ctx.now),
            certificate_arn: c.arn,
            domain_name: c.domain_name,
            subject_alternative_names: c.subject_alternative_names,
            serial: c.serial,
            subject: c.subject,
            issuer: c.issuer,
            imported_at: c.imported_at,
            not_before: c.not_before,
            not_after: c.not_after,
            key_algorithm: c.key_algorithm,
            signature_algorithm: c.signature_algorithm,
            in_use_by,
            kind: "IMPORTED",
            renewal_eligibility: "INELIGIBLE",
        },
    })
}

fn get(app: &App, ctx: &Ctx, input: CertificateArnRequest) -> Result<Vec<u8>, ApiError> {
    let c = lookup(&app.db, ctx, &input.certificate_arn)?.value;
    json::encode(&GetCertificateResponse {
        certificate: c.certificate_pem,
        certificate_chain: c.chain_pem,
    })
}

fn list(app: &App, ctx: &Ctx, input: ListCertificatesRequest) -> Result<Vec<u8>, ApiError> {
    let size = match input.max_items {
        None => 1000,
        Some(n @ 1..=1000) => n as usize,
        Some(n) => {
            return Err(ApiError::acm_validation(format!(
                "MaxItems: {n} is not between 1 and 1000"
            )));
        }
    };
    let start = match &input.next_token {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            ApiError::acm_validation(format!(
                "NextToken: '{t}' is not a token a previous call returned"
            ))
        })?,
    };
    let users = users(&app.db, ctx);
    let mut all: Vec<CertificateRecord> = app
        .db
        .list::<CertificateRecord>(&keys::certificates(&ctx.region))
        .into_iter()
        .map(|c| c.value)
        .filter(|c| {
            input
                .certificate_statuses
                .as_ref()
                .is_none_or(|s| s.contains(&c.status(ctx.now)))
        })
        .collect();
    all.sort_by(|a, b| (a.imported_at, &a.arn).cmp(&(b.imported_at, &b.arn)));
    if input.sort_order.as_deref() == Some("DESCENDING") {
        all.reverse();
    }
    let total = all.len();
    let page: Vec<CertificateSummary> = all
        .into_iter()
        .skip(start)
        .take(size)
        .map(|c| CertificateSummary {
            status: c.status(ctx.now),
            in_use: users.contains_key(&c.arn),
            has_additional_subject_alternative_names: c.subject_alternative_names.len() > 100,
            subject_alternative_name_summaries: c
                .subject_alternative_names
                .iter()
                .take(100)
                .cloned()
                .collect(),
            certificate_arn: c.arn,
            domain_name: c.domain_name,
            kind: "IMPORTED",
            key_algorithm: c.key_algorithm,
            not_before: c.not_before,
            not_after: c.not_after,
            imported_at: c.imported_at,
            renewal_eligibility: "INELIGIBLE",
        })
        .collect();
    let next = start + page.len();
    json::encode(&ListCertificatesResponse {
        certificate_summary_list: page,
        next_token: (next < total).then(|| next.to_string()),
    })
}

async fn delete(app: &App, ctx: &Ctx, input: CertificateArnRequest) -> Result<Vec<u8>, ApiError> {
    app.db
        .transact(|db| {
            let c = lookup(db, ctx, &input.certificate_arn)?;
            if let Some(listeners) = users(db, ctx).get(&c.value.arn) {
                return Err(ApiError::acm_resource_in_use(format!(
                    "Certificate {} is in use by {}",
                    c.value.arn,
                    listeners.join(", ")
                )));
            }
            Ok((Writes::new().expect_unchanged(&c).delete(&c.key), ()))
        })
        .await?;
    json::encode(&serde_json::json!({}))
}

/// Runs the ACM operation `op` with the JSON `body`.
pub async fn dispatch(app: App, ctx: Ctx, op: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let (app, ctx) = (&app, &ctx);
    match op {
        "ImportCertificate" => json::encode(&import(app, ctx, json::decode(body)?).await?),
        "DescribeCertificate" => describe(app, ctx, json::decode(body)?),
        "GetCertificate" => get(app, ctx, json::decode(body)?),
        "ListCertificates" => list(app, ctx, json::decode(body)?),
        "DeleteCertificate" => delete(app, ctx, json::decode(body)?).await,
        _ => Err(ApiError::unknown_operation(format!(
            "ACM operation '{op}' is not supported by Berth"
        ))),
    }
}
