//! Versioned schema migrations, embedded in the build and applied once, in order, under a
//! lock: a PostgreSQL advisory lock around the whole run (replicas starting together wait for
//! each other), and one `BEGIN IMMEDIATE` transaction per migration on SQLite. Each applied
//! migration is recorded with a SHA-256 of its text; a recorded migration whose text changed
//! is an error (edit the schema with a new migration, never by changing an applied one).

use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::{Any, Row};

use crate::ids::now_ms;
use crate::{Backend, Store, StoreError};

/// One migration: its version, a name, and portable SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Increasing from 1; applied in this order.
    pub version: i64,
    /// What it does, for people.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// Every migration this build knows, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tenants, api keys, streams",
        sql: include_str!("../migrations/0001_tenants_keys_streams.sql"),
    },
    Migration {
        version: 2,
        name: "sessions and recordings",
        sql: include_str!("../migrations/0002_sessions.sql"),
    },
    Migration {
        version: 3,
        name: "webhooks, events, deliveries, logs",
        sql: include_str!("../migrations/0003_webhooks.sql"),
    },
    Migration {
        version: 4,
        name: "stream usage counters",
        sql: include_str!("../migrations/0004_stream_counters.sql"),
    },
];

/// What [`Store::migrate`] found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationReport {
    /// Versions applied by this call.
    pub applied: Vec<i64>,
    /// The schema version afterwards.
    pub version: i64,
    /// Versions in the database that this build does not know (a newer build migrated it):
    /// this build may still run against it, since migrations only add.
    pub unknown: Vec<i64>,
}

/// Arbitrary constant naming Livefarm's migration lock among the database's advisory locks.
const PG_LOCK_ID: i64 = 0x4c46_4d49_4752;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS livefarm_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// Applies the migrations this database lacks; safe to call from several processes at once.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        self.migrate_with(MIGRATIONS).await
    }

    /// [`Store::migrate`] with a given list (tests exercise changed and unknown migrations).
    pub async fn migrate_with(
        &self,
        migrations: &[Migration],
    ) -> Result<MigrationReport, StoreError> {
        let mut conn = self.pool().acquire().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(PG_LOCK_ID)
                .execute(&mut *conn)
                .await?;
        }
        let result = self.migrate_locked(&mut conn, migrations).await;
        if self.backend() == Backend::Postgres {
            // the lock is the session's: a dropped connection releases it too
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PG_LOCK_ID)
                .execute(&mut *conn)
                .await;
        }
        result
    }

    async fn migrate_locked(
        &self,
        conn: &mut PoolConnection<Any>,
        migrations: &[Migration],
    ) -> Result<MigrationReport, StoreError> {
        sqlx::raw_sql(CREATE_TABLE).execute(&mut **conn).await?;
        let mut report = MigrationReport::default();
        for migration in migrations {
            let begin = match self.backend() {
                // take the write lock up front, so two processes cannot both decide to apply
                Backend::Sqlite => "BEGIN IMMEDIATE",
                Backend::Postgres => "BEGIN",
            };
            sqlx::raw_sql(begin).execute(&mut **conn).await?;
            let outcome = apply_one(conn, migration).await;
            let end = if outcome.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            let ended = sqlx::raw_sql(end).execute(&mut **conn).await;
            if outcome? {
                ended?;
                tracing::info!(
                    version = migration.version,
                    name = migration.name,
                    "schema migration applied"
                );
                report.applied.push(migration.version);
            } else {
                ended?;
            }
        }
        let known: Vec<i64> = migrations.iter().map(|m| m.version).collect();
        let rows = sqlx::query("SELECT version FROM livefarm_migrations ORDER BY version")
            .fetch_all(&mut **conn)
            .await?;
        for row in rows {
            let version: i64 = row.try_get("version")?;
            report.version = report.version.max(version);
            if !known.contains(&version) {
                report.unknown.push(version);
            }
        }
        if !report.unknown.is_empty() {
            tracing::warn!(
                unknown = ?report.unknown,
                "the database has schema migrations this build does not know (a newer livefarm applied them)"
            );
        }
        Ok(report)
    }
}

/// Inside a transaction: applies `migration` unless recorded; true if it applied it.
async fn apply_one(
    conn: &mut PoolConnection<Any>,
    migration: &Migration,
) -> Result<bool, StoreError> {
    let sum = checksum(migration.sql);
    let recorded = sqlx::query("SELECT checksum FROM livefarm_migrations WHERE version = $1")
        .bind(migration.version)
        .fetch_optional(&mut **conn)
        .await?;
    if let Some(row) = recorded {
        let stored: String = row.try_get("checksum")?;
        if stored != sum {
            return Err(StoreError::Migration(format!(
                "migration {} ({}) differs from the one applied to this database; \
                 change the schema with a new migration instead",
                migration.version, migration.name
            )));
        }
        return Ok(false);
    }
    sqlx::raw_sql(migration.sql)
        .execute(&mut **conn)
        .await
        .map_err(|e| {
            StoreError::Migration(format!(
                "migration {} ({}) failed: {e}",
                migration.version, migration.name
            ))
        })?;
    sqlx::query(
        "INSERT INTO livefarm_migrations (version, name, checksum, applied_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(migration.version)
    .bind(migration.name)
    .bind(sum)
    .bind(now_ms())
    .execute(&mut **conn)
    .await?;
    Ok(true)
}
