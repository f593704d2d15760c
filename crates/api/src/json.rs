//! Decoding JSON 1.1 request bodies into typed inputs, with errors that name the member.

use crate::ApiError;
use serde::de::DeserializeOwned;

/// Decodes a request body. An empty body reads as `{}` (the AWS CLI sends `{}` for no input,
/// some SDKs send nothing). Syntax errors are `SerializationException`; a member of the wrong
/// type or a missing required member is `InvalidParameterException` naming the member path.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::serialization(format!("request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::serialization(
            "request body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            ApiError::invalid_parameter(inner)
        } else {
            ApiError::invalid_parameter(format!("{path}: {inner}"))
        }
    })
}

/// Encodes a response body.
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value)
        .map_err(|e| ApiError::server(format!("response could not be encoded: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Input {
        cluster_name: String,
        items: Option<Vec<Item>>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        count: i32,
    }

    #[test]
    fn names_the_member_that_failed() {
        let e = decode::<Input>(br#"{"clusterName":"a","items":[{"count":"x"}]}"#).unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(
            e.message.starts_with("items[0].count: invalid type"),
            "{}",
            e.message
        );
        let e = decode::<Input>(br#"{}"#).unwrap_err();
        assert!(
            e.message.contains("missing field `clusterName`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn refuses_malformed_json() {
        for bad in [&b"{"[..], b"[]", b"nul"] {
            assert_eq!(
                decode::<Input>(bad).unwrap_err().code,
                "SerializationException"
            );
        }
    }
}
