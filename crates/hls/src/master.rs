//! Master (multivariant) playlists.

use std::fmt::Write;

use crate::render::{quoted, uri_line};

/// One `EXT-X-STREAM-INF` entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Variant {
    /// Media playlist URI, usually relative to the master playlist.
    pub uri: String,
    /// Peak bits per second (`BANDWIDTH`).
    pub bandwidth: u64,
    /// Average bits per second (`AVERAGE-BANDWIDTH`).
    pub average_bandwidth: Option<u64>,
    /// Width and height in pixels (`RESOLUTION`).
    pub resolution: Option<(u32, u32)>,
    /// RFC 6381 codec list (`CODECS`), e.g. from [`crate::codecs::join`].
    pub codecs: Option<String>,
    /// Maximum frame rate (`FRAME-RATE`), written with 3 decimals.
    pub frame_rate: Option<f64>,
    /// Rendition name (`NAME`; not in RFC 8216, players ignore it, tools show it).
    pub name: Option<String>,
}

impl Variant {
    /// A variant with only the required attributes.
    pub fn new(uri: impl Into<String>, bandwidth: u64) -> Self {
        Variant {
            uri: uri.into(),
            bandwidth,
            ..Variant::default()
        }
    }
}

/// A master playlist: the variants of one stream, usually lowest bandwidth first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MasterPlaylist {
    pub variants: Vec<Variant>,
}

impl MasterPlaylist {
    /// Renders the playlist. Quoted values lose `"`, CR and LF (which they
    /// cannot hold); URIs lose CR and LF.
    pub fn render(&self) -> String {
        let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
        for v in &self.variants {
            // writing to a String cannot fail
            let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth);
            if let Some(avg) = v.average_bandwidth {
                let _ = write!(out, ",AVERAGE-BANDWIDTH={avg}");
            }
            if let Some((w, h)) = v.resolution {
                let _ = write!(out, ",RESOLUTION={w}x{h}");
            }
            if let Some(codecs) = &v.codecs {
                let _ = write!(out, ",CODECS={}", quoted(codecs));
            }
            if let Some(rate) = v.frame_rate.filter(|r| r.is_finite() && *r > 0.0) {
                let _ = write!(out, ",FRAME-RATE={rate:.3}");
            }
            if let Some(name) = &v.name {
                let _ = write!(out, ",NAME={}", quoted(name));
            }
            out.push('\n');
            out.push_str(&uri_line(&v.uri));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_attribute_in_order() {
        let playlist = MasterPlaylist {
            variants: vec![
                Variant {
                    uri: "720p0/index.m3u8".to_owned(),
                    bandwidth: 3_300_000,
                    average_bandwidth: Some(3_000_000),
                    resolution: Some((1280, 720)),
                    codecs: Some("avc1.64001f,mp4a.40.2".to_owned()),
                    frame_rate: Some(30000.0 / 1001.0),
                    name: Some("720p0".to_owned()),
                },
                Variant::new("source.m3u8", 5_000_000),
            ],
        };
        let expected = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-STREAM-INF:BANDWIDTH=3300000,AVERAGE-BANDWIDTH=3000000,RESOLUTION=1280x720,\
CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=29.970,NAME=\"720p0\"\n720p0/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=5000000\nsource.m3u8\n";
        assert_eq!(playlist.render(), expected);
    }

    #[test]
    fn quoted_values_cannot_break_out() {
        let playlist = MasterPlaylist {
            variants: vec![Variant {
                name: Some("a\"b\nc".to_owned()),
                ..Variant::new("x\r\n#EXT-X-ENDLIST.m3u8", 1)
            }],
        };
        let text = playlist.render();
        assert!(text.contains("NAME=\"abc\""), "{text}");
        assert_eq!(text.lines().count(), 5, "{text}");
    }
}
