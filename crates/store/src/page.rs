//! Keyset pages of newest-first lists: every list the store serves (streams, sessions,
//! webhooks, webhook logs) orders by `(created_at DESC, id DESC)` and continues after the last
//! row of the previous page, so a page costs the same however deep it is and rows added
//! meanwhile neither repeat nor vanish.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool};

use crate::StoreError;

/// Most items on one page.
pub const MAX_PAGE: u32 = 1000;

/// One page of a list: newest first, continued with the cursor of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// 1 to [`MAX_PAGE`] items.
    pub limit: u32,
    /// Where the previous page ended (opaque; from the previous call).
    pub cursor: Option<String>,
}

/// The SQL that keeps rows after a cursor: `$at` and `$id` are bound to [`Keyset::at`] and
/// [`Keyset::id`] (both NULL on the first page, which keeps every row).
macro_rules! after_cursor {
    ($at:literal, $id:literal) => {
        concat!(
            "AND ($",
            $at,
            " IS NULL OR created_at < $",
            $at,
            " OR (created_at = $",
            $at,
            " AND id < $",
            $id,
            ")) ",
        )
    };
}
pub(crate) use after_cursor;

/// A page request made ready for SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keyset {
    /// Items the caller gets.
    pub limit: u32,
    /// Rows to fetch: one more than `limit` tells whether another page follows.
    pub fetch: i64,
    /// `created_at` of the row the previous page ended with.
    pub at: Option<i64>,
    /// `id` of that row.
    pub id: Option<String>,
}

impl Keyset {
    pub fn of(page: &Page) -> Result<Keyset, StoreError> {
        let limit = page.limit.clamp(1, MAX_PAGE);
        let (at, id) = match &page.cursor {
            Some(cursor) => {
                let (at, id) = decode_cursor(cursor)?;
                (Some(at), Some(id.to_owned()))
            }
            None => (None, None),
        };
        Ok(Keyset {
            limit,
            fetch: i64::from(limit) + 1,
            at,
            id,
        })
    }

    /// Runs `query` (its SQL ending in [`after_cursor!`] and `LIMIT`, the three placeholders
    /// last, unbound) for this page: the rows mapped by `map`, and the next page's cursor.
    pub async fn fetch<'q, T>(
        &self,
        query: Query<'q, Any, AnyArguments>,
        pool: &AnyPool,
        map: fn(&AnyRow) -> Result<T, StoreError>,
        key: impl Fn(&T) -> (i64, &str),
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        let rows = query
            .bind(self.at)
            .bind(self.id.clone())
            .bind(self.fetch)
            .fetch_all(pool)
            .await?;
        let items = rows.iter().map(map).collect::<Result<Vec<_>, _>>()?;
        Ok(self.split(items, key))
    }

    /// The page of `rows` (as fetched, `fetch` at most) and the cursor of the next page
    /// (`None` on the last one); `key` gives a row's `(created_at, id)`.
    pub fn split<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> (i64, &str),
    ) -> (Vec<T>, Option<String>) {
        if rows.len() > self.limit as usize {
            rows.truncate(self.limit as usize);
            let next = rows.last().map(|row| {
                let (at, id) = key(row);
                cursor_of(at, id)
            });
            (rows, next)
        } else {
            (rows, None)
        }
    }
}

/// The opaque cursor after the row `(created_at, id)` of a newest-first list.
pub(crate) fn cursor_of(created_at: i64, id: &str) -> String {
    format!("{created_at}.{id}")
}

/// `(created_at, id)` of a cursor from [`cursor_of`].
pub(crate) fn decode_cursor(cursor: &str) -> Result<(i64, &str), StoreError> {
    cursor
        .split_once('.')
        .and_then(|(at, id)| Some((at.parse().ok()?, id)))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| StoreError::Invalid {
            field: "cursor",
            reason: "not a cursor this server issued".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let cursor = cursor_of(1_700_000_000_000, "abc-123");
        assert_eq!(
            decode_cursor(&cursor).expect("ours"),
            (1_700_000_000_000, "abc-123")
        );
        for junk in ["", "abc", "12", "12.", "x.abc", ".abc"] {
            assert!(decode_cursor(junk).is_err(), "{junk:?} accepted");
        }
    }

    #[test]
    fn a_page_is_cut_at_its_limit_with_the_cursor_of_its_last_row() {
        let keyset = Keyset::of(&Page {
            limit: 2,
            cursor: None,
        })
        .expect("no cursor");
        assert_eq!((keyset.limit, keyset.fetch, keyset.at), (2, 3, None));
        let rows = vec![(30, "c"), (20, "b"), (10, "a")];
        let (page, next) = keyset.split(rows, |row| (row.0, row.1));
        assert_eq!(page, vec![(30, "c"), (20, "b")]);
        assert_eq!(next.as_deref(), Some("20.b"));
        let (page, next) = keyset.split(vec![(10, "a")], |row| (row.0, row.1));
        assert_eq!((page.len(), next), (1, None));
    }

    #[test]
    fn limits_are_clamped_and_cursors_decoded() {
        let keyset = Keyset::of(&Page {
            limit: 0,
            cursor: Some("20.b".to_owned()),
        })
        .expect("ours");
        assert_eq!(keyset.limit, 1);
        assert_eq!((keyset.at, keyset.id.as_deref()), (Some(20), Some("b")));
        let big = Keyset::of(&Page {
            limit: u32::MAX,
            cursor: None,
        })
        .expect("no cursor");
        assert_eq!(big.limit, MAX_PAGE);
        assert!(Keyset::of(&Page {
            limit: 5,
            cursor: Some("junk".to_owned()),
        })
        .is_err());
    }
}
