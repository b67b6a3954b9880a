//! The chart's monitoring against real servers (issue 16, items 5 and 6):
//! - a real Prometheus (Debian's 2.42, `scripts/install-obs-tools.sh`) scrapes a farm running in
//!   separate processes, labelled as prometheus-operator labels the chart's ServiceMonitor
//!   targets, and evaluates the chart's rules; the transcoder autoscaler's query, taken from the
//!   ScaledObject that `helm template` renders, returns the sessions the farm needs as streams
//!   start and stop;
//! - `promtool check rules` and `promtool test rules` (`monitoring/tests/`) on the rendered
//!   PrometheusRule;
//! - every metric an alert, recording rule or dashboard panel reads is one the services export.
//!
//! Needs prometheus, promtool and helm (`scripts/install-obs-tools.sh`,
//! `scripts/install-deploy-tools.sh`): skipped loudly without them unless
//! `LIVEFARM_REQUIRE_PROMETHEUS=1` (scripts/test.sh sets it). The farm needs `redis-server` and
//! the ffmpeg CLI.

#[path = "support/farm.rs"]
mod farm;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use farm::{repo, tool, Farm, FarmOptions};
use livefarm_testkit::{free_port, http_request, wait_until_blocking};

/// The release the chart is rendered as, and its namespace: what the scrape labels and the
/// promtool tests (monitoring/tests/) use.
const RELEASE: &str = "lf";
const NAMESPACE: &str = "media";

/// How long the autoscaling query must hold a value (3 scrapes and rule evaluations).
const SETTLE: Duration = Duration::from_secs(3);

struct Tools {
    prometheus: PathBuf,
    promtool: PathBuf,
    helm: PathBuf,
}

/// The tools, or `None` (with a loud skip) when one is missing on a developer's machine.
fn tools() -> Option<Tools> {
    let found = (
        tool("obs", "prometheus"),
        tool("obs", "promtool"),
        tool("deploy", "helm"),
    );
    match found {
        (Some(prometheus), Some(promtool), Some(helm)) => Some(Tools {
            prometheus,
            promtool,
            helm,
        }),
        missing => {
            let why = format!(
                "needs prometheus and promtool (scripts/install-obs-tools.sh) and helm \
                 (scripts/install-deploy-tools.sh); found {missing:?}"
            );
            if std::env::var("LIVEFARM_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
                panic!("LIVEFARM_REQUIRE_PROMETHEUS=1 but this test {why}");
            }
            eprintln!(
                "SKIPPED (set LIVEFARM_REQUIRE_PROMETHEUS=1 to fail instead): this test {why}"
            );
            None
        }
    }
}

/// The chart rendered with monitoring, KEDA autoscaling and the chain services on.
fn render(helm: &Path) -> String {
    let out = Command::new(helm)
        .args(["template", RELEASE])
        .arg(repo().join("helm/livefarm"))
        .args(["--namespace", NAMESPACE])
        .args(["--set", "monitoring.enabled=true"])
        .args(["--set", "serviceMonitor.enabled=true"])
        .args(["--set", "transcoder.autoscaling.enabled=true"])
        .args(["--set", "transcoder.autoscaling.mode=keda"])
        .args(["--set", "chain.enabled=true"])
        .args(["--set", "chain.rpcUrl=http://127.0.0.1:8545"])
        .args([
            "--set",
            "chain.controller=0x0000000000000000000000000000000000000001",
        ])
        .args(["--set", "chain.keySecret.name=chain-key"])
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 manifests")
}

fn documents(manifests: &str) -> impl Iterator<Item = &str> {
    manifests.split("\n---\n")
}

fn is_kind(doc: &str, kind: &str) -> bool {
    doc.lines().any(|l| l == format!("kind: {kind}"))
}

/// The value of the first `key: value` line (at any indent) of `doc`.
fn field<'a>(doc: &'a str, key: &str) -> Option<&'a str> {
    doc.lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{key}: ")))
}

