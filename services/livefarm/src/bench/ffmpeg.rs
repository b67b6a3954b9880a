//! The `ffmpeg` CLI side of the benchmarks: the test source, its segments, the baseline command
//! lines (with the same x264 settings as the engine), and `ffprobe` checks of what each side made.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use livefarm_media::encode::fit_dimensions;
use livefarm_profiles::{Gop, Profile};
use serde::Serialize;

/// Source frame rate, frames per second.
pub const SOURCE_FPS: u32 = 30;
/// Source GOP and segment length, seconds (one IDR every 60 frames at 30 fps).
pub const SEGMENT_SECONDS: u32 = 2;
/// The engine's keyint: keyframes come only where the session forces them (see
/// `livefarm_media::encode::configure_video_encoder`).
pub const ENGINE_KEYINT: u32 = 100_000;

/// x264 presets `--preset` accepts.
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// The test source: a synthetic H.264 High stream with AAC audio, and its 2 s segments.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub duration: f64,
    pub segments: Vec<SegmentFile>,
    /// Video packets in the source (ffprobe), what every rendition must contain.
    pub video_frames: u64,
    /// How the source and its segments were made.
    pub commands: Vec<String>,
}

/// One source segment: its file (for the CLI) and its bytes (for the engine, read before timing).
#[derive(Debug, Clone)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub data: Bytes,
}

/// One rung of the ladder as both sides produce it.
#[derive(Debug, Clone, Serialize)]
pub struct Rendition {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate: u32,
    /// x264 profile name, when the ladder pins one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h264_profile: Option<&'static str>,
    pub no_b_frames: bool,
}

impl Rendition {
    /// The rendition of `profile` for a `src_w x src_h` source, sized exactly as the engine sizes it.
    pub fn of(profile: &Profile, src_w: u32, src_h: u32) -> Result<Self> {
        if profile.quality > 0
            || profile.frame_rate().is_some()
            || !matches!(profile.gop, Gop::Default)
        {
            bail!(
                "profile {} uses crf, a fixed frame rate or a gop; the ffmpeg baseline only mirrors bitrate ladders at the source rate",
                profile.name
            );
        }
        let (width, height) = fit_dimensions(profile.width, profile.height, src_w, src_h);
        Ok(Rendition {
            name: profile.name.clone(),
            width,
            height,
            bitrate: profile.bitrate,
            h264_profile: profile.profile.x264_name(),
            no_b_frames: profile.no_b_frames(),
        })
    }
}

/// The x264 settings both sides use, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct X264Report {
    pub preset: String,
    pub threads: &'static str,
    pub bitrate: &'static str,
    pub maxrate: &'static str,
    pub bufsize: &'static str,
    pub keyint: u32,
    pub sc_threshold: u32,
    pub forced_idr: u32,
    pub bframes: &'static str,
    pub scaler: &'static str,
    pub audio: &'static str,
    pub idr: &'static str,
}

pub fn x264_report(preset: &str) -> X264Report {
    X264Report {
        preset: preset.to_string(),
        threads: "auto",
        bitrate: "profile bitrate",
        maxrate: "= bitrate",
        bufsize: "2 x bitrate",
        keyint: ENGINE_KEYINT,
        sc_threshold: 0,
        forced_idr: 1,
        bframes: "x264 preset default (none for baseline/constrained-high)",
        scaler: "swscale bicubic",
        audio: "copy (AAC passthrough)",
        idr: "one at every 2 s segment start",
    }
}

/// Parses `WIDTHxHEIGHT` (even, 64..=7680).
pub fn parse_resolution(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("{text:?} is not WIDTHxHEIGHT"))
    };
    let (w, h) = (parse(w)?, parse(h)?);
    for v in [w, h] {
        if !(64..=7680).contains(&v) || v % 2 != 0 {
            return Err(format!("{text:?}: sides must be even and within 64..=7680"));
        }
    }
    Ok((w, h))
}

