//! Tests: requests signed by the real `aws-sigv4` signer must verify; tampering must not.

use super::*;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderValue;
use proptest::prelude::*;
use std::borrow::Cow;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A request as the server would receive it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            payload: Payload::Bytes(&self.body),
        }
    }

    fn check(&self, secret: &str, now: SystemTime) -> Result<ParsedAuth, AuthError> {
        let parts = self.parts();
        let parsed = parse(&parts)?;
        verify(&parsed, &parts, secret, now)?;
        Ok(parsed)
    }

    fn kind(&self, secret: &str, now: SystemTime) -> Option<AuthErrorKind> {
        self.check(secret, now).err().map(|e| e.kind())
    }

    fn set_header(&mut self, name: &'static str, value: &str) {
        self.headers
            .insert(name, HeaderValue::from_str(value).unwrap());
    }

    fn authorization(&self) -> String {
        self.headers["authorization"].to_str().unwrap().to_owned()
    }
}

enum Body<'a> {
    Bytes(&'a [u8]),
    Unsigned,
}

struct Spec<'a> {
    method: &'a str,
    uri: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: Body<'a>,
    region: &'a str,
    service: &'a str,
    time: u64,
    settings: SigningSettings,
    session_token: Option<&'a str>,
}

impl<'a> Spec<'a> {
    fn new(method: &'a str, uri: &'a str) -> Self {
        Spec {
            method,
            uri,
            headers: Vec::new(),
            body: Body::Bytes(b""),
            region: "us-east-1",
            service: "ecs",
            time: T0,
            settings: SigningSettings::default(),
            session_token: None,
        }
    }

    fn presigned(mut self, expires: u64) -> Self {
        self.settings.signature_location = SignatureLocation::QueryParams;
        self.settings.expires_in = Some(Duration::from_secs(expires));
        self
    }

    /// Signs with the real AWS signer and returns the request as a server would see it.
    fn sign(&self) -> Received {
        let identity: Identity = Credentials::new(
            AKID,
            SECRET,
            self.session_token.map(str::to_owned),
            None,
            "test",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(at(self.time))
            .settings(self.settings.clone())
            .build()
            .unwrap()
            .into();
        let body_bytes: &[u8] = match self.body {
            Body::Bytes(b) => b,
            Body::Unsigned => b"unsigned body",
        };
        let signable_body = match self.body {
            Body::Bytes(b) => SignableBody::Bytes(b),
            Body::Unsigned => SignableBody::UnsignedPayload,
        };
        let signable = SignableRequest::new(
            self.method,
            self.uri,
            self.headers.iter().copied(),
            signable_body,
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();

        let mut builder = http::Request::builder().method(self.method).uri(self.uri);
        for (k, v) in &self.headers {
            builder = builder.header(*k, *v);
        }
        let mut request = builder.body(body_bytes.to_vec()).unwrap();
        instructions.apply_to_request_http1x(&mut request);

        let uri = request.uri().clone();
        let mut headers = request.headers().clone();
        if !headers.contains_key("host") {
            // What an HTTP client sends: the authority, without a default port.
            let authority = uri.authority().unwrap();
            let host = match (uri.scheme_str(), authority.port_u16()) {
                (Some("https"), Some(443)) | (Some("http"), Some(80)) => authority.host(),
                _ => authority.as_str(),
            };
            headers.insert("host", HeaderValue::from_str(host).unwrap());
        }
        Received {
            method: self.method.to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            headers,
            body: body_bytes.to_vec(),
        }
    }
}

const ECS_BODY: &[u8] = br#"{"maxResults":10,"nextToken":null}"#;

fn ecs_json_post() -> Spec<'static> {
    let mut spec = Spec::new("POST", "https://ecs.us-east-1.amazonaws.com/");
    spec.headers = vec![
        ("content-type", "application/x-amz-json-1.1"),
        (
            "x-amz-target",
            "AmazonEC2ContainerServiceV20141113.ListClusters",
        ),
    ];
    spec.body = Body::Bytes(ECS_BODY);
    spec
}

const ELB_URI: &str = "http://localhost:4566/?Version=2015-12-01&Names.member.2=b%20c&Action=DescribeLoadBalancers&Names.member.1=z&Names.member.1=a&Marker=x%2By+z&Empty=&Flag";

fn elb_query_get() -> Spec<'static> {
    let mut spec = Spec::new("GET", ELB_URI);
    spec.service = "elasticloadbalancing";
    spec.region = "eu-west-1";
    spec
}

/// A request with an arbitrary `Authorization` header and an `X-Amz-Date`.
fn hand_made(authorization: Option<&str>, amz_date: Option<&str>) -> Received {
    let mut headers = HeaderMap::new();
    headers.insert(
        "host",
        HeaderValue::from_static("ecs.us-east-1.amazonaws.com"),
    );
    if let Some(a) = authorization {
        headers.insert("authorization", HeaderValue::from_str(a).unwrap());
    }
    if let Some(d) = amz_date {
        headers.insert("x-amz-date", HeaderValue::from_str(d).unwrap());
    }
    Received {
        method: "POST".to_owned(),
        path: "/".to_owned(),
        query: String::new(),
        headers,
        body: Vec::new(),
    }
}

const WELL_FORMED: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000";

// ---------------------------------------------------------------------------------------------
// Fixed vector from the AWS documentation
// ---------------------------------------------------------------------------------------------

