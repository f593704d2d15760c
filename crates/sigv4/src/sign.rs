//! The client side: signing a request the way the AWS SDKs do, for Berth's own client (the
//! agent, the load balancer, the CLI and benchmarks). It shares the canonicalisation with the
//! verifier, so what this signs is exactly what [`crate::verify`] accepts.

use std::time::SystemTime;

use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::{
    ALGORITHM, AuthLocation, CredentialScope, ParsedAuth, Payload, RequestParts, canonical_request,
    format_amz_date, hmac, signing_key, string_to_sign, system_time_to_epoch,
};

/// Who signs, for which region and service, and when.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

/// A request to sign: `path` and `query` as they will be sent (already percent-encoded).
#[derive(Debug, Clone, Copy)]
pub struct Unsigned<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
}

/// Signs `request` in place: adds `x-amz-date` and `authorization` to `headers`, which must
/// already hold `host` and every other header to be sent. Every header present is signed.
pub fn sign(params: &SigningParams<'_>, request: &Unsigned<'_>, headers: &mut HeaderMap) {
    let amz_date = format_amz_date(system_time_to_epoch(params.time));
    headers.insert(
        "x-amz-date",
        HeaderValue::from_str(&amz_date).expect("an AMZ date is ASCII"),
    );
    headers.remove(http::header::AUTHORIZATION);
    let mut signed_headers: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
    signed_headers.sort();
    signed_headers.dedup();
    let scope = CredentialScope {
        date: amz_date[..8].to_owned(),
        region: params.region.to_owned(),
        service: params.service.to_owned(),
    };
    let signature = {
        let parsed = ParsedAuth {
            access_key_id: params.access_key_id.to_owned(),
            scope: scope.clone(),
            amz_date: amz_date.clone(),
            request_time: system_time_to_epoch(params.time),
            signed_headers_raw: signed_headers.join(";"),
            signed_headers,
            signature: String::new(),
            location: AuthLocation::Header,
            security_token: None,
            content_sha256: None,
        };
        let parts = RequestParts {
            method: request.method,
            path: request.path,
            query: request.query,
            headers,
            payload: Payload::Bytes(request.body),
        };
        let payload_hash = hex::encode(Sha256::digest(request.body));
        let canonical = canonical_request(&parsed, &parts, &payload_hash);
        let sts = string_to_sign(&amz_date, &scope, &canonical);
        let key = signing_key(
            params.secret_access_key,
            &scope.date,
            &scope.region,
            &scope.service,
        );
        let signature = hex::encode(hmac(&key, sts.as_bytes()));
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            params.access_key_id, parsed.signed_headers_raw
        )
    };
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&signature).expect("a SigV4 authorization is ASCII"),
    );
}
