//! Service errors and their translation into gRPC statuses with `google.rpc.BadRequest` details.

use tonic::{Code, Status};
use tonic_types::{BadRequest, StatusExt};

use crate::model::TrainError;
use crate::store::StoreError;

/// An error of the service layer, mapped to one gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A field is invalid (INVALID_ARGUMENT with a field violation).
    #[error("{field}: {message}")]
    Invalid {
        /// Field path, e.g. `examples[3].labels[0]`.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A field exceeds a limit (RESOURCE_EXHAUSTED with a field violation).
    #[error("{field}: {message}")]
    TooLarge {
        /// Field path.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// No such model version (NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
    /// The server is not in a state to do this (FAILED_PRECONDITION).
    #[error("{0}")]
    Precondition(String),
    /// Missing or wrong credentials (UNAUTHENTICATED).
    #[error("{0}")]
    Unauthenticated(String),
    /// Something failed on the server's side (INTERNAL); the message names it.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// An invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// A field over its limit.
    pub fn too_large(field: &str, message: impl Into<String>) -> Self {
        ServiceError::TooLarge {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::Invalid { field, message: m } => Status::with_error_details_vec(
                Code::InvalidArgument,
                message,
                vec![BadRequest::with_violation(field, m).into()],
            ),
            ServiceError::TooLarge { field, message: m } => Status::with_error_details_vec(
                Code::ResourceExhausted,
                message,
                vec![BadRequest::with_violation(field, m).into()],
            ),
            ServiceError::NotFound(_) => Status::not_found(message),
            ServiceError::Precondition(_) => Status::failed_precondition(message),
            ServiceError::Unauthenticated(_) => Status::unauthenticated(message),
            ServiceError::Internal(_) => Status::internal(message),
        }
    }
}

impl From<TrainError> for ServiceError {
    fn from(e: TrainError) -> Self {
        match &e {
            TrainError::InvalidExample { index, .. } => {
                ServiceError::invalid(&format!("examples[{index}]"), e.to_string())
            }
            TrainError::UnknownLabel(_) => ServiceError::invalid("remove_labels", e.to_string()),
            TrainError::NoLabelsLeft => ServiceError::invalid("remove_labels", e.to_string()),
            TrainError::NoExamples => ServiceError::invalid("examples", e.to_string()),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownVersion { version, .. } => ServiceError::NotFound(format!(
                "no model version {version:?}; ListModels shows the saved versions"
            )),
            StoreError::NoActiveModel { .. } => ServiceError::Precondition(
                "no active model: train one with Train in TRAIN_MODE_FRESH, or start the server with --model-dir pointing at a models directory".into(),
            ),
            other => ServiceError::Internal(format!("model store: {other}")),
        }
    }
}
