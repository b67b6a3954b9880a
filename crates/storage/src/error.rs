//! Errors of the object store.

/// Everything that can go wrong reading or writing segment objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// No object exists under this key.
    #[error("object {key:?} not found")]
    NotFound {
        /// The key as asked for.
        key: String,
    },
    /// The storage URL names no known backend or has a bad parameter.
    #[error("invalid storage url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given, with any secret redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key (or an id used to build one) that could escape its folder or that some backend
    /// cannot store.
    #[error("invalid storage key {key:?}: {reason}")]
    InvalidKey {
        /// The key or id as given.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend failed in a way that may pass (connection refused or reset, timeout, 5xx
    /// after the client's own retries, local I/O error).
    #[error("storage backend error on {key:?}: {reason}")]
    Backend {
        /// The key (or prefix) the call was about.
        key: String,
        /// The backend's message.
        reason: String,
    },
    /// The backend refused the credentials or the operation; retrying will not help.
    #[error("storage access denied on {key:?}: {reason}")]
    PermissionDenied {
        /// The key (or prefix) the call was about.
        key: String,
        /// The backend's message.
        reason: String,
    },
    /// The backend does not support the operation.
    #[error("storage operation not supported on {key:?}: {reason}")]
    Unsupported {
        /// The key (or prefix) the call was about.
        key: String,
        /// The backend's message.
        reason: String,
    },
}

impl StorageError {
    /// Whether the same call may succeed if tried again later; callers back off and retry
    /// these, and give up on the others.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Backend { .. })
    }

    /// Maps an `object_store` error about `key` onto the closed set above.
    pub(crate) fn from_object_store(key: &str, error: object_store::Error) -> Self {
        use object_store::Error as E;
        let key = key.to_owned();
        match error {
            E::NotFound { .. } => StorageError::NotFound { key },
            E::InvalidPath { source } => StorageError::InvalidKey {
                key,
                reason: source.to_string(),
            },
            E::PermissionDenied { source, .. } | E::Unauthenticated { source, .. } => {
                StorageError::PermissionDenied {
                    key,
                    reason: source.to_string(),
                }
            }
            error @ (E::NotSupported { .. } | E::NotImplemented { .. }) => {
                StorageError::Unsupported {
                    key,
                    reason: error.to_string(),
                }
            }
            other => StorageError::Backend {
                key,
                reason: other.to_string(),
            },
        }
    }
}