/// The PrometheusRule's groups as a Prometheus rule file (`groups:` at the top).
fn rule_file(manifests: &str) -> String {
    let doc = documents(manifests)
        .find(|d| is_kind(d, "PrometheusRule"))
        .expect("monitoring.enabled renders a PrometheusRule");
    let spec = doc
        .split_once("\nspec:\n")
        .map(|(_, spec)| spec)
        .expect("a PrometheusRule has a spec");
    spec.lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The query KEDA runs to scale the transcoders (the ScaledObject's prometheus trigger).
fn demand_query(manifests: &str) -> String {
    let doc = documents(manifests)
        .find(|d| is_kind(d, "ScaledObject"))
        .expect("autoscaling renders a ScaledObject");
    let quoted = field(doc, "query").expect("the prometheus trigger has a query");
    serde_json::from_str(quoted).unwrap_or_else(|e| panic!("query {quoted}: {e}"))
}

/// Component -> Service name, as prometheus-operator puts it in the `service` label.
fn services(manifests: &str) -> BTreeMap<String, String> {
    documents(manifests)
        .filter(|d| is_kind(d, "Service"))
        .filter_map(|d| {
            let component = field(d, "app.kubernetes.io/component")?;
            let name = d
                .split_once("metadata:\n")?
                .1
                .lines()
                .find_map(|l| l.strip_prefix("  name: "))?;
            Some((component.to_owned(), name.to_owned()))
        })
        .collect()
}

#[test]
fn chart_rules_pass_promtool_check_and_unit_tests() {
    let Some(tools) = tools() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("livefarm-rules.yaml");
    std::fs::write(&rules, rule_file(&render(&tools.helm))).expect("rules");
    let out = Command::new(&tools.promtool)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool check rules:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");

    // The unit tests name the rule file next to them: copy them beside the rendered one.
    let mut tests = Vec::new();
    for entry in std::fs::read_dir(repo().join("monitoring/tests")).expect("monitoring/tests") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".test.yaml") {
            let copy = dir.path().join(path.file_name().expect("name"));
            std::fs::copy(&path, &copy).expect("copy");
            tests.push(copy);
        }
    }
    assert!(
        tests.len() >= 2,
        "unit tests in monitoring/tests: {tests:?}"
    );
    let out = Command::new(&tools.promtool)
        .args(["test", "rules"])
        .args(&tests)
        .output()
        .expect("promtool runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool test rules:\n{text}");

    // Every alert has a unit test and a runbook.
    let operations =
        std::fs::read_to_string(repo().join("docs/OPERATIONS.md")).expect("docs/OPERATIONS.md");
    let runbooks = operations
        .split_once("## Alerts and runbooks")
        .map(|(_, rest)| rest)
        .expect("docs/OPERATIONS.md has the section");
    let unit_tests: String = tests
        .iter()
        .map(|t| std::fs::read_to_string(t).expect("test file"))
        .collect();
    let rendered = std::fs::read_to_string(&rules).expect("rules");
    let alerts: Vec<&str> = rendered
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    for alert in alerts {
        assert!(
            runbooks.contains(&format!("### {alert}\n")),
            "{alert} has no runbook in docs/OPERATIONS.md"
        );
        assert!(
            unit_tests.contains(&format!("alertname: {alert}\n")),
            "{alert} has no promtool unit test in monitoring/tests"
        );
    }
}

/// `livefarm_*` metric names in `text` (recording rules are `livefarm:...`).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("livefarm_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let preceded_by_word = rest[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !preceded_by_word {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// What the alerts, recording rules and dashboards read.
fn metrics_used() -> BTreeMap<String, &'static str> {
    let chart = repo().join("helm/livefarm/files");
    let mut used = BTreeMap::new();
    for (dir, what) in [("rules", "a rule"), ("dashboards", "a dashboard")] {
        for entry in std::fs::read_dir(chart.join(dir)).expect("chart files") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("file");
            for name in metric_names(&text) {
                used.entry(name).or_insert(what);
            }
        }
    }
    // The autoscaling query is the chart's too.
    let helpers = std::fs::read_to_string(repo().join("helm/livefarm/templates/_helpers.tpl"))
        .expect("helpers");
    for name in metric_names(&helpers) {
        used.entry(name).or_insert("the autoscaling query");
    }
    used
}

