//! Shared helpers of the media integration tests: synthetic inputs made with the `ffmpeg` CLI,
//! and what a viewer sees of an output, measured with `ffprobe` and `ffmpeg`. A missing CLI
//! fails the test loudly; nothing here ever skips.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use livefarm_media::segmenter::Segmenter;
use livefarm_media::{
    EncoderSettings, InputFormat, SegmentInput, SegmentOutput, SessionConfig, TranscodeSession,
};
use livefarm_profiles::Profile;
use serde_json::Value;

/// The real clip committed with the repository (1280x720, 25 fps, H.264 + 5.1 AAC, 132 frames).
pub fn bbb_clip() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/media/bbb-720p25-5s.mp4")
}

fn run_tool(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{tool}` ({e}): these tests need the ffmpeg and ffprobe command-line tools \
             (Debian: apt-get install ffmpeg)"
        )
    })
}

/// Runs `ffmpeg` with `args` (errors only, overwrite); panics with its stderr when it fails.
pub fn ffmpeg(args: &[&str]) {
    let mut full = vec!["-hide_banner", "-nostdin", "-v", "error", "-y"];
    full.extend_from_slice(args);
    let out = run_tool("ffmpeg", &full);
    assert!(
        out.status.success(),
        "ffmpeg {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ffprobe -of json` with `args` on `path`.
pub fn ffprobe_json(path: &Path, args: &[&str]) -> Value {
    let mut full = vec!["-v", "error", "-of", "json"];
    full.extend_from_slice(args);
    let path_str = path.to_str().expect("utf-8 temp path");
    full.push(path_str);
    let out = run_tool("ffprobe", &full);
    assert!(
        out.status.success(),
        "ffprobe {:?} {} failed: {}",
        args,
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe prints json")
}

/// What `ffmpeg -v error -i X -f null -` prints: empty when the file decodes cleanly.
pub fn decode_errors(path: &Path) -> String {
    let path_str = path.to_str().expect("utf-8 temp path");
    let out = run_tool(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            path_str,
            "-f",
            "null",
            "-",
        ],
    );
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        text.push_str(&format!("\n(ffmpeg exited with {})", out.status));
    }
    text
}

pub fn assert_decodes_cleanly(path: &Path) {
    let errors = decode_errors(path);
    assert!(
        errors.trim().is_empty(),
        "{} does not decode cleanly:\n{errors}",
        path.display()
    );
}

fn int(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn float(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// One stream as ffprobe reports it.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub codec_type: String,
    pub codec_name: String,
    pub profile: String,
    pub width: u32,
    pub height: u32,
    pub pix_fmt: String,
    pub start_time: Option<f64>,
    pub duration: Option<f64>,
    pub time_base: String,
}

pub fn streams(path: &Path) -> Vec<StreamInfo> {
    let json = ffprobe_json(
        path,
        &[
            "-show_entries",
            "stream=codec_type,codec_name,profile,width,height,pix_fmt,start_time,duration,time_base",
        ],
    );
    json["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| StreamInfo {
            codec_type: text(s, "codec_type"),
            codec_name: text(s, "codec_name"),
            profile: text(s, "profile"),
            width: int(s, "width").unwrap_or(0) as u32,
            height: int(s, "height").unwrap_or(0) as u32,
            pix_fmt: text(s, "pix_fmt"),
            start_time: float(s, "start_time"),
            duration: float(s, "duration"),
            time_base: text(s, "time_base"),
        })
        .collect()
}

pub fn video_stream(path: &Path) -> StreamInfo {
    streams(path)
        .into_iter()
        .find(|s| s.codec_type == "video")
        .unwrap_or_else(|| panic!("{} has no video stream", path.display()))
}

pub fn audio_stream(path: &Path) -> Option<StreamInfo> {
    streams(path).into_iter().find(|s| s.codec_type == "audio")
}

/// One decoded video frame.
#[derive(Debug, Clone)]
pub struct FrameInfo {
    /// Presentation time in stream time base units (90 kHz for MPEG-TS).
    pub pts: Option<i64>,
    pub key: bool,
    pub pict_type: String,
    pub width: u32,
    pub height: u32,
    pub pix_fmt: String,
}

pub fn video_frames(path: &Path) -> Vec<FrameInfo> {
    let json = ffprobe_json(
        path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts,best_effort_timestamp,key_frame,pict_type,width,height,pix_fmt",
        ],
    );
    json["frames"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| FrameInfo {
            pts: int(f, "pts").or_else(|| int(f, "best_effort_timestamp")),
            key: int(f, "key_frame") == Some(1),
            pict_type: text(f, "pict_type"),
            width: int(f, "width").unwrap_or(0) as u32,
            height: int(f, "height").unwrap_or(0) as u32,
            pix_fmt: text(f, "pix_fmt"),
        })
        .collect()
}

