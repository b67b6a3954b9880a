//! Errors of the control-plane store.

/// Everything a store call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no supported backend or is malformed.
    #[error("invalid database url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given, with any password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A unique field (stream key, playback id, key hash) is already taken.
    #[error("{field} is already taken")]
    Conflict {
        /// Which field.
        field: &'static str,
    },
    /// The referenced tenant (or other parent row) does not exist.
    #[error("{what} {id:?} not found")]
    NotFound {
        /// What was looked up.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A value that cannot be stored as given.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A stored row that cannot be read back.
    #[error("stored {what} {id:?} is corrupt: {reason}")]
    Corrupt {
        /// What kind of row.
        what: &'static str,
        /// Its id.
        id: String,
        /// Why it cannot be decoded.
        reason: String,
    },
    /// The schema in the database does not match this build's migrations.
    #[error("schema migration: {0}")]
    Migration(String),
    /// The database failed or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// No randomness for ids and secrets.
    #[error("cannot generate random id: {0}")]
    Randomness(String),
}

impl StoreError {
    /// Whether trying again later may succeed (the database unreachable, a pool timeout).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            )
        )
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`] on `field`.
pub(crate) fn conflict_on(field: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { field },
        _ => StoreError::Database(error),
    }
}