/// Every `"livefarm_..."` string literal in the services' and crates' Rust sources: the names
/// families are registered under (suffixes come from the type, see [`is_registered`]).
fn registered_in_code() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("source dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_dir() {
                if name != "tests" && name != "target" {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                for piece in text.split("\"livefarm_").skip(1) {
                    if let Some((name, _)) = piece.split_once('"') {
                        out.insert(format!("livefarm_{name}"));
                    }
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    walk(&repo().join("services"), &mut names);
    walk(&repo().join("crates"), &mut names);
    names
}

/// Whether `name` is what a family registered as one of `registered` renders: the name itself
/// (gauges), `_total` (counters), `_bucket`/`_sum`/`_count` (histograms), with the `_seconds`
/// unit of `register_with_unit`.
fn is_registered(name: &str, registered: &BTreeSet<String>) -> bool {
    let bases = [
        Some(name),
        name.strip_suffix("_total"),
        name.strip_suffix("_bucket"),
        name.strip_suffix("_sum"),
        name.strip_suffix("_count"),
    ];
    bases.into_iter().flatten().any(|base| {
        registered.contains(base)
            || base
                .strip_suffix("_seconds")
                .is_some_and(|b| registered.contains(b))
    })
}

#[test]
fn alerts_and_dashboards_read_metrics_the_services_export() {
    let registered = registered_in_code();
    let used = metrics_used();
    assert!(used.len() >= 30, "{used:?}");
    let unknown: Vec<String> = used
        .iter()
        .filter(|(name, _)| !is_registered(name, &registered))
        .map(|(name, what)| format!("{name} (in {what})"))
        .collect();
    assert!(
        unknown.is_empty(),
        "metrics no service registers: {unknown:?}"
    );
    // the check itself catches a misspelling and a wrong suffix
    assert!(!is_registered(
        "livefarm_transcoder_queue_lags",
        &registered
    ));
    assert!(is_registered(
        "livefarm_transcoder_queue_seconds_bucket",
        &registered
    ));
    assert!(!is_registered(
        "livefarm_transcoder_queue_bucket_total",
        &registered
    ));
}

/// The series names a `/metrics` text (OpenMetrics) holds or announces, from its `# TYPE`
/// lines: exact, for families that have no sample yet too.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let Some((name, kind)) = rest.split_once(' ') else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// One series of a query result: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// A Prometheus server on a free loopback port, killed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    fn start(bin: &Path, dir: &Path, config: &str) -> Prometheus {
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("prometheus.yml");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = dir.join("prometheus.log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus { child, addr, log };
        wait_until_blocking(
            Duration::from_secs(30),
            "prometheus to be ready",
            || match http_request(addr, "GET", "/-/ready", &[], b"") {
                Ok(reply) if reply.status == 200 => Ok(()),
                other => Err(format!("{other:?}\n{}", prometheus.log_text())),
            },
        );
        prometheus
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query: each series' labels and value.
    fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let reply = http_request(self.addr, "GET", &path, &[], b"")?;
        let body: serde_json::Value =
            serde_json::from_slice(&reply.body).map_err(|e| format!("{e}: {}", reply.text()))?;
        if body["status"] != "success" {
            return Err(format!("{expr}: {body}"));
        }
        let series = body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        series
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("no value in {s}"))?;
                Ok((labels, value))
            })
            .collect()
    }

    /// The single value of `expr`, `Err` when it has none or several series.
    fn value(&self, expr: &str) -> Result<f64, String> {
        match self.query(expr)?.as_slice() {
            [(_, value)] => Ok(*value),
            other => Err(format!("{expr}: {other:?}")),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Scrape jobs labelled as prometheus-operator labels a ServiceMonitor's targets.
fn prometheus_config(farm: &Farm, services: &BTreeMap<String, String>, rules: &Path) -> String {
    let mut jobs: BTreeMap<&str, Vec<(String, u16)>> = BTreeMap::new();
    for member in &farm.members {
        jobs.entry(member.component)
            .or_default()
            .push((member.process.name.clone(), member.admin));
    }
    let mut config = format!(
        "global: {{ scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s }}\n\
         rule_files: [{:?}]\nscrape_configs:\n",
        rules.display().to_string()
    );
    for (component, targets) in jobs {
        let service = services
            .get(component)
            .unwrap_or_else(|| panic!("the chart renders no Service for {component}"));
        config.push_str(&format!("  - job_name: {service}\n    static_configs:\n"));
        for (pod, port) in targets {
            config.push_str(&format!(
                "      - targets: ['127.0.0.1:{port}']\n        labels: {{ namespace: {NAMESPACE}, \
                 service: {service}, pod: {pod}, endpoint: admin }}\n"
            ));
        }
    }
    config
}

#[test]
fn prometheus_scrapes_a_farm_and_the_autoscaling_query_follows_the_streams() {
    let Some(tools) = tools() else { return };
    let manifests = render(&tools.helm);
    let query = demand_query(&manifests);
    let services = services(&manifests);
    let transcoder_service = services
        .get("transcoder")
        .expect("transcoder Service")
        .clone();
    assert!(
        query.contains(&format!("service=\"{transcoder_service}\"")),
        "the autoscaling query does not select the transcoders' Service {transcoder_service}: {query}"
    );

    // Two workers of one session each, so three streams need a third session.
    let farm = Farm::start(&FarmOptions {
        workers: 2,
        max_sessions: 1,
        session_idle_ms: 2_000,
        otlp_endpoint: None,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("livefarm-rules.yaml");
    std::fs::write(&rules, rule_file(&manifests)).expect("rules");
    let prometheus = Prometheus::start(
        &tools.prometheus,
        dir.path(),
        &prometheus_config(&farm, &services, &rules),
    );
    let context = |what: &str| format!("{what}\n{}\n{}", prometheus.log_text(), farm.logs());

    wait_until_blocking(Duration::from_secs(30), "every service scraped", || {
        let up = prometheus.value(&format!("sum(up{{namespace=\"{NAMESPACE}\"}})"));
        match up {
            Ok(n) if n as usize == farm.members.len() => Ok(()),
            other => Err(context(&format!("up: {other:?}"))),
        }
    });
    // Redis is reachable from every service, as the Redis alert reads it.
    wait_until_blocking(
        Duration::from_secs(30),
        "livefarm_bus_redis_up from every service",
        || {
            let expr = format!("count(livefarm_bus_redis_up{{namespace=\"{NAMESPACE}\"}} == 1)");
            match prometheus.value(&expr) {
                Ok(n) if n as usize == farm.members.len() => Ok(()),
                other => Err(context(&format!("{other:?}"))),
            }
        },
    );

    let recorded = format!(
        "livefarm:transcoder_demand:sessions{{namespace=\"{NAMESPACE}\",service=\"{transcoder_service}\"}}"
    );
    // The demand must settle at `want`: equal over consecutive scrapes for a few seconds, not
    // in passing on its way to another number.
    let demand_is = |want: f64, what: &str| {
        let mut since: Option<Instant> = None;
        wait_until_blocking(Duration::from_secs(90), what, || {
            let keda = prometheus.value(&query);
            let rule = prometheus.value(&recorded);
            let sessions = prometheus.query("livefarm_transcoder_sessions");
            let unclaimed = prometheus.query("livefarm_transcoder_unclaimed_streams");
            let seen = format!(
                "query {keda:?}, recording rule {rule:?}; sessions {sessions:?}, unclaimed {unclaimed:?}"
            );
            match (&keda, &rule) {
                (Ok(k), Ok(r)) if *k == want && *r == want => {
                    let held = since.get_or_insert_with(Instant::now).elapsed();
                    if held >= SETTLE {
                        Ok(())
                    } else {
                        Err(format!("{seen} for {held:?} so far"))
                    }
                }
                _ => {
                    since = None;
                    Err(seen)
                }
            }
        });
    };
    demand_is(0.0, "no demand before any stream");

    let clip = farm::clip(farm.dir.path(), 4);
    let streams = ["cam-a", "cam-b", "cam-c"];
    let mut publishers: BTreeMap<&str, farm::Publisher> = streams
        .iter()
        .map(|id| (*id, farm.publish(&clip, id, true)))
        .collect();
    demand_is(
        3.0,
        "demand of three streams on two one-session workers: 2 held + 1 waiting",
    );

    // End a stream a worker holds: the worker lets it go and takes the waiting one.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bus = runtime
        .block_on(livefarm_bus::connect(&farm.bus_url))
        .expect("bus");
    let held = streams
        .iter()
        .find(|id| {
            runtime
                .block_on(bus.get(&livefarm_jobs::affinity_key(id)))
                .expect("affinity")
                .is_some()
        })
        .expect("a held stream");
    drop(publishers.remove(held));
    demand_is(2.0, "demand of the two streams left");

    publishers.clear();
    demand_is(0.0, "no demand once every stream ended");

    // What the services export, exactly (from their `# TYPE` lines): every metric a rule or
    // a panel reads from these services is there.
    let mut exported = BTreeSet::new();
    for member in &farm.members {
        let reply = http_request(
            SocketAddr::from(([127, 0, 0, 1], member.admin)),
            "GET",
            "/metrics",
            &[],
            b"",
        )
        .expect("metrics");
        exported.extend(exported_names(&reply.text()));
    }
    let running = [
        "livefarm_ingest_",
        "livefarm_segmenter_",
        "livefarm_transcoder_",
        "livefarm_api_",
        "livefarm_bus_",
        "livefarm_webhooks_",
        "livefarm_process_",
    ];
    // Labelled families this scenario gives no sample: prometheus-client renders a family
    // (even its `# TYPE`) only once it has a child, so for these the source check above is
    // all there is.
    let unexercised = [
        "livefarm_api_http_request_duration_seconds_bucket",
        "livefarm_api_http_requests_total",
        "livefarm_ingest_publishes_refused_total",
        "livefarm_ingest_push_requests_total",
        "livefarm_transcoder_errors_total",
        "livefarm_transcoder_streams_released_total",
        "livefarm_webhooks_attempts_total",
    ];
    let checked: Vec<String> = metrics_used()
        .into_keys()
        .filter(|name| running.iter().any(|p| name.starts_with(p)))
        .filter(|name| !unexercised.contains(&name.as_str()))
        .collect();
    assert!(checked.len() >= 15, "{checked:?}");
    let missing: Vec<&String> = checked.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "read by rules or dashboards but not exported by the running services: {missing:?}"
    );
}