/// Quotes a command line for a POSIX shell, so readers can paste it.
pub fn shell_line(program: &str, args: &[String]) -> String {
    let quote = |arg: &str| {
        if !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+%@".contains(c))
        {
            arg.to_string()
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `ffmpeg` arguments that make the synthetic source.
pub fn source_args(width: u32, height: u32, duration: f64, out: &Path) -> Vec<String> {
    let gop = (SOURCE_FPS * SEGMENT_SECONDS).to_string();
    // Bitrate in proportion to 6 Mbps at 1080p, so smaller sources stay as hard to decode.
    let bitrate =
        ((6_000_000u64 * u64::from(width) * u64::from(height)) / (1920 * 1080)).max(500_000);
    let mut args = strings(&[
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
    ]);
    args.push(format!("testsrc2=size={width}x{height}:rate={SOURCE_FPS}"));
    args.extend(strings(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
    ]));
    args.push(format!("{duration}"));
    // Temporal noise keeps the picture from being trivially compressible.
    args.extend(strings(&[
        "-vf",
        "noise=alls=8:allf=t",
        "-pix_fmt",
        "yuv420p",
    ]));
    args.extend(strings(&[
        "-c:v",
        "libx264",
        "-profile:v",
        "high",
        "-preset",
        "veryfast",
    ]));
    args.extend([
        "-b:v".to_string(),
        bitrate.to_string(),
        "-maxrate".to_string(),
        bitrate.to_string(),
        "-bufsize".to_string(),
        (2 * bitrate).to_string(),
        "-g".to_string(),
        gop.clone(),
        "-keyint_min".to_string(),
        gop,
    ]);
    args.extend(strings(&[
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ac",
        "2",
        "-f",
        "mpegts",
    ]));
    args.push(out.display().to_string());
    args
}

/// `ffmpeg` arguments that cut the source into 2 s MPEG-TS segments with continuous timestamps.
pub fn segment_args(source: &Path, pattern: &Path) -> Vec<String> {
    let mut args = strings(&["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i"]);
    args.push(source.display().to_string());
    args.extend(strings(&[
        "-map",
        "0",
        "-c",
        "copy",
        "-f",
        "segment",
        "-segment_time",
    ]));
    args.push(SEGMENT_SECONDS.to_string());
    args.extend(strings(&[
        "-segment_format",
        "mpegts",
        "-reset_timestamps",
        "0",
    ]));
    args.push(pattern.display().to_string());
    args
}

/// Makes the source and its segments under `dir`, and reads the segments into memory.
pub fn prepare_source(dir: &Path, width: u32, height: u32, duration: f64) -> Result<Source> {
    let path = dir.join("source.ts");
    let make = source_args(width, height, duration, &path);
    run_ffmpeg(&make, &dir.join("source.log")).context("making the test source")?;
    let seg_dir = dir.join("segments");
    std::fs::create_dir_all(&seg_dir)?;
    let cut = segment_args(&path, &seg_dir.join("seg_%03d.ts"));
    run_ffmpeg(&cut, &dir.join("segment.log")).context("cutting the source into segments")?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&seg_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ts"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("the segmenter made no segments");
    }
    let segments = paths
        .into_iter()
        .map(|path| {
            let data =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok(SegmentFile {
                path,
                data: Bytes::from(data),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let probe = probe_video(&path)?;
    Ok(Source {
        path,
        duration,
        segments,
        video_frames: probe.frames,
        commands: vec![shell_line("ffmpeg", &make), shell_line("ffmpeg", &cut)],
    })
}

/// The x264 options of one output, mirroring `livefarm_media::encode` for a bitrate profile.
fn x264_args(rendition: &Rendition, preset: &str) -> Vec<String> {
    let b = rendition.bitrate.to_string();
    let mut args = strings(&["-c:v", "libx264", "-preset", preset, "-threads", "auto"]);
    if let Some(profile) = rendition.h264_profile {
        args.extend(strings(&["-profile:v", profile]));
    }
    args.extend([
        "-b:v".to_string(),
        b.clone(),
        "-maxrate".to_string(),
        b,
        "-bufsize".to_string(),
        (u64::from(rendition.bitrate) * 2).to_string(),
        "-g".to_string(),
        ENGINE_KEYINT.to_string(),
    ]);
    args.extend(strings(&["-sc_threshold", "0", "-forced-idr", "1"]));
    if rendition.no_b_frames {
        args.extend(strings(&["-bf", "0"]));
    }
    // Every decoded frame is encoded, as the engine does at the source rate.
    args.extend(strings(&["-fps_mode", "passthrough"]));
    args
}

/// `split` + one bicubic `scale` per rendition, outputs labelled `[v0]`, `[v1]`, ...
pub fn filter_graph(renditions: &[Rendition]) -> String {
    let n = renditions.len();
    let mut graph = format!("[0:v]split={n}");
    for i in 0..n {
        graph.push_str(&format!("[s{i}]"));
    }
    for (i, r) in renditions.iter().enumerate() {
        graph.push_str(&format!(
            ";[s{i}]scale={}:{}:flags=bicubic[v{i}]",
            r.width, r.height
        ));
    }
    graph
}

/// One process, one input, every rendition: `outputs[i]` receives `renditions[i]`.
/// `force_keys` adds an IDR at every segment boundary (the continuous job).
pub fn ladder_args(
    input: &Path,
    renditions: &[Rendition],
    preset: &str,
    outputs: &[PathBuf],
    force_keys: bool,
    copyts: bool,
) -> Vec<String> {
    let mut args = strings(&["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]);
    if copyts {
        // Keep the segment's own timestamps, as the engine does.
        args.push("-copyts".to_string());
    }
    args.push("-i".to_string());
    args.push(input.display().to_string());
    args.push("-filter_complex".to_string());
    args.push(filter_graph(renditions));
    for (i, (rendition, out)) in renditions.iter().zip(outputs).enumerate() {
        args.extend([
            "-map".to_string(),
            format!("[v{i}]"),
            "-map".to_string(),
            "0:a?".to_string(),
        ]);
        args.extend(x264_args(rendition, preset));
        if force_keys {
            args.push("-force_key_frames".to_string());
            args.push(format!("expr:gte(t,n_forced*{SEGMENT_SECONDS})"));
        }
        args.extend(strings(&["-c:a", "copy", "-f", "mpegts"]));
        args.push(out.display().to_string());
    }
    args
}

/// Starts `ffmpeg` with stderr going to `log`.
pub fn spawn_ffmpeg(args: &[String], log: &Path) -> Result<Child> {
    let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    Command::new("ffmpeg")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .context("cannot run ffmpeg (is it installed and on PATH?)")
}

/// Waits for an `ffmpeg` child (so its CPU time lands in RUSAGE_CHILDREN) and checks it worked.
pub fn wait_ffmpeg(mut child: Child, log: &Path) -> Result<()> {
    let status = child.wait().context("waiting for ffmpeg")?;
    if !status.success() {
        let tail = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(5).collect();
        bail!(
            "ffmpeg failed with {status}: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

pub fn run_ffmpeg(args: &[String], log: &Path) -> Result<()> {
    let child = spawn_ffmpeg(args, log)?;
    wait_ffmpeg(child, log)
}

/// What `ffprobe` found in a file's first video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VideoProbe {
    /// Video packets (one frame each for H.264 in MPEG-TS).
    pub frames: u64,
    /// Packets flagged as keyframes (IDR).
    pub keyframes: u64,
}

pub fn probe_video(path: &Path) -> Result<VideoProbe> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args([
            "-show_entries",
            "stream=nb_read_packets:packet=flags",
            "-of",
            "json",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("cannot run ffprobe (is it installed and on PATH?)")?;
    if !output.status.success() {
        bail!(
            "ffprobe {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse_probe(&output.stdout)
        .with_context(|| format!("reading ffprobe's answer for {}", path.display()))
}

fn parse_probe(json: &[u8]) -> Result<VideoProbe> {
    let value: serde_json::Value = serde_json::from_slice(json)?;
    let frames = value["streams"][0]["nb_read_packets"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .context("no nb_read_packets for the video stream")?;
    let keyframes = value["packets"]
        .as_array()
        .map(|packets| {
            packets
                .iter()
                .filter(|p| p["flags"].as_str().is_some_and(|f| f.starts_with('K')))
                .count() as u64
        })
        .unwrap_or(0);
    Ok(VideoProbe { frames, keyframes })
}

/// Concatenates MPEG-TS segment files into one (valid for TS with continuous timestamps).
pub fn concat_files(parts: &[PathBuf], out: &Path) -> Result<()> {
    let mut file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    for part in parts {
        let mut input = File::open(part).with_context(|| format!("opening {}", part.display()))?;
        std::io::copy(&mut input, &mut file)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use livefarm_profiles::studio_default_ladder;

    fn ladder() -> Vec<Rendition> {
        studio_default_ladder()
            .iter()
            .map(|p| Rendition::of(p, 1920, 1080).expect("studio ladder is a bitrate ladder"))
            .collect()
    }

    #[test]
    fn renditions_take_the_engine_sizes() {
        let sizes: Vec<(u32, u32)> = ladder().iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(sizes, vec![(426, 240), (640, 360), (854, 480), (1280, 720)]);
    }

    #[test]
    fn filter_graph_splits_once_per_rendition() {
        let graph = filter_graph(&ladder());
        assert!(
            graph.starts_with("[0:v]split=4[s0][s1][s2][s3];"),
            "{graph}"
        );
        assert!(
            graph.contains("[s3]scale=1280:720:flags=bicubic[v3]"),
            "{graph}"
        );
        assert_eq!(graph.matches("scale=").count(), 4);
    }

    #[test]
    fn every_output_gets_the_engine_rate_control() {
        let renditions = ladder();
        let outs: Vec<PathBuf> = (0..4).map(|i| PathBuf::from(format!("o{i}.ts"))).collect();
        let args = ladder_args(
            Path::new("in.ts"),
            &renditions,
            "veryfast",
            &outs,
            true,
            false,
        );
        let line = args.join(" ");
        for r in &renditions {
            let expect = format!(
                "-b:v {b} -maxrate {b} -bufsize {}",
                u64::from(r.bitrate) * 2,
                b = r.bitrate
            );
            assert!(line.contains(&expect), "missing {expect} in {line}");
        }
        assert_eq!(line.matches("-sc_threshold 0 -forced-idr 1").count(), 4);
        assert_eq!(line.matches("-preset veryfast").count(), 4);
        assert_eq!(
            line.matches("-force_key_frames expr:gte(t,n_forced*2)")
                .count(),
            4
        );
        assert_eq!(line.matches("-c:a copy").count(), 4);
        assert!(!line.contains("-copyts"));
        // Outputs follow their renditions.
        let last_map = args.iter().rposition(|a| a == "[v3]").expect("v3 mapped");
        assert!(args[last_map..].contains(&"o3.ts".to_string()));
    }

    #[test]
    fn shell_lines_quote_what_a_shell_would_split() {
        let line = shell_line("ffmpeg", &strings(&["-i", "a b.ts", "[v0]", "it's"]));
        assert_eq!(line, r"ffmpeg -i 'a b.ts' '[v0]' 'it'\''s'");
    }

    #[test]
    fn resolutions_parse_and_reject() {
        assert_eq!(parse_resolution("1280x720"), Ok((1280, 720)));
        assert!(parse_resolution("1281x720").is_err());
        assert!(parse_resolution("720p").is_err());
    }

    #[test]
    fn probe_counts_packets_and_keyframes() {
        let json = br#"{"packets":[{"flags":"K_"},{"flags":"__"},{"flags":"K_"}],
                        "streams":[{"nb_read_packets":"3"}]}"#;
        assert_eq!(
            parse_probe(json).expect("valid answer"),
            VideoProbe {
                frames: 3,
                keyframes: 2
            }
        );
        assert!(parse_probe(br#"{"streams":[]}"#).is_err());
    }
}
