//! Layered configuration: defaults, then a TOML (or `.json`) file, then `LIVEFARM_*` environment variables,
//! then explicit overrides (CLI flags), each layer deep-merged over the previous one.
//!
//! Environment variables map to keys by stripping the prefix, splitting on `__` and lowercasing:
//! `LIVEFARM_ADMIN__LISTEN_ADDR` sets `admin.listen_addr`. Values from the environment and from
//! `key.path=value` overrides are read as TOML scalars (`8080`, `true`, `1.5`, `"quoted"`) or
//! JSON arrays/objects when they look like one, and as plain strings otherwise; a guess that
//! does not fit the target field (`"12345"` for a string key) falls back to the raw string.
//!
//! Keys that no field takes are an error naming the key and where it came from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ConfigError, Origin, UnknownKey};

/// Prefix of environment variables that set config keys.
pub const DEFAULT_ENV_PREFIX: &str = "LIVEFARM_";
/// Conventional variable for the config file path; skipped when scanning the environment.
pub const CONFIG_PATH_ENV: &str = "LIVEFARM_CONFIG";

/// Where [`load`] reads each layer from.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// TOML file (JSON when its name ends in `.json`); it must exist when given.
    pub file: Option<PathBuf>,
    /// Environment prefix, `LIVEFARM_` by default.
    pub env_prefix: String,
    /// The environment to read; `None` reads the process environment.
    pub env_vars: Option<Vec<(String, String)>>,
    /// Variables with the prefix that are not config keys (the config path, for instance).
    pub env_ignore: Vec<String>,
    /// `key.path=value` overrides, applied in order after the environment.
    pub overrides: Vec<String>,
    /// A JSON object merged after the environment and before `overrides`.
    pub override_value: Option<Value>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            file: None,
            env_prefix: DEFAULT_ENV_PREFIX.to_owned(),
            env_vars: None,
            env_ignore: vec![CONFIG_PATH_ENV.to_owned()],
            overrides: Vec::new(),
            override_value: None,
        }
    }
}

impl LoadOptions {
    /// Defaults: no file, process environment with the `LIVEFARM_` prefix, no overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads this TOML file after the defaults.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Uses another environment prefix (tests use a unique one each).
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = prefix.into();
        self
    }

    /// Reads these variables instead of the process environment.
    pub fn env_vars<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env_vars = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Skips this variable when scanning the environment.
    pub fn ignore_env(mut self, var: impl Into<String>) -> Self {
        self.env_ignore.push(var.into());
        self
    }

    /// Adds one `key.path=value` override.
    pub fn set(mut self, assignment: impl Into<String>) -> Self {
        self.overrides.push(assignment.into());
        self
    }

    /// Adds `key.path=value` overrides, as collected from repeated CLI flags.
    pub fn overrides<I, S>(mut self, assignments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.overrides
            .extend(assignments.into_iter().map(Into::into));
        self
    }

    /// Merges this JSON object over the environment layer.
    pub fn override_value(mut self, value: Value) -> Self {
        self.override_value = Some(value);
        self
    }
}

/// Builds the effective config of type `T` from its defaults and the layers in `opts`.
pub fn load<T>(opts: &LoadOptions) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let defaults = serde_json::to_value(T::default()).map_err(ConfigError::Defaults)?;
    let mut layers = Layers::new(defaults);

    if let Some(path) = &opts.file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.clone(),
            source,
        })?;
        // JSON is for generated files (a Helm chart's `toJson`): templating engines write
        // integers as floats in TOML (`8e+09`), but as plain integers in JSON.
        let is_json = path.extension().is_some_and(|ext| ext == "json");
        let value: Value = if is_json {
            serde_json::from_str(&text).map_err(|source| ConfigError::ParseJsonFile {
                path: path.clone(),
                source,
            })?
        } else {
            toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
                path: path.clone(),
                source,
            })?
        };
        layers.merge(value, &Origin::File(path.clone()));
    }

    let mut env: Vec<(String, String)> = match &opts.env_vars {
        Some(vars) => vars.clone(),
        // a variable that is not unicode cannot be a config value we understand
        None => std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    };
    // stable order so `A` and `A__B` resolve the same way on every run
    env.sort();
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(&opts.env_prefix) else {
            continue;
        };
        if opts.env_ignore.contains(&var) || is_tooling_var(rest) {
            continue;
        }
        let segments: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        if segments.iter().any(String::is_empty) {
            return Err(ConfigError::BadEnvName { var });
        }
        layers.set_guessed(&segments, &raw, Origin::Env(var.clone()));
    }

    if let Some(value) = &opts.override_value {
        layers.merge(
            value.clone(),
            &Origin::Override("programmatic overrides".into()),
        );
    }
    for arg in &opts.overrides {
        let (key, raw) = parse_assignment(arg)?;
        layers.set_guessed(&key, raw, Origin::Override(arg.clone()));
    }

    layers.deserialize()
}

