//! Livefarm's object store: where segment and rendition bytes live while the job bus carries
//! only their keys. One [`Storage`] handle, chosen by URL in [`Storage::from_url`], over three
//! backends of the `object_store` crate:
//! - a local directory (`/abs/dir`, `rel/dir` or `file:///abs/dir`), the default for a single
//!   machine; writes go to a temporary file that is renamed into place, so a reader sees a
//!   whole object or none; directories left empty by deletes are removed;
//! - any S3-compatible store: `s3://bucket[/prefix]?endpoint=http://127.0.0.1:9000&region=us-east-1&allow_http=true`;
//!   credentials come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and the other
//!   `AWS_*` variables `object_store` reads), or from the `access_key_id`, `secret_access_key`
//!   and `session_token` query parameters; with an `endpoint` requests are path-style, as local
//!   S3 servers expect;
//! - `memory://`, a private in-process store for tests (each call makes a new, empty one).
//!
//! # Key layout
//! ```text
//! live/{stream}/source/{seq:010}.ts              source segment, as cut by the segmenter
//! live/{stream}/{rendition}/{seq:010}.{ext}      one rendition of that segment
//! recordings/{stream}/{session}/...              kept recordings of one publish session
//! ```
//! Build keys with the functions in [`keys`]; they zero-pad sequence numbers so keys sort in
//! sequence order. Every key is checked before it reaches a backend ([`keys::validate_key`]):
//! segments of ASCII letters, digits and `- _ . = + , @`, never empty, `.` or `..`, so a stream
//! id cannot escape its folder and every backend stores the same names.
//!
//! # Retention
//! [`Storage::apply_retention`] deletes `live/` objects older than a TTL (10 minutes by
//! default) and keeps `recordings/` unless told otherwise. Run it periodically from one place.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};
use tracing::warn;

mod error;
pub mod keys;
pub mod testing;

pub use error::StorageError;

/// How many deletes retention keeps in flight at once.
const RETENTION_CONCURRENCY: usize = 16;

/// A handle to one object store; cheap to clone (the clones share one client).
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    /// The URL it was opened with, secrets redacted.
    url: String,
}

impl fmt::Debug for Storage {
    // Hand-written so a backend's Debug output (clients, credentials) never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("url", &self.inner.url)
            .finish()
    }
}

/// One object as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key, relative to the store's root (an `s3://bucket/prefix` prefix is not part of it).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When the object was last written, by the backend's clock.
    pub last_modified: SystemTime,
}

/// What [`Storage::apply_retention`] deletes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `live/` objects last written longer ago than this are deleted.
    pub live_ttl: Duration,
    /// When true (the default) `recordings/` is never touched.
    pub keep_recordings: bool,
    /// When `keep_recordings` is false, recordings last written longer ago than this are
    /// deleted.
    pub recording_ttl: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            live_ttl: Duration::from_secs(10 * 60),
            keep_recordings: true,
            recording_ttl: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

/// What one retention pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// `live/` objects deleted.
    pub live_deleted: u64,
    /// Their total size in bytes.
    pub live_bytes_deleted: u64,
    /// `live/` objects still young enough to keep.
    pub live_kept: u64,
    /// `recordings/` objects deleted (0 while recordings are kept).
    pub recordings_deleted: u64,
    /// Their total size in bytes.
    pub recordings_bytes_deleted: u64,
    /// Deletes that failed; they are logged and retried on the next pass.
    pub failed: u64,
}

