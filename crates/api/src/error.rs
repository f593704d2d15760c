//! The error every AWS API answer carries on failure: an AWS error code, a message and an
//! HTTP status. For JSON 1.1 services it renders as `{"__type": CODE, "message": MESSAGE}`.

use berth_model::{ErrorKind, ValidationError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The AWS error code, e.g. `ClusterNotFoundException`.
    pub code: &'static str,
    pub message: String,
    pub status: u16,
    /// `ConflictException` lists the resources in conflict.
    pub resource_ids: Vec<String>,
}

macro_rules! client_errors {
    ($($fn:ident => $code:literal),* $(,)?) => {
        impl ApiError {
            $(
                #[doc = concat!("`", $code, "` (HTTP 400).")]
                pub fn $fn(message: impl Into<String>) -> Self {
                    Self::new($code, 400, message)
                }
            )*
        }
    };
}

/// Lets each service's module declare its own error codes the same way.
pub(crate) use client_errors;

client_errors! {
    access_denied => "AccessDeniedException",
    attribute_limit_exceeded => "AttributeLimitExceededException",
    client => "ClientException",
    cluster_contains_container_instances => "ClusterContainsContainerInstancesException",
    cluster_contains_services => "ClusterContainsServicesException",
    cluster_contains_tasks => "ClusterContainsTasksException",
    cluster_not_found => "ClusterNotFoundException",
    invalid_parameter => "InvalidParameterException",
    limit_exceeded => "LimitExceededException",
    resource_in_use => "ResourceInUseException",
    resource_not_found => "ResourceNotFoundException",
    service_not_active => "ServiceNotActiveException",
    service_not_found => "ServiceNotFoundException",
    target_not_found => "TargetNotFoundException",
    unsupported_feature => "UnsupportedFeatureException",
    unknown_operation => "UnknownOperationException",
    serialization => "SerializationException",
    missing_authentication_token => "MissingAuthenticationTokenException",
    incomplete_signature => "IncompleteSignatureException",
    invalid_signature => "InvalidSignatureException",
    unrecognized_client => "UnrecognizedClientException",
}

impl ApiError {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            status,
            resource_ids: Vec::new(),
        }
    }

    /// `ConflictException`: an idempotency token reused with different parameters.
    pub fn conflict(message: impl Into<String>, resource_ids: Vec<String>) -> Self {
        ApiError {
            resource_ids,
            ..Self::new("ConflictException", 400, message)
        }
    }

    /// `ServerException` (HTTP 500): a fault of the server, never of the request.
    pub fn server(message: impl Into<String>) -> Self {
        Self::new("ServerException", 500, message)
    }

    /// The body is larger than the server accepts.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            "RequestEntityTooLargeException",
            413,
            format!("request body exceeds the limit of {limit} bytes"),
        )
    }

    /// The JSON 1.1 body: `{"__type": ..., "message": ...}`.
    pub fn json_body(&self) -> Vec<u8> {
        let mut body = serde_json::json!({ "__type": self.code, "message": self.message });
        if !self.resource_ids.is_empty() {
            body["resourceIds"] = serde_json::json!(self.resource_ids);
        }
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        let message = if e.message.starts_with(&e.field) || e.field.is_empty() {
            e.message
        } else {
            format!("{}: {}", e.field, e.message)
        };
        match e.kind {
            ErrorKind::InvalidParameter => ApiError::invalid_parameter(message),
            ErrorKind::Client => ApiError::client(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_json_error_shape() {
        let e = ApiError::cluster_not_found("Cluster not found.");
        let v: serde_json::Value = serde_json::from_slice(&e.json_body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"__type": "ClusterNotFoundException", "message": "Cluster not found."})
        );
        assert_eq!(e.status, 400);
        assert_eq!(ApiError::server("boom").status, 500);
    }

    #[test]
    fn validation_errors_name_their_field() {
        let e: ApiError = ValidationError::invalid("desiredCount", "must be at least 0").into();
        assert_eq!(e.code, "InvalidParameterException");
        assert_eq!(e.message, "desiredCount: must be at least 0");
    }
}
