//! `livefarm transcode`: a file in, an HLS ladder out.

use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use livefarm::UsageError;
use livefarm_media::accel::parse_gpu_list;
use livefarm_media::segmenter::Segmenter;
use livefarm_media::{
    AccelChoice, EncoderSettings, GpuInventory, GpuPool, InputFormat, SegmentInput, SessionConfig,
    TranscodeSession,
};
use livefarm_profiles::{parse_profiles_arg, studio_default_ladder, Format};

use crate::cli::TranscodeArgs;
use crate::config::MediaConfig;
use crate::ladder_writer::{LadderWriter, TrackMeta};

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

pub fn run(args: TranscodeArgs, media: &MediaConfig) -> Result<()> {
    livefarm_media::init()?;
    let profiles = match &args.profiles {
        Some(spec) => parse_profiles_arg(spec).map_err(|e| usage(format!("--profiles: {e}")))?,
        None => studio_default_ladder(),
    };
    let accel: AccelChoice = args
        .accel
        .as_deref()
        .unwrap_or(&media.accel)
        .parse()
        .map_err(|e: String| usage(format!("--accel: {e}")))?;
    let gpus = match &args.gpus {
        Some(list) => parse_gpu_list(list).map_err(|e| usage(format!("--gpus: {e}")))?,
        None => media.gpus.clone(),
    };
    let segment_duration = args.segment_duration.unwrap_or(media.segment_duration);
    if !(0.5..=60.0).contains(&segment_duration) {
        return Err(usage(
            "--segment-duration must be between 0.5 and 60 seconds",
        ));
    }
    if !args.input.is_file() {
        return Err(usage(format!(
            "input file {} does not exist",
            args.input.display()
        )));
    }
    if let Some(mp4) = profiles.iter().find(|p| p.format == Format::Mp4) {
        return Err(usage(format!(
            "profile {} asks for MP4 output, but an HLS ladder is written as MPEG-TS segments; remove its format field",
            mp4.name
        )));
    }
    let inventory = GpuInventory::detect().restrict(&gpus);
    let pool = GpuPool::new(
        accel,
        inventory,
        media.max_sessions_per_gpu,
        profiles.len() as u32,
    )
    .map_err(|e| usage(format!("--accel {accel}: {e}")))?;
    let lease = pool.acquire()?;
    tracing::info!(plan = %lease.plan, "accelerator plan");

    let mut segmenter = Segmenter::open_file(&args.input, segment_duration)?;
    let info = segmenter.info().clone();
    let settings = EncoderSettings {
        x264_preset: args
            .x264_preset
            .clone()
            .unwrap_or_else(|| media.x264_preset.clone()),
        nvenc_preset: media.nvenc_preset.clone(),
        ..EncoderSettings::default()
    };
    let mut session = TranscodeSession::new(
        SessionConfig {
            profiles: profiles.clone(),
            settings,
        },
        Some(lease),
    )?;

    let with_source = !args.no_source;
    let mut names: Vec<String> = Vec::new();
    if with_source {
        names.push("source".to_string());
    }
    names.extend(profiles.iter().map(|p| p.name.clone()));
    let first_rendition = usize::from(with_source);
    let mut writer = LadderWriter::create(&args.out, &names)?;

    let progress = match info.duration {
        Some(total) => ProgressBar::new((total * 1000.0) as u64).with_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:40}] {percent}% {msg}")
                .expect("static template is valid"),
        ),
        None => ProgressBar::new_spinner(),
    };
    let started = Instant::now();
    let (mut done, mut failed, mut media_seconds) = (0u64, 0u64, 0.0f64);
    let source_rate = f64::from(info.frame_rate.0) / f64::from(info.frame_rate.1.max(1));
    while let Some(segment) = segmenter.next_segment() {
        let segment = segment.context("reading the input")?;
        if segment.too_long {
            tracing::warn!(
                seq = segment.seq,
                duration = segment.duration,
                "source keyframes are too far apart; segment is longer than 3x the target"
            );
        }
        if with_source {
            writer.add_segment(
                0,
                segment.seq,
                &segment.data,
                segment.duration,
                TrackMeta {
                    width: info.width,
                    height: info.height,
                    frame_rate: source_rate,
                    codecs: info
                        .codecs
                        .clone()
                        .unwrap_or_else(|| "avc1.640028".to_string()),
                },
            )?;
        }
        let input = SegmentInput {
            seq: segment.seq,
            data: segment.data.clone(),
            format: InputFormat::MpegTs,
        };
        match session.transcode(input) {
            Ok(output) => {
                for (offset, rendition) in output.renditions.iter().enumerate() {
                    writer.add_segment(
                        first_rendition + offset,
                        segment.seq,
                        &rendition.data,
                        segment.duration,
                        TrackMeta {
                            width: rendition.width,
                            height: rendition.height,
                            frame_rate: f64::from(rendition.frame_rate.0)
                                / f64::from(rendition.frame_rate.1.max(1)),
                            codecs: rendition.codecs.clone(),
                        },
                    )?;
                }
                done += 1;
            }
            Err(error) => {
                failed += 1;
                progress.suspend(
                    || tracing::warn!(seq = segment.seq, %error, "segment failed; skipped"),
                );
            }
        }
        media_seconds += segment.duration;
        writer.write_playlists(false)?;
        progress.set_position((media_seconds * 1000.0) as u64);
        progress.set_message(format!("segment {}", segment.seq));
    }
    progress.finish_and_clear();
    writer.write_playlists(true)?;
    if done == 0 {
        anyhow::bail!("no segment could be transcoded ({failed} failed)");
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "transcoded {:.1} s of video into {} renditions in {:.1} s ({:.2}x real time){}",
        media_seconds,
        profiles.len(),
        wall,
        media_seconds / wall.max(1e-9),
        if failed > 0 {
            format!(", {failed} segments failed")
        } else {
            String::new()
        }
    );
    println!("master playlist: {}", writer.master_path().display());
    println!("play it with:    ffplay {}", writer.master_path().display());
    Ok(())
}
