//! Layered config loading: defaults, TOML file, environment, overrides; errors; dump round-trip.

use std::collections::BTreeMap;
use std::io::Write;

use livefarm_runtime::{dump_config, load, ConfigError, LoadOptions, Origin, EXIT_BAD_CONFIG};
use livefarm_telemetry::{LogFormat, TelemetryConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Admin {
    listen_addr: String,
    enabled: bool,
    timeout_ms: u64,
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            listen_addr: "127.0.0.1:9000".into(),
            enabled: true,
            timeout_ms: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct ServiceConfig {
    name: String,
    workers: u32,
    ratio: f64,
    stream_key: Option<String>,
    tags: Vec<String>,
    labels: BTreeMap<String, String>,
    admin: Admin,
    telemetry: TelemetryConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            name: "default".into(),
            workers: 1,
            ratio: 0.5,
            stream_key: None,
            tags: Vec::new(),
            labels: BTreeMap::new(),
            admin: Admin::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    config_file(text, ".toml")
}

fn config_file(text: &str, suffix: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(suffix)
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write config");
    file
}

fn opts() -> LoadOptions {
    // an explicit environment: these tests never read or write the process's
    LoadOptions::new()
        .env_prefix("LAYERTEST_")
        .env_vars(Vec::<(String, String)>::new())
}

#[test]
fn defaults_alone() {
    let config: ServiceConfig = load(&opts()).expect("defaults load");
    assert_eq!(config, ServiceConfig::default());
}

#[test]
fn layers_apply_in_order() {
    let file = toml_file(
        r#"
name = "from-file"
workers = 2
ratio = 0.25

[admin]
listen_addr = "10.0.0.1:9100"
timeout_ms = 200
"#,
    );
    let options = opts()
        .file(file.path())
        .env_vars([
            ("LAYERTEST_WORKERS", "3"),
            ("LAYERTEST_ADMIN__TIMEOUT_MS", "300"),
            ("LAYERTEST_TELEMETRY__LOG_FORMAT", "json"),
            // digits for a string field: the guess falls back to the text
            ("LAYERTEST_STREAM_KEY", "12345"),
            ("LAYERTEST_LABELS__TEAM", "video"),
            ("OTHER_PREFIX_WORKERS", "99"),
        ])
        .set("admin.timeout_ms=400")
        .overrides([r#"tags=["a", "b"]"#, "ratio=0.75"]);
    let config: ServiceConfig = load(&options).expect("layered load");

    assert_eq!(config.name, "from-file", "file over defaults");
    assert_eq!(config.workers, 3, "env over file");
    assert_eq!(config.admin.listen_addr, "10.0.0.1:9100", "file kept");
    assert_eq!(config.admin.timeout_ms, 400, "override over env");
    assert!(config.admin.enabled, "untouched default kept");
    assert_eq!(config.ratio, 0.75);
    assert_eq!(config.telemetry.log_format, LogFormat::Json);
    assert_eq!(config.telemetry.log_filter, "info");
    assert_eq!(config.stream_key.as_deref(), Some("12345"));
    assert_eq!(config.tags, ["a", "b"]);
    assert_eq!(config.labels.get("team").map(String::as_str), Some("video"));
}

#[test]
fn json_override_sits_between_env_and_flags() {
    let options = opts()
        .env_vars([("LAYERTEST_WORKERS", "3"), ("LAYERTEST_NAME", "env")])
        .override_value(serde_json::json!({"workers": 5, "admin": {"enabled": false}}))
        .set("name=flag");
    let config: ServiceConfig = load(&options).expect("load");
    assert_eq!(config.workers, 5);
    assert!(!config.admin.enabled);
    assert_eq!(config.admin.timeout_ms, 100);
    assert_eq!(config.name, "flag");
}

#[test]
fn process_environment_is_read_with_prefix() {
    // a prefix no other test uses, so this test alone touches the process environment
    std::env::set_var("LFPROCENV_WORKERS", "9");
    std::env::set_var("LFPROCENV_ADMIN__ENABLED", "false");
    let options = LoadOptions::new().env_prefix("LFPROCENV_");
    let config: ServiceConfig = load(&options).expect("load from process env");
    std::env::remove_var("LFPROCENV_WORKERS");
    std::env::remove_var("LFPROCENV_ADMIN__ENABLED");
    assert_eq!(config.workers, 9);
    assert!(!config.admin.enabled);
}

#[test]
fn unknown_key_in_file_names_key_and_file() {
    let file = toml_file("[admin]\nlisten_adr = \"0.0.0.0:1\"\n");
    let err = load::<ServiceConfig>(&opts().file(file.path())).expect_err("typo rejected");
    let ConfigError::UnknownKeys(keys) = &err else {
        panic!("expected unknown keys, got {err}");
    };
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key, "admin.listen_adr");
    assert_eq!(keys[0].origins, [Origin::File(file.path().to_owned())]);
    let message = err.to_string();
    assert!(message.contains("admin.listen_adr"), "{message}");
    assert!(
        message.contains(&file.path().display().to_string()),
        "{message}"
    );
    assert_eq!(err.exit_code(), EXIT_BAD_CONFIG);
}

#[test]
fn unknown_key_in_env_names_variable() {
    let options = opts().env_vars([
        ("LAYERTEST_ADMIN__BOGUS", "1"),
        ("LAYERTEST_TELEMETRY__LOG_FILTER", "debug"),
    ]);
    let err = load::<ServiceConfig>(&options).expect_err("unknown env key");
    let message = err.to_string();
    assert!(message.contains("`admin.bogus`"), "{message}");
    assert!(message.contains("LAYERTEST_ADMIN__BOGUS"), "{message}");
    assert!(
        !message.contains("LOG_FILTER"),
        "known key reported: {message}"
    );
}

#[test]
fn unknown_whole_section_is_reported() {
    let file = toml_file("[adminn]\nenabled = true\n");
    let err = load::<ServiceConfig>(&opts().file(file.path())).expect_err("unknown section");
    assert!(err.to_string().contains("`adminn"), "{err}");
}

#[test]
fn invalid_value_names_key_and_origin() {
    let options = opts().env_vars([("LAYERTEST_WORKERS", "many")]);
    let err = load::<ServiceConfig>(&options).expect_err("not a number");
    match &err {
        ConfigError::InvalidValue { key, origin, .. } => {
            assert_eq!(key, "workers");
            assert_eq!(*origin, Origin::Env("LAYERTEST_WORKERS".into()));
        }
        other => panic!("expected invalid value, got {other}"),
    }
    assert!(err.to_string().contains("LAYERTEST_WORKERS"), "{err}");

    let file = toml_file("[telemetry]\nlog_format = \"xml\"\n");
    let err = load::<ServiceConfig>(&opts().file(file.path())).expect_err("bad enum");
    let message = err.to_string();
    assert!(message.contains("telemetry.log_format"), "{message}");
    assert!(message.contains("xml"), "{message}");

    let err = load::<ServiceConfig>(&opts().set("workers=-1")).expect_err("negative u32");
    let message = err.to_string();
    assert!(message.contains("override `workers=-1`"), "{message}");
    // serde's words about the number, not about the string fallback
    assert!(message.contains("integer `-1`"), "{message}");
}

#[test]
fn json_file_is_a_layer_like_toml() {
    // What Helm's `toJson` writes: integers stay integers (its TOML writer prints `8e+09`), a
    // whole-number float (`2`) still fills an f64, nested objects are sections.
    let file = config_file(
        r#"{"workers": 8000000000, "ratio": 2, "tags": ["a"], "admin": {"timeout_ms": 250}}"#,
        ".json",
    );
    let err = load::<ServiceConfig>(&opts().file(file.path())).expect_err("u32 overflow");
    assert!(err.to_string().contains("workers"), "{err}");

    let file = config_file(
        r#"{"workers": 12, "ratio": 2, "tags": ["a"], "admin": {"timeout_ms": 250}}"#,
        ".json",
    );
    let cfg: ServiceConfig = load(&opts().file(file.path())).expect("json config");
    assert_eq!(cfg.workers, 12);
    assert_eq!(cfg.ratio, 2.0);
    assert_eq!(cfg.tags, vec!["a".to_owned()]);
    assert_eq!(cfg.admin.timeout_ms, 250);
    assert_eq!(
        cfg.admin.listen_addr, "127.0.0.1:9000",
        "defaults under a json section"
    );

    let file = config_file(r#"{"admin": {"listen": "x"}}"#, ".json");
    let err = load::<ServiceConfig>(&opts().file(file.path())).expect_err("unknown key");
    assert!(err.to_string().contains("admin.listen"), "{err}");

    let file = config_file("workers = 3\n", ".json");
    let err = load::<ServiceConfig>(&opts().file(file.path())).expect_err("toml in a .json");
    assert!(matches!(err, ConfigError::ParseJsonFile { .. }), "{err}");
    assert!(
        err.to_string().contains(&file.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn file_errors_carry_the_path() {
    let missing = std::env::temp_dir().join("livefarm-no-such-config.toml");
    let err = load::<ServiceConfig>(&opts().file(&missing)).expect_err("missing file");
    assert!(matches!(err, ConfigError::ReadFile { .. }), "{err}");
    assert!(
        err.to_string().contains("livefarm-no-such-config.toml"),
        "{err}"
    );

    let file = toml_file("workers = = 3\n");
    let err = load::<ServiceConfig>(&opts().file(file.path())).expect_err("bad toml");
    assert!(matches!(err, ConfigError::ParseFile { .. }), "{err}");
    assert!(
        err.to_string().contains(&file.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn malformed_env_names_and_overrides_are_rejected() {
    let err = load::<ServiceConfig>(&opts().env_vars([("LAYERTEST_ADMIN____X", "1")]))
        .expect_err("empty segment");
    assert!(err.to_string().contains("LAYERTEST_ADMIN____X"), "{err}");
    let err = load::<ServiceConfig>(&opts().set("workers")).expect_err("no '='");
    assert!(matches!(err, ConfigError::BadOverride { .. }), "{err}");
}

#[test]
fn config_path_variable_is_not_a_key() {
    let options = LoadOptions::new().env_vars([("LIVEFARM_CONFIG", "/etc/livefarm.toml")]);
    load::<ServiceConfig>(&options).expect("LIVEFARM_CONFIG is skipped");
}

#[test]
fn dump_then_load_round_trips() {
    let mut config = ServiceConfig {
        name: "dumped".into(),
        workers: 7,
        ratio: 0.125,
        stream_key: Some("0042".into()),
        tags: vec!["x".into()],
        ..ServiceConfig::default()
    };
    config.labels.insert("zone".into(), "eu".into());
    config.admin.enabled = false;
    config.telemetry.otlp_endpoint = Some("http://127.0.0.1:4317".into());

    let text = dump_config(&config).expect("dump");
    assert!(text.contains("[admin]"), "{text}");
    assert!(text.contains("workers = 7"), "{text}");
    let file = toml_file(&text);
    let loaded: ServiceConfig = load(&opts().file(file.path())).expect("reload dump");
    assert_eq!(loaded, config);

    // None fields are left out and come back as None
    let text = dump_config(&ServiceConfig::default()).expect("dump defaults");
    assert!(!text.contains("stream_key"), "{text}");
    let file = toml_file(&text);
    let loaded: ServiceConfig = load(&opts().file(file.path())).expect("reload defaults");
    assert_eq!(loaded, ServiceConfig::default());
}

#[test]
fn tooling_variables_with_the_prefix_are_not_config_keys() {
    // CI exports LIVEFARM_REQUIRE_ANVIL=1 and tests point at binaries with LIVEFARM_*_BIN:
    // a service started under them must not refuse them as unknown keys.
    let options = opts().env_vars([
        ("LAYERTEST_REQUIRE_ANVIL", "1"),
        ("LAYERTEST_TRANSCODER_BIN", "/x/bin"),
        ("LAYERTEST_ANVIL", "/x/anvil"),
        ("LAYERTEST_WORKERS", "7"),
    ]);
    let config: ServiceConfig = load(&options).expect("tooling variables are skipped");
    assert_eq!(config.workers, 7);
}
