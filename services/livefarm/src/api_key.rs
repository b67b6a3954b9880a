//! API keys on the operator's side: the data directory's database and key file that
//! `livefarm up` keeps, the tenant commands act for by default, and where the CLI finds the
//! key it sends as `Authorization: Bearer`.

use std::io::Write;
use std::path::{Path, PathBuf};

use livefarm_profiles::Profile;
use livefarm_store::{Store, StoreError, Tenant};
use serde_json::{json, Value};

use crate::UsageError;

/// The data directory of `livefarm up` when none is given.
pub const DEFAULT_DATA_DIR: &str = "livefarm-data";
/// The file in the data directory holding the operator's copy of the first API key.
pub const API_KEY_FILE: &str = "api-key";
/// The environment variable the CLI reads a key from.
pub const API_KEY_ENV: &str = "LIVEFARM_API_KEY";
/// Name of the tenant made when the database has none.
pub const DEFAULT_TENANT: &str = "default";

/// The SQLite database `livefarm up` keeps in `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("livefarm.db").display())
}

/// The key file of `data_dir`.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join(API_KEY_FILE)
}

/// Writes `key` alone to `path`, readable by its owner only (mode 0600, also when the file
/// was already there).
pub fn write_key_file(path: &Path, key: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(key.as_bytes())?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(key.as_bytes())?;
        file.sync_all()
    }
}

/// The key in `path`, if the file is there and not blank.
pub fn read_key_file(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let key = text.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

/// The key the CLI sends: `--api-key`, else `LIVEFARM_API_KEY` (`env`), else the data
/// directory's key file; a usage error naming every place looked at when none has one.
pub fn resolve_api_key(
    flag: Option<&str>,
    env: Option<String>,
    data_dir: &Path,
) -> Result<String, UsageError> {
    if let Some(key) = flag.map(str::trim).filter(|k| !k.is_empty()) {
        return Ok(key.to_owned());
    }
    if let Some(key) = env.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        return Ok(key.to_owned());
    }
    let path = key_file(data_dir);
    read_key_file(&path).ok_or_else(|| {
        UsageError(format!(
            "no API key: looked at --api-key, ${API_KEY_ENV} and {} (written by `livefarm up`; \
             make one with `livefarm api-key create --name NAME`)",
            path.display()
        ))
    })
}

/// The tenant commands act for when none is named: the oldest, made if there is none.
pub async fn default_tenant(store: &Store) -> Result<Tenant, StoreError> {
    match store.tenants().await?.into_iter().next() {
        Some(tenant) => Ok(tenant),
        None => store.create_tenant(DEFAULT_TENANT).await,
    }
}

/// `profiles` as Studio's `FfmpegProfile` objects (`name`, `width`, `height`, `bitrate`,
/// `fps`, and `fpsDen` for a fractional rate), what `POST /api/stream` takes.
pub fn studio_profiles(profiles: &[Profile]) -> Vec<Value> {
    profiles
        .iter()
        .map(|p| {
            let mut object = json!({
                "name": p.name,
                "width": p.width,
                "height": p.height,
                "bitrate": p.bitrate,
                "fps": p.fps,
            });
            if p.fps != 0 && p.fps_den > 1 {
                object["fpsDen"] = json!(p.fps_den);
            }
            object
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_comes_from_the_flag_then_the_environment_then_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = resolve_api_key(None, None, dir.path()).expect_err("no key anywhere");
        let message = error.to_string();
        for place in ["--api-key", "LIVEFARM_API_KEY", "api-key"] {
            assert!(message.contains(place), "{message}");
        }
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );

        write_key_file(&key_file(dir.path()), "from-file").expect("write");
        let file = resolve_api_key(None, None, dir.path()).expect("file");
        assert_eq!(file, "from-file");
        let env = resolve_api_key(None, Some("from-env".to_owned()), dir.path()).expect("env");
        assert_eq!(env, "from-env");
        let flag = resolve_api_key(Some("from-flag"), Some("from-env".to_owned()), dir.path())
            .expect("flag");
        assert_eq!(flag, "from-flag");
        // blank values do not count
        let blank = resolve_api_key(Some(" "), Some(String::new()), dir.path()).expect("file");
        assert_eq!(blank, "from-file");
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_holds_the_key_alone_for_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = key_file(dir.path());
        std::fs::write(&path, "old and longer").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_key_file(&path, "lf_secret").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "lf_secret");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn profiles_in_studio_shape() {
        let mut p = Profile::new("720p", 1280, 720, 3_000_000);
        p.fps = 30000;
        p.fps_den = 1001;
        let out = studio_profiles(&[p, Profile::new("src", 640, 360, 1)]);
        assert_eq!(
            out,
            [
                json!({"name": "720p", "width": 1280, "height": 720, "bitrate": 3000000, "fps": 30000, "fpsDen": 1001}),
                json!({"name": "src", "width": 640, "height": 360, "bitrate": 1, "fps": 0}),
            ]
        );
    }
}
