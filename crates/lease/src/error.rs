//! Errors of the lease client.

/// What can go wrong while electing a leader on a Kubernetes Lease.
///
/// A lost race (409 Conflict or AlreadyExists) is not an error: `acquire` answers `None`,
/// `renew` and `release` answer `false`.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// No Kubernetes client configuration could be found (neither in cluster nor a kubeconfig).
    #[error("cannot load the kubernetes client config for lease {lease}: {source}")]
    Config {
        /// `namespace/name` of the lease, or just its name when the namespace is not known yet.
        lease: String,
        /// Why kube could not infer a config.
        #[source]
        source: kube::config::InferConfigError,
    },
    /// The client could not be built from its config (TLS setup, bad certificates).
    #[error("cannot build the kubernetes client for lease {lease}: {source}")]
    Client {
        /// `namespace/name` of the lease.
        lease: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
    /// The API server answered with an error status other than a lost race.
    #[error("cannot {op} lease {lease}: api server answered {code} {reason}: {message}")]
    Api {
        /// `namespace/name` of the lease.
        lease: String,
        /// What was being done: `get`, `create` or `replace`.
        op: &'static str,
        /// HTTP status code (403, 500, ...).
        code: u16,
        /// Kubernetes reason (`Forbidden`, `InternalError`, ...); may be empty.
        reason: String,
        /// The server's message.
        message: String,
    },
    /// The API server could not be reached or its answer could not be read.
    #[error("cannot {op} lease {lease}: {source}")]
    Request {
        /// `namespace/name` of the lease.
        lease: String,
        /// What was being done: `get`, `create` or `replace`.
        op: &'static str,
        /// kube's error (connection refused, timeout, bad JSON, ...).
        #[source]
        source: kube::Error,
    },
    /// `spec.leaseTransitions` reached `i32::MAX`: no higher fencing token can be handed out.
    #[error("lease {lease} has run out of fencing tokens (leaseTransitions is at its maximum)")]
    TokensExhausted {
        /// `namespace/name` of the lease.
        lease: String,
    },
}

impl LeaseError {
    /// The HTTP status the API server answered with, when it answered one.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            LeaseError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}