/// The config as TOML, for `--dump-config`; `None` fields are left out.
pub fn dump_config<T: Serialize>(config: &T) -> Result<String, ConfigError> {
    toml::to_string_pretty(config).map_err(ConfigError::Dump)
}

fn parse_assignment(arg: &str) -> Result<(Vec<String>, &str), ConfigError> {
    let bad = |reason| ConfigError::BadOverride {
        arg: arg.to_owned(),
        reason,
    };
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected key.path=value"))?;
    let segments: Vec<String> = key.trim().split('.').map(str::to_owned).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(bad("empty key segment"));
    }
    Ok((segments, value))
}

/// Reads a text value as a TOML scalar or JSON array/object when it parses as one.
/// The flag says whether the result is a guess that may be retried as a plain string.
fn guess_value(raw: &str) -> (Value, bool) {
    let text = raw.trim();
    if text.starts_with('[') || text.starts_with('{') {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            return (value, true);
        }
    }
    // a newline would let the text add keys of its own to the probe document
    if !text.is_empty() && !text.contains(['\n', '\r']) {
        if let Ok(mut table) = toml::from_str::<toml::Table>(&format!("v = {text}")) {
            match table.remove("v") {
                Some(toml::Value::String(s)) => return (Value::String(s), false),
                // dates stay text: their serde form is not a plain JSON value
                Some(toml::Value::Datetime(_)) | None => {}
                Some(other) => {
                    if let Ok(value) = serde_json::to_value(other) {
                        return (value, true);
                    }
                }
            }
        }
    }
    (Value::String(raw.to_owned()), false)
}

/// Variables that share the prefix but belong to the test and build tooling (where to find
/// a binary or tool, which tests must not skip), never to a service's configuration.
fn is_tooling_var(rest: &str) -> bool {
    const TOOLING: [&str; 9] = [
        "PREBUILT_BINS",
        "ANVIL",
        "ANVIL_LOG",
        "BROWSER_TOOLS",
        "CHROMIUM",
        "TEST_ARTIFACTS",
        "TOOLS_DIR",
        "LOG_FORMAT",
        "CONFIG",
    ];
    rest.starts_with("REQUIRE_") || rest.ends_with("_BIN") || TOOLING.contains(&rest)
}

fn dotted(segments: &[String]) -> String {
    segments.join(".")
}

struct Layers {
    value: Value,
    /// Every layer that set each leaf, by dotted path, in order (the last one wins).
    origins: BTreeMap<String, Vec<Origin>>,
    /// Raw text of guessed (non-string) values, for the string fallback.
    guessed: BTreeMap<String, String>,
}

impl Layers {
    fn new(defaults: Value) -> Self {
        Self {
            value: defaults,
            origins: BTreeMap::new(),
            guessed: BTreeMap::new(),
        }
    }

    fn merge(&mut self, value: Value, origin: &Origin) {
        let mut path = Vec::new();
        let mut root = std::mem::take(&mut self.value);
        if !root.is_object() {
            root = Value::Object(Map::new());
        }
        merge_into(&mut root, value, &mut path, origin, self);
        self.value = root;
    }

    fn set_guessed(&mut self, segments: &[String], raw: &str, origin: Origin) {
        let (value, guessed) = guess_value(raw);
        let key = dotted(segments);
        if guessed {
            self.guessed.insert(key, raw.to_owned());
        } else {
            self.guessed.remove(&key);
        }
        let nested = segments.iter().rev().fold(value, |inner, segment| {
            let mut map = Map::new();
            map.insert(segment.clone(), inner);
            Value::Object(map)
        });
        self.merge(nested, &origin);
    }

