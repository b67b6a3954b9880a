//! `livefarm bench tickets`: full ticket validation against the raw signature recovery it
//! contains ([`livefarm_pm::bench`]).
//!
//! Headline `ratio_cpu_vs_raw_recover`: recoveries per CPU second of the working thread
//! divided into validations per CPU second, median of alternating rounds (2 s windows);
//! `ratio_vs_raw_recover` is the same on the wall clock, beside it. With `--instructions`,
//! callgrind counts the instructions of one validation and one raw recovery (averaged over
//! `--count` distinct tickets, after a warm-up) and `ratio_instructions_vs_raw_recover`
//! becomes the headline: it does not depend on the machine or its neighbours. Validation
//! contains a recovery, so any of these above 1.05 is a measurement error, not a result.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use livefarm_pm::bench::{BenchOptions, BenchReport, Workload};
use serde::Serialize;
use serde_json::Value;

use super::measure::{Figures, LoadAverage, Machine};
use super::report::{fmt_opt, print_json, Table};

/// Where `scripts/install-bench-tools.sh` puts valgrind when the system has none.
const TOOLS_VALGRIND: &str = ".tools/bench/bin/valgrind";
const INSTALL_HINT: &str = "valgrind not found: run scripts/install-bench-tools.sh (valgrind from apt, into .tools/bench), or set LIVEFARM_VALGRIND";

#[derive(Debug, Args)]
pub struct TicketsArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Alternating rounds of raw recovery and full validation.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Seconds each side of a round runs.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Also count instructions with callgrind (needs valgrind:
    /// scripts/install-bench-tools.sh); the instruction ratio becomes the headline.
    #[arg(long)]
    pub instructions: bool,
    /// Operations counted per callgrind run.
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// Internal: run one workload for callgrind and exit.
    #[arg(long, hide = true, value_enum)]
    pub callgrind_child: Option<ChildWorkload>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChildWorkload {
    Validation,
    Raw,
}

impl ChildWorkload {
    fn workload(self) -> Workload {
        match self {
            ChildWorkload::Validation => Workload::Validation,
            ChildWorkload::Raw => Workload::RawRecover,
        }
    }

    fn marker(self) -> &'static str {
        match self {
            ChildWorkload::Validation => "*callgrind_marker_validation*",
            ChildWorkload::Raw => "*callgrind_marker_raw_recover*",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            ChildWorkload::Validation => "validation",
            ChildWorkload::Raw => "raw",
        }
    }
}

/// Instruction counts from callgrind.
#[derive(Debug, Clone, Serialize)]
pub struct Instructions {
    pub valgrind: String,
    pub count_per_run: usize,
    /// Instructions per full validation, one per callgrind run.
    pub validation_ir: Vec<f64>,
    /// Instructions per raw recovery, one per callgrind run.
    pub raw_recover_ir: Vec<f64>,
    /// The command behind each validation count (`raw` for the other side).
    pub command: String,
}

pub fn run(args: TicketsArgs) -> Result<()> {
    if let Some(child) = args.callgrind_child {
        let ok = livefarm_pm::bench::instruction_workload(child.workload(), args.count.max(1))?;
        if ok != args.count.max(1) {
            bail!("{ok} of {} operations succeeded", args.count);
        }
        return Ok(());
    }
    let value = measure(&args)?;
    if args.json {
        return print_json(&value);
    }
    print_table(&value);
    Ok(())
}