#[test]
fn aws_docs_iam_list_users_vector() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    headers.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
    headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    headers.insert(
        "authorization",
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        ),
    );
    let req = RequestParts {
        method: "GET",
        path: "/",
        query: "Action=ListUsers&Version=2010-05-08",
        headers: &headers,
        payload: Payload::Bytes(b""),
    };
    let parsed = parse(&req).unwrap();
    assert_eq!(parsed.access_key_id(), "AKIDEXAMPLE");
    assert_eq!(parsed.region(), "us-east-1");
    assert_eq!(parsed.service(), "iam");
    assert_eq!(parsed.scope().date, "20150830");
    assert_eq!(
        parsed.scope().to_string(),
        "20150830/us-east-1/iam/aws4_request"
    );
    assert_eq!(parsed.amz_date(), "20150830T123600Z");
    assert_eq!(parsed.request_time(), at(1_440_938_160));
    assert_eq!(
        parsed.signed_headers(),
        ["content-type", "host", "x-amz-date"]
    );
    assert_eq!(parsed.location(), AuthLocation::Header);
    assert!(!parsed.unsigned_payload());

    // The intermediate values published in the documentation.
    let canonical = canonical_request(&parsed, &req, &payload_hash(&parsed, &req).unwrap());
    assert_eq!(
        String::from_utf8(canonical.clone()).unwrap(),
        "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
         content-type:application/x-www-form-urlencoded; charset=utf-8\n\
         host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
         content-type;host;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex::encode(Sha256::digest(&canonical)),
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
    assert_eq!(
        hex::encode(signing_key(SECRET, "20150830", "us-east-1", "iam")),
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    );

    verify(&parsed, &req, SECRET, at(1_440_938_160)).unwrap();
    verify(&parsed, &req, SECRET, at(1_440_938_160 + 300)).unwrap();
    let err = verify(&parsed, &req, "not-the-secret", at(1_440_938_160)).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Mismatch);
}

// ---------------------------------------------------------------------------------------------
// Requests signed by the real signer
// ---------------------------------------------------------------------------------------------

#[test]
fn sdk_signed_json_post_verifies() {
    let req = ecs_json_post().sign();
    let parsed = req.check(SECRET, at(T0)).unwrap();
    assert_eq!(parsed.access_key_id(), AKID);
    assert_eq!(parsed.region(), "us-east-1");
    assert_eq!(parsed.service(), "ecs");
    assert_eq!(parsed.amz_date(), "20231114T221320Z");
    assert_eq!(parsed.request_time(), at(T0));
    assert!(parsed.signed_headers().iter().any(|h| h == "host"));
    assert!(parsed.signed_headers().iter().any(|h| h == "x-amz-target"));
    assert_eq!(parsed.security_token(), None);
    assert!(!parsed.is_presigned());
    assert_eq!(parsed.expires(), None);
}

#[test]
fn sdk_signed_json_post_with_content_sha256_header_verifies() {
    let mut spec = ecs_json_post();
    spec.settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let req = spec.sign();
    assert!(req.headers.contains_key("x-amz-content-sha256"));
    req.check(SECRET, at(T0)).unwrap();
}

#[test]
fn precomputed_payload_hash_verifies() {
    let req = ecs_json_post().sign();
    let hash = hex::encode(Sha256::digest(ECS_BODY)).to_ascii_uppercase();
    let parts = RequestParts {
        payload: Payload::Sha256Hex(&hash),
        ..req.parts()
    };
    let parsed = parse(&parts).unwrap();
    verify(&parsed, &parts, SECRET, at(T0)).unwrap();
    let wrong = hex::encode(Sha256::digest(b"other"));
    let parts = RequestParts {
        payload: Payload::Sha256Hex(&wrong),
        ..req.parts()
    };
    let err = verify(&parsed, &parts, SECRET, at(T0)).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Mismatch);
}

#[test]
fn sdk_signed_unsigned_payload_verifies_whatever_the_body() {
    let mut spec = ecs_json_post();
    spec.settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    spec.body = Body::Unsigned;
    let mut req = spec.sign();
    assert_eq!(req.headers["x-amz-content-sha256"], UNSIGNED_PAYLOAD);
    let parsed = req.check(SECRET, at(T0)).unwrap();
    assert!(parsed.unsigned_payload());
    req.body = b"something else".to_vec();
    req.check(SECRET, at(T0)).unwrap();
}

#[test]
fn sdk_signed_query_get_with_repeated_unsorted_encoded_params_verifies() {
    let req = elb_query_get().sign();
    assert!(req.query.contains("Names.member.1=z&Names.member.1=a"));
    let parsed = req.check(SECRET, at(T0)).unwrap();
    assert_eq!(parsed.region(), "eu-west-1");
    assert_eq!(parsed.service(), "elasticloadbalancing");
    assert_eq!(req.headers["host"], "localhost:4566");
}

