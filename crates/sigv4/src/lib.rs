//! Pure AWS Signature Version 4 verification, and the matching signer for Berth's own client.
//!
//! This crate checks that an HTTP request was signed with SigV4 (`AWS4-HMAC-SHA256`) by the
//! holder of an access key, exactly as AWS's own front ends do, so that the AWS CLI, boto3 and
//! the AWS SDKs can talk to Berth unchanged. It does no I/O, reads no clock (the caller passes
//! `now`), is not async and depends on no other Berth crate.
//!
//! Credential lookup is the caller's, so verification has two phases and the server can look
//! the secret up asynchronously in its store between them:
//!
//! 1. [`parse`] reads the `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
//!    Signature=…` header, or the presigned-URL query parameters (`X-Amz-Algorithm`,
//!    `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-SignedHeaders`, `X-Amz-Signature`,
//!    `X-Amz-Expires`), into a [`ParsedAuth`]: the access key id, the credential scope (date,
//!    region, service), the request time, the signed headers and the signature. It already
//!    rejects what needs no secret: a malformed header, an unsupported algorithm, a missing or
//!    unparsable date, a scope date that is not the request's day, an unsigned `host` header,
//!    an `X-Amz-Expires` above 604800. [`ParsedAuth::region`] and [`ParsedAuth::service`] let
//!    the server route query-protocol APIs and partition resources by the scope's region.
//! 2. [`verify`] takes the same request, the secret access key and `now`. It enforces the
//!    clock rules (the request time within 5 minutes of `now` either way; a presigned URL from
//!    at most 5 minutes in the future and not past `X-Amz-Date + X-Amz-Expires`), rebuilds the
//!    canonical request and the string to sign as AWS does, derives the signing key
//!    (`HMAC("AWS4" + secret, date)`, then region, service, `"aws4_request"`) and compares the
//!    signatures in constant time.
//!
//! Canonicalisation follows AWS's rules for non-S3 services: the path has its dot segments and
//! empty segments removed and is URI-encoded once more (so `%` becomes `%25`); for the `s3`
//! service the raw path is used as it is. Query parameters are decoded (`+` as a space) and
//! re-encoded strictly (only `A-Za-z0-9-_.~` left bare, spaces as `%20`), then sorted by encoded
//! key, then value. Header names are lower-cased; values are trimmed, runs of spaces collapsed
//! to one, and repeated headers joined with commas. The payload hash is the
//! `x-amz-content-sha256` header when present (`UNSIGNED-PAYLOAD`, or a hex SHA-256 that must
//! match the body), `UNSIGNED-PAYLOAD` for an S3 presigned URL, else the SHA-256 of the body.
//!
//! [`sign`] is the other side: it signs a request as the AWS SDKs do (every header present,
//! the SHA-256 of the body), reusing the same canonicalisation, so what it signs verifies.
//!
//! Errors are an [`AuthError`] whose messages follow AWS's wording where it is known, and
//! whose [`AuthError::kind`] is a neutral [`AuthErrorKind`] that the API layer maps to the
//! protocol's error code.
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use http::HeaderMap;
//! use berth_sigv4::{parse, verify, Payload, RequestParts};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("host", "iam.amazonaws.com".parse().unwrap());
//! headers.insert("content-type", "application/x-www-form-urlencoded; charset=utf-8".parse().unwrap());
//! headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
//! headers.insert("authorization", "AWS4-HMAC-SHA256 \
//!     Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
//!     SignedHeaders=content-type;host;x-amz-date, \
//!     Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7".parse().unwrap());
//! let req = RequestParts {
//!     method: "GET",
//!     path: "/",
//!     query: "Action=ListUsers&Version=2010-05-08",
//!     headers: &headers,
//!     payload: Payload::Bytes(b""),
//! };
//! let parsed = parse(&req).unwrap();
//! assert_eq!(parsed.access_key_id(), "AKIDEXAMPLE");
//! assert_eq!(parsed.region(), "us-east-1");
//! // ... look the secret up by access key id ...
//! let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160 + 60);
//! verify(&parsed, &req, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", now).unwrap();
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

