//! Errors of configuration loading and of the process runtime.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Exit code for a configuration that cannot be loaded (`EX_USAGE` from sysexits.h).
pub const EXIT_BAD_CONFIG: i32 = 64;
/// Exit code when a second SIGTERM/SIGINT cuts the graceful drain short (128 + SIGINT).
pub const EXIT_SECOND_SIGNAL: i32 = 130;
/// Exit code for any other runtime failure.
pub const EXIT_FAILURE: i32 = 1;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The `Default` impl of the config struct.
    Default,
    /// A TOML file.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// An explicit override (a `--set key=value` flag or a JSON value from the caller).
    Override(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("defaults"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(var) => write!(f, "env {var}"),
            Self::Override(arg) => write!(f, "override `{arg}`"),
        }
    }
}

/// A key that no field of the config struct takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// Dotted path of the key (`admin.listen_adr`).
    pub key: String,
    /// Every layer that set it.
    pub origins: Vec<Origin>,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.key)?;
        for (i, origin) in self.origins.iter().enumerate() {
            f.write_str(if i == 0 { " (from " } else { ", " })?;
            write!(f, "{origin}")?;
            if i + 1 == self.origins.len() {
                f.write_str(")")?;
            }
        }
        Ok(())
    }
}

fn join_keys(keys: &[UnknownKey]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a configuration could not be loaded or printed; maps to exit code [`EXIT_BAD_CONFIG`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The defaults do not serialise to a table (a bug in the config struct).
    #[error("cannot serialise default config: {0}")]
    Defaults(#[source] serde_json::Error),
    /// The config file cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("invalid toml in config file {}: {source}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's error, with line and column.
        source: toml::de::Error,
    },
    /// A `.json` config file is not valid JSON.
    #[error("invalid json in config file {}: {source}", path.display())]
    ParseJsonFile {
        /// The file.
        path: PathBuf,
        /// The parser's error, with line and column.
        source: serde_json::Error,
    },
    /// An environment variable with the config prefix does not name a key.
    #[error("environment variable {var} does not name a config key (empty segment between `__`)")]
    BadEnvName {
        /// The variable name.
        var: String,
    },
    /// A `key.path=value` override is malformed.
    #[error("invalid config override `{arg}`: {reason}")]
    BadOverride {
        /// The override as given.
        arg: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Keys that no config field takes (often a typo).
    #[error("unknown config key(s): {}", join_keys(.0))]
    UnknownKeys(Vec<UnknownKey>),
    /// A value of the wrong type or out of range.
    #[error("invalid value for config key `{key}` (from {origin}): {message}")]
    InvalidValue {
        /// Dotted path of the key; empty for the whole document.
        key: String,
        /// The layer that set it.
        origin: Origin,
        /// What serde said.
        message: String,
    },
    /// The effective config cannot be written as TOML.
    #[error("cannot print config as toml: {0}")]
    Dump(#[source] toml::ser::Error),
}

impl ConfigError {
    /// The process exit code for this error: always [`EXIT_BAD_CONFIG`].
    pub fn exit_code(&self) -> i32 {
        EXIT_BAD_CONFIG
    }
}

/// Failures of the process runtime (config, signals, admin server).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The admin listener could not bind.
    #[error("cannot bind admin server to {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The admin server stopped with an I/O error.
    #[error("admin server failed: {0}")]
    AdminServe(#[source] std::io::Error),
    /// The admin server task panicked or was cancelled.
    #[error("admin server task ended abnormally: {0}")]
    AdminTask(#[from] tokio::task::JoinError),
    /// SIGTERM/SIGINT handlers could not be registered.
    #[error("cannot install signal handlers: {0}")]
    Signal(#[source] std::io::Error),
}

impl RuntimeError {
    /// The process exit code: [`EXIT_BAD_CONFIG`] for config errors, [`EXIT_FAILURE`] otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(e) => e.exit_code(),
            _ => EXIT_FAILURE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let config = ConfigError::BadEnvName { var: "X".into() };
        assert_eq!(config.exit_code(), 64);
        assert_eq!(RuntimeError::from(config).exit_code(), EXIT_BAD_CONFIG);
        let io = std::io::Error::other("boom");
        assert_eq!(RuntimeError::AdminServe(io).exit_code(), EXIT_FAILURE);
    }

    #[test]
    fn unknown_key_message_names_key_and_origins() {
        let err = ConfigError::UnknownKeys(vec![
            UnknownKey {
                key: "admin.prot".into(),
                origins: vec![
                    Origin::File("/etc/x.toml".into()),
                    Origin::Env("LIVEFARM_ADMIN__PROT".into()),
                ],
            },
            UnknownKey {
                key: "zz".into(),
                origins: vec![],
            },
        ]);
        assert_eq!(
            err.to_string(),
            "unknown config key(s): `admin.prot` (from file /etc/x.toml, env LIVEFARM_ADMIN__PROT), `zz`"
        );
    }
}