#[test]
fn sdk_signed_query_post_form_body_verifies() {
    let mut spec = Spec::new("POST", "https://sts.amazonaws.com/");
    spec.service = "sts";
    spec.headers = vec![(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    spec.body = Body::Bytes(b"Action=GetCallerIdentity&Version=2011-06-15");
    spec.sign().check(SECRET, at(T0)).unwrap();
}

#[test]
fn sdk_signed_with_session_token_verifies() {
    let mut spec = ecs_json_post();
    spec.session_token = Some("FQoGZXIvYXdzEXAMPLETOKEN");
    let req = spec.sign();
    let parsed = req.check(SECRET, at(T0)).unwrap();
    assert_eq!(parsed.security_token(), Some("FQoGZXIvYXdzEXAMPLETOKEN"));
    assert!(
        parsed
            .signed_headers()
            .iter()
            .any(|h| h == "x-amz-security-token")
    );
}

#[test]
fn sdk_signed_path_with_encoded_and_dot_segments_verifies() {
    for uri in [
        "https://ecs.us-east-1.amazonaws.com/a%20b/./c//d/../e:f~g@h!$",
        "https://ecs.us-east-1.amazonaws.com/tags/arn%3Aaws%3Aecs%3Aus-east-1%3A1%3Acluster%2Fx",
        "https://ecs.us-east-1.amazonaws.com/x/y/..",
        "https://ecs.us-east-1.amazonaws.com/%E2%82%AC/",
        "https://ecs.us-east-1.amazonaws.com",
    ] {
        let req = Spec::new("GET", uri).sign();
        req.check(SECRET, at(T0))
            .unwrap_or_else(|e| panic!("{uri}: {e:?}"));
    }
}

#[test]
fn sdk_signed_repeated_headers_and_spaces_verify() {
    let mut spec = ecs_json_post();
    spec.headers.push(("x-amz-meta-list", "  a   b  "));
    spec.headers.push(("x-amz-meta-list", "c"));
    let req = spec.sign();
    assert_eq!(req.headers.get_all("x-amz-meta-list").iter().count(), 2);
    req.check(SECRET, at(T0)).unwrap();
}

#[test]
fn sdk_presigned_url_verifies() {
    let req = Spec::new(
        "GET",
        "https://ecs.us-east-1.amazonaws.com/?Action=ListClusters&b=2&a=1",
    )
    .presigned(900)
    .sign();
    assert!(!req.headers.contains_key("authorization"));
    assert!(req.query.contains("X-Amz-Signature="));
    let parsed = req.check(SECRET, at(T0)).unwrap();
    assert!(parsed.is_presigned());
    assert_eq!(parsed.location(), AuthLocation::Query { expires_secs: 900 });
    assert_eq!(parsed.expires(), Some(Duration::from_secs(900)));
    assert_eq!(parsed.region(), "us-east-1");
    // Valid until X-Amz-Date + X-Amz-Expires, even long after the 5-minute skew window.
    req.check(SECRET, at(T0 + 900)).unwrap();
    req.check(SECRET, at(T0 - 300)).unwrap();
    assert_eq!(req.kind("wrong", at(T0)), Some(AuthErrorKind::Mismatch));
}

#[test]
fn sdk_presigned_s3_unsigned_payload_verifies() {
    let mut spec = Spec::new(
        "GET",
        "https://bucket.s3.us-east-1.amazonaws.com/key%20name",
    );
    spec.service = "s3";
    spec.body = Body::Unsigned;
    spec.settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    spec.settings.uri_path_normalization_mode =
        aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    let req = spec.presigned(3600).sign();
    let parsed = req.check(SECRET, at(T0 + 10)).unwrap();
    assert!(parsed.unsigned_payload());
}

#[test]
fn sdk_presigned_with_session_token_verifies() {
    let mut spec = Spec::new("GET", "https://ecs.us-east-1.amazonaws.com/?Action=X").presigned(60);
    spec.session_token = Some("TOKEN/with+chars=");
    let req = spec.sign();
    let parsed = req.check(SECRET, at(T0)).unwrap();
    assert_eq!(parsed.security_token(), Some("TOKEN/with+chars="));
}

// ---------------------------------------------------------------------------------------------
// Tampering
// ---------------------------------------------------------------------------------------------

#[test]
fn tampered_body_fails() {
    let mut req = ecs_json_post().sign();
    req.body = br#"{"maxResults":11,"nextToken":null}"#.to_vec();
    let err = req.check(SECRET, at(T0)).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Mismatch);
    assert!(matches!(err, AuthError::SignatureMismatch { .. }));
    assert!(err.to_string().starts_with(
        "The request signature we calculated does not match the signature you provided."
    ));
}

#[test]
fn tampered_body_with_content_sha256_header_fails() {
    let mut spec = ecs_json_post();
    spec.settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let mut req = spec.sign();
    req.body.push(b' ');
    assert_eq!(
        req.check(SECRET, at(T0)).unwrap_err(),
        AuthError::ContentSha256Mismatch
    );
    // Switching the header to UNSIGNED-PAYLOAD changes the canonical request.
    req.set_header("x-amz-content-sha256", UNSIGNED_PAYLOAD);
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Mismatch));
    // Anything else is refused outright.
    req.set_header("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Incomplete));
}

#[test]
fn tampered_header_fails() {
    let mut req = ecs_json_post().sign();
    req.set_header(
        "x-amz-target",
        "AmazonEC2ContainerServiceV20141113.DeleteCluster",
    );
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Mismatch));

    let mut req = ecs_json_post().sign();
    req.set_header("host", "evil.example.com");
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Mismatch));

    // An extra unsigned header is fine; an extra value of a signed header is not.
    let mut req = ecs_json_post().sign();
    req.set_header("x-unsigned", "whatever");
    req.check(SECRET, at(T0)).unwrap();
    req.headers.append(
        "x-amz-target",
        HeaderValue::from_static("AmazonEC2ContainerServiceV20141113.DeleteCluster"),
    );
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Mismatch));
}

#[test]
fn tampered_query_fails() {
    let original = elb_query_get().sign();
    for query in [
        original
            .query
            .replace("Names.member.1=a", "Names.member.1=b"),
        format!("{}&Extra=1", original.query),
        original.query.replace("Marker=x%2By+z", "Marker=x+y+z"),
    ] {
        let mut req = original.clone();
        req.query = query;
        assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Mismatch));
    }
    let mut req = original.clone();
    req.path = "/other".to_owned();
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Mismatch));
    let mut req = original;
    req.method = "DELETE".to_owned();
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Mismatch));
}

