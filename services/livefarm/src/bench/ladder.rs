//! `livefarm bench ladder`: one stream through the Studio default ladder, Livefarm in-process
//! against the `ffmpeg` CLI per segment and over the whole source, same x264 settings.
//!
//! The sides alternate within each run (Livefarm, per segment, continuous; `--runs` times).
//! Headline `ratio_cpu_vs_ffmpeg_continuous`: Livefarm's CPU seconds (this process, every
//! thread, `getrusage`) / the `ffmpeg` process's (waited for, `RUSAGE_CHILDREN`) in the same
//! run, median over runs, with its spread; the wall-clock ratios sit beside it. CPU is what a
//! transcode costs whatever the neighbours do; wall time on a shared 2-core machine is not.
//! Below 1 Livefarm spends less CPU than the CLI. The baselines do the same x264 work, not a
//! bare subset of it, so no physical bound applies.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use livefarm_profiles::studio_default_ladder;
use serde::Serialize;

use super::engine::{segment_path, transcode_stream};
use super::ffmpeg::{self, Rendition, Source, VideoProbe, X264Report};
use super::measure::{cpu_seconds, median, ratio, Figures, LoadAverage, Machine, Who};
use super::report::{fmt_opt, print_json, Table};
use super::{usage, validate_preset, WorkDir};

#[derive(Debug, Args)]
pub struct LadderArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds of source video (cut into 2 s segments).
    #[arg(long, default_value_t = 12.0)]
    pub duration: f64,
    /// Measured runs per side (sides alternate within each run).
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
    /// libx264 preset, used by every side.
    #[arg(long, default_value = "veryfast")]
    pub preset: String,
    /// Source size, WIDTHxHEIGHT (30 fps H.264 High).
    #[arg(long, default_value = "1920x1080")]
    pub resolution: String,
    /// Keep the source, segments and every output in this directory.
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Side {
    Livefarm,
    FfmpegPerSegment,
    FfmpegContinuous,
}

impl Side {
    const ALL: [Side; 3] = [
        Side::Livefarm,
        Side::FfmpegPerSegment,
        Side::FfmpegContinuous,
    ];

    fn label(self) -> &'static str {
        match self {
            Side::Livefarm => "livefarm (in-process session)",
            Side::FfmpegPerSegment => "ffmpeg cli, process per segment",
            Side::FfmpegContinuous => "ffmpeg cli, whole source",
        }
    }

    fn dir_name(self) -> &'static str {
        match self {
            Side::Livefarm => "livefarm",
            Side::FfmpegPerSegment => "ffmpeg-per-segment",
            Side::FfmpegContinuous => "ffmpeg-continuous",
        }
    }
}

/// One measured run of one side.
struct Sample {
    wall: f64,
    cpu: f64,
    bytes: u64,
    probes: Vec<VideoProbe>,
}

#[derive(Debug, Serialize)]
struct RenditionCheck {
    name: String,
    frames: u64,
    keyframes: u64,
}

#[derive(Debug, Serialize)]
struct SideReport {
    side: Side,
    wall_s_median: f64,
    cpu_s_median: f64,
    wall_s_runs: Vec<f64>,
    cpu_s_runs: Vec<f64>,
    /// Content seconds per wall second.
    realtime_factor: f64,
    /// Bytes of all renditions (median over runs): rate control should agree across sides.
    output_bytes_median: f64,
    /// ffprobe of the first run's renditions (segments concatenated).
    renditions: Vec<RenditionCheck>,
}