mod sign;
#[cfg(test)]
mod tests;

pub use sign::{SigningParams, Unsigned, sign};

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far the request time may be from `now`, either way (AWS's rule).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// The largest `X-Amz-Expires` a presigned URL may carry: one week.
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;
/// The `x-amz-content-sha256` value of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

const TERMINATOR: &str = "aws4_request";
const SKEW_SECS: i64 = 300;

/// Everything but AWS's unreserved characters is percent-encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// As [`STRICT`], but leaving path separators bare.
const PATH: &AsciiSet = &STRICT.remove(b'/');

type HmacSha256 = Hmac<Sha256>;

/// The request body as the verifier needs it.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The body's bytes (empty for a request without body).
    Bytes(&'a [u8]),
    /// The lowercase (or uppercase) hex SHA-256 of the body, computed by the caller.
    Sha256Hex(&'a str),
}

/// The parts of a received HTTP request that SigV4 covers, borrowed from the server's request.
///
/// `path` and `query` are the raw, still percent-encoded forms as received (`query` without
/// the `?`, empty when there is none). The `host` header must be in `headers`: under HTTP/2 the
/// caller copies the `:authority` into it.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The HTTP method, e.g. `"POST"`.
    pub method: &'a str,
    /// The raw path as received, e.g. `"/"` or `"/a%20b"`.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The body, or its hash.
    pub payload: Payload<'a>,
}

/// The credential scope of a signature: `DATE/REGION/SERVICE/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// `YYYYMMDD`.
    pub date: String,
    /// E.g. `us-east-1`.
    pub region: String,
    /// E.g. `ecs`.
    pub service: String,
}

impl fmt::Display for CredentialScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLocation {
    /// In the `Authorization` header.
    Header,
    /// In the query string (a presigned URL), valid for `expires_secs` after `X-Amz-Date`.
    Query {
        /// The `X-Amz-Expires` value, at most [`MAX_PRESIGNED_EXPIRES_SECS`].
        expires_secs: u64,
    },
}

/// A request's SigV4 authentication, parsed but not yet verified (see [`parse`], [`verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuth {
    access_key_id: String,
    scope: CredentialScope,
    amz_date: String,
    request_time: i64,
    signed_headers: Vec<String>,
    signed_headers_raw: String,
    signature: String,
    location: AuthLocation,
    security_token: Option<String>,
    content_sha256: Option<String>,
}

impl ParsedAuth {
    /// The access key id from the credential, to look the secret up by.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The credential scope (date, region, service).
    pub fn scope(&self) -> &CredentialScope {
        &self.scope
    }

    /// The region of the credential scope.
    pub fn region(&self) -> &str {
        &self.scope.region
    }

    /// The service of the credential scope.
    pub fn service(&self) -> &str {
        &self.scope.service
    }

    /// The request time in ISO 8601 basic format (`20150830T123600Z`), as signed.
    pub fn amz_date(&self) -> &str {
        &self.amz_date
    }

    /// The request time (from `X-Amz-Date`, else `Date`).
    pub fn request_time(&self) -> SystemTime {
        epoch_to_system_time(self.request_time)
    }

    /// The signed header names, in the order the signer listed them.
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }

    /// The signature as sent (hex).
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// Whether the signature came in the `Authorization` header or the query string.
    pub fn location(&self) -> AuthLocation {
        self.location
    }

    /// Whether this is a presigned URL (signature in the query string).
    pub fn is_presigned(&self) -> bool {
        matches!(self.location, AuthLocation::Query { .. })
    }

    /// How long a presigned URL is valid after its `X-Amz-Date`; `None` for header auth.
    pub fn expires(&self) -> Option<Duration> {
        match self.location {
            AuthLocation::Query { expires_secs } => Some(Duration::from_secs(expires_secs)),
            AuthLocation::Header => None,
        }
    }

    /// The session token (`X-Amz-Security-Token` header or query parameter), if any. It is
    /// covered by the signature only when signed; checking it is the caller's business.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// Whether the body is left out of the signature (`UNSIGNED-PAYLOAD`).
    pub fn unsigned_payload(&self) -> bool {
        match &self.content_sha256 {
            Some(v) => v == UNSIGNED_PAYLOAD,
            None => self.is_presigned() && self.scope.service == "s3",
        }
    }
}