/// Runs the bench and returns its JSON object (also what `bench all` collects).
pub fn measure(args: &TicketsArgs) -> Result<Value> {
    if args.rounds == 0 || args.seconds.is_nan() || args.seconds <= 0.0 {
        return Err(super::usage("--rounds and --seconds must be positive"));
    }
    // Find valgrind before spending half a minute on the timed part.
    let valgrind = if args.instructions {
        Some(find_valgrind().context(INSTALL_HINT)?)
    } else {
        None
    };
    let machine = Machine::detect();
    let load_before = LoadAverage::now();
    let options = BenchOptions {
        measure_for: Duration::from_secs_f64(args.seconds),
        rounds: args.rounds,
        ..BenchOptions::default()
    };
    eprintln!(
        "tickets: {} rounds of {:.1} s raw recovery + {:.1} s validation",
        options.rounds, args.seconds, args.seconds
    );
    let report = livefarm_pm::bench::run(options).context("ticket benchmark")?;
    let instructions = match valgrind {
        Some(valgrind) => Some(count_instructions(&valgrind, args.count.max(1), 5)?),
        None => None,
    };
    let load_after = LoadAverage::now();
    let figures = figures(&report, instructions.as_ref());
    let mut value = serde_json::to_value(&report)?;
    if let Some(object) = value.as_object_mut() {
        object.remove("ratio_vs_raw_recover");
        object.remove("ratio_cpu_vs_raw_recover");
        object.insert("bench".into(), "tickets".into());
        if let Value::Object(figures) = serde_json::to_value(&figures)? {
            object.extend(figures);
        }
        object.insert("instructions".into(), serde_json::to_value(&instructions)?);
        object.insert(
            "load_average_before".into(),
            serde_json::to_value(load_before)?,
        );
        object.insert(
            "load_average_after".into(),
            serde_json::to_value(load_after)?,
        );
        object.insert("machine".into(), serde_json::to_value(&machine)?);
    }
    if report.validation_errors > 0 {
        bail!(
            "{} tickets failed validation during the run",
            report.validation_errors
        );
    }
    Ok(value)
}

fn figures(report: &BenchReport, instructions: Option<&Instructions>) -> Figures {
    let mut figures = Figures::default();
    if let Some(ins) = instructions {
        let rounds: Vec<f64> = ins
            .raw_recover_ir
            .iter()
            .zip(&ins.validation_ir)
            .map(|(raw, validation)| raw / validation.max(1.0))
            .collect();
        figures.add("ratio_instructions_vs_raw_recover", &rounds, true);
        figures.set_headline("ratio_instructions_vs_raw_recover");
    } else {
        figures.set_headline("ratio_cpu_vs_raw_recover");
    }
    let cpu: Vec<f64> = report.rounds.iter().filter_map(|r| r.cpu_ratio()).collect();
    figures.add("ratio_cpu_vs_raw_recover", &cpu, true);
    let wall: Vec<f64> = report.rounds.iter().map(|r| r.wall_ratio()).collect();
    figures.add("ratio_vs_raw_recover", &wall, true);
    figures
}

/// `$LIVEFARM_VALGRIND`, `valgrind` on PATH, or the copy the install script unpacks.
fn find_valgrind() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LIVEFARM_VALGRIND") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("valgrind"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        [
            PathBuf::from(TOOLS_VALGRIND),
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(TOOLS_VALGRIND),
        ]
        .into_iter()
        .find(|p| p.is_file())
    })
}