/// One demuxed packet of a stream.
#[derive(Debug, Clone)]
pub struct PacketInfo {
    pub pts: Option<i64>,
    pub dts: Option<i64>,
    pub duration: Option<i64>,
    pub size: u64,
    pub key: bool,
}

/// Packets of the first stream of `selector` (`v:0`, `a:0`).
pub fn packets(path: &Path, selector: &str) -> Vec<PacketInfo> {
    let json = ffprobe_json(
        path,
        &[
            "-select_streams",
            selector,
            "-show_entries",
            "packet=pts,dts,duration,size,flags",
        ],
    );
    json["packets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| PacketInfo {
            pts: int(p, "pts"),
            dts: int(p, "dts"),
            duration: int(p, "duration"),
            size: int(p, "size").unwrap_or(0) as u64,
            key: text(p, "flags").starts_with('K'),
        })
        .collect()
}

/// Whether the first video access unit of an MPEG-TS file holds an IDR slice (NAL type 5), read
/// from the Annex B bytes `ffmpeg -c copy -f h264` extracts.
pub fn first_frame_is_idr(path: &Path, scratch: &Path) -> bool {
    let out = scratch.join(format!(
        "{}.first.h264",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    ffmpeg(&[
        "-i",
        path.to_str().expect("utf-8 path"),
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-frames:v",
        "1",
        "-f",
        "h264",
        out.to_str().expect("utf-8 path"),
    ]);
    let bytes = std::fs::read(&out).expect("extracted h264");
    // The first slice NAL (types 1..=5) decides: 5 is an IDR slice.
    nal_types(&bytes).into_iter().find(|t| (1..=5).contains(t)) == Some(5)
}

/// NAL unit types of an Annex B byte stream, in order.
pub fn nal_types(data: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            types.push(data[i + 3] & 0x1f);
            i += 3;
        } else {
            i += 1;
        }
    }
    types
}