    fn record(&mut self, path: &[String], value: &Value, origin: &Origin) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                let mut path = path.to_vec();
                for (key, child) in map {
                    path.push(key.clone());
                    self.record(&path, child, origin);
                    path.pop();
                }
            }
            _ => self
                .origins
                .entry(dotted(path))
                .or_default()
                .push(origin.clone()),
        }
    }

    /// Origins of `key` itself or of anything under it, else of its nearest ancestor.
    fn origins_of(&self, key: &[String]) -> Vec<Origin> {
        let exact = dotted(key);
        let below = format!("{exact}.");
        let mut found: Vec<Origin> = Vec::new();
        for (path, origins) in &self.origins {
            if *path == exact || path.starts_with(&below) {
                for origin in origins {
                    if !found.contains(origin) {
                        found.push(origin.clone());
                    }
                }
            }
        }
        if found.is_empty() {
            for len in (1..key.len()).rev() {
                if let Some(origins) = self.origins.get(&dotted(&key[..len])) {
                    return origins.clone();
                }
            }
        }
        found
    }

    fn effective_origin(&self, key: &[String]) -> Origin {
        self.origins_of(key).pop().unwrap_or(Origin::Default)
    }

    fn deserialize<T: DeserializeOwned>(mut self) -> Result<T, ConfigError> {
        // what serde said about a guessed value, kept in case the string retry fails too
        let mut guess_errors: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let mut ignored: Vec<Vec<String>> = Vec::new();
            let mut on_ignored = |path: serde_ignored::Path<'_>| {
                let mut segments = Vec::new();
                ignored_segments(&path, &mut segments);
                ignored.push(segments);
            };
            let result: Result<T, _> = serde_path_to_error::deserialize(
                serde_ignored::Deserializer::new(&self.value, &mut on_ignored),
            );
            match result {
                Ok(config) if ignored.is_empty() => return Ok(config),
                Ok(_) => {
                    let keys = ignored
                        .into_iter()
                        .map(|segments| UnknownKey {
                            key: dotted(&segments),
                            origins: self.origins_of(&segments),
                        })
                        .collect();
                    return Err(ConfigError::UnknownKeys(keys));
                }
                Err(error) => {
                    let segments = error_segments(error.path());
                    let key = dotted(&segments);
                    let message = error.into_inner().to_string();
                    if let Some(raw) = self.guessed.remove(&key) {
                        // the guess did not fit the field: retry with the text as given
                        set_at(&mut self.value, &segments, Value::String(raw));
                        guess_errors.insert(key, message);
                        continue;
                    }
                    // "integer 70000, expected u16" says more than "string \"70000\"..."
                    let message = guess_errors.remove(&key).unwrap_or(message);
                    return Err(ConfigError::InvalidValue {
                        origin: self.effective_origin(&segments),
                        key,
                        message,
                    });
                }
            }
        }
    }
}

fn merge_into(
    dst: &mut Value,
    src: Value,
    path: &mut Vec<String>,
    origin: &Origin,
    layers: &mut Layers,
) {
    match (dst, src) {
        (Value::Object(dst_map), Value::Object(src_map)) => {
            for (key, child) in src_map {
                path.push(key.clone());
                match dst_map.get_mut(&key) {
                    Some(existing @ Value::Object(_)) if child.is_object() => {
                        merge_into(existing, child, path, origin, layers);
                    }
                    _ => {
                        layers.record(path, &child, origin);
                        dst_map.insert(key, child);
                    }
                }
                path.pop();
            }
        }
        (dst, src) => {
            layers.record(path, &src, origin);
            *dst = src;
        }
    }
}

fn set_at(root: &mut Value, segments: &[String], value: Value) {
    let mut node = root;
    for segment in segments {
        let Some(next) = node.as_object_mut().and_then(|m| m.get_mut(segment)) else {
            return;
        };
        node = next;
    }
    *node = value;
}

fn ignored_segments(path: &serde_ignored::Path<'_>, out: &mut Vec<String>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            ignored_segments(parent, out);
            out.push(index.to_string());
        }
        Path::Map { parent, key } => {
            ignored_segments(parent, out);
            out.push(key.clone());
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => {
            ignored_segments(parent, out);
        }
    }
}

// keys down to the first array index; origins are tracked per key, arrays are replaced whole
fn error_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    let mut out = Vec::new();
    for segment in path.iter() {
        match segment {
            Segment::Map { key } => out.push(key.clone()),
            Segment::Enum { variant } => out.push(variant.clone()),
            Segment::Seq { .. } | Segment::Unknown => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_scalars_and_keeps_text() {
        assert_eq!(guess_value("8080"), (Value::from(8080), true));
        assert_eq!(guess_value(" true "), (Value::from(true), true));
        assert_eq!(guess_value("1.5"), (Value::from(1.5), true));
        assert_eq!(guess_value("\"8080\""), (Value::from("8080"), false));
        assert_eq!(guess_value("[1, 2]"), (serde_json::json!([1, 2]), true));
        assert_eq!(
            guess_value(r#"{"a": {"b": "c"}}"#),
            (serde_json::json!({"a": {"b": "c"}}), true)
        );
        assert_eq!(
            guess_value("{ a = 1 }"),
            (serde_json::json!({"a": 1}), true)
        );
        assert_eq!(
            guess_value("redis://127.0.0.1:6379"),
            (Value::from("redis://127.0.0.1:6379"), false)
        );
        assert_eq!(guess_value("1.0.0"), (Value::from("1.0.0"), false));
        assert_eq!(
            guess_value("2024-01-01"),
            (Value::from("2024-01-01"), false)
        );
        assert_eq!(guess_value("1\nx = 2"), (Value::from("1\nx = 2"), false));
        assert_eq!(guess_value(""), (Value::from(""), false));
    }

    #[test]
    fn assignment_parsing() {
        let (key, value) = parse_assignment("admin.listen_addr=0.0.0.0:9090").expect("valid");
        assert_eq!(key, ["admin", "listen_addr"]);
        assert_eq!(value, "0.0.0.0:9090");
        let (key, value) = parse_assignment("a=b=c").expect("value may hold '='");
        assert_eq!((key, value), (vec!["a".to_owned()], "b=c"));
        assert!(parse_assignment("novalue").is_err());
        assert!(parse_assignment("a..b=1").is_err());
        assert!(parse_assignment("=1").is_err());
    }
}