#[derive(Debug, Serialize)]
struct Sanity {
    ok: bool,
    expected_frames_per_rendition: u64,
    expected_keyframes_per_rendition: u64,
    failures: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SourceReport {
    width: u32,
    height: u32,
    fps: u32,
    duration_s: f64,
    segments: usize,
    segment_s: u32,
    video_frames: u64,
    path: Option<String>,
}

#[derive(Debug, Serialize)]
struct BaselineCommands {
    source: Vec<String>,
    /// For the first segment; the others differ only in their file names.
    per_segment: String,
    continuous: String,
}

#[derive(Debug, Serialize)]
struct LadderReport {
    bench: &'static str,
    machine: Machine,
    cores: usize,
    source: SourceReport,
    renditions: Vec<Rendition>,
    x264: X264Report,
    runs: u32,
    order: &'static str,
    sides: Vec<SideReport>,
    /// `ratio_cpu_vs_ffmpeg_continuous` (headline), `ratio_cpu_vs_ffmpeg_per_segment`,
    /// `ratio_wall_vs_ffmpeg_continuous`, `ratio_wall_vs_ffmpeg_per_segment`: Livefarm over
    /// the baseline, per run, median.
    #[serde(flatten)]
    figures: Figures,
    load_average_before: Option<LoadAverage>,
    load_average_after: Option<LoadAverage>,
    realtime_factor: f64,
    sanity: Sanity,
    baseline_commands: BaselineCommands,
    total_wall_s: f64,
}

pub fn run(args: LadderArgs) -> Result<()> {
    let started = Instant::now();
    let machine = Machine::detect();
    let load_average_before = LoadAverage::now();
    validate_preset(&args.preset)?;
    if !(2.0..=600.0).contains(&args.duration) {
        return Err(usage("--duration must be between 2 and 600 seconds"));
    }
    if !(1..=50).contains(&args.runs) {
        return Err(usage("--runs must be between 1 and 50"));
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
    tracing::info!(
        segments = source.segments.len(),
        frames = source.video_frames,
        "source ready"
    );

    let mut samples: Vec<Vec<Sample>> = Side::ALL.iter().map(|_| Vec::new()).collect();
    for run in 0..args.runs {
        for (i, side) in Side::ALL.into_iter().enumerate() {
            let out = work.path().join(format!("run{run}")).join(side.dir_name());
            std::fs::create_dir_all(&out)?;
            let sample = measure_side(side, &source, &profiles, &renditions, &args.preset, &out)?;
            tracing::info!(
                run,
                side = side.dir_name(),
                wall_s = sample.wall,
                cpu_s = sample.cpu,
                "measured"
            );
            samples[i].push(sample);
            if args.keep.is_none() {
                // Outputs are checked already; free the disk for the next run.
                let _ = std::fs::remove_dir_all(&out);
            }
        }
    }

    let expected_keyframes = source.segments.len() as u64;
    let mut failures = Vec::new();
    for (side, side_samples) in Side::ALL.iter().zip(&samples) {
        for (run, sample) in side_samples.iter().enumerate() {
            for (rendition, probe) in renditions.iter().zip(&sample.probes) {
                if probe.frames != source.video_frames || probe.keyframes != expected_keyframes {
                    failures.push(format!(
                        "{} run {run} {}: {} frames / {} keyframes, expected {} / {}",
                        side.dir_name(),
                        rendition.name,
                        probe.frames,
                        probe.keyframes,
                        source.video_frames,
                        expected_keyframes
                    ));
                }
            }
        }
    }

    let sides: Vec<SideReport> = Side::ALL
        .iter()
        .zip(&samples)
        .map(|(side, s)| {
            let wall: Vec<f64> = s.iter().map(|x| x.wall).collect();
            let cpu: Vec<f64> = s.iter().map(|x| x.cpu).collect();
            let bytes: Vec<f64> = s.iter().map(|x| x.bytes as f64).collect();
            let wall_median = median(&wall);
            SideReport {
                side: *side,
                wall_s_median: wall_median,
                cpu_s_median: median(&cpu),
                wall_s_runs: wall,
                cpu_s_runs: cpu,
                realtime_factor: ratio(source.duration, wall_median).unwrap_or(0.0),
                output_bytes_median: median(&bytes),
                renditions: renditions
                    .iter()
                    .zip(s.first().map(|x| x.probes.as_slice()).unwrap_or_default())
                    .map(|(r, p)| RenditionCheck {
                        name: r.name.clone(),
                        frames: p.frames,
                        keyframes: p.keyframes,
                    })
                    .collect(),
            }
        })
        .collect();
    let lf = &sides[0];
    let per_run = |a: &[Sample], b: &[Sample], f: fn(&Sample) -> f64| -> Vec<f64> {
        a.iter()
            .zip(b)
            .filter_map(|(x, y)| ratio(f(x), f(y)))
            .collect()
    };
    let (lf_s, seg_s, cont_s) = (&samples[0], &samples[1], &samples[2]);
    let mut figures = Figures::default();
    figures.set_headline("ratio_cpu_vs_ffmpeg_continuous");
    figures.add(
        "ratio_cpu_vs_ffmpeg_continuous",
        &per_run(lf_s, cont_s, |s| s.cpu),
        false,
    );
    figures.add(
        "ratio_cpu_vs_ffmpeg_per_segment",
        &per_run(lf_s, seg_s, |s| s.cpu),
        false,
    );
    figures.add(
        "ratio_wall_vs_ffmpeg_continuous",
        &per_run(lf_s, cont_s, |s| s.wall),
        false,
    );
    figures.add(
        "ratio_wall_vs_ffmpeg_per_segment",
        &per_run(lf_s, seg_s, |s| s.wall),
        false,
    );
    let first_segment = &source.segments[0].path;
    let seg_outputs: Vec<PathBuf> = renditions
        .iter()
        .map(|r| segment_path(Path::new("out"), &r.name, 0))
        .collect();
    let cont_outputs: Vec<PathBuf> = renditions
        .iter()
        .map(|r| Path::new("out").join(format!("{}.ts", r.name)))
        .collect();
    let report = LadderReport {
        bench: "ladder",
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        machine,
        source: SourceReport {
            width,
            height,
            fps: ffmpeg::SOURCE_FPS,
            duration_s: source.duration,
            segments: source.segments.len(),
            segment_s: ffmpeg::SEGMENT_SECONDS,
            video_frames: source.video_frames,
            path: args
                .keep
                .as_ref()
                .map(|_| source.path.display().to_string()),
        },
        x264: ffmpeg::x264_report(&args.preset),
        runs: args.runs,
        order: "livefarm, ffmpeg per segment, ffmpeg continuous; repeated per run",
        figures,
        load_average_before,
        load_average_after: LoadAverage::now(),
        realtime_factor: lf.realtime_factor,
        sanity: Sanity {
            ok: failures.is_empty(),
            expected_frames_per_rendition: source.video_frames,
            expected_keyframes_per_rendition: expected_keyframes,
            failures,
        },
        baseline_commands: BaselineCommands {
            source: source.commands.clone(),
            per_segment: ffmpeg::shell_line(
                "ffmpeg",
                &ffmpeg::ladder_args(
                    first_segment,
                    &renditions,
                    &args.preset,
                    &seg_outputs,
                    false,
                    true,
                ),
            ),
            continuous: ffmpeg::shell_line(
                "ffmpeg",
                &ffmpeg::ladder_args(
                    &source.path,
                    &renditions,
                    &args.preset,
                    &cont_outputs,
                    true,
                    false,
                ),
            ),
        },
        renditions,
        sides,
        total_wall_s: started.elapsed().as_secs_f64(),
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_table(&report);
    }
    if !report.sanity.ok {
        bail!("sanity check failed: {}", report.sanity.failures.join("; "));
    }
    Ok(())
}

fn measure_side(
    side: Side,
    source: &Source,
    profiles: &[livefarm_profiles::Profile],
    renditions: &[Rendition],
    preset: &str,
    out: &Path,
) -> Result<Sample> {
    // Per rendition: the files to check (segments are concatenated afterwards).
    let (wall, cpu, files): (f64, f64, Vec<Vec<PathBuf>>) = match side {
        Side::Livefarm => {
            let cpu0 = cpu_seconds(Who::SelfProcess)?;
            let t0 = Instant::now();
            let output = transcode_stream(&source.segments, profiles, preset, out)?;
            let wall = t0.elapsed().as_secs_f64();
            let cpu = cpu_seconds(Who::SelfProcess)? - cpu0;
            let expected = source.video_frames;
            if let Some((name, frames)) = renditions
                .iter()
                .zip(&output.frames)
                .find(|(_, f)| **f != expected)
            {
                tracing::warn!(rendition = %name.name, frames, expected, "engine reports an unexpected frame count");
            }
            (wall, cpu, output.files)
        }
        Side::FfmpegPerSegment => {
            let logs = out.join("logs");
            std::fs::create_dir_all(&logs)?;
            let cpu0 = cpu_seconds(Who::Children)?;
            let t0 = Instant::now();
            let mut files = vec![Vec::new(); renditions.len()];
            for (seq, segment) in source.segments.iter().enumerate() {
                let outputs: Vec<PathBuf> = renditions
                    .iter()
                    .map(|r| segment_path(out, &r.name, seq))
                    .collect();
                let args =
                    ffmpeg::ladder_args(&segment.path, renditions, preset, &outputs, false, true);
                ffmpeg::run_ffmpeg(&args, &logs.join(format!("{seq:03}.log")))?;
                for (list, path) in files.iter_mut().zip(outputs) {
                    list.push(path);
                }
            }
            let wall = t0.elapsed().as_secs_f64();
            let cpu = cpu_seconds(Who::Children)? - cpu0;
            (wall, cpu, files)
        }
        Side::FfmpegContinuous => {
            let outputs: Vec<PathBuf> = renditions
                .iter()
                .map(|r| out.join(format!("{}.ts", r.name)))
                .collect();
            let args = ffmpeg::ladder_args(&source.path, renditions, preset, &outputs, true, false);
            let cpu0 = cpu_seconds(Who::Children)?;
            let t0 = Instant::now();
            ffmpeg::run_ffmpeg(&args, &out.join("ffmpeg.log"))?;
            let wall = t0.elapsed().as_secs_f64();
            let cpu = cpu_seconds(Who::Children)? - cpu0;
            (wall, cpu, outputs.into_iter().map(|p| vec![p]).collect())
        }
    };
    let (bytes, probes) = check_outputs(&files, renditions, out)?;
    Ok(Sample {
        wall,
        cpu,
        bytes,
        probes,
    })
}

/// Total bytes and an ffprobe of each rendition (its segments joined into one file first).
pub(super) fn check_outputs(
    files: &[Vec<PathBuf>],
    renditions: &[Rendition],
    out: &Path,
) -> Result<(u64, Vec<VideoProbe>)> {
    if files.len() != renditions.len() {
        bail!(
            "{} renditions expected, {} produced",
            renditions.len(),
            files.len()
        );
    }
    let mut bytes = 0;
    let mut probes = Vec::with_capacity(renditions.len());
    for (rendition, parts) in renditions.iter().zip(files) {
        for part in parts {
            bytes += std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        }
        let probe = match parts.as_slice() {
            [single] => ffmpeg::probe_video(single)?,
            _ => {
                let joined = out.join(format!("{}_all.ts", rendition.name));
                ffmpeg::concat_files(parts, &joined)?;
                ffmpeg::probe_video(&joined)?
            }
        };
        probes.push(probe);
    }
    Ok((bytes, probes))
}

fn print_table(report: &LadderReport) {
    println!(
        "ladder bench: {:.0} s of {}x{} {} fps H.264 in {} segments -> {} (x264 {}), {} runs, {} cores",
        report.source.duration_s,
        report.source.width,
        report.source.height,
        report.source.fps,
        report.source.segments,
        report
            .renditions
            .iter()
            .map(|r| format!("{} {}x{} {}k", r.name, r.width, r.height, r.bitrate / 1000))
            .collect::<Vec<_>>()
            .join(", "),
        report.x264.preset,
        report.runs,
        report.cores,
    );
    let mut table = Table::new(&[
        "side",
        "wall s",
        "cpu s",
        "x realtime",
        "MB out",
        "frames/rendition",
        "idr",
    ]);
    for side in &report.sides {
        table.row(vec![
            side.side_label().to_string(),
            format!("{:.2}", side.wall_s_median),
            format!("{:.2}", side.cpu_s_median),
            format!("{:.2}", side.realtime_factor),
            format!("{:.2}", side.output_bytes_median / 1e6),
            side.renditions
                .iter()
                .map(|r| r.frames.to_string())
                .collect::<Vec<_>>()
                .join("/"),
            side.renditions
                .iter()
                .map(|r| r.keyframes.to_string())
                .collect::<Vec<_>>()
                .join("/"),
        ]);
    }
    table.print();
    println!();
    let mut ratios = Table::new(&["figure", "value", "runs min..max", "stable"]);
    for figure in &report.figures.ratios {
        let marker = if report.figures.headline.as_deref() == Some(figure.name.as_str()) {
            " (headline)"
        } else {
            ""
        };
        let (range, stable) = figure.stats.as_ref().map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |s| {
                (
                    format!("{:.3}..{:.3}", s.spread.min, s.spread.max),
                    s.spread.stable.to_string(),
                )
            },
        );
        ratios.row(vec![
            format!("{}{marker}", figure.name),
            fmt_opt(figure.value),
            range,
            stable,
        ]);
    }
    ratios.row(vec![
        "realtime_factor".into(),
        format!("{:.3}", report.realtime_factor),
        String::new(),
        String::new(),
    ]);
    ratios.row(vec![
        "sanity".into(),
        if report.sanity.ok {
            format!(
                "ok ({} frames, {} idr per rendition on every side and run)",
                report.sanity.expected_frames_per_rendition,
                report.sanity.expected_keyframes_per_rendition
            )
        } else {
            format!("FAILED: {}", report.sanity.failures.join("; "))
        },
    ]);
    ratios.print();
    println!();
    println!("medians of {} runs; wall and cpu per side (cpu: getrusage self for livefarm, children for ffmpeg)", report.runs);
    println!(
        "baseline, per segment: {}",
        report.baseline_commands.per_segment
    );
    println!(
        "baseline, continuous:  {}",
        report.baseline_commands.continuous
    );
}

impl SideReport {
    fn side_label(&self) -> &'static str {
        self.side.label()
    }
}