/// SSIM (All) of `distorted` against `reference` scaled to `w x h`, both starting at time zero.
pub fn ssim(distorted: &Path, reference: &Path, w: u32, h: u32) -> f64 {
    let filter = format!(
        "[0:v]setpts=PTS-STARTPTS[d];[1:v]scale={w}:{h}:flags=bicubic,setpts=PTS-STARTPTS[r];[d][r]ssim"
    );
    let out = run_tool(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostdin",
            "-i",
            distorted.to_str().expect("utf-8 path"),
            "-i",
            reference.to_str().expect("utf-8 path"),
            "-lavfi",
            &filter,
            "-f",
            "null",
            "-",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ssim run failed: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("SSIM") && l.contains("All:"))
        .unwrap_or_else(|| panic!("no SSIM line in ffmpeg output: {stderr}"));
    let value = line
        .split("All:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok());
    value.unwrap_or_else(|| panic!("cannot read SSIM from {line:?}"))
}

/// A synthetic clip: testsrc2 video (+ a sine tone) encoded by the ffmpeg CLI.
#[derive(Debug, Clone)]
pub struct Synth {
    pub width: u32,
    pub height: u32,
    /// Frame rate as ffmpeg spells it (`25`, `30000/1001`).
    pub rate: String,
    pub seconds: f64,
    /// Keyframe interval in frames.
    pub gop: u32,
    /// Video encoder arguments (codec, preset, pixel format...).
    pub video: Vec<String>,
    /// Audio encoder arguments; `None` for a clip without audio.
    pub audio: Option<Vec<String>>,
    /// Muxer (`mpegts`, `mp4`).
    pub muxer: String,
    /// Extra output arguments (`-output_ts_offset 10`).
    pub extra: Vec<String>,
}

impl Synth {
    /// Small H.264 + AAC MPEG-TS clip with a keyframe every second.
    pub fn new(width: u32, height: u32, rate: &str, seconds: f64) -> Self {
        let fps = parse_rate(rate);
        Synth {
            width,
            height,
            rate: rate.to_string(),
            seconds,
            gop: fps.round().max(1.0) as u32,
            video: strings(&[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ]),
            audio: Some(strings(&["-c:a", "aac", "-b:a", "64k"])),
            muxer: "mpegts".to_string(),
            extra: Vec::new(),
        }
    }

    pub fn gop(mut self, frames: u32) -> Self {
        self.gop = frames;
        self
    }

    pub fn video(mut self, args: &[&str]) -> Self {
        self.video = strings(args);
        self
    }

    pub fn audio(mut self, args: Option<&[&str]>) -> Self {
        self.audio = args.map(strings);
        self
    }

    pub fn muxer(mut self, muxer: &str) -> Self {
        self.muxer = muxer.to_string();
        self
    }

    pub fn extra(mut self, args: &[&str]) -> Self {
        self.extra = strings(args);
        self
    }

    /// Writes the clip to `path` and returns its bytes.
    pub fn write(&self, path: &Path) -> Bytes {
        let video_src = format!(
            "testsrc2=size={}x{}:rate={}:duration={}",
            self.width, self.height, self.rate, self.seconds
        );
        let audio_src = format!(
            "sine=frequency=440:sample_rate=48000:duration={}",
            self.seconds
        );
        let gop = self.gop.to_string();
        let mut args: Vec<String> = strings(&["-f", "lavfi", "-i", &video_src]);
        if self.audio.is_some() {
            args.extend(strings(&["-f", "lavfi", "-i", &audio_src]));
        }
        args.extend(self.video.iter().cloned());
        args.extend(strings(&[
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-sc_threshold",
            "0",
        ]));
        if let Some(audio) = &self.audio {
            args.extend(audio.iter().cloned());
        }
        args.extend(self.extra.iter().cloned());
        args.extend(strings(&[
            "-f",
            &self.muxer,
            path.to_str().expect("utf-8 path"),
        ]));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ffmpeg(&refs);
        Bytes::from(std::fs::read(path).expect("synthetic clip written"))
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

pub fn parse_rate(rate: &str) -> f64 {
    match rate.split_once('/') {
        Some((n, d)) => {
            n.parse::<f64>().expect("rate numerator") / d.parse::<f64>().expect("rate denominator")
        }
        None => rate.parse().expect("rate"),
    }
}

/// An H.264 MPEG-TS profile at the source frame rate.
pub fn profile(name: &str, width: u32, height: u32, bitrate: u32) -> Profile {
    Profile::new(name, width, height, bitrate)
}

pub fn session(profiles: Vec<Profile>) -> TranscodeSession {
    livefarm_media::init().expect("ffmpeg initialises");
    TranscodeSession::new(
        SessionConfig {
            profiles,
            settings: EncoderSettings::default(),
        },
        None,
    )
    .expect("session starts")
}

pub fn input(seq: u64, data: Bytes) -> SegmentInput {
    SegmentInput {
        seq,
        data,
        format: InputFormat::MpegTs,
    }
}

/// Cuts a file into MPEG-TS source segments with the crate's own segmenter.
pub fn segments_of(path: &Path, target: f64) -> Vec<Bytes> {
    livefarm_media::init().expect("ffmpeg initialises");
    let segmenter = Segmenter::open_file(path, target).expect("segmenter opens the clip");
    segmenter
        .map(|s| s.expect("segmenter cuts the clip").data)
        .collect()
}

/// Transcodes every segment in order; panics on the first failure.
pub fn transcode_all(session: &mut TranscodeSession, segments: &[Bytes]) -> Vec<SegmentOutput> {
    segments
        .iter()
        .enumerate()
        .map(|(seq, data)| {
            session
                .transcode(input(seq as u64, data.clone()))
                .unwrap_or_else(|e| panic!("segment {seq} failed: {e}"))
        })
        .collect()
}

/// Writes each rendition's segments to `dir/<name>/<seq>.ts` and the whole rendition (the
/// segments back to back, as an HLS player reads them) to `dir/<name>.ts`.
pub fn write_renditions(dir: &Path, outputs: &[SegmentOutput]) -> Vec<RenditionFiles> {
    let count = outputs.first().map(|o| o.renditions.len()).unwrap_or(0);
    (0..count)
        .map(|index| {
            let name = outputs[0].renditions[index].name.clone();
            let ext = outputs[0].renditions[index].format.extension();
            let seg_dir = dir.join(&name);
            std::fs::create_dir_all(&seg_dir).expect("rendition dir");
            let mut whole = Vec::new();
            let mut segments = Vec::new();
            for output in outputs {
                let rendition = &output.renditions[index];
                assert_eq!(rendition.name, name, "renditions keep their order");
                let path = seg_dir.join(format!("{:05}{ext}", output.seq));
                std::fs::write(&path, &rendition.data).expect("write segment");
                whole.extend_from_slice(&rendition.data);
                segments.push(path);
            }
            let whole_path = dir.join(format!("{name}{ext}"));
            std::fs::write(&whole_path, whole).expect("write rendition");
            RenditionFiles {
                name,
                whole: whole_path,
                segments,
            }
        })
        .collect()
}

pub struct RenditionFiles {
    pub name: String,
    pub whole: PathBuf,
    pub segments: Vec<PathBuf>,
}

/// Video bits per second of a file: the sum of its video packet sizes over its video span.
pub fn video_bitrate(path: &Path, seconds: f64) -> f64 {
    let total: u64 = packets(path, "v:0").iter().map(|p| p.size).sum();
    total as f64 * 8.0 / seconds
}

/// A scratch directory, kept (and its path printed) when `LIVEFARM_KEEP_TEST_FILES` is set.
pub fn scratch() -> tempfile::TempDir {
    let keep = std::env::var_os("LIVEFARM_KEEP_TEST_FILES").is_some();
    let dir = tempfile::Builder::new()
        .prefix("livefarm-media-test-")
        .disable_cleanup(keep)
        .tempdir()
        .expect("temp dir");
    if keep {
        eprintln!("test files kept in {}", dir.path().display());
    }
    dir
}
