//! The one error the model reports: a request member that is not acceptable.

/// Which ECS exception a validation failure maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `InvalidParameterException`: a member has a bad value.
    InvalidParameter,
    /// `ClientException`: the request as a whole cannot be honoured (ECS uses it for most task
    /// definition problems).
    Client,
}

/// A member that failed validation; `field` is the dotted member path, e.g.
/// `containerDefinitions[1].portMappings[0].containerPort`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub kind: ErrorKind,
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidParameter,
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn client(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Client,
            field: field.into(),
            message: message.into(),
        }
    }
}