impl Storage {
    /// Opens the store a URL names (see the crate docs for the forms). Nothing is sent to a
    /// remote store here, so a store that is down makes the first call fail, not this one.
    pub async fn from_url(url: &str) -> Result<Storage, StorageError> {
        let trimmed = url.trim();
        // Errors quote the URL; keep any secret in it out of them (the s3 branch redacts
        // just the secret values).
        let url = &scrub(url);
        if trimmed.is_empty() {
            return Err(invalid_url(url, "empty url"));
        }
        if !trimmed.contains("://") {
            return Self::local(url, std::path::Path::new(trimmed)).await;
        }
        let parsed = url::Url::parse(trimmed).map_err(|e| invalid_url(url, e.to_string()))?;
        match parsed.scheme() {
            "file" => {
                if parsed.query().is_some() || parsed.fragment().is_some() {
                    return Err(invalid_url(url, "file urls take no parameters"));
                }
                let path = parsed
                    .to_file_path()
                    .map_err(|()| invalid_url(url, "not an absolute local path"))?;
                Self::local(url, &path).await
            }
            "memory" => {
                let bare = parsed.host_str().unwrap_or_default().is_empty()
                    && matches!(parsed.path(), "" | "/")
                    && parsed.query().is_none()
                    && parsed.fragment().is_none();
                if !bare {
                    return Err(invalid_url(
                        url,
                        "memory urls take no host, path or parameters",
                    ));
                }
                Ok(Self::new(Arc::new(InMemory::new()), "memory://".to_owned()))
            }
            "s3" => Self::s3(&parsed),
            other => Err(invalid_url(
                url,
                format!("unknown scheme {other:?} (expected file, s3 or memory)"),
            )),
        }
    }

