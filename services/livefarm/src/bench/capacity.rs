//! `livefarm bench capacity`: livepeer_bench's method. For N = 1, 2, 3, ... run N concurrent
//! streams, each transcoding the same source's segments in order as fast as it can; the real-time
//! duration ratio is wall time / content duration, and capacity is the largest N (with every
//! smaller N passing) whose ratio stays at or below the threshold.
//!
//! That count moves with every neighbour on a shared machine (a core taken away halves it), so
//! the headline is `ratio_cpu_capacity_vs_ffmpeg`: after the search, `--rounds` alternating
//! single-stream runs of each side measure the CPU one stream costs (Livefarm: this process,
//! `getrusage`; ffmpeg: the waited-for child, `RUSAGE_CHILDREN`), and the ratio is ffmpeg's CPU
//! per stream / Livefarm's (above 1: Livefarm fits more streams in the same cores), median of
//! the rounds. `ratio_capacity_vs_ffmpeg` (the counts' ratio) stays beside it, and
//! `cpu_capacity_*` turns CPU per stream into the streams the machine's cores would carry at
//! the threshold if nothing else ran.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use livefarm_profiles::{studio_default_ladder, Profile};
use serde::Serialize;

use super::engine::transcode_stream;
use super::ffmpeg::{self, Rendition, Source, X264Report};
use super::ladder::check_outputs;
use super::measure::{cpu_seconds, median, ratio, Figures, LoadAverage, Machine, Who};
use super::report::{fmt_opt, print_json, Table};
use super::{usage, validate_preset, WorkDir};

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds of source video per stream (cut into 2 s segments).
    #[arg(long, default_value_t = 8.0)]
    pub duration: f64,
    /// Highest stream count tried.
    #[arg(long, default_value_t = 8)]
    pub max_streams: usize,
    /// Source size, WIDTHxHEIGHT (30 fps H.264 High).
    #[arg(long, default_value = "1280x720")]
    pub resolution: String,
    /// libx264 preset, used by both sides.
    #[arg(long, default_value = "veryfast")]
    pub preset: String,
    /// Largest real-time duration ratio (wall / content) that still counts as keeping up.
    #[arg(long, default_value_t = 0.8)]
    pub threshold: f64,
    /// Keep the source and every output in this directory.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Alternating single-stream CPU rounds per side after the search.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// One single-stream CPU round.
#[derive(Debug, Clone, Serialize)]
struct CpuRound {
    livefarm_cpu_s: f64,
    ffmpeg_cpu_s: f64,
    livefarm_wall_s: f64,
    ffmpeg_wall_s: f64,
}

#[derive(Debug, Clone, Serialize)]
struct Step {
    streams: usize,
    wall_s: f64,
    /// Wall time / content duration.
    ratio: f64,
    pass: bool,
}

#[derive(Debug, Serialize)]
struct SideCapacity {
    capacity: usize,
    /// Every N tried passed, up to --max-streams: the real capacity may be higher.
    capped: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Serialize)]
struct CapacityReport {
    bench: &'static str,
    machine: Machine,
    cores: usize,
    resolution: String,
    duration_s: f64,
    segments: usize,
    source_frames: u64,
    renditions: Vec<Rendition>,
    x264: X264Report,
    threshold: f64,
    method: &'static str,
    livefarm: SideCapacity,
    ffmpeg: SideCapacity,
    ratio_capacity_vs_ffmpeg: Option<f64>,
    /// `ratio_cpu_capacity_vs_ffmpeg` (headline): ffmpeg CPU per stream / Livefarm CPU per
    /// stream, median of the rounds.
    #[serde(flatten)]
    figures: Figures,
    cpu_rounds: Vec<CpuRound>,
    /// cores x threshold x content seconds / CPU seconds per stream (median round).
    cpu_capacity_livefarm: Option<f64>,
    cpu_capacity_ffmpeg: Option<f64>,
    load_average_before: Option<LoadAverage>,
    load_average_after: Option<LoadAverage>,
    sanity_ok: bool,
    sanity_failures: Vec<String>,
    baseline_commands: Vec<String>,
    total_wall_s: f64,
}

/// Largest N such that every step up to N passed (steps in increasing N, starting at 1).
fn capacity_of(steps: &[Step]) -> usize {
    steps
        .iter()
        .enumerate()
        .take_while(|(i, s)| s.pass && s.streams == i + 1)
        .count()
}

