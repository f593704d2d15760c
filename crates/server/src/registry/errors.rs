//! The distribution spec's error answer: an HTTP status and
//! `{"errors": [{"code": "BLOB_UNKNOWN", "message": "...", "detail": ...}]}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_api::ApiError;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct OciError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<Value>,
    /// Extra headers, e.g. `Content-Range` on a 416.
    pub headers: Vec<(&'static str, String)>,
}

macro_rules! oci_errors {
    ($($fn:ident => $code:literal, $status:ident),* $(,)?) => {
        impl OciError {
            $(
                #[doc = concat!("`", $code, "`.")]
                pub fn $fn(message: impl Into<String>) -> Self {
                    Self::new(StatusCode::$status, $code, message)
                }
            )*
        }
    };
}

oci_errors! {
    blob_unknown => "BLOB_UNKNOWN", NOT_FOUND,
    blob_upload_invalid => "BLOB_UPLOAD_INVALID", BAD_REQUEST,
    blob_upload_unknown => "BLOB_UPLOAD_UNKNOWN", NOT_FOUND,
    digest_invalid => "DIGEST_INVALID", BAD_REQUEST,
    manifest_blob_unknown => "MANIFEST_BLOB_UNKNOWN", BAD_REQUEST,
    manifest_invalid => "MANIFEST_INVALID", BAD_REQUEST,
    manifest_unknown => "MANIFEST_UNKNOWN", NOT_FOUND,
    name_invalid => "NAME_INVALID", BAD_REQUEST,
    name_unknown => "NAME_UNKNOWN", NOT_FOUND,
    pagination_number_invalid => "PAGINATION_NUMBER_INVALID", BAD_REQUEST,
    size_invalid => "SIZE_INVALID", BAD_REQUEST,
    tag_invalid => "TAG_INVALID", BAD_REQUEST,
    unauthorized => "UNAUTHORIZED", UNAUTHORIZED,
    unsupported => "UNSUPPORTED", METHOD_NOT_ALLOWED,
    server => "UNKNOWN", INTERNAL_SERVER_ERROR,
}

impl OciError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        OciError {
            status,
            code,
            message: message.into(),
            detail: None,
            headers: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// This error, answered as 416: a range outside a blob or upload of `size` bytes.
    pub fn unsatisfiable(self, size: u64) -> Self {
        self.with_status(StatusCode::RANGE_NOT_SATISFIABLE)
            .with_header("content-range", format!("bytes */{size}"))
    }
}

impl From<ApiError> for OciError {
    /// A store failure under a registry call: the server's fault.
    fn from(e: ApiError) -> Self {
        OciError::server(e.message)
    }
}

impl From<super::blobs::BlobError> for OciError {
    fn from(e: super::blobs::BlobError) -> Self {
        use super::blobs::BlobError;
        match e {
            BlobError::DigestMismatch { .. } => OciError::digest_invalid(e.to_string()),
            BlobError::NotFound(_) => OciError::blob_unknown(e.to_string()),
            BlobError::BadName(_) => OciError::digest_invalid(e.to_string()),
            BlobError::Body(_) => OciError::blob_upload_invalid(e.to_string()),
            BlobError::Io { .. } => OciError::server(e.to_string()),
        }
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "registry request failed");
        } else {
            tracing::debug!(code = self.code, message = %self.message, "registry request refused");
        }
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(detail) = self.detail {
            error["detail"] = detail;
        }
        let body = json!({ "errors": [error] }).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"berth\",service=\"ecr\""),
            );
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        response
    }
}