#[test]
fn tampered_presigned_url_fails() {
    let original = Spec::new(
        "GET",
        "https://ecs.us-east-1.amazonaws.com/?Action=ListClusters",
    )
    .presigned(900)
    .sign();
    let mut req = original.clone();
    req.query = req.query.replace("X-Amz-Expires=900", "X-Amz-Expires=9000");
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Mismatch));
    let mut req = original;
    req.query = req.query.replace("ListClusters", "DeleteCluster");
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Mismatch));
}

#[test]
fn wrong_secret_fails() {
    let req = ecs_json_post().sign();
    assert_eq!(
        req.kind("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", at(T0)),
        Some(AuthErrorKind::Mismatch)
    );
    assert_eq!(req.kind("", at(T0)), Some(AuthErrorKind::Mismatch));
}

#[test]
fn wrong_region_in_scope_fails() {
    let mut spec = ecs_json_post();
    spec.region = "us-west-2";
    let mut req = spec.sign();
    req.check(SECRET, at(T0)).unwrap();
    let forged = req.authorization().replace("/us-west-2/", "/us-east-1/");
    req.set_header("authorization", &forged);
    let parsed = parse(&req.parts()).unwrap();
    assert_eq!(parsed.region(), "us-east-1");
    let err = verify(&parsed, &req.parts(), SECRET, at(T0)).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Mismatch);

    let forged = req.authorization().replace("/ecs/", "/ec2/");
    req.set_header("authorization", &forged);
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Mismatch));
}

#[test]
fn malformed_signature_value_fails() {
    let mut req = ecs_json_post().sign();
    let auth = req.authorization();
    let (head, sig) = auth.split_once("Signature=").unwrap();
    for bad in [&sig[..10], "zz", &sig.to_ascii_uppercase()[..]] {
        req.set_header("authorization", &format!("{head}Signature={bad}"));
        let expected = if bad == sig.to_ascii_uppercase() && sig == sig.to_ascii_lowercase() {
            // Hex is compared as bytes, so case does not matter.
            None
        } else {
            Some(AuthErrorKind::Mismatch)
        };
        assert_eq!(req.kind(SECRET, at(T0)), expected, "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Host, dates and clocks
// ---------------------------------------------------------------------------------------------

#[test]
fn unsigned_host_fails() {
    let mut spec = ecs_json_post();
    spec.settings.excluded_headers = Some(vec![
        Cow::Borrowed("authorization"),
        Cow::Borrowed("user-agent"),
        Cow::Borrowed("host"),
    ]);
    let req = spec.sign();
    assert!(!req.authorization().contains("host"));
    let err = req.check(SECRET, at(T0)).unwrap_err();
    assert_eq!(err, AuthError::HostNotSigned);
    assert_eq!(err.kind(), AuthErrorKind::Incomplete);
    assert_eq!(
        err.to_string(),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );

    let mut req = Spec::new("GET", "https://ecs.us-east-1.amazonaws.com/?A=1")
        .presigned(60)
        .sign();
    req.query = req
        .query
        .replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-other");
    assert_eq!(req.check(SECRET, at(T0)), Err(AuthError::HostNotSigned));
}

#[test]
fn clock_skew_within_five_minutes_passes_both_directions() {
    let req = ecs_json_post().sign();
    for now in [T0 - 300, T0 - 299, T0, T0 + 299, T0 + 300] {
        req.check(SECRET, at(now))
            .unwrap_or_else(|e| panic!("now = T0 {:+}: {e}", now as i64 - T0 as i64));
    }
}

#[test]
fn clock_skew_beyond_five_minutes_fails_both_directions() {
    let req = ecs_json_post().sign();
    // The request is from more than 5 minutes ago.
    let err = req.check(SECRET, at(T0 + 301)).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Expired);
    assert_eq!(
        err.to_string(),
        "Signature expired: 20231114T221320Z is now earlier than 20231114T221321Z (20231114T221821Z - 5 min.)"
    );
    // The request is from more than 5 minutes in the future.
    let err = req.check(SECRET, at(T0 - 301)).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Expired);
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20231114T221320Z is still later than 20231114T221319Z (20231114T220819Z + 5 min.)"
    );
    // Even with the wrong secret the time is reported first, as AWS does.
    assert_eq!(
        req.kind("wrong", at(T0 + 3600)),
        Some(AuthErrorKind::Expired)
    );
}

#[test]
fn skew_messages_match_aws_wording() {
    let req = hand_made(
        Some(
            "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
        ),
        Some("20130524T000000Z"),
    );
    let now = parse_amz_date("20130524T001000Z").unwrap();
    let err = req.check(SECRET, epoch_to_system_time(now)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature expired: 20130524T000000Z is now earlier than 20130524T000500Z (20130524T001000Z - 5 min.)"
    );
    let now = parse_amz_date("20130523T235000Z").unwrap();
    let err = req.check(SECRET, epoch_to_system_time(now)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20130524T000000Z is still later than 20130523T235500Z (20130523T235000Z + 5 min.)"
    );
}

#[test]
fn expired_presigned_url_fails() {
    let req = Spec::new(
        "GET",
        "https://ecs.us-east-1.amazonaws.com/?Action=ListClusters",
    )
    .presigned(900)
    .sign();
    req.check(SECRET, at(T0 + 900)).unwrap();
    let err = req.check(SECRET, at(T0 + 901)).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Expired);
    assert_eq!(
        err,
        AuthError::PresignedExpired {
            expired_at: "20231114T222820Z".to_owned(),
            now: "20231114T222821Z".to_owned(),
        }
    );
    assert_eq!(err.to_string(), "Request has expired");
    // A presigned URL from the future is refused like a header signature.
    let err = req.check(SECRET, at(T0 - 301)).unwrap_err();
    assert!(matches!(err, AuthError::SignatureNotYetCurrent { .. }));
}