    async fn local(url: &str, dir: &std::path::Path) -> Result<Storage, StorageError> {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| invalid_url(url, format!("cannot resolve relative path: {e}")))?
                .join(dir)
        };
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| invalid_url(url, format!("cannot create {}: {e}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| invalid_url(url, e.to_string()))?
            .with_automatic_cleanup(true);
        let shown = url::Url::from_directory_path(&dir)
            .map(|u| u.to_string())
            .unwrap_or_else(|()| dir.display().to_string());
        Ok(Self::new(Arc::new(store), shown))
    }

    fn s3(parsed: &url::Url) -> Result<Storage, StorageError> {
        let redacted = redact(parsed);
        let bad = |reason: String| invalid_url(&redacted, reason);
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad("missing bucket (s3://bucket[/prefix])".into()))?;
        let prefix = parsed.path().trim_matches('/');
        if !prefix.is_empty() {
            keys::validate_key(prefix).map_err(|e| bad(format!("bad prefix: {e}")))?;
        }
        if parsed.port().is_some() || !parsed.username().is_empty() {
            return Err(bad(
                "put the server in ?endpoint=, not in the bucket part".into()
            ));
        }

        // The defaults retry for minutes; a live segment is worthless long before that.
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
            ..RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry);
        let (mut key_id, mut secret) = (None, None);
        for (name, value) in parsed.query_pairs() {
            let value = value.into_owned();
            builder = match name.as_ref() {
                "endpoint" => {
                    url::Url::parse(&value)
                        .map_err(|e| bad(format!("bad endpoint {value:?}: {e}")))?;
                    // Local S3 servers only understand path-style requests.
                    builder
                        .with_endpoint(value)
                        .with_virtual_hosted_style_request(false)
                }
                "region" => builder.with_region(value),
                "allow_http" => builder.with_allow_http(parse_bool(&value).ok_or_else(|| {
                    bad(format!("allow_http must be true or false, not {value:?}"))
                })?),
                "access_key_id" => {
                    key_id = Some(value);
                    builder
                }
                "secret_access_key" => {
                    secret = Some(value);
                    builder
                }
                "session_token" => builder.with_token(value),
                other => return Err(bad(format!("unknown parameter {other:?}"))),
            };
        }
        match (key_id, secret) {
            (Some(id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret);
            }
            (None, None) => {}
            _ => return Err(bad("access_key_id and secret_access_key go together".into())),
        }
        let s3 = builder.build().map_err(|e| bad(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(Self::new(store, redacted))
    }

    fn new(store: Arc<dyn ObjectStore>, url: String) -> Self {
        Self {
            inner: Arc::new(Inner { store, url }),
        }
    }

    /// Writes `data` under `key`, replacing any object there. Readers see the old object or
    /// the new one, never a part.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        let path = object_path(key)?;
        self.inner
            .store
            .put(&path, data.into())
            .await
            .map(|_| ())
            .map_err(|e| StorageError::from_object_store(key, e))
    }

    /// Reads the whole object under `key`; [`StorageError::NotFound`] when there is none.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = object_path(key)?;
        let result = self
            .inner
            .store
            .get(&path)
            .await
            .map_err(|e| StorageError::from_object_store(key, e))?;
        result
            .bytes()
            .await
            .map_err(|e| StorageError::from_object_store(key, e))
    }

    /// Whether an object exists under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = object_path(key)?;
        match self.inner.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(StorageError::from_object_store(key, e)),
        }
    }

    /// Deletes the object under `key`; deleting a missing object succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = object_path(key)?;
        match self.inner.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::from_object_store(key, e)),
        }
    }

    /// Every object whose key starts with `prefix` (a plain string prefix: `live/a` matches
    /// `live/a/...` and `live/ab/...`, `live/a/` only the former), sorted by key. An empty
    /// prefix lists everything.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        keys::validate_prefix(prefix)?;
        // object_store matches whole segments, so list the enclosing folder and filter.
        let folder = prefix.rfind('/').map_or("", |end| &prefix[..end]);
        let folder = if folder.is_empty() {
            None
        } else {
            Some(Path::parse(folder).map_err(|e| StorageError::InvalidKey {
                key: prefix.to_owned(),
                reason: e.to_string(),
            })?)
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .inner
            .store
            .list(folder.as_ref())
            .try_collect()
            .await
            .map_err(|e| StorageError::from_object_store(prefix, e))?;
        let mut objects: Vec<ObjectInfo> = metas
            .into_iter()
            .filter(|meta| meta.location.as_ref().starts_with(prefix))
            .map(|meta| ObjectInfo {
                key: meta.location.to_string(),
                size: meta.size,
                last_modified: SystemTime::from(meta.last_modified),
            })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// The URL this store was opened with (a local path as a `file://` URL), with secrets
    /// replaced by `***`; fit for logs.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Deletes what `policy` says has expired as of `now`: `live/` objects older than
    /// `live_ttl`, and `recordings/` objects older than `recording_ttl` only when
    /// `keep_recordings` is false. Nothing outside those two folders is touched. A failed
    /// delete is logged and counted in [`RetentionReport::failed`]; a failed listing is an
    /// error.
    pub async fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now: SystemTime,
    ) -> Result<RetentionReport, StorageError> {
        let mut report = RetentionReport::default();
        let live = self.list(keys::LIVE_ROOT).await?;
        let (expired, kept) = split_expired(live, policy.live_ttl, now);
        report.live_kept = kept;
        let (deleted, bytes, failed) = self.delete_all(expired).await;
        report.live_deleted = deleted;
        report.live_bytes_deleted = bytes;
        report.failed += failed;

        if !policy.keep_recordings {
            let recordings = self.list(keys::RECORDINGS_ROOT).await?;
            let (expired, _) = split_expired(recordings, policy.recording_ttl, now);
            let (deleted, bytes, failed) = self.delete_all(expired).await;
            report.recordings_deleted = deleted;
            report.recordings_bytes_deleted = bytes;
            report.failed += failed;
        }
        Ok(report)
    }

    /// Deletes `objects`, a few at a time; returns (deleted, bytes, failed).
    async fn delete_all(&self, objects: Vec<ObjectInfo>) -> (u64, u64, u64) {
        let results: Vec<(u64, Result<(), StorageError>)> = futures_util::stream::iter(objects)
            .map(|object| async move { (object.size, self.delete(&object.key).await) })
            .buffer_unordered(RETENTION_CONCURRENCY)
            .collect()
            .await;
        let (mut deleted, mut bytes, mut failed) = (0, 0, 0);
        for (size, result) in results {
            match result {
                Ok(()) => {
                    deleted += 1;
                    bytes += size;
                }
                Err(error) => {
                    warn!(%error, "retention delete failed");
                    failed += 1;
                }
            }
        }
        (deleted, bytes, failed)
    }
}

/// Splits `objects` into those last written more than `ttl` before `now`, and a count of the
/// rest. Objects stamped after `now` (clock skew) count as new.
fn split_expired(
    objects: Vec<ObjectInfo>,
    ttl: Duration,
    now: SystemTime,
) -> (Vec<ObjectInfo>, u64) {
    let (expired, kept): (Vec<_>, Vec<_>) = objects.into_iter().partition(|object| {
        now.duration_since(object.last_modified)
            .is_ok_and(|age| age > ttl)
    });
    (expired, kept.len() as u64)
}

