//! The closed set of error codes Livefarm's gRPC services answer with.

/// A service error, mapped to one `tonic::Status` code in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The named thing does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The service cannot do it in its current state (draining, for example).
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// A dependency (bus, object store) is down; retrying later may work.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        match error {
            ServiceError::InvalidArgument(_) => tonic::Status::invalid_argument(message),
            ServiceError::NotFound(_) => tonic::Status::not_found(message),
            ServiceError::FailedPrecondition(_) => tonic::Status::failed_precondition(message),
            ServiceError::Unavailable(_) => tonic::Status::unavailable(message),
            ServiceError::Internal(_) => tonic::Status::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_code() {
        let cases = [
            (
                ServiceError::InvalidArgument("x".into()),
                tonic::Code::InvalidArgument,
            ),
            (ServiceError::NotFound("x".into()), tonic::Code::NotFound),
            (
                ServiceError::FailedPrecondition("x".into()),
                tonic::Code::FailedPrecondition,
            ),
            (
                ServiceError::Unavailable("x".into()),
                tonic::Code::Unavailable,
            ),
            (ServiceError::Internal("x".into()), tonic::Code::Internal),
        ];
        for (error, code) in cases {
            let status = tonic::Status::from(error.clone());
            assert_eq!(status.code(), code, "{error}");
            assert_eq!(status.message(), error.to_string());
        }
    }
}