/// `rounds` callgrind runs of each workload, alternating.
fn count_instructions(valgrind: &Path, count: usize, rounds: usize) -> Result<Instructions> {
    let exe = std::env::current_exe().context("locating this livefarm binary")?;
    let dir = tempfile::Builder::new()
        .prefix("livefarm-callgrind-")
        .tempdir()?;
    let mut instructions = Instructions {
        valgrind: valgrind.display().to_string(),
        count_per_run: count,
        validation_ir: Vec::new(),
        raw_recover_ir: Vec::new(),
        command: String::new(),
    };
    for round in 0..rounds {
        for child in [ChildWorkload::Raw, ChildWorkload::Validation] {
            eprintln!("tickets: callgrind round {round}, {}", child.arg());
            let out = dir.path().join(format!("{}-{round}.out", child.arg()));
            let mut command = Command::new(valgrind);
            command
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(format!("--toggle-collect={}", child.marker()))
                .arg(&exe)
                .args(["bench", "tickets", "--callgrind-child", child.arg()])
                .args(["--count", &count.to_string()])
                .env("RUST_LOG", "error");
            if instructions.command.is_empty() {
                instructions.command = format!("{command:?}").replace('"', "");
            }
            let output = command
                .output()
                .with_context(|| format!("running {}", valgrind.display()))?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
                bail!(
                    "callgrind run failed ({}): {}",
                    output.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                );
            }
            let text = std::fs::read_to_string(&out)
                .with_context(|| format!("reading {}", out.display()))?;
            let total = callgrind_total(&text)
                .with_context(|| format!("no instruction total in {}", out.display()))?;
            if total == 0 {
                bail!(
                    "callgrind counted nothing inside {}: was the binary built without symbols?",
                    child.marker()
                );
            }
            let per_op = total as f64 / count as f64;
            match child {
                ChildWorkload::Raw => instructions.raw_recover_ir.push(per_op),
                ChildWorkload::Validation => instructions.validation_ir.push(per_op),
            }
        }
    }
    Ok(instructions)
}

/// The `totals:` (or `summary:`) line of a callgrind output file: instructions (the first
/// event, `Ir`).
pub fn callgrind_total(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("totals:"))
        .or_else(|| text.lines().find(|l| l.starts_with("summary:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn print_table(value: &Value) {
    let num = |key: &str| value.get(key).and_then(Value::as_f64);
    let rate = |key: &str| num(key).map_or_else(|| "n/a".to_owned(), |v| format!("{v:.0} /s"));
    println!(
        "tickets bench: {} signed tickets, {} rounds of {:.1} s per side, {} cpus",
        value["tickets_in_pool"],
        value["rounds"].as_array().map_or(0, Vec::len),
        num("measure_secs").unwrap_or(0.0),
        value["available_parallelism"]
    );
    let mut table = Table::new(&["figure", "value", "rounds (min..max)", "stable"]);
    table.row(vec![
        "raw libsecp256k1 recover".into(),
        rate("raw_secp256k1_recover_per_sec"),
        String::new(),
        String::new(),
    ]);
    table.row(vec![
        "full validation, 1 thread".into(),
        rate("full_validation_per_sec_1_thread"),
        String::new(),
        String::new(),
    ]);
    table.row(vec![
        "full validation, 2 threads".into(),
        rate("full_validation_per_sec_2_threads"),
        String::new(),
        String::new(),
    ]);
    for key in [
        "ratio_instructions_vs_raw_recover",
        "ratio_cpu_vs_raw_recover",
        "ratio_vs_raw_recover",
        "k256_ratio_vs_raw_recover",
        "two_thread_speedup",
    ] {
        if value.get(key).is_none() {
            continue;
        }
        let spread = &value[format!("{key}_spread")];
        let range = match (spread["min"].as_f64(), spread["max"].as_f64()) {
            (Some(a), Some(b)) => format!("{a:.3}..{b:.3}"),
            _ => String::new(),
        };
        let marker = if value["headline"] == key { " *" } else { "" };
        table.row(vec![
            format!("{key}{marker}"),
            fmt_opt(num(key)),
            range,
            spread["stable"]
                .as_bool()
                .map_or_else(String::new, |s| s.to_string()),
        ]);
    }
    table.print();
    println!("* headline");
    if let Some(errors) = value["measurement_errors"].as_array() {
        for error in errors {
            println!("measurement error: {}", error.as_str().unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callgrind_totals_are_read() {
        let text = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 123456\n\nfn=(1) main\n5 10\ntotals: 123456\n";
        assert_eq!(callgrind_total(text), Some(123_456));
        assert_eq!(callgrind_total("events: Ir\nsummary: 42\n"), Some(42));
        assert_eq!(callgrind_total("nothing"), None);
    }
}