/// A neutral category of [`AuthError`], for the API layer to map to its protocol's code.
///
/// | kind         | JSON protocols                        | query protocols               |
/// |--------------|---------------------------------------|-------------------------------|
/// | `Missing`    | `MissingAuthenticationTokenException` | `MissingAuthenticationToken`  |
/// | `Incomplete` | `IncompleteSignatureException`        | `IncompleteSignature`         |
/// | `Mismatch`   | `InvalidSignatureException`           | `SignatureDoesNotMatch`       |
/// | `Expired`    | `InvalidSignatureException`           | `SignatureDoesNotMatch`       |
///
/// AWS answers `Incomplete` with HTTP 400 and the others with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthErrorKind {
    /// No authentication at all.
    Missing,
    /// Authentication present but malformed or incomplete.
    Incomplete,
    /// The signature (or a signed value) does not match.
    Mismatch,
    /// The request time is outside the allowed window.
    Expired,
}

/// Why a request failed SigV4 authentication. Messages follow AWS's wording where known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthentication,
    /// The `Authorization` header or presigned query is incomplete or malformed; the message
    /// says what is wrong (e.g. "Authorization header requires 'Credential' parameter.").
    #[error("{0}")]
    Incomplete(String),
    /// The algorithm is not `AWS4-HMAC-SHA256`. Carries the algorithm when it looks like one.
    #[error("Unsupported AWS 'algorithm': '{}'", .0.as_deref().unwrap_or("<unrecognised>"))]
    UnsupportedAlgorithm(Option<String>),
    /// Neither `X-Amz-Date` nor `Date` is present.
    #[error("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")]
    MissingDate,
    /// `X-Amz-Date` (or `Date`) could not be parsed.
    #[error(
        "Date must be in ISO-8601 'basic format'. Got '{0}'. See http://docs.aws.amazon.com/general/latest/gr/sigv4-date-handling.html"
    )]
    InvalidDate(String),
    /// `host` is not among the signed headers.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,
    /// The credential scope's date is not the request time's day.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{request_date}', from '{amz_date}'."
    )]
    ScopeDateMismatch {
        /// The date in the credential scope.
        scope_date: String,
        /// The request time's day (`YYYYMMDD`).
        request_date: String,
        /// The request time (`YYYYMMDDTHHMMSSZ`).
        amz_date: String,
    },
    /// `x-amz-content-sha256` is neither a hex SHA-256 nor `UNSIGNED-PAYLOAD`.
    #[error("x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 value, not '{0}'")]
    UnsupportedContentSha256(String),
    /// `x-amz-content-sha256` is a SHA-256 that does not match the body.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    /// The signature does not match. The canonical request and string to sign that the server
    /// computed are kept for debugging; they are not in the message.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch {
        /// The canonical request the server computed.
        canonical_request: String,
        /// The string to sign the server computed.
        string_to_sign: String,
    },
    /// The request time is more than 5 minutes before `now`.
    #[error("Signature expired: {request_time} is now earlier than {limit} ({now} - 5 min.)")]
    SignatureExpired {
        /// The request time, `YYYYMMDDTHHMMSSZ`.
        request_time: String,
        /// `now` minus 5 minutes.
        limit: String,
        /// `now`.
        now: String,
    },
    /// The request time is more than 5 minutes after `now`.
    #[error(
        "Signature not yet current: {request_time} is still later than {limit} ({now} + 5 min.)"
    )]
    SignatureNotYetCurrent {
        /// The request time, `YYYYMMDDTHHMMSSZ`.
        request_time: String,
        /// `now` plus 5 minutes.
        limit: String,
        /// `now`.
        now: String,
    },
    /// A presigned URL is past `X-Amz-Date + X-Amz-Expires`.
    #[error("Request has expired")]
    PresignedExpired {
        /// When the URL expired, `YYYYMMDDTHHMMSSZ`.
        expired_at: String,
        /// `now`.
        now: String,
    },
}

