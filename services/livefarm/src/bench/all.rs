//! `livefarm bench all`: every bench, each in a process of its own (so one bench's threads,
//! children and CPU accounting never leak into the next), one after the other. With `--json`
//! it prints one object: each bench's JSON under its name, plus a `summary` of every headline
//! ratio, its spread and `stable` flag. A bench that fails leaves `{"error": ...}` under its
//! name and the command exits non-zero after printing.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Map, Value};

use super::measure::LoadAverage;
use super::report::{fmt_opt, print_json, Table};

const BENCHES: [&str; 7] = [
    "tickets", "bus", "api", "ladder", "capacity", "latency", "indexer",
];

#[derive(Debug, Args)]
pub struct AllArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Benches to leave out (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Smaller parameters for the long benches (ladder: 6 s source at 1280x720; capacity:
    /// 4 s, up to 3 streams; indexer: 2,000 blocks; latency: 16 s), for a quick table.
    #[arg(long)]
    pub quick: bool,
}

/// The command line of one bench (after `livefarm bench`).
fn bench_args(name: &str, quick: bool, instructions: bool) -> Vec<String> {
    let mut args = vec![name.to_owned(), "--json".to_owned()];
    let extra: &[&str] = match (name, quick) {
        ("tickets", _) if instructions => &["--instructions"],
        ("ladder", true) => &["--duration", "6", "--resolution", "1280x720"],
        ("capacity", true) => &["--duration", "4", "--max-streams", "3"],
        ("indexer", true) => &["--blocks", "2000", "--events", "10000"],
        ("latency", true) => &["--seconds", "16"],
        _ => &[],
    };
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

pub fn run(args: AllArgs) -> Result<()> {
    for skip in &args.skip {
        if !BENCHES.contains(&skip.as_str()) {
            return Err(super::usage(format!(
                "--skip: no bench {skip:?} ({})",
                BENCHES.join(", ")
            )));
        }
    }
    let exe = std::env::current_exe().context("locating this livefarm binary")?;
    // callgrind makes the tickets figure deterministic; without valgrind the CPU-time ratio
    // is the headline and the summary says why.
    let instructions = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        || std::env::var_os("LIVEFARM_VALGRIND").is_some()
        || std::path::Path::new(".tools/bench/bin/valgrind").is_file();
    let started = Instant::now();
    let load_before = LoadAverage::now();
    let mut out = Map::new();
    let mut failed = Vec::new();
    for name in BENCHES {
        if args.skip.iter().any(|s| s == name) {
            continue;
        }
        let bench_args = bench_args(name, args.quick, instructions);
        eprintln!("bench all: livefarm bench {}", bench_args.join(" "));
        let t0 = Instant::now();
        let output = Command::new(&exe)
            .arg("bench")
            .args(&bench_args)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running livefarm bench {name}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut value = match serde_json::from_str::<Value>(&stdout) {
            Ok(value) if output.status.success() => value,
            Ok(_) | Err(_) => {
                failed.push(name);
                json!({ "error": format!("exited with {}", output.status), "stdout": stdout.trim() })
            }
        };
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "command".into(),
                format!("livefarm bench {}", bench_args.join(" ")).into(),
            );
            object.insert("bench_wall_s".into(), t0.elapsed().as_secs_f64().into());
        }
        out.insert(name.to_owned(), value);
    }
    let summary: Vec<Value> = out.iter().map(|(name, v)| summary_row(name, v)).collect();
    let result = json!({
        "bench": "all",
        "summary": summary,
        "benches": out,
        "load_average_before": load_before,
        "load_average_after": LoadAverage::now(),
        "instructions": instructions,
        "total_wall_s": started.elapsed().as_secs_f64(),
    });
    if args.json {
        print_json(&result)?;
    } else {
        let mut table = Table::new(&["bench", "headline", "value", "min..max", "stable", "beside"]);
        for row in &summary {
            let spread = &row["spread"];
            table.row(vec![
                row["bench"].as_str().unwrap_or_default().to_owned(),
                row["headline"].as_str().unwrap_or("-").to_owned(),
                fmt_opt(row["value"].as_f64()),
                match (spread["min"].as_f64(), spread["max"].as_f64()) {
                    (Some(a), Some(b)) => format!("{a:.3}..{b:.3}"),
                    _ => "-".to_owned(),
                },
                row["stable"].to_string(),
                format!(
                    "{} {}",
                    row["beside"].as_str().unwrap_or_default(),
                    fmt_opt(row["beside_value"].as_f64())
                ),
            ]);
        }
        table.print();
    }
    if !failed.is_empty() {
        bail!("benches failed: {}", failed.join(", "));
    }
    Ok(())
}

/// The headline of one bench's JSON, its spread and stability, and the figure beside it (the
/// wall-clock ratio where the headline counts CPU or instructions).
pub fn summary_row(name: &str, v: &Value) -> Value {
    let headline = v["headline"].as_str();
    let beside = match name {
        "tickets" => "ratio_vs_raw_recover",
        "bus" => "ratio_vs_raw_xadd",
        "api" => "ratio_vs_store",
        "ladder" => "ratio_wall_vs_ffmpeg_continuous",
        "capacity" => "ratio_capacity_vs_ffmpeg",
        "latency" => "ratio_overhead_to_target",
        _ => "",
    };
    json!({
        "bench": name,
        "headline": headline,
        "value": headline.map(|h| v[h].clone()),
        "spread": headline.map(|h| v[format!("{h}_spread")].clone()),
        "stable": v["stable"],
        "beside": beside,
        "beside_value": v.get(beside),
        "measurement_errors": v["measurement_errors"],
        "error": v.get("error"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_parameters_only_for_the_long_benches() {
        assert_eq!(bench_args("bus", true, true), ["bus", "--json"]);
        assert_eq!(
            bench_args("tickets", false, true),
            ["tickets", "--json", "--instructions"]
        );
        assert_eq!(bench_args("tickets", false, false), ["tickets", "--json"]);
        assert!(bench_args("ladder", true, false).contains(&"--duration".to_owned()));
    }

    #[test]
    fn summary_picks_the_headline() {
        let v = json!({
            "headline": "ratio_cpu_vs_raw_recover",
            "ratio_cpu_vs_raw_recover": 0.8,
            "ratio_cpu_vs_raw_recover_spread": {"min": 0.79, "max": 0.81},
            "ratio_vs_raw_recover": 0.7,
            "stable": true,
            "measurement_errors": []
        });
        let row = summary_row("tickets", &v);
        assert_eq!(row["value"], json!(0.8));
        assert_eq!(row["beside"], json!("ratio_vs_raw_recover"));
        assert_eq!(row["beside_value"], json!(0.7));
        assert_eq!(row["spread"]["min"], json!(0.79));
        assert_eq!(row["stable"], json!(true));
    }
}