#[test]
fn presigned_expires_over_a_week_is_incomplete() {
    let mut req = Spec::new("GET", "https://ecs.us-east-1.amazonaws.com/")
        .presigned(604_800)
        .sign();
    req.check(SECRET, at(T0 + 604_800)).unwrap();
    req.query = req
        .query
        .replace("X-Amz-Expires=604800", "X-Amz-Expires=604801");
    let err = req.check(SECRET, at(T0)).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Incomplete);
    assert_eq!(
        err.to_string(),
        "X-Amz-Expires must be less than a week (in seconds) that is 604800"
    );
    req.query = req
        .query
        .replace("X-Amz-Expires=604801", "X-Amz-Expires=-1");
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Incomplete));
}

#[test]
fn presigned_missing_parameters_is_incomplete() {
    let signed = Spec::new("GET", "https://ecs.us-east-1.amazonaws.com/?Action=X")
        .presigned(60)
        .sign();
    for param in [
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Credential",
    ] {
        let mut req = signed.clone();
        req.query = req
            .query
            .split('&')
            .filter(|p| !p.starts_with(param))
            .collect::<Vec<_>>()
            .join("&");
        let err = req.check(SECRET, at(T0)).unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::Incomplete, "{param}");
        assert!(
            err.to_string()
                .starts_with("Query-string authentication version 4 requires the X-Amz-Algorithm")
        );
    }
    let mut req = signed.clone();
    req.query = req.query.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1");
    assert_eq!(
        req.check(SECRET, at(T0)).unwrap_err(),
        AuthError::UnsupportedAlgorithm(Some("AWS4-HMAC-SHA1".to_owned()))
    );
}

#[test]
fn date_header_is_used_when_x_amz_date_is_absent() {
    // Sun, 06 Nov 1994 08:49:37 GMT = 784111777.
    let mut headers = HeaderMap::new();
    headers.insert(
        "host",
        HeaderValue::from_static("ecs.us-east-1.amazonaws.com"),
    );
    headers.insert(
        "date",
        HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
    );
    headers.insert(
        "authorization",
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/19941106/us-east-1/ecs/aws4_request, SignedHeaders=date;host, Signature=00",
        ),
    );
    let req = RequestParts {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        payload: Payload::Bytes(b""),
    };
    let parsed = parse(&req).unwrap();
    assert_eq!(parsed.amz_date(), "19941106T084937Z");
    assert_eq!(parsed.request_time(), at(784_111_777));

    // Sign it by hand (the SDK always sends X-Amz-Date) and check it verifies.
    let canonical = canonical_request(&parsed, &req, &payload_hash(&parsed, &req).unwrap());
    assert_eq!(
        String::from_utf8(canonical.clone()).unwrap(),
        "GET\n/\n\ndate:Sun, 06 Nov 1994 08:49:37 GMT\nhost:ecs.us-east-1.amazonaws.com\n\n\
         date;host\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let sts = string_to_sign(parsed.amz_date(), parsed.scope(), &canonical);
    let sig = hex::encode(hmac(
        &signing_key(SECRET, "19941106", "us-east-1", "ecs"),
        sts.as_bytes(),
    ));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/19941106/us-east-1/ecs/aws4_request, SignedHeaders=date;host, Signature={sig}"
    );
    headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
    let req = RequestParts {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        payload: Payload::Bytes(b""),
    };
    let parsed = parse(&req).unwrap();
    verify(&parsed, &req, SECRET, at(784_111_777 + 100)).unwrap();
    assert_eq!(
        verify(&parsed, &req, SECRET, at(784_111_777 + 400))
            .unwrap_err()
            .kind(),
        AuthErrorKind::Expired
    );
}

#[test]
fn missing_date_fails() {
    let err = hand_made(Some(WELL_FORMED), None)
        .check(SECRET, at(T0))
        .unwrap_err();
    assert_eq!(err, AuthError::MissingDate);
    assert_eq!(err.kind(), AuthErrorKind::Incomplete);
    assert_eq!(
        err.to_string(),
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    );
}

#[test]
fn invalid_date_fails() {
    for date in [
        "2023-11-14T22:13:20Z",
        "20231114T221320",
        "20231314T221320Z",
        "20230229T221320Z",
        "20231114T246000Z",
        "garbage",
    ] {
        let err = hand_made(Some(WELL_FORMED), Some(date))
            .check(SECRET, at(T0))
            .unwrap_err();
        assert_eq!(err, AuthError::InvalidDate(date.to_owned()), "{date}");
        assert_eq!(err.kind(), AuthErrorKind::Incomplete);
    }
    let mut req = hand_made(Some(WELL_FORMED), None);
    req.set_header("date", "yesterday");
    assert_eq!(
        req.check(SECRET, at(T0)),
        Err(AuthError::InvalidDate("yesterday".to_owned()))
    );
}