pub fn run(args: CapacityArgs) -> Result<()> {
    let started = Instant::now();
    let machine = Machine::detect();
    let load_average_before = LoadAverage::now();
    validate_preset(&args.preset)?;
    if !(1..=50).contains(&args.rounds) {
        return Err(usage("--rounds must be between 1 and 50"));
    }
    if !(2.0..=120.0).contains(&args.duration) {
        return Err(usage("--duration must be between 2 and 120 seconds"));
    }
    if !(1..=64).contains(&args.max_streams) {
        return Err(usage("--max-streams must be between 1 and 64"));
    }
    if !(args.threshold > 0.0 && args.threshold <= 10.0) {
        return Err(usage("--threshold must be in (0, 10]"));
    }
    let (width, height) = ffmpeg::parse_resolution(&args.resolution)
        .map_err(|e| usage(format!("--resolution: {e}")))?;
    livefarm_media::init()?;
    let work = WorkDir::new(args.keep.as_deref())?;
    tracing::info!(dir = %work.path().display(), width, height, duration = args.duration, "making the test source");
    let source = ffmpeg::prepare_source(work.path(), width, height, args.duration)?;
    let profiles = studio_default_ladder();
    let renditions = profiles
        .iter()
        .map(|p| Rendition::of(p, width, height))
        .collect::<Result<Vec<_>>>()?;
    let continuous_outputs = |dir: &Path| -> Vec<PathBuf> {
        renditions
            .iter()
            .map(|r| dir.join(format!("{}.ts", r.name)))
            .collect()
    };

    let (mut lf_steps, mut ff_steps, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    let (mut lf_on, mut ff_on) = (true, true);
    for n in 1..=args.max_streams {
        if !lf_on && !ff_on {
            break;
        }
        if lf_on {
            let dir = work.path().join(format!("livefarm-n{n}"));
            let wall = run_livefarm(n, &source, &profiles, &args.preset, &dir)?;
            failures.extend(check_stream0(
                &dir,
                &source,
                &renditions,
                "livefarm",
                n,
                true,
            )?);
            let step = step(n, wall, source.duration, args.threshold);
            tracing::info!(
                streams = n,
                wall_s = wall,
                ratio = step.ratio,
                pass = step.pass,
                "livefarm"
            );
            lf_on = step.pass;
            lf_steps.push(step);
            cleanup(&args, &dir);
        }
        if ff_on {
            let dir = work.path().join(format!("ffmpeg-n{n}"));
            let wall = run_ffmpeg(
                n,
                &source,
                &renditions,
                &args.preset,
                &dir,
                &continuous_outputs,
            )?;
            failures.extend(check_stream0(
                &dir,
                &source,
                &renditions,
                "ffmpeg",
                n,
                false,
            )?);
            let step = step(n, wall, source.duration, args.threshold);
            tracing::info!(
                streams = n,
                wall_s = wall,
                ratio = step.ratio,
                pass = step.pass,
                "ffmpeg"
            );
            ff_on = step.pass;
            ff_steps.push(step);
            cleanup(&args, &dir);
        }
    }
    // CPU per stream, one stream at a time, sides alternating.
    let mut cpu_rounds = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let dir = work.path().join(format!("cpu-livefarm-{round}"));
        let cpu0 = cpu_seconds(Who::SelfProcess)?;
        let livefarm_wall_s = run_livefarm(1, &source, &profiles, &args.preset, &dir)?;
        let livefarm_cpu_s = cpu_seconds(Who::SelfProcess)? - cpu0;
        cleanup(&args, &dir);
        let dir = work.path().join(format!("cpu-ffmpeg-{round}"));
        let cpu0 = cpu_seconds(Who::Children)?;
        let ffmpeg_wall_s = run_ffmpeg(
            1,
            &source,
            &renditions,
            &args.preset,
            &dir,
            &continuous_outputs,
        )?;
        let ffmpeg_cpu_s = cpu_seconds(Who::Children)? - cpu0;
        cleanup(&args, &dir);
        tracing::info!(round, livefarm_cpu_s, ffmpeg_cpu_s, "cpu round");
        cpu_rounds.push(CpuRound {
            livefarm_cpu_s,
            ffmpeg_cpu_s,
            livefarm_wall_s,
            ffmpeg_wall_s,
        });
    }
    let mut figures = Figures::default();
    figures.set_headline("ratio_cpu_capacity_vs_ffmpeg");
    let per_round: Vec<f64> = cpu_rounds
        .iter()
        .filter_map(|r| ratio(r.ffmpeg_cpu_s, r.livefarm_cpu_s))
        .collect();
    figures.add("ratio_cpu_capacity_vs_ffmpeg", &per_round, false);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu_capacity = |cpu: Vec<f64>| {
        ratio(
            cores as f64 * args.threshold * source.duration,
            median(&cpu),
        )
    };
    let cpu_capacity_livefarm = cpu_capacity(cpu_rounds.iter().map(|r| r.livefarm_cpu_s).collect());
    let cpu_capacity_ffmpeg = cpu_capacity(cpu_rounds.iter().map(|r| r.ffmpeg_cpu_s).collect());

    let side = |steps: Vec<Step>| {
        let capacity = capacity_of(&steps);
        SideCapacity {
            capacity,
            capped: capacity == args.max_streams,
            steps,
        }
    };
    let (livefarm, ffmpeg_side) = (side(lf_steps), side(ff_steps));
    let report = CapacityReport {
        bench: "capacity",
        machine,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        resolution: format!("{width}x{height}"),
        duration_s: source.duration,
        segments: source.segments.len(),
        source_frames: source.video_frames,
        x264: ffmpeg::x264_report(&args.preset),
        threshold: args.threshold,
        method: "N concurrent streams, each transcoding every segment of the source in order as fast as it can; \
                 livefarm: N TranscodeSessions on N threads in one process; ffmpeg: N concurrent CLI processes, \
                 each the whole source in one process with an IDR forced every 2 s; ratio = wall / content seconds",
        ratio_capacity_vs_ffmpeg: ratio(livefarm.capacity as f64, ffmpeg_side.capacity as f64),
        figures,
        cpu_rounds,
        cpu_capacity_livefarm,
        cpu_capacity_ffmpeg,
        load_average_before,
        load_average_after: LoadAverage::now(),
        livefarm,
        ffmpeg: ffmpeg_side,
        sanity_ok: failures.is_empty(),
        sanity_failures: failures,
        baseline_commands: {
            let mut commands = source.commands.clone();
            commands.push(ffmpeg::shell_line(
                "ffmpeg",
                &ffmpeg::ladder_args(
                    &source.path,
                    &renditions,
                    &args.preset,
                    &continuous_outputs(Path::new("out/stream0")),
                    true,
                    false,
                ),
            ));
            commands
        },
        renditions,
        total_wall_s: started.elapsed().as_secs_f64(),
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_table(&report);
    }
    if !report.sanity_ok {
        bail!("sanity check failed: {}", report.sanity_failures.join("; "));
    }
    Ok(())
}

