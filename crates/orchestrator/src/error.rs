//! Errors of the orchestrator surface and their one mapping to gRPC statuses.

use livefarm_pm::PmError;
use livefarm_profiles::ProfileError;

/// Everything the orchestrator surface can refuse or fail with.
///
/// Some texts are go-livepeer's own (capitalised as Go writes them) because Livepeer
/// broadcasters match on them: `OrchestratorCapped` and `Invalid orchestrator request: …`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrchestratorError {
    /// Every session slot is taken (GL `ErrOrchCap`).
    #[error("OrchestratorCapped")]
    Capped,
    /// The session already has a segment transcoding and a full queue behind it.
    #[error("OrchestratorBusy")]
    Busy,
    /// The TLS certificate or key could not be made or read.
    #[error("tls: {0}")]
    Tls(String),
    /// GetOrchestrator's broadcaster signature did not verify (§3.1).
    #[error("Invalid orchestrator request: {0}")]
    InvalidRequest(String),
    /// The request carries no auth token.
    #[error("missing auth token")]
    MissingAuthToken,
    /// The token's HMAC does not match: forged, or issued by another process.
    #[error("invalid auth token")]
    InvalidAuthToken,
    /// The token is genuine but past its expiration.
    #[error("expired auth token")]
    ExpiredAuthToken,
    /// A payment-side failure (price, ticket params, sender funds).
    #[error(transparent)]
    Pm(#[from] PmError),
    /// A profile on the wire that cannot be read.
    #[error("{0}")]
    Profile(String),
    /// The configuration is inconsistent.
    #[error("invalid orchestrator config: {0}")]
    Config(String),
}

impl From<ProfileError> for OrchestratorError {
    fn from(error: ProfileError) -> Self {
        // ProfileError is not Clone; its text is all a peer ever sees.
        OrchestratorError::Profile(error.to_string())
    }
}

impl From<OrchestratorError> for tonic::Status {
    fn from(error: OrchestratorError) -> Self {
        let message = error.to_string();
        match error {
            OrchestratorError::Config(_)
            | OrchestratorError::Tls(_)
            | OrchestratorError::Pm(PmError::Randomness(_)) => tonic::Status::internal(message),
            // go-livepeer's handlers return plain Go errors, which grpc-go sends as code
            // Unknown; Livepeer broadcasters only read the text.
            _ => tonic::Status::unknown(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_errors_keep_go_livepeer_texts_and_code() {
        let capped = tonic::Status::from(OrchestratorError::Capped);
        assert_eq!(capped.code(), tonic::Code::Unknown);
        assert_eq!(capped.message(), "OrchestratorCapped");
        let bad = tonic::Status::from(OrchestratorError::InvalidRequest("x".into()));
        assert_eq!(bad.message(), "Invalid orchestrator request: x");
        let cfg = tonic::Status::from(OrchestratorError::Config("y".into()));
        assert_eq!(cfg.code(), tonic::Code::Internal);
    }
}
