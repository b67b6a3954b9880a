//! Errors of the orchestrator service, classified once for the exit code.

use livefarm_bus::BusError;
use livefarm_orchestrator::OrchestratorError;
use livefarm_storage::StorageError;

/// Why the orchestrator service could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorServiceError {
    /// The port: its settings, certificate, keys, the indexer it waits for.
    #[error(transparent)]
    Orchestrator(#[from] OrchestratorError),
    /// The job bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The object store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl livefarm_runtime::RunError for OrchestratorServiceError {
    /// A bad value, URL, key file or certificate, an orchestrator port that cannot be bound,
    /// an indexer that never answered.
    fn is_config(&self) -> bool {
        matches!(
            self,
            OrchestratorServiceError::Orchestrator(
                OrchestratorError::Config(_) | OrchestratorError::Tls(_)
            ) | OrchestratorServiceError::Bus(BusError::InvalidUrl { .. })
                | OrchestratorServiceError::Storage(StorageError::InvalidUrl { .. })
        )
    }
}