#[test]
fn scope_date_must_match_request_day() {
    let err = hand_made(Some(WELL_FORMED), Some("20231115T000000Z"))
        .check(SECRET, at(T0))
        .unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Mismatch);
    assert_eq!(
        err.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20231114' != '20231115', from '20231115T000000Z'."
    );
    // The SDK-signed request with its scope date rewritten.
    let mut req = ecs_json_post().sign();
    let forged = req.authorization().replace("/20231114/", "/20231113/");
    req.set_header("authorization", &forged);
    assert!(matches!(
        req.check(SECRET, at(T0)),
        Err(AuthError::ScopeDateMismatch { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Malformed or missing authentication
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_authentication_fails() {
    let req = hand_made(None, Some("20231114T221320Z"));
    let err = req.check(SECRET, at(T0)).unwrap_err();
    assert_eq!(err, AuthError::MissingAuthentication);
    assert_eq!(err.kind(), AuthErrorKind::Missing);
    assert_eq!(err.to_string(), "Missing Authentication Token");
    // An empty header counts as none; unrelated query parameters are not a presign.
    let mut req = hand_made(Some(""), None);
    req.query = "Action=ListClusters&X-Amz-Date=20231114T221320Z".to_owned();
    assert_eq!(req.kind(SECRET, at(T0)), Some(AuthErrorKind::Missing));
}

#[test]
fn malformed_authorization_header_lists_what_is_missing() {
    let err = hand_made(Some("AWS4-HMAC-SHA256"), None)
        .check(SECRET, at(T0))
        .unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Incomplete);
    assert_eq!(
        err.to_string(),
        "Authorization header requires 'Credential' parameter. \
         Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. \
         Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    );
    let err = hand_made(
        Some("AWS4-HMAC-SHA256 Credential=AKID/20231114/us-east-1/ecs/aws4_request, Signature="),
        Some("20231114T221320Z"),
    )
    .check(SECRET, at(T0))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter."
    );
}

#[test]
fn malformed_credential_fails() {
    for (credential, message) in [
        (
            "AKID/20231114/us-east-1/ecs",
            "Credential should be of the form",
        ),
        (
            "AKID/20231114/us-east-1/ecs/aws4_request/x",
            "Credential should be of the form",
        ),
        (
            "/20231114/us-east-1/ecs/aws4_request",
            "Credential should be of the form",
        ),
        (
            "AKID/20231114/us-east-1/ecs/aws5_request",
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
        ),
    ] {
        let auth = WELL_FORMED.replace(
            "AKIDEXAMPLE/20231114/us-east-1/ecs/aws4_request",
            credential,
        );
        let err = hand_made(Some(&auth), Some("20231114T221320Z"))
            .check(SECRET, at(T0))
            .unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::Incomplete, "{credential}");
        assert!(err.to_string().starts_with(message), "{err}");
    }
    let auth = WELL_FORMED.replace("host;x-amz-date", "host;;x-amz-date");
    let err = hand_made(Some(&auth), Some("20231114T221320Z"))
        .check(SECRET, at(T0))
        .unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Incomplete);
}

#[test]
fn unsupported_algorithm_fails() {
    let auth = WELL_FORMED.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256");
    let err = hand_made(Some(&auth), Some("20231114T221320Z"))
        .check(SECRET, at(T0))
        .unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Incomplete);
    assert_eq!(
        err.to_string(),
        "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'"
    );
    // Arbitrary tokens are not echoed back.
    let err = hand_made(Some("Bearer s3cr3t-t0k3n"), Some("20231114T221320Z"))
        .check(SECRET, at(T0))
        .unwrap_err();
    assert_eq!(err, AuthError::UnsupportedAlgorithm(None));
    assert!(!err.to_string().contains("s3cr3t"));
}

#[test]
fn header_and_presigned_together_is_incomplete() {
    let mut req = ecs_json_post().sign();
    req.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned();
    let err = req.check(SECRET, at(T0)).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Incomplete);
    assert!(
        err.to_string()
            .starts_with("Only one auth mechanism allowed")
    );
}

