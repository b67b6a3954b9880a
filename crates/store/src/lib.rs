//! `livefarm-store`: the control plane's tenant data (tenants, API keys, streams, webhooks and
//! their delivery queue) in a SQL database through sqlx.
//!
//! One [`Store`] serves both backends with the same SQL text, picked by URL:
//! - `sqlite://PATH` (created when missing) or `sqlite::memory:`: the embedded default of
//!   `livefarm up`, a file in its data directory;
//! - `postgres://USER:PASSWORD@HOST:PORT/DB` (or `postgresql://`): a cluster's database,
//!   shared by every api replica.
//!
//! The schema is versioned: [`Store::migrate`] applies the migrations embedded in this build
//! (`migrations/`), once, under a lock, so replicas starting together do not race. The SQL is
//! portable on purpose (text ids, `BIGINT` times in Unix milliseconds and 0/1 flags, JSON as
//! text, `$n` placeholders): one implementation and one conformance suite
//! (`tests/conformance.rs`) cover both databases, so there is no per-backend trait to keep in
//! step. Redis stays the job bus and hot state; this is the source of truth for what tenants own.

mod error;
pub mod ids;
mod migrate;
mod page;
mod sessions;
mod stream_query;
mod streams;
mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
mod webhooks;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;

pub use error::StoreError;
pub use migrate::{Migration, MigrationReport, MIGRATIONS};
pub use page::{Page, MAX_PAGE};
pub use sessions::{
    session_events, IdleTransition, NewSession, RecordingStatus, SessionCounters, SessionFilter,
    SessionRecord,
};
pub use stream_query::{Bounds, StreamFilter};
pub use streams::{NewStream, StreamPatch, StreamRecord, Terminate, MAX_SPEC_BYTES};
pub use tenants::{ApiKey, Authenticated, CreatedApiKey, Tenant};
pub use webhooks::{
    Attempt, AttemptOutcome, ClaimedDelivery, DeliveryRecord, DeliveryState, EventRecord, NewEvent,
    NewLog, NewWebhook, RecordedAttempt, WebhookLogRecord, WebhookRecord, MAX_EVENT_PART_BYTES,
    MAX_SECRET_LEN, MAX_URL_LEN,
};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded, one process).
    Sqlite,
    /// PostgreSQL (shared by replicas).
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::InvalidUrl {
                url: redact_url(url),
                reason: "use sqlite://PATH, sqlite::memory: or postgres://...".to_owned(),
            }),
        }
    }
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections in the pool (SQLite in memory always uses one).
    pub max_connections: u32,
    /// How long a call waits for a free connection, and the first connection for the server.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The control-plane database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (see the crate docs). Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let url = match backend {
            // a missing database file is created, as a first `livefarm up` needs
            Backend::Sqlite if !in_memory && !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let connect: AnyConnectOptions =
            url.parse()
                .map_err(|e: sqlx::Error| StoreError::InvalidUrl {
                    url: redact_url(&url),
                    reason: e.to_string(),
                })?;
        let mut pool = AnyPoolOptions::new()
            .max_connections(if in_memory {
                1
            } else {
                options.max_connections
            })
            .acquire_timeout(options.acquire_timeout);
        if in_memory {
            // every connection to `:memory:` is a database of its own: keep the one forever
            pool = pool
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers go on during a write; writers queue for up to 5 s
                    // instead of failing at once; SQLite enforces REFERENCES only when asked
                    sqlx::raw_sql(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    )
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(connect).await?;
        Ok(Store { pool, backend })
    }

    /// Connects and applies every pending migration.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let store = Store::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// `url` with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Reads a 0/1 flag column.
pub(crate) fn flag(value: i64) -> bool {
    value != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_by_url() {
        assert_eq!(
            Backend::from_url("sqlite://a.db").expect("sqlite"),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("sqlite::memory:").expect("memory"),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").expect("pg"),
            Backend::Postgres
        );
        let error = Backend::from_url("mysql://u:secret@h/db").expect_err("mysql");
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://lf:hunter2@db:5432/livefarm"),
            "postgres://lf:***@db:5432/livefarm"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
