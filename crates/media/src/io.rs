//! In-memory demuxing and muxing: segments arrive as bytes and renditions leave as bytes, so
//! the engine never touches the filesystem on the hot path.

use std::io::{Cursor, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ffmpeg::format::context::{Input, Output, StreamIo};
use ffmpeg_next as ffmpeg;

/// Container formats a segment may arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// Let FFmpeg probe the bytes.
    #[default]
    Auto,
    MpegTs,
    Flv,
    Mp4,
}

impl InputFormat {
    fn demuxer_name(self) -> Option<&'static str> {
        match self {
            InputFormat::Auto => None,
            InputFormat::MpegTs => Some("mpegts"),
            InputFormat::Flv => Some("flv"),
            InputFormat::Mp4 => Some("mov"),
        }
    }

    /// Guess from a file name or URL path.
    pub fn from_path(path: &str) -> Self {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".ts") || lower.ends_with(".m2ts") {
            InputFormat::MpegTs
        } else if lower.ends_with(".flv") {
            InputFormat::Flv
        } else if lower.ends_with(".mp4") || lower.ends_with(".m4v") || lower.ends_with(".mov") {
            InputFormat::Mp4
        } else {
            InputFormat::Auto
        }
    }
}

/// Opens a demuxer over bytes held in memory.
pub fn open_memory_input(data: Bytes, format: InputFormat) -> Result<Input, ffmpeg::Error> {
    let io = StreamIo::from_read_seek_with_capacity(Cursor::new(data), 64 * 1024)?;
    let mut options = ffmpeg::Dictionary::new();
    // Segments are short: cap probing so a garbage segment fails fast instead of scanning 5 MB.
    options.set("probesize", "2000000");
    options.set("analyzeduration", "2000000");
    if let Some(name) = format.demuxer_name() {
        // A hint through the file name keeps probing cheap and unambiguous.
        let fake_name = match name {
            "mpegts" => "segment.ts",
            "flv" => "segment.flv",
            _ => "segment.mp4",
        };
        ffmpeg::format::input_from_stream(io, Some(fake_name), Some(options))
    } else {
        ffmpeg::format::input_from_stream(io, None, Some(options))
    }
}

/// Opens a demuxer over a live, non-seekable byte stream (a pipe, a socket, a channel of
/// chunks). `read` blocks until bytes arrive and returns 0 at the end of the stream, so call
/// this, and read packets from the result, on a thread that may block.
pub fn open_stream_input<R>(reader: R, format: InputFormat) -> Result<Input, ffmpeg::Error>
where
    R: std::io::Read + Send + 'static,
{
    let io = StreamIo::from_read_with_capacity(reader, 32 * 1024)?;
    let mut options = ffmpeg::Dictionary::new();
    // Enough to find both streams of an FLV or TS feed without holding the first segment back.
    options.set("probesize", "5000000");
    options.set("analyzeduration", "3000000");
    let name = format.demuxer_name().map(|name| match name {
        "mpegts" => "live.ts",
        "flv" => "live.flv",
        _ => "live.mp4",
    });
    ffmpeg::format::input_from_stream(io, name, Some(options))
}

/// A growable, seekable byte buffer shared with FFmpeg's muxer, so the bytes can be taken back
/// after the muxer is dropped.
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Cursor<Vec<u8>>>>);

impl SharedBuffer {
    pub fn take(&self) -> Vec<u8> {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(guard.get_mut())
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for SharedBuffer {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.seek(pos)
    }
}

/// Opens a muxer (`mpegts`, `mp4`, ...) that writes into a [`SharedBuffer`].
pub fn open_memory_output(muxer: &str) -> Result<(Output, SharedBuffer), ffmpeg::Error> {
    let buffer = SharedBuffer::default();
    let io = StreamIo::from_write_seek_with_capacity(buffer.clone(), 64 * 1024)?;
    let output = ffmpeg::format::output_to_stream(io, None, Some(muxer))?;
    Ok((output, buffer))
}