fn step(streams: usize, wall: f64, duration: f64, threshold: f64) -> Step {
    let ratio = wall / duration;
    Step {
        streams,
        wall_s: wall,
        ratio,
        pass: ratio <= threshold,
    }
}

fn cleanup(args: &CapacityArgs, dir: &Path) {
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// N sessions on N threads; returns the wall time until the last stream finished.
fn run_livefarm(
    n: usize,
    source: &Source,
    profiles: &[Profile],
    preset: &str,
    dir: &Path,
) -> Result<f64> {
    let dirs: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("stream{i}"))).collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    let t0 = Instant::now();
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = dirs
            .iter()
            .map(|d| {
                scope.spawn(move || {
                    transcode_stream(&source.segments, profiles, preset, d).map(|_| ())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a stream thread panicked")))
            })
            .collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    for result in results {
        result?;
    }
    Ok(wall)
}

/// N concurrent `ffmpeg` processes doing the continuous job; wall time until the last exits.
fn run_ffmpeg(
    n: usize,
    source: &Source,
    renditions: &[Rendition],
    preset: &str,
    dir: &Path,
    outputs: &dyn Fn(&Path) -> Vec<PathBuf>,
) -> Result<f64> {
    let mut jobs = Vec::with_capacity(n);
    for i in 0..n {
        let d = dir.join(format!("stream{i}"));
        std::fs::create_dir_all(&d)?;
        let args = ffmpeg::ladder_args(&source.path, renditions, preset, &outputs(&d), true, false);
        jobs.push((args, d.join("ffmpeg.log")));
    }
    let t0 = Instant::now();
    let children = jobs
        .iter()
        .map(|(args, log)| ffmpeg::spawn_ffmpeg(args, log))
        .collect::<Result<Vec<_>>>()?;
    let mut first_error = None;
    for (child, (_, log)) in children.into_iter().zip(&jobs) {
        if let Err(error) = ffmpeg::wait_ffmpeg(child, log) {
            first_error.get_or_insert(error);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    match first_error {
        Some(error) => Err(error),
        None => Ok(wall),
    }
}

/// ffprobes the first stream's renditions: every frame there, one IDR per segment.
fn check_stream0(
    dir: &Path,
    source: &Source,
    renditions: &[Rendition],
    side: &str,
    n: usize,
    segmented: bool,
) -> Result<Vec<String>> {
    let stream = dir.join("stream0");
    let files: Vec<Vec<PathBuf>> = renditions
        .iter()
        .map(|r| {
            if segmented {
                (0..source.segments.len())
                    .map(|seq| super::engine::segment_path(&stream, &r.name, seq))
                    .collect()
            } else {
                vec![stream.join(format!("{}.ts", r.name))]
            }
        })
        .collect();
    let (_, probes) = check_outputs(&files, renditions, &stream)
        .with_context(|| format!("checking {side} n={n}"))?;
    let keyframes = source.segments.len() as u64;
    Ok(renditions
        .iter()
        .zip(probes)
        .filter(|(_, p)| p.frames != source.video_frames || p.keyframes != keyframes)
        .map(|(r, p)| {
            format!(
                "{side} n={n} {}: {} frames / {} keyframes, expected {} / {keyframes}",
                r.name, p.frames, p.keyframes, source.video_frames
            )
        })
        .collect())
}

fn print_table(report: &CapacityReport) {
    println!(
        "capacity bench: {} source, {:.0} s ({} segments) per stream -> Studio ladder (x264 {}), {} cores, pass if wall/content <= {}",
        report.resolution, report.duration_s, report.segments, report.x264.preset, report.cores, report.threshold
    );
    let mut table = Table::new(&[
        "streams",
        "livefarm wall s",
        "livefarm ratio",
        "ffmpeg wall s",
        "ffmpeg ratio",
    ]);
    let rows = report.livefarm.steps.len().max(report.ffmpeg.steps.len());
    let cell = |steps: &[Step], i: usize, f: fn(&Step) -> String| {
        steps.get(i).map_or_else(|| "-".to_string(), f)
    };
    for i in 0..rows {
        let n = report
            .livefarm
            .steps
            .get(i)
            .or(report.ffmpeg.steps.get(i))
            .map_or(0, |s| s.streams);
        table.row(vec![
            n.to_string(),
            cell(&report.livefarm.steps, i, |s| format!("{:.2}", s.wall_s)),
            cell(&report.livefarm.steps, i, |s| {
                format!("{:.3}{}", s.ratio, if s.pass { "" } else { " (fail)" })
            }),
            cell(&report.ffmpeg.steps, i, |s| format!("{:.2}", s.wall_s)),
            cell(&report.ffmpeg.steps, i, |s| {
                format!("{:.3}{}", s.ratio, if s.pass { "" } else { " (fail)" })
            }),
        ]);
    }
    table.print();
    println!();
    let capped = |s: &SideCapacity| {
        if s.capped {
            " (capped by --max-streams)"
        } else {
            ""
        }
    };
    println!(
        "livefarm capacity:         {}{}",
        report.livefarm.capacity,
        capped(&report.livefarm)
    );
    println!(
        "ffmpeg capacity:           {}{}",
        report.ffmpeg.capacity,
        capped(&report.ffmpeg)
    );
    println!(
        "ratio_capacity_vs_ffmpeg:  {}",
        fmt_opt(report.ratio_capacity_vs_ffmpeg)
    );
    let cpu = report.figures.get("ratio_cpu_capacity_vs_ffmpeg");
    println!(
        "ratio_cpu_capacity_vs_ffmpeg (headline): {}{}",
        fmt_opt(cpu.and_then(|f| f.value)),
        cpu.and_then(|f| f.stats.as_ref())
            .map_or_else(String::new, |s| format!(
                " (rounds {:.3}..{:.3}, stable {})",
                s.spread.min, s.spread.max, s.spread.stable
            ))
    );
    println!(
        "cpu capacity at the threshold: livefarm {}, ffmpeg {} streams",
        fmt_opt(report.cpu_capacity_livefarm),
        fmt_opt(report.cpu_capacity_ffmpeg)
    );
    println!(
        "sanity:                    {}",
        if report.sanity_ok {
            "ok (stream 0 of every step: all frames, one idr per segment)".to_string()
        } else {
            format!("FAILED: {}", report.sanity_failures.join("; "))
        }
    );
    if let Some(line) = report.baseline_commands.last() {
        println!("baseline (one per stream): {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(ratios: &[f64]) -> Vec<Step> {
        ratios
            .iter()
            .enumerate()
            .map(|(i, r)| step(i + 1, r * 8.0, 8.0, 0.8))
            .collect()
    }

    #[test]
    fn capacity_is_the_last_passing_n_before_the_first_failure() {
        assert_eq!(capacity_of(&steps(&[0.3, 0.6, 0.85])), 2);
        assert_eq!(capacity_of(&steps(&[0.9])), 0);
        assert_eq!(capacity_of(&steps(&[0.3, 0.8])), 2);
        // A lucky pass after a failure does not count.
        assert_eq!(capacity_of(&steps(&[0.3, 0.9, 0.7])), 1);
        assert_eq!(capacity_of(&[]), 0);
    }

    #[test]
    fn ratio_is_wall_over_content() {
        let s = step(3, 6.0, 8.0, 0.8);
        assert!((s.ratio - 0.75).abs() < 1e-12);
        assert!(s.pass);
        assert!(!step(3, 6.5, 8.0, 0.8).pass);
    }
}