fn object_path(key: &str) -> Result<Path, StorageError> {
    keys::validate_key(key)?;
    Path::parse(key).map_err(|e| StorageError::InvalidKey {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn invalid_url(url: &str, reason: impl Into<String>) -> StorageError {
    StorageError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

/// The URL without its parameters when any of them is a secret.
fn scrub(url: &str) -> String {
    if ["secret_access_key", "session_token"]
        .iter()
        .any(|name| url.contains(name))
    {
        let base = url.split('?').next().unwrap_or_default();
        format!("{base}?<parameters redacted>")
    } else {
        url.to_owned()
    }
}

/// The URL with secret query parameters replaced by `***`.
fn redact(url: &url::Url) -> String {
    let secret = |name: &str| matches!(name, "secret_access_key" | "session_token");
    let mut shown = url.clone();
    if url.query_pairs().any(|(name, _)| secret(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret(&name) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn url_forms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b");
        let plain = Storage::from_url(nested.to_str().expect("utf-8 path"))
            .await
            .expect("plain path");
        assert!(nested.is_dir(), "the directory is created");
        assert!(plain.url().starts_with("file:///"), "{}", plain.url());

        let file_url = format!("file://{}", dir.path().join("c").display());
        let by_url = Storage::from_url(&file_url).await.expect("file url");
        by_url
            .put("k", Bytes::from_static(b"v"))
            .await
            .expect("put");
        assert_eq!(
            std::fs::read(dir.path().join("c/k")).expect("file on disk"),
            b"v"
        );

        let memory = Storage::from_url("memory://").await.expect("memory");
        assert_eq!(memory.url(), "memory://");
        // Each memory store is private.
        memory
            .put("k", Bytes::from_static(b"v"))
            .await
            .expect("put");
        let other = Storage::from_url("memory://").await.expect("memory");
        assert!(!other.exists("k").await.expect("exists"));
    }

    #[tokio::test]
    async fn bad_urls() {
        for bad in [
            "",
            "ftp://x/y",
            "memory://somewhere",
            "memory:€://",
            "memory:///path",
            "file://relative?x=1",
            "s3://",
            "s3://bucket?nope=1",
            "s3://bucket?allow_http=maybe",
            "s3://bucket?access_key_id=only",
            "s3://bucket:9000/p",
            "s3://bucket/a//b",
            "s3://bucket?endpoint=not%20a%20url",
        ] {
            match Storage::from_url(bad).await {
                Err(StorageError::InvalidUrl { .. }) => {}
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn s3_url_redacts_secrets() {
        let storage = Storage::from_url(
            "s3://bucket/pre/fix?endpoint=http://127.0.0.1:1&region=us-east-1&allow_http=true\
             &access_key_id=AKID&secret_access_key=hunter2&session_token=tok",
        )
        .await
        .expect("valid s3 url");
        assert!(!storage.url().contains("hunter2"), "{}", storage.url());
        assert!(!storage.url().contains("tok&") && !storage.url().ends_with("tok"));
        assert!(storage.url().contains("access_key_id=AKID"));
        assert!(!format!("{storage:?}").contains("hunter2"));

        for bad in [
            "s3://b?secret_access_key=hunter2&bogus=1",
            "s3://b:99999?secret_access_key=hunter2",
            "ftp://b?secret_access_key=hunter2",
        ] {
            let error = Storage::from_url(bad).await.expect_err(bad);
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
    }

    #[tokio::test]
    async fn unreachable_s3_is_retryable() {
        // Port 1 on loopback refuses connections.
        let storage = Storage::from_url(
            "s3://bucket?endpoint=http://127.0.0.1:1&allow_http=true&region=us-east-1\
             &access_key_id=a&secret_access_key=b",
        )
        .await
        .expect("valid s3 url");
        let error = storage.get("k").await.expect_err("nothing listens");
        assert!(error.is_retryable(), "{error:?}");
    }

    #[test]
    fn retention_ages() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let object = |secs| ObjectInfo {
            key: format!("live/s/source/{secs}.ts"),
            size: 1,
            last_modified: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        };
        let (expired, kept) = split_expired(
            vec![object(100), object(900), object(899), object(2_000)],
            Duration::from_secs(100),
            now,
        );
        let expired: Vec<_> = expired.into_iter().map(|o| o.key).collect();
        assert_eq!(
            expired,
            vec![
                "live/s/source/100.ts".to_owned(),
                "live/s/source/899.ts".to_owned()
            ]
        );
        assert_eq!(kept, 2);
    }
}
