//! Filtered stream lists (the api's `filters` query, Studio §1.6) and the tenant-free lookups
//! playback and the results consumer make by stream id.
//!
//! Every filter is one static statement: each condition reads `($n IS NULL OR ...)`, so an
//! absent filter binds NULL and drops out, and user values are only ever bound, never spliced.

use sqlx::Row;

use crate::page::{after_cursor, Keyset};
use crate::streams::{select_streams, stream};
use crate::{flag, Page, Store, StoreError, StreamRecord};

/// Bounds on a numeric column; every bound set must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bounds {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

/// Which of a tenant's streams a list returns; every field set must match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamFilter {
    /// Exactly this id.
    pub id: Option<String>,
    /// Exactly this playback id.
    pub playback_id: Option<String>,
    /// Names containing this text, case-insensitively (Studio's full-text `name`).
    pub name_contains: Option<String>,
    pub is_active: Option<bool>,
    pub record: Option<bool>,
    pub suspended: Option<bool>,
    pub created_at: Bounds,
    pub last_seen: Bounds,
}

/// The `WHERE` shared by the filtered list and count: `$1` tenant, `$2`..`$15` the filter.
macro_rules! filtered {
    ($($rest:expr),*) => {
        concat!(
            "WHERE tenant_id = $1 AND deleted_at IS NULL ",
            "AND ($2 IS NULL OR id = $2) ",
            "AND ($3 IS NULL OR playback_id = $3) ",
            "AND ($4 IS NULL OR LOWER(name) LIKE $4 ESCAPE '\\') ",
            "AND ($5 IS NULL OR is_active = $5) ",
            "AND ($6 IS NULL OR record = $6) ",
            "AND ($7 IS NULL OR suspended = $7) ",
            "AND ($8 IS NULL OR created_at > $8) ",
            "AND ($9 IS NULL OR created_at >= $9) ",
            "AND ($10 IS NULL OR created_at < $10) ",
            "AND ($11 IS NULL OR created_at <= $11) ",
            "AND ($12 IS NULL OR last_seen > $12) ",
            "AND ($13 IS NULL OR last_seen >= $13) ",
            "AND ($14 IS NULL OR last_seen < $14) ",
            "AND ($15 IS NULL OR last_seen <= $15) ",
            $($rest),*
        )
    };
}

/// `%text%` for `LIKE ... ESCAPE '\'`, lowercased, with the pattern characters in `text`
/// taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Binds the tenant and the filter as `$1`..`$15`.
fn bind_filter<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    tenant_id: &str,
    filter: &StreamFilter,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let flag = |value: Option<bool>| value.map(i64::from);
    query
        .bind(tenant_id.to_owned())
        .bind(filter.id.clone())
        .bind(filter.playback_id.clone())
        .bind(filter.name_contains.as_deref().map(contains_pattern))
        .bind(flag(filter.is_active))
        .bind(flag(filter.record))
        .bind(flag(filter.suspended))
        .bind(filter.created_at.gt)
        .bind(filter.created_at.gte)
        .bind(filter.created_at.lt)
        .bind(filter.created_at.lte)
        .bind(filter.last_seen.gt)
        .bind(filter.last_seen.gte)
        .bind(filter.last_seen.lt)
        .bind(filter.last_seen.lte)
}

impl Store {
    /// One page of the tenant's streams that match `filter`, newest first, and the cursor of
    /// the next page (`None` on the last one).
    pub async fn list_streams_filtered(
        &self,
        tenant_id: &str,
        filter: &StreamFilter,
        page: &Page,
    ) -> Result<(Vec<StreamRecord>, Option<String>), StoreError> {
        let keyset = Keyset::of(page)?;
        let sql = select_streams!(filtered!(
            after_cursor!(16, 17),
            "ORDER BY created_at DESC, id DESC LIMIT $18"
        ));
        let query = bind_filter(sqlx::query(sql), tenant_id, filter);
        keyset
            .fetch(query, self.pool(), stream, |row| (row.created_at, &row.id))
            .await
    }

    /// How many of the tenant's streams match `filter`.
    pub async fn count_streams_filtered(
        &self,
        tenant_id: &str,
        filter: &StreamFilter,
    ) -> Result<i64, StoreError> {
        let sql = concat!("SELECT COUNT(*) AS n FROM streams ", filtered!());
        let row = bind_filter(sqlx::query(sql), tenant_id, filter)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// The stream with this id, whoever owns it (not deleted): for the api's own bookkeeping
    /// (playlists, lifecycle), never for answering a tenant.
    pub async fn stream_by_id(&self, id: &str) -> Result<Option<StreamRecord>, StoreError> {
        let sql = select_streams!("WHERE id = $1 AND deleted_at IS NULL");
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(stream).transpose()
    }

    /// Whether playback may serve the stream with this id: `None` when the store has never had
    /// it (published without a registered stream), `Some(false)` when it is suspended or
    /// deleted.
    pub async fn stream_playable(&self, id: &str) -> Result<Option<bool>, StoreError> {
        let row = sqlx::query("SELECT suspended, deleted_at FROM streams WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            let suspended = flag(row.try_get("suspended")?);
            let deleted: Option<i64> = row.try_get("deleted_at")?;
            Ok(!suspended && deleted.is_none())
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_text_literally() {
        assert_eq!(contains_pattern("Cam"), "%cam%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(contains_pattern("' OR 1=1 --"), "%' or 1=1 --%");
    }
}