#[test]
fn error_kinds_cover_every_variant() {
    use AuthErrorKind::*;
    let cases = [
        (AuthError::MissingAuthentication, Missing),
        (AuthError::Incomplete(String::new()), Incomplete),
        (AuthError::UnsupportedAlgorithm(None), Incomplete),
        (AuthError::MissingDate, Incomplete),
        (AuthError::InvalidDate(String::new()), Incomplete),
        (AuthError::HostNotSigned, Incomplete),
        (
            AuthError::UnsupportedContentSha256(String::new()),
            Incomplete,
        ),
        (AuthError::ContentSha256Mismatch, Mismatch),
        (
            AuthError::ScopeDateMismatch {
                scope_date: String::new(),
                request_date: String::new(),
                amz_date: String::new(),
            },
            Mismatch,
        ),
        (
            AuthError::SignatureMismatch {
                canonical_request: String::new(),
                string_to_sign: String::new(),
            },
            Mismatch,
        ),
        (
            AuthError::SignatureExpired {
                request_time: String::new(),
                limit: String::new(),
                now: String::new(),
            },
            Expired,
        ),
        (
            AuthError::SignatureNotYetCurrent {
                request_time: String::new(),
                limit: String::new(),
                now: String::new(),
            },
            Expired,
        ),
        (
            AuthError::PresignedExpired {
                expired_at: String::new(),
                now: String::new(),
            },
            Expired,
        ),
    ];
    for (err, kind) in cases {
        assert_eq!(err.kind(), kind, "{err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Canonicalisation details
// ---------------------------------------------------------------------------------------------

#[test]
fn canonical_query_encodes_sorts_and_decodes_plus_as_space() {
    assert_eq!(canonical_query("", false), "");
    assert_eq!(canonical_query("b=2&a=1&a=0&c", false), "a=0&a=1&b=2&c=");
    assert_eq!(
        canonical_query("k=a+b&k2=a%20b&k3=a%2Bb&k4=%7e*", false),
        "k=a%20b&k2=a%20b&k3=a%2Bb&k4=~%2A"
    );
    // Sorted by encoded key: `%` (0x25) sorts before letters.
    assert_eq!(
        canonical_query("z=1&%C3%A9=2&A=3", false),
        "%C3%A9=2&A=3&z=1"
    );
    assert_eq!(
        canonical_query("a=1&X-Amz-Signature=ff&b=2", true),
        "a=1&b=2"
    );
    assert_eq!(
        canonical_query("a=1&X-Amz-Signature=ff", false),
        "X-Amz-Signature=ff&a=1"
    );
}

#[test]
fn canonical_uri_normalises_and_double_encodes() {
    assert_eq!(canonical_uri("", "ecs"), "/");
    assert_eq!(canonical_uri("/", "ecs"), "/");
    assert_eq!(canonical_uri("/a%20b", "ecs"), "/a%2520b");
    assert_eq!(canonical_uri("/a/./b/../c//d/", "ecs"), "/a/c/d/");
    assert_eq!(canonical_uri("/a/b/..", "ecs"), "/a/");
    assert_eq!(canonical_uri("/../a", "ecs"), "/a");
    assert_eq!(canonical_uri("/a:b,c", "ecs"), "/a%3Ab%2Cc");
    // S3 keeps the path as sent.
    assert_eq!(canonical_uri("/a%20b/./c", "s3"), "/a%20b/./c");
}

#[test]
fn header_values_are_trimmed_and_spaces_collapsed() {
    let mut out = Vec::new();
    canonical_header_value(b"  a   b \t c  ", &mut out);
    assert_eq!(out, b"a b \t c");
    out.clear();
    canonical_header_value(b"   ", &mut out);
    assert_eq!(out, b"");
}

#[test]
fn dates_round_trip() {
    for s in [
        "19700101T000000Z",
        "20000229T235959Z",
        "20150830T123600Z",
        "21000301T000000Z",
        "19691231T235959Z",
    ] {
        let t = parse_amz_date(s).unwrap();
        assert_eq!(format_amz_date(t), s);
    }
    assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
    assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
    assert_eq!(parse_amz_date("21000229T000000Z"), None);
    assert_eq!(
        parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
    for day in (-800_000..800_000).step_by(997) {
        let (y, m, d) = civil_from_days(day);
        assert_eq!(days_from_civil(y, m, d), day);
    }
    assert_eq!(system_time_to_epoch(at(T0)), T0 as i64);
    assert_eq!(epoch_to_system_time(T0 as i64), at(T0));
}

// ---------------------------------------------------------------------------------------------
// Property: whatever the real signer signs, we verify; changing the body breaks it
// ---------------------------------------------------------------------------------------------

fn path_segment() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[A-Za-z0-9_~-]{1,4}",
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%20".to_owned()),
            Just("%2F".to_owned()),
            Just("%E2%82%AC".to_owned()),
            Just(":".to_owned()),
            Just("@".to_owned()),
            Just("!$'()*+,;=".to_owned()),
        ],
        0..4,
    )
    .prop_map(|atoms| atoms.concat())
}

fn query_component() -> impl Strategy<Value = String> {
    // Raw (client-encoded) text: unreserved characters, escapes, `+` and a few sub-delims.
    prop::collection::vec(
        prop_oneof![
            "[A-Za-z0-9_.~-]{1,4}",
            Just("%20".to_owned()),
            Just("+".to_owned()),
            Just("%2B".to_owned()),
            Just("%2F".to_owned()),
            Just("%7e".to_owned()),
            Just("%C3%A9".to_owned()),
            Just("*".to_owned()),
            Just("!".to_owned()),
            Just(",".to_owned()),
            Just("/".to_owned()),
            Just(":".to_owned()),
        ],
        0..4,
    )
    .prop_map(|atoms| atoms.concat())
}

fn query_string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (query_component(), prop::option::of(query_component())),
        0..5,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k,
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verify_accepts_what_the_aws_signer_signs(
        segments in prop::collection::vec(path_segment(), 0..4),
        trailing_slash in any::<bool>(),
        query in query_string(),
        body in prop::collection::vec(any::<u8>(), 0..256),
        header in "[ -~]{0,20}",
        presigned in any::<bool>(),
        skew in -300i64..=300,
    ) {
        let mut path = format!("/{}", segments.join("/"));
        if trailing_slash && !path.ends_with('/') {
            path.push('/');
        }
        let uri = if query.is_empty() {
            format!("https://ecs.us-east-1.amazonaws.com{path}")
        } else {
            format!("https://ecs.us-east-1.amazonaws.com{path}?{query}")
        };
        let header = header.trim_matches(' ').to_owned();
        let mut spec = Spec::new("PUT", &uri);
        spec.body = Body::Bytes(&body);
        spec.headers = vec![("x-amz-meta-free", header.as_str())];
        if presigned {
            spec = spec.presigned(600);
        }
        let req = spec.sign();
        let now = at(T0.checked_add_signed(skew).unwrap());
        let checked = req.check(SECRET, now);
        prop_assert!(checked.is_ok(), "{uri}: {checked:?}");

        let mut tampered = req.clone();
        tampered.body.push(0);
        prop_assert_eq!(tampered.kind(SECRET, now), Some(AuthErrorKind::Mismatch));
    }
}

// ---------------------------------------------------------------------------------------------
// Requests captured from botocore 1.43 (the AWS CLI's and boto3's signer) at T0
// ---------------------------------------------------------------------------------------------

struct Captured {
    method: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    region: &'static str,
    service: &'static str,
}