impl AuthError {
    /// The neutral category, for mapping to a protocol's error code.
    pub fn kind(&self) -> AuthErrorKind {
        match self {
            AuthError::MissingAuthentication => AuthErrorKind::Missing,
            AuthError::Incomplete(_)
            | AuthError::UnsupportedAlgorithm(_)
            | AuthError::MissingDate
            | AuthError::InvalidDate(_)
            | AuthError::HostNotSigned
            | AuthError::UnsupportedContentSha256(_) => AuthErrorKind::Incomplete,
            AuthError::ScopeDateMismatch { .. }
            | AuthError::ContentSha256Mismatch
            | AuthError::SignatureMismatch { .. } => AuthErrorKind::Mismatch,
            AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::PresignedExpired { .. } => AuthErrorKind::Expired,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Phase 1: parse
// ---------------------------------------------------------------------------------------------

/// Reads a request's SigV4 authentication (header or presigned query) without any secret.
pub fn parse(req: &RequestParts<'_>) -> Result<ParsedAuth, AuthError> {
    let authorization = req.headers.get(http::header::AUTHORIZATION);
    let presigned = query_has_presign_params(req.query);
    match (authorization, presigned) {
        (Some(_), true) => Err(AuthError::Incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified"
                .to_owned(),
        )),
        (Some(value), false) => {
            let value = value.to_str().map_err(|_| {
                AuthError::Incomplete("Authorization header must be ASCII.".to_owned())
            })?;
            if value.trim().is_empty() {
                return Err(AuthError::MissingAuthentication);
            }
            parse_header_auth(value, req)
        }
        (None, true) => parse_query_auth(req),
        (None, false) => Err(AuthError::MissingAuthentication),
    }
}

fn parse_header_auth(value: &str, req: &RequestParts<'_>) -> Result<ParsedAuth, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = match value.find(char::is_whitespace) {
        Some(i) => (&value[..i], value[i..].trim_start()),
        None => (value, ""),
    };
    if algorithm != ALGORITHM {
        return Err(unsupported_algorithm(algorithm));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for component in rest.split(',') {
        let Some((key, val)) = component.split_once('=') else {
            continue;
        };
        let val = val.trim();
        if val.is_empty() {
            continue;
        }
        match key.trim() {
            "Credential" => credential = Some(val),
            "SignedHeaders" => signed_headers = Some(val),
            "Signature" => signature = Some(val),
            _ => {}
        }
    }

    let date = header_date(req.headers);
    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        if date.is_none() {
            missing.push(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            );
        }
        return Err(AuthError::Incomplete(missing.join(" ")));
    };
    let (amz_date, request_time) = date.ok_or(AuthError::MissingDate)??;

    let security_token = req
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_sha256 = req
        .headers
        .get("x-amz-content-sha256")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());

    finish_parse(
        credential,
        signed_headers,
        signature,
        amz_date,
        request_time,
        AuthLocation::Header,
        security_token,
        content_sha256,
    )
}

