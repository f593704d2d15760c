//! AWS Certificate Manager request and response shapes (JSON 1.1, target prefix
//! `CertificateManager`, SigV4 service `acm`), named as in botocore's model, for the part Berth
//! serves: certificates the user imports (ImportCertificate, DescribeCertificate,
//! ListCertificates, GetCertificate, DeleteCertificate), and ACM's error codes. Blobs (the PEM
//! files) travel base64-encoded, as the JSON protocol sends them.

use crate::ApiError;
use berth_model::Timestamp;
use serde::{Deserialize, Serialize};

crate::error::client_errors! {
    acm_resource_not_found => "ResourceNotFoundException",
    acm_invalid_arn => "InvalidArnException",
    acm_resource_in_use => "ResourceInUseException",
    acm_validation => "ValidationException",
    acm_limit_exceeded => "LimitExceededException",
    acm_invalid_tag => "InvalidTagException",
    acm_too_many_tags => "TooManyTagsException",
}

/// The most bytes each blob of ImportCertificate may have (botocore's limits).
pub const MAX_CERTIFICATE_BYTES: usize = 32 * 1024;
pub const MAX_PRIVATE_KEY_BYTES: usize = 5 * 1024;
pub const MAX_CHAIN_BYTES: usize = 2 * 1024 * 1024;

/// ACM's tags are capitalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportCertificateRequest {
    /// Re-import under this ARN instead of making a new certificate.
    pub certificate_arn: Option<String>,
    /// Base64 of the PEM certificate.
    pub certificate: String,
    /// Base64 of the PEM private key.
    pub private_key: String,
    /// Base64 of the PEM chain (intermediates).
    pub certificate_chain: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportCertificateResponse {
    pub certificate_arn: String,
}

/// DescribeCertificate, GetCertificate and DeleteCertificate name one certificate.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertificateArnRequest {
    pub certificate_arn: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    PendingValidation,
    Issued,
    Inactive,
    Expired,
    ValidationTimedOut,
    Revoked,
    Failed,
}

/// What DescribeCertificate tells of an imported certificate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertificateDetail {
    pub certificate_arn: String,
    pub domain_name: String,
    pub subject_alternative_names: Vec<String>,
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub imported_at: Timestamp,
    pub status: CertificateStatus,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub key_algorithm: String,
    pub signature_algorithm: String,
    pub in_use_by: Vec<String>,
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub renewal_eligibility: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeCertificateResponse {
    pub certificate: CertificateDetail,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetCertificateResponse {
    pub certificate: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_chain: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListCertificatesRequest {
    pub certificate_statuses: Option<Vec<CertificateStatus>>,
    pub includes: Option<serde_json::Value>,
    pub next_token: Option<String>,
    pub max_items: Option<i64>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CertificateSummary {
    pub certificate_arn: String,
    pub domain_name: String,
    pub subject_alternative_name_summaries: Vec<String>,
    pub has_additional_subject_alternative_names: bool,
    pub status: CertificateStatus,
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub key_algorithm: String,
    pub in_use: bool,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub imported_at: Timestamp,
    pub renewal_eligibility: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListCertificatesResponse {
    pub certificate_summary_list: Vec<CertificateSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Checks a tag list as ACM does: at most 50, keys of 1 to 128 characters, values up to 256,
/// no `aws:` prefix.
pub fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(ApiError::acm_too_many_tags(
            "a certificate can have at most 50 tags",
        ));
    }
    for t in tags {
        let key_len = t.key.chars().count();
        if !(1..=128).contains(&key_len) || t.key.starts_with("aws:") {
            return Err(ApiError::acm_invalid_tag(format!(
                "tag key '{}' must have 1 to 128 characters and not begin with 'aws:'",
                t.key
            )));
        }
        if t.value.as_ref().is_some_and(|v| v.chars().count() > 256) {
            return Err(ApiError::acm_invalid_tag(format!(
                "the value of tag '{}' is longer than 256 characters",
                t.key
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn import_requests_decode_with_pascal_case_members() {
        let r: ImportCertificateRequest = json::decode(
            br#"{"Certificate":"Y2VydA==","PrivateKey":"a2V5","Tags":[{"Key":"team","Value":"web"}]}"#,
        )
        .unwrap();
        assert_eq!(r.certificate, "Y2VydA==");
        assert_eq!(r.private_key, "a2V5");
        assert!(r.certificate_chain.is_none() && r.certificate_arn.is_none());
        assert_eq!(r.tags.unwrap()[0].value.as_deref(), Some("web"));
        let missing = json::decode::<ImportCertificateRequest>(br#"{"Certificate":"x"}"#);
        assert!(missing.is_err());
    }

    #[test]
    fn summaries_serialize_as_acm_does() {
        let s = CertificateSummary {
            certificate_arn: "arn:aws:acm:us-east-1:123456789012:certificate/abc".into(),
            domain_name: "example.com".into(),
            subject_alternative_name_summaries: vec!["example.com".into()],
            has_additional_subject_alternative_names: false,
            status: CertificateStatus::Issued,
            kind: "IMPORTED",
            key_algorithm: "EC_prime256v1".into(),
            in_use: true,
            not_before: Timestamp(1_000),
            not_after: Timestamp(2_000),
            imported_at: Timestamp(1_500),
            renewal_eligibility: "INELIGIBLE",
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["Status"], "ISSUED");
        assert_eq!(v["Type"], "IMPORTED");
        assert_eq!(v["InUse"], true);
        assert_eq!(v["NotAfter"], 2.0);
    }

    #[test]
    fn tag_rules() {
        let tag = |k: &str| Tag {
            key: k.into(),
            value: None,
        };
        assert!(check_tags(&[tag("team")]).is_ok());
        assert_eq!(
            check_tags(&[tag("aws:x")]).unwrap_err().code,
            "InvalidTagException"
        );
        assert_eq!(
            check_tags(&[tag("")]).unwrap_err().code,
            "InvalidTagException"
        );
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"))).collect();
        assert_eq!(check_tags(&many).unwrap_err().code, "TooManyTagsException");
    }
}