const BOTOCORE: &[Captured] = &[
    // ecs.list_clusters(maxResults=10), endpoint http://127.0.0.1:4566.
    Captured {
        method: "POST",
        query: "",
        headers: &[
            (
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.ListClusters",
            ),
            ("content-type", "application/x-amz-json-1.1"),
            (
                "user-agent",
                "Botocore/1.43.11 ua/2.1 os/linux lang/python#3.11.7",
            ),
            ("x-amz-date", "20231114T221320Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-3/ecs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=f94644bc52570b57f0ad8e47983e502fe0a2f8205ee4f65cdb4eb4bcb6100d94",
            ),
            ("amz-sdk-request", "attempt=1"),
            ("content-length", "18"),
            ("host", "127.0.0.1:4566"),
        ],
        body: r#"{"maxResults": 10}"#,
        region: "eu-west-3",
        service: "ecs",
    },
    // ecs.tag_resource(...) with spaces, `+` and non-ASCII in the body.
    Captured {
        method: "POST",
        query: "",
        headers: &[
            (
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.TagResource",
            ),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-date", "20231114T221320Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-3/ecs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=f771e08af81ec28a9c72b0c5dd0fd5b338b4138baaec7e0c0d73bae9341cad77",
            ),
            ("content-length", "111"),
            ("host", "127.0.0.1:4566"),
        ],
        body: r#"{"resourceArn": "arn:aws:ecs:eu-west-3:1:cluster/a b+c", "tags": [{"key": "k  x", "value": "\u00e9 \u00fc/+"}]}"#,
        region: "eu-west-3",
        service: "ecs",
    },
    // elbv2.describe_load_balancers(Names=["b c", "a+b", "z~"]): query protocol, form body.
    Captured {
        method: "POST",
        query: "",
        headers: &[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("x-amz-date", "20231114T221320Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-west-2/elasticloadbalancing/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=1f6241c624748953e0473e8424bd2beaa939965db5c216b7895d56730260dcfe",
            ),
            ("content-length", "105"),
            ("host", "127.0.0.1:4566"),
        ],
        body: "Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=b+c&Names.member.2=a%2Bb&Names.member.3=z~",
        region: "us-west-2",
        service: "elasticloadbalancing",
    },
    // sts.generate_presigned_url("get_caller_identity", ExpiresIn=900): botocore signs it
    // with the operation's method, POST.
    Captured {
        method: "POST",
        query: "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20231114T221320Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=083b36a39121a2020b94bc399a2776f2aa968d260a284258ffb32c5a259b1afe",
        headers: &[("host", "sts.amazonaws.com")],
        body: "",
        region: "us-east-1",
        service: "sts",
    },
];

#[test]
fn botocore_signed_requests_verify() {
    for captured in BOTOCORE {
        let mut headers = HeaderMap::new();
        for (k, v) in captured.headers {
            headers.append(*k, HeaderValue::from_static(v));
        }
        let req = Received {
            method: captured.method.to_owned(),
            path: "/".to_owned(),
            query: captured.query.to_owned(),
            headers,
            body: captured.body.as_bytes().to_vec(),
        };
        let parsed = req
            .check(SECRET, at(T0 + 60))
            .unwrap_or_else(|e| panic!("{}: {e:?}", captured.service));
        assert_eq!(parsed.region(), captured.region);
        assert_eq!(parsed.service(), captured.service);
        assert_eq!(parsed.access_key_id(), AKID);

        let mut tampered = req.clone();
        tampered.body.extend_from_slice(b"&x=1");
        tampered.query.push_str("&x=1");
        assert_eq!(
            tampered.kind(SECRET, at(T0)),
            Some(AuthErrorKind::Mismatch),
            "{}",
            captured.service
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

#[test]
fn signer_reproduces_the_aws_docs_vector() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    headers.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
    let params = crate::SigningParams {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: SECRET,
        region: "us-east-1",
        service: "iam",
        time: at(1_440_938_160),
    };
    let request = crate::Unsigned {
        method: "GET",
        path: "/",
        query: "Action=ListUsers&Version=2010-05-08",
        body: b"",
    };
    crate::sign(&params, &request, &mut headers);
    assert_eq!(headers["x-amz-date"], "20150830T123600Z");
    assert_eq!(
        headers["authorization"],
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    );
}

#[test]
fn signed_json_post_verifies_and_resigning_replaces_the_signature() {
    let body = br#"{"cluster":"default"}"#;
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:9180"));
    headers.insert(
        "x-amz-target",
        HeaderValue::from_static("AmazonEC2ContainerServiceV20141113.ListTasks"),
    );
    let params = crate::SigningParams {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: SECRET,
        region: "eu-west-1",
        service: "ecs",
        time: at(1_700_000_000),
    };
    let request = crate::Unsigned {
        method: "POST",
        path: "/",
        query: "",
        body,
    };
    crate::sign(&params, &request, &mut headers);
    crate::sign(&params, &request, &mut headers);
    assert_eq!(headers.get_all("authorization").iter().count(), 1);
    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        payload: Payload::Bytes(body),
    };
    let parsed = parse(&parts).unwrap();
    assert_eq!(parsed.region(), "eu-west-1");
    assert_eq!(
        parsed.signed_headers(),
        ["host", "x-amz-date", "x-amz-target"]
    );
    verify(&parsed, &parts, SECRET, at(1_700_000_010)).unwrap();
    let tampered = RequestParts {
        payload: Payload::Bytes(br#"{"cluster":"other"}"#),
        ..parts
    };
    assert_eq!(
        verify(&parsed, &tampered, SECRET, at(1_700_000_010))
            .unwrap_err()
            .kind(),
        AuthErrorKind::Mismatch
    );
}
