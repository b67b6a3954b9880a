//! Writes an HLS ladder to a directory: one folder per rendition with its segments and media
//! playlist, and a master playlist over them. Playlists are rewritten after every segment (as an
//! EVENT playlist) so a player can start before the job ends; the last write closes them as VOD.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use livefarm_hls::{MasterPlaylist, MediaPlaylist, PlaylistType, Segment, Variant};

/// What the master playlist says of a rendition.
#[derive(Debug, Clone, Default)]
pub struct TrackMeta {
    pub width: u32,
    pub height: u32,
    pub frame_rate: f64,
    pub codecs: String,
}

struct Track {
    name: String,
    dir: PathBuf,
    meta: Option<TrackMeta>,
    segments: Vec<Segment>,
    peak_bps: u64,
    bytes: u64,
    seconds: f64,
}

pub struct LadderWriter {
    dir: PathBuf,
    tracks: Vec<Track>,
}

impl LadderWriter {
    pub fn create(dir: &Path, names: &[String]) -> Result<Self> {
        let mut tracks = Vec::new();
        for name in names {
            let track_dir = dir.join(name);
            fs::create_dir_all(&track_dir)
                .with_context(|| format!("cannot create {}", track_dir.display()))?;
            tracks.push(Track {
                name: name.clone(),
                dir: track_dir,
                meta: None,
                segments: Vec::new(),
                peak_bps: 0,
                bytes: 0,
                seconds: 0.0,
            });
        }
        Ok(LadderWriter {
            dir: dir.to_path_buf(),
            tracks,
        })
    }

    pub fn master_path(&self) -> PathBuf {
        self.dir.join("index.m3u8")
    }

    /// Stores segment `seq` of track `index`.
    pub fn add_segment(
        &mut self,
        index: usize,
        seq: u64,
        data: &[u8],
        duration: f64,
        meta: TrackMeta,
    ) -> Result<()> {
        let track = &mut self.tracks[index];
        let file = format!("{seq:05}.ts");
        let path = track.dir.join(&file);
        fs::write(&path, data).with_context(|| format!("cannot write {}", path.display()))?;
        let bits = data.len() as u64 * 8;
        if duration > 0.0 {
            track.peak_bps = track.peak_bps.max((bits as f64 / duration) as u64);
        }
        track.bytes += data.len() as u64;
        track.seconds += duration;
        track.segments.push(Segment::new(file, duration));
        track.meta.get_or_insert(meta);
        Ok(())
    }

    /// Rewrites every playlist; `ended` closes them (VOD + ENDLIST).
    pub fn write_playlists(&self, ended: bool) -> Result<()> {
        let mut variants = Vec::new();
        for track in &self.tracks {
            let playlist = MediaPlaylist {
                playlist_type: Some(if ended {
                    PlaylistType::Vod
                } else {
                    PlaylistType::Event
                }),
                ended,
                segments: track.segments.clone(),
                ..MediaPlaylist::default()
            };
            write_atomically(&track.dir.join("index.m3u8"), &playlist.render())?;
            if let Some(meta) = &track.meta {
                let average = if track.seconds > 0.0 {
                    Some((track.bytes as f64 * 8.0 / track.seconds) as u64)
                } else {
                    None
                };
                variants.push(Variant {
                    uri: format!("{}/index.m3u8", track.name),
                    bandwidth: track.peak_bps.max(1),
                    average_bandwidth: average,
                    resolution: Some((meta.width, meta.height)),
                    codecs: Some(meta.codecs.clone()),
                    frame_rate: (meta.frame_rate > 0.0).then_some(meta.frame_rate),
                    name: Some(track.name.clone()),
                });
            }
        }
        // Highest quality first, as players pick the first entry to start with.
        variants.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
        write_atomically(&self.master_path(), &MasterPlaylist { variants }.render())
    }
}

/// Players may read a playlist while it is rewritten: write a temp file and rename it.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("m3u8.tmp");
    fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