fn parse_query_auth(req: &RequestParts<'_>) -> Result<ParsedAuth, AuthError> {
    let mut algorithm = None;
    let mut credential = None;
    let mut date = None;
    let mut signed_headers = None;
    let mut signature = None;
    let mut expires = None;
    let mut security_token = None;
    for (key, value) in query_pairs(req.query) {
        let slot = match key.as_slice() {
            b"X-Amz-Algorithm" => &mut algorithm,
            b"X-Amz-Credential" => &mut credential,
            b"X-Amz-Date" => &mut date,
            b"X-Amz-SignedHeaders" => &mut signed_headers,
            b"X-Amz-Signature" => &mut signature,
            b"X-Amz-Expires" => &mut expires,
            b"X-Amz-Security-Token" => &mut security_token,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(String::from_utf8_lossy(&value).into_owned());
        }
    }
    let (
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(signed_headers),
        Some(signature),
        Some(expires),
    ) = (
        algorithm,
        credential,
        date,
        signed_headers,
        signature,
        expires,
    )
    else {
        return Err(AuthError::Incomplete(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
                .to_owned(),
        ));
    };
    if algorithm != ALGORITHM {
        return Err(unsupported_algorithm(&algorithm));
    }
    let expires_secs: u64 = expires.trim().parse().map_err(|_| {
        AuthError::Incomplete(format!(
            "X-Amz-Expires should be a number of seconds, not '{expires}'"
        ))
    })?;
    if expires_secs > MAX_PRESIGNED_EXPIRES_SECS {
        return Err(AuthError::Incomplete(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800".to_owned(),
        ));
    }
    let request_time = parse_amz_date(&date).ok_or_else(|| AuthError::InvalidDate(date.clone()))?;
    let content_sha256 = req
        .headers
        .get("x-amz-content-sha256")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
    finish_parse(
        &credential,
        &signed_headers,
        &signature,
        date,
        request_time,
        AuthLocation::Query { expires_secs },
        security_token,
        content_sha256,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish_parse(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: String,
    request_time: i64,
    location: AuthLocation,
    security_token: Option<String>,
    content_sha256: Option<String>,
) -> Result<ParsedAuth, AuthError> {
    let (access_key_id, scope) = parse_credential(credential)?;

    let names: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || http::HeaderName::from_bytes(n.as_bytes()).is_err())
    {
        return Err(AuthError::Incomplete(format!(
            "SignedHeaders contains an invalid header name: '{bad}'"
        )));
    }
    if !names.iter().any(|n| n.eq_ignore_ascii_case("host")) {
        return Err(AuthError::HostNotSigned);
    }

    let request_date = &amz_date[..8];
    if scope.date != request_date {
        return Err(AuthError::ScopeDateMismatch {
            scope_date: scope.date,
            request_date: request_date.to_owned(),
            amz_date,
        });
    }

    Ok(ParsedAuth {
        access_key_id,
        scope,
        amz_date,
        request_time,
        signed_headers: names,
        signed_headers_raw: signed_headers.to_owned(),
        signature: signature.to_owned(),
        location,
        security_token,
        content_sha256,
    })
}

fn parse_credential(credential: &str) -> Result<(String, CredentialScope), AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let malformed = || {
        AuthError::Incomplete(format!(
            "Credential should be of the form <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request, not '{credential}'."
        ))
    };
    let [akid, date, region, service, terminator] = parts.as_slice() else {
        return Err(malformed());
    };
    if akid.is_empty() || date.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed());
    }
    if *terminator != TERMINATOR {
        return Err(AuthError::Incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    Ok((
        (*akid).to_owned(),
        CredentialScope {
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
        },
    ))
}

fn unsupported_algorithm(algorithm: &str) -> AuthError {
    // Echo the algorithm only when it looks like one, never an arbitrary token.
    let shown = (algorithm.starts_with("AWS")
        && algorithm.len() <= 40
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    .then(|| algorithm.to_owned());
    AuthError::UnsupportedAlgorithm(shown)
}

/// The request date from `X-Amz-Date`, else `Date`: `None` if neither is present.
fn header_date(headers: &HeaderMap) -> Option<Result<(String, i64), AuthError>> {
    if let Some(v) = headers.get("x-amz-date") {
        let s = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
        return Some(match parse_amz_date(&s) {
            Some(t) => Ok((s, t)),
            None => Err(AuthError::InvalidDate(s)),
        });
    }
    let v = headers.get(http::header::DATE)?;
    let s = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
    Some(match parse_http_date(&s) {
        Some(t) => Ok((format_amz_date(t), t)),
        None => Err(AuthError::InvalidDate(s)),
    })
}

fn query_has_presign_params(query: &str) -> bool {
    query_pairs(query).any(|(k, _)| {
        matches!(
            k.as_slice(),
            b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature"
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Phase 2: verify
// ---------------------------------------------------------------------------------------------

/// Verifies a parsed request against its secret access key at time `now`.
///
/// `req` must be the request `parsed` came from. Checks the time window first, then the body
/// hash, then the signature (compared in constant time).
pub fn verify(
    parsed: &ParsedAuth,
    req: &RequestParts<'_>,
    secret_access_key: &str,
    now: SystemTime,
) -> Result<(), AuthError> {
    check_time(parsed, system_time_to_epoch(now))?;

    let payload_hash = payload_hash(parsed, req)?;
    let canonical = canonical_request(parsed, req, &payload_hash);
    let sts = string_to_sign(&parsed.amz_date, &parsed.scope, &canonical);
    let key = signing_key(
        secret_access_key,
        &parsed.scope.date,
        &parsed.scope.region,
        &parsed.scope.service,
    );
    let expected = hmac(&key, sts.as_bytes());

    let provided = hex::decode(&parsed.signature).unwrap_or_default();
    let equal = provided.len() == expected.len() && bool::from(expected.ct_eq(&provided[..]));
    if equal {
        Ok(())
    } else {
        Err(AuthError::SignatureMismatch {
            canonical_request: String::from_utf8_lossy(&canonical).into_owned(),
            string_to_sign: sts,
        })
    }
}

fn check_time(parsed: &ParsedAuth, now: i64) -> Result<(), AuthError> {
    let t = parsed.request_time;
    if t > now.saturating_add(SKEW_SECS) {
        return Err(AuthError::SignatureNotYetCurrent {
            request_time: parsed.amz_date.clone(),
            limit: format_amz_date(now.saturating_add(SKEW_SECS)),
            now: format_amz_date(now),
        });
    }
    match parsed.location {
        AuthLocation::Header => {
            if t < now.saturating_sub(SKEW_SECS) {
                return Err(AuthError::SignatureExpired {
                    request_time: parsed.amz_date.clone(),
                    limit: format_amz_date(now.saturating_sub(SKEW_SECS)),
                    now: format_amz_date(now),
                });
            }
        }
        AuthLocation::Query { expires_secs } => {
            let expires = i64::try_from(expires_secs).unwrap_or(i64::MAX);
            let expired_at = t.saturating_add(expires);
            if now > expired_at {
                return Err(AuthError::PresignedExpired {
                    expired_at: format_amz_date(expired_at),
                    now: format_amz_date(now),
                });
            }
        }
    }
    Ok(())
}

fn payload_hash(parsed: &ParsedAuth, req: &RequestParts<'_>) -> Result<String, AuthError> {
    let body_hash = || match req.payload {
        Payload::Bytes(bytes) => hex::encode(Sha256::digest(bytes)),
        Payload::Sha256Hex(h) => h.to_ascii_lowercase(),
    };
    if let Some(declared) = &parsed.content_sha256 {
        if declared == UNSIGNED_PAYLOAD {
            return Ok(declared.clone());
        }
        if declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit()) {
            let computed = body_hash();
            if !bool::from(
                declared
                    .to_ascii_lowercase()
                    .as_bytes()
                    .ct_eq(computed.as_bytes()),
            ) {
                return Err(AuthError::ContentSha256Mismatch);
            }
            return Ok(declared.clone());
        }
        return Err(AuthError::UnsupportedContentSha256(declared.clone()));
    }
    if parsed.is_presigned() && parsed.scope.service == "s3" {
        return Ok(UNSIGNED_PAYLOAD.to_owned());
    }
    Ok(body_hash())
}

/// Builds the canonical request (as bytes: header values need not be UTF-8).
fn canonical_request(parsed: &ParsedAuth, req: &RequestParts<'_>, payload_hash: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(req.path, &parsed.scope.service).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(req.query, parsed.is_presigned()).as_bytes());
    out.push(b'\n');
    for name in &parsed.signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in req.headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            canonical_header_value(value.as_bytes(), &mut out);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(parsed.signed_headers_raw.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// The canonical URI: for S3 the raw path; otherwise normalised and encoded once more.
fn canonical_uri(path: &str, service: &str) -> String {
    if service == "s3" {
        return if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        };
    }
    let normalised = normalize_path(path);
    percent_encode(normalised.as_bytes(), PATH).to_string()
}

/// Removes empty, `.` and `..` segments (RFC 3986 §5.2.4, plus AWS's collapsing of `//`),
/// keeping a trailing slash.
fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    if !path.contains('.') && !path.contains("//") && path.starts_with('/') {
        return path.to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    out.push_str(&segments.join("/"));
    let trailing = ["/", "/.", "/.."].iter().any(|s| path.ends_with(s));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Splits a raw query into decoded (key, value) pairs; `+` decodes to a space.
fn query_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_query_component(k), decode_query_component(v))
    })
}

fn decode_query_component(s: &str) -> Vec<u8> {
    if s.contains('+') {
        percent_decode(s.replace('+', " ").as_bytes()).collect()
    } else {
        percent_decode(s.as_bytes()).collect()
    }
}

/// The canonical query string: decoded, strictly re-encoded, sorted by key then value.
/// A presigned request's own `X-Amz-Signature` is left out.
fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .filter(|(k, _)| !(presigned && k.as_slice() == b"X-Amz-Signature"))
        .map(|(k, v)| {
            (
                percent_encode(&k, STRICT).to_string(),
                percent_encode(&v, STRICT).to_string(),
            )
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Appends a header value trimmed, with runs of spaces collapsed to one.
fn canonical_header_value(value: &[u8], out: &mut Vec<u8>) {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ws(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    let mut previous_space = false;
    for &b in &value[start..end] {
        if b == b' ' {
            if previous_space {
                continue;
            }
            previous_space = true;
        } else {
            previous_space = false;
        }
        out.push(b);
    }
}

fn string_to_sign(amz_date: &str, scope: &CredentialScope, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request))
    )
}

/// Derives the SigV4 signing key: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
/// service), "aws4_request")`. Servers may cache it per (key, date, region, service).
pub fn signing_key(secret_access_key: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k_secret = Vec::with_capacity(4 + secret_access_key.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret_access_key.as_bytes());
    let k_date = hmac(&k_secret, date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, TERMINATOR.as_bytes())
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

// ---------------------------------------------------------------------------------------------
// Dates (no chrono: civil-from-days arithmetic on Unix seconds)
// ---------------------------------------------------------------------------------------------

fn system_time_to_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn epoch_to_system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .unwrap_or(UNIX_EPOCH)
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |acc, b| acc * 10 + i64::from(b - b'0')))
}

fn to_epoch(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Parses ISO 8601 basic format, `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    to_epoch(
        digits(&b[0..4])?,
        digits(&b[4..6])?,
        digits(&b[6..8])?,
        digits(&b[9..11])?,
        digits(&b[11..13])?,
        digits(&b[13..15])?,
    )
}

/// Parses an HTTP date in IMF-fixdate form, `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)?;
    let t = time.as_bytes();
    if t.len() != 8 || t[2] != b':' || t[5] != b':' || day.len() > 2 || year.len() != 4 {
        return None;
    }
    to_epoch(
        digits(year.as_bytes())?,
        i64::try_from(month).ok()? + 1,
        digits(day.as_bytes())?,
        digits(&t[0..2])?,
        digits(&t[3..5])?,
        digits(&t[6..8])?,
    )
}

fn format_amz_date(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
