//! The Livefarm side of the benchmarks: one `TranscodeSession` fed a stream's segments in order,
//! in this process, writing each rendition segment to disk as the `ffmpeg` CLI does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use livefarm_media::{EncoderSettings, InputFormat, SegmentInput, SessionConfig, TranscodeSession};
use livefarm_profiles::Profile;

use super::ffmpeg::SegmentFile;

/// What one stream produced: per rendition, its segment files in order and the engine's frame count.
#[derive(Debug, Clone)]
pub struct StreamOutput {
    pub files: Vec<Vec<PathBuf>>,
    pub frames: Vec<u64>,
}

/// The name a rendition segment gets on disk (shared with the per-segment CLI baseline).
pub fn segment_path(dir: &Path, rendition: &str, seq: usize) -> PathBuf {
    dir.join(format!("{rendition}_{seq:03}.ts"))
}

/// Transcodes `segments` with a fresh CPU session and writes every rendition under `out`.
/// Any failed segment fails the run: a side that drops work must not look fast.
pub fn transcode_stream(
    segments: &[SegmentFile],
    profiles: &[Profile],
    preset: &str,
    out: &Path,
) -> Result<StreamOutput> {
    let settings = EncoderSettings {
        x264_preset: preset.to_string(),
        ..EncoderSettings::default()
    };
    let mut session = TranscodeSession::new(
        SessionConfig {
            profiles: profiles.to_vec(),
            settings,
        },
        None,
    )
    .context("starting a transcode session")?;
    let mut files = vec![Vec::with_capacity(segments.len()); profiles.len()];
    let mut frames = vec![0u64; profiles.len()];
    for (seq, segment) in segments.iter().enumerate() {
        let output = session
            .transcode(SegmentInput {
                seq: seq as u64,
                data: segment.data.clone(),
                format: InputFormat::MpegTs,
            })
            .with_context(|| format!("livefarm failed on segment {seq}"))?;
        for (index, rendition) in output.renditions.iter().enumerate() {
            let path = segment_path(out, &rendition.name, seq);
            std::fs::write(&path, &rendition.data)
                .with_context(|| format!("writing {}", path.display()))?;
            if let (Some(list), Some(count)) = (files.get_mut(index), frames.get_mut(index)) {
                list.push(path);
                *count += rendition.frames;
            }
        }
    }
    // Dropping the session joins its rendition threads: part of the measured work.
    drop(session);
    Ok(StreamOutput { files, frames })
}
