//! Just enough MPEG-TS parsing for a master playlist: the H.264 profile and level of the video
//! (from its SPS) and whether there is AAC audio. The transcoder runs it on each source segment
//! so that results carry the source's `CODECS` and playback never reads segment bytes.

use crate::codecs::{self, AvcProfileLevel};

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const STREAM_TYPE_H264: u8 = 0x1b;
const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;
/// The SPS comes with the first keyframe; stop looking after this much video payload.
const VIDEO_SCAN_LIMIT: usize = 64 * 1024;

/// What a segment tells the master playlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsInfo {
    /// `avc1.PPCCLL`, when an H.264 SPS was found.
    pub avc1: Option<String>,
    /// Whether the program carries AAC (ADTS) audio.
    pub has_aac: bool,
}

impl TsInfo {
    /// The RFC 6381 `CODECS` value, if the video codec is known.
    pub fn codecs(&self) -> Option<String> {
        let avc1 = self.avc1.as_ref()?;
        let mut list = vec![avc1.clone()];
        if self.has_aac {
            list.push(codecs::MP4A_AAC_LC.to_owned());
        }
        Some(codecs::join(&list))
    }
}

/// Reads the PAT, the PMT and the start of the H.264 elementary stream.
pub fn probe(data: &[u8]) -> TsInfo {
    let mut pmt_pid = None;
    let mut video_pid = None;
    let mut info = TsInfo::default();
    let mut video = Vec::new();
    for packet in data.chunks_exact(PACKET).filter(|p| p[0] == SYNC) {
        let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        let start = packet[1] & 0x40 != 0;
        let Some(payload) = payload(packet) else {
            continue;
        };
        if pid == 0 && start {
            pmt_pid = pat_first_program(payload);
        } else if Some(pid) == pmt_pid && start && video_pid.is_none() {
            for (stream_type, es_pid) in pmt_streams(payload) {
                match stream_type {
                    STREAM_TYPE_H264 if video_pid.is_none() => video_pid = Some(es_pid),
                    STREAM_TYPE_AAC_ADTS => info.has_aac = true,
                    _ => {}
                }
            }
        } else if Some(pid) == video_pid && (start || !video.is_empty()) {
            video.extend_from_slice(payload);
            if let Ok(level) = AvcProfileLevel::from_annex_b(&video) {
                info.avc1 = Some(level.codec_string());
                break;
            }
            if video.len() > VIDEO_SCAN_LIMIT {
                break;
            }
        }
    }
    info
}

/// The payload of a packet, after the adaptation field.
fn payload(packet: &[u8]) -> Option<&[u8]> {
    let control = (packet[3] >> 4) & 0x3;
    match control {
        1 => packet.get(4..),
        3 => {
            let len = usize::from(*packet.get(4)?);
            packet.get(5 + len..)
        }
        _ => None,
    }
}

/// A PSI section's body (after the pointer field), with its declared length.
fn section(payload: &[u8]) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    let section = payload.get(1 + pointer..)?;
    let len = (usize::from(*section.get(1)? & 0x0f) << 8) | usize::from(*section.get(2)?);
    // the 4-byte CRC ends the section
    section.get(..(3 + len).checked_sub(4)?)
}

fn pat_first_program(payload: &[u8]) -> Option<u16> {
    let section = section(payload)?;
    section.get(8..)?.chunks_exact(4).find_map(|entry| {
        let program = u16::from_be_bytes([entry[0], entry[1]]);
        // program 0 points at the network PID, not a PMT
        (program != 0).then(|| (u16::from(entry[2] & 0x1f) << 8) | u16::from(entry[3]))
    })
}

fn pmt_streams(payload: &[u8]) -> Vec<(u8, u16)> {
    let Some(section) = section(payload) else {
        return Vec::new();
    };
    let Some(&info_hi) = section.get(10) else {
        return Vec::new();
    };
    let program_info_len = (usize::from(info_hi & 0x0f) << 8)
        | usize::from(section.get(11).copied().unwrap_or_default());
    let mut rest = section.get(12 + program_info_len..).unwrap_or_default();
    let mut streams = Vec::new();
    while rest.len() >= 5 {
        let stream_type = rest[0];
        let pid = (u16::from(rest[1] & 0x1f) << 8) | u16::from(rest[2]);
        let es_info_len = (usize::from(rest[3] & 0x0f) << 8) | usize::from(rest[4]);
        streams.push((stream_type, pid));
        rest = rest.get(5 + es_info_len..).unwrap_or_default();
    }
    streams
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_yields_nothing() {
        assert_eq!(probe(&[0u8; 1000]), TsInfo::default());
        assert_eq!(probe(&[SYNC; 10]), TsInfo::default());
        assert_eq!(TsInfo::default().codecs(), None);
    }

    #[test]
    fn codecs_add_aac_when_present() {
        let info = TsInfo {
            avc1: Some("avc1.64001f".to_owned()),
            has_aac: true,
        };
        assert_eq!(info.codecs().as_deref(), Some("avc1.64001f,mp4a.40.2"));
    }
}
