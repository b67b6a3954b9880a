//! Tenants and their API keys. A key's secret is returned once, when it is made; the store
//! keeps only its SHA-256 and a short prefix to tell keys apart.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::conflict_on;
use crate::ids::{api_key_hash, api_key_secret, now_ms, uuid_v4};
use crate::{Store, StoreError};

/// Longest tenant or key name, in bytes.
pub const MAX_NAME_LEN: usize = 500;

/// A customer of the operator: owns keys and resources; sees nothing of other tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// The secret's first characters.
    pub prefix: String,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

/// A key just made, with the secret that is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The bearer secret (`Authorization: Bearer <key>`).
    #[serde(rename = "key")]
    pub secret: String,
}

/// Who a request's key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub tenant_id: String,
    pub key_id: String,
    pub key_name: String,
}

/// Characters of the secret kept to tell keys apart (`lf_` and 6 hex digits: 24 bits, too
/// few to help a guess).
const PREFIX_LEN: usize = 9;

/// Last-used times are written at most this often per key (ms), so authentication does not
/// turn every API read into a database write.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

pub(crate) fn check_name(field: &'static str, name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() || name.len() > MAX_NAME_LEN {
        return Err(StoreError::Invalid {
            field,
            reason: format!("must be 1 to {MAX_NAME_LEN} bytes and not blank"),
        });
    }
    Ok(())
}

fn api_key(row: &AnyRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("key_prefix")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Makes a tenant.
    pub async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        check_name("name", name)?;
        let tenant = Tenant {
            id: uuid_v4()?,
            name: name.to_owned(),
            created_at: now_ms(),
        };
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.created_at)
            .execute(self.pool())
            .await
            .map_err(conflict_on("tenant id"))?;
        Ok(tenant)
    }

    /// The tenant with this id.
    pub async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(Tenant {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Every tenant, oldest first.
    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY created_at, id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Tenant {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Makes an API key for `tenant_id`; the returned secret is not stored and cannot be
    /// shown again.
    pub async fn create_api_key(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> Result<CreatedApiKey, StoreError> {
        check_name("name", name)?;
        if self.tenant(tenant_id).await?.is_none() {
            return Err(StoreError::NotFound {
                what: "tenant",
                id: tenant_id.to_owned(),
            });
        }
        let secret = api_key_secret()?;
        let key = ApiKey {
            id: uuid_v4()?,
            tenant_id: tenant_id.to_owned(),
            name: name.to_owned(),
            prefix: secret[..PREFIX_LEN].to_owned(),
            created_at: now_ms(),
            last_used_at: None,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, key_prefix, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.id)
        .bind(&key.tenant_id)
        .bind(&key.name)
        .bind(api_key_hash(&secret))
        .bind(&key.prefix)
        .bind(key.created_at)
        .execute(self.pool())
        .await
        .map_err(conflict_on("api key"))?;
        Ok(CreatedApiKey { key, secret })
    }

    /// The tenant a bearer secret belongs to; `None` for an unknown or revoked key.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Authenticated>, StoreError> {
        // bounded before hashing: a megabyte header costs nothing more than a short one
        if secret.is_empty() || secret.len() > 256 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, tenant_id, name, last_used_at FROM api_keys \
             WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(api_key_hash(secret))
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let auth = Authenticated {
            key_id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            key_name: row.try_get("name")?,
        };
        let last_used: Option<i64> = row.try_get("last_used_at")?;
        let now = now_ms();
        if last_used.is_none_or(|at| now - at >= LAST_USED_GRANULARITY_MS) {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&auth.key_id)
                .execute(self.pool())
                .await?;
        }
        Ok(Some(auth))
    }

    /// The tenant's keys, oldest first (revoked ones included, marked).
    pub async fn api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, name, key_prefix, created_at, last_used_at, revoked_at \
             FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(api_key).collect()
    }

    /// Revokes one of the tenant's keys; false if it has no such key (or it was revoked).
    pub async fn revoke_api_key(&self, tenant_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(key_id)
        .bind(tenant_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
