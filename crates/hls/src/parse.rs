//! A small m3u8 reader: enough for our own playlists and common encoder
//! output (ffmpeg, go-livepeer, nginx-rtmp). Unknown tags and attributes
//! are skipped; `EXT-X-KEY`, `EXT-X-MAP` and byte ranges are not modelled.

use crate::datetime::UtcMillis;
use crate::error::HlsError;
use crate::master::{MasterPlaylist, Variant};
use crate::media::{MediaPlaylist, PlaylistType, Segment};

/// Lines after the `#EXTM3U` header, numbered from 1, trimmed, blanks and
/// comments (`#` not followed by `EXT`) dropped.
fn lines(text: &str) -> Result<impl Iterator<Item = (usize, &str)>, HlsError> {
    let mut all = text
        .trim_start_matches('\u{feff}')
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()));
    match all.next() {
        Some((_, "#EXTM3U")) => {}
        _ => return Err(HlsError::MissingHeader),
    }
    Ok(all.filter(|(_, line)| {
        !line.is_empty() && (!line.starts_with('#') || line.starts_with("#EXT"))
    }))
}

fn parse_error(line: usize, reason: impl Into<String>) -> HlsError {
    HlsError::Parse {
        line,
        reason: reason.into(),
    }
}

fn number<T: std::str::FromStr>(line: usize, what: &str, text: &str) -> Result<T, HlsError> {
    text.parse()
        .map_err(|_| parse_error(line, format!("{what}: {text:?} is not a valid number")))
}

/// Splits an attribute list into (name, value) pairs; quoted values lose their quotes.
fn attributes(line: usize, text: &str) -> Result<Vec<(&str, &str)>, HlsError> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| parse_error(line, format!("attribute without '=': {rest:?}")))?;
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| parse_error(line, format!("unterminated quoted value of {name}")))?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_at(after.find(',').unwrap_or(after.len()))
        };
        out.push((name.trim(), value));
        rest = match after.strip_prefix(',') {
            Some(next) => next,
            None if after.trim().is_empty() => "",
            None => {
                return Err(parse_error(
                    line,
                    format!("junk after {name} value: {after:?}"),
                ))
            }
        };
    }
    Ok(out)
}

/// Reads a master playlist (`EXT-X-STREAM-INF` entries; other tags skipped).
pub fn parse_master(text: &str) -> Result<MasterPlaylist, HlsError> {
    let mut variants = Vec::new();
    let mut pending: Option<(usize, Variant)> = None;
    for (n, line) in lines(text)? {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            if pending.is_some() {
                return Err(parse_error(n, "EXT-X-STREAM-INF without a uri before it"));
            }
            let mut variant = Variant::default();
            let mut has_bandwidth = false;
            for (name, value) in attributes(n, attrs)? {
                match name {
                    "BANDWIDTH" => {
                        variant.bandwidth = number(n, name, value)?;
                        has_bandwidth = true;
                    }
                    "AVERAGE-BANDWIDTH" => {
                        variant.average_bandwidth = Some(number(n, name, value)?)
                    }
                    "RESOLUTION" => {
                        let (w, h) = value.split_once(['x', 'X']).ok_or_else(|| {
                            parse_error(n, format!("RESOLUTION {value:?} is not WxH"))
                        })?;
                        variant.resolution = Some((number(n, name, w)?, number(n, name, h)?));
                    }
                    "CODECS" => variant.codecs = Some(value.to_owned()),
                    "FRAME-RATE" => {
                        let rate: f64 = number(n, name, value)?;
                        if !rate.is_finite() || rate <= 0.0 {
                            return Err(parse_error(
                                n,
                                format!("FRAME-RATE {value:?} is not positive"),
                            ));
                        }
                        variant.frame_rate = Some(rate);
                    }
                    "NAME" => variant.name = Some(value.to_owned()),
                    _ => {}
                }
            }
            if !has_bandwidth {
                return Err(parse_error(n, "EXT-X-STREAM-INF without BANDWIDTH"));
            }
            pending = Some((n, variant));
        } else if !line.starts_with('#') {
            let (_, mut variant) = pending
                .take()
                .ok_or_else(|| parse_error(n, format!("uri {line:?} without EXT-X-STREAM-INF")))?;
            variant.uri = line.to_owned();
            variants.push(variant);
        }
    }
    if let Some((n, _)) = pending {
        return Err(parse_error(n, "EXT-X-STREAM-INF without a uri after it"));
    }
    Ok(MasterPlaylist { variants })
}

/// Reads a media playlist. `target_duration` comes back as the value read.
pub fn parse_media(text: &str) -> Result<MediaPlaylist, HlsError> {
    let mut playlist = MediaPlaylist::default();
    // tags that apply to the next segment
    let mut next = Segment::default();
    // line of an EXTINF still waiting for its uri
    let mut extinf_line: Option<usize> = None;
    for (n, line) in lines(text)? {
        if !line.starts_with('#') {
            if extinf_line.is_none() {
                return Err(parse_error(n, format!("uri {line:?} without EXTINF")));
            }
            next.uri = line.to_owned();
            playlist.segments.push(std::mem::take(&mut next));
            extinf_line = None;
            continue;
        }
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        match tag {
            "#EXTINF" => {
                let (duration, title) = value.split_once(',').unwrap_or((value, ""));
                let duration: f64 = number(n, "EXTINF", duration.trim())?;
                if !duration.is_finite() || duration < 0.0 {
                    return Err(parse_error(
                        n,
                        format!("EXTINF duration {duration} is negative"),
                    ));
                }
                next.duration = duration;
                next.title = (!title.is_empty()).then(|| title.to_owned());
                extinf_line = Some(n);
            }
            "#EXT-X-TARGETDURATION" => playlist.target_duration = Some(number(n, tag, value)?),
            "#EXT-X-MEDIA-SEQUENCE" => playlist.media_sequence = number(n, tag, value)?,
            "#EXT-X-DISCONTINUITY-SEQUENCE" => {
                playlist.discontinuity_sequence = number(n, tag, value)?
            }
            "#EXT-X-PLAYLIST-TYPE" => {
                playlist.playlist_type = Some(match value {
                    "VOD" => PlaylistType::Vod,
                    "EVENT" => PlaylistType::Event,
                    other => {
                        return Err(parse_error(n, format!("unknown playlist type {other:?}")))
                    }
                })
            }
            "#EXT-X-DISCONTINUITY" => next.discontinuity = true,
            "#EXT-X-PROGRAM-DATE-TIME" => {
                next.program_date_time = Some(
                    UtcMillis::parse_rfc3339(value).map_err(|e| parse_error(n, e.to_string()))?,
                )
            }
            "#EXT-X-ENDLIST" => playlist.ended = true,
            "#EXT-X-STREAM-INF" => {
                return Err(parse_error(
                    n,
                    "EXT-X-STREAM-INF in a media playlist (this is a master playlist)",
                ))
            }
            _ => {}
        }
    }
    if let Some(n) = extinf_line {
        return Err(parse_error(n, "EXTINF without a uri after it"));
    }
    Ok(playlist)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::LiveWindow;
    use proptest::prelude::*;

    #[test]
    fn reads_ffmpeg_style_media_playlist() {
        let text = "\u{feff}#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-ALLOW-CACHE:YES\r\n\
#EXT-X-TARGETDURATION:4\r\n#EXT-X-MEDIA-SEQUENCE:7\r\n# a comment\r\n\r\n\
#EXTINF:3.960000,\r\nseg7.ts\r\n#EXT-X-DISCONTINUITY\r\n\
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T14:00:00.5+02:00\r\n#EXTINF:4,Title, with comma\r\n\
http://cdn.example/seg8.ts?token=a,b\r\n#EXT-X-ENDLIST\r\n";
        let p = parse_media(text).expect("playlist");
        assert_eq!(p.target_duration, Some(4));
        assert_eq!(p.media_sequence, 7);
        assert!(p.ended);
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[0].duration, 3.96);
        assert_eq!(p.segments[0].title, None);
        assert!(!p.segments[0].discontinuity);
        assert!(p.segments[1].discontinuity);
        assert_eq!(p.segments[1].title.as_deref(), Some("Title, with comma"));
        assert_eq!(p.segments[1].uri, "http://cdn.example/seg8.ts?token=a,b");
        assert_eq!(
            p.segments[1]
                .program_date_time
                .map(|t| t.to_string())
                .as_deref(),
            Some("2024-05-01T12:00:00.500Z")
        );
    }

    #[test]
    fn reads_master_with_media_tags_and_unquoted_extras() {
        let text = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"en\",URI=\"a.m3u8\"\n\
#EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH=1200000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=640x360,AUDIO=\"aac\"\n\
360p/index.m3u8\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"i.m3u8\"\n";
        let m = parse_master(text).expect("master");
        assert_eq!(m.variants.len(), 1);
        let v = &m.variants[0];
        assert_eq!(v.uri, "360p/index.m3u8");
        assert_eq!(v.bandwidth, 1_200_000);
        assert_eq!(v.codecs.as_deref(), Some("avc1.4d401f,mp4a.40.2"));
        assert_eq!(v.resolution, Some((640, 360)));
        assert_eq!(v.frame_rate, None);
    }

    #[test]
    fn reports_bad_lines() {
        let line_of = |r: Result<MediaPlaylist, HlsError>| match r {
            Err(HlsError::Parse { line, .. }) => line,
            other => panic!("expected a parse error, got {other:?}"),
        };
        assert_eq!(line_of(parse_media("#EXTM3U\n#EXTINF:abc,\nx.ts\n")), 2);
        assert_eq!(line_of(parse_media("#EXTM3U\n\nseg.ts\n")), 3);
        assert_eq!(
            line_of(parse_media("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n")),
            2
        );
        assert_eq!(
            line_of(parse_media("#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:now\n")),
            2
        );
        assert_eq!(
            parse_media("#EXT-X-VERSION:3\n"),
            Err(HlsError::MissingHeader)
        );
        assert_eq!(parse_master(""), Err(HlsError::MissingHeader));
        assert!(matches!(
            parse_master("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\nx.m3u8\n"),
            Err(HlsError::Parse { line: 2, .. })
        ));
        assert!(matches!(
            parse_master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1\n"),
            Err(HlsError::Parse { line: 2, .. })
        ));
        assert!(parse_master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n").is_err());
        assert_eq!(
            line_of(parse_media("#EXTM3U\n#EXTINF:2,\nx.ts\n#EXTINF:2,\n")),
            4
        );
        assert!(parse_media("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n").is_err());
    }

    #[test]
    fn live_window_reads_back() {
        let mut window = LiveWindow::new(2);
        for i in 0..4 {
            let mut seg = Segment::new(format!("{i}.ts"), 2.002);
            seg.discontinuity = i % 2 == 0;
            window.push(seg);
        }
        let back = parse_media(&window.render()).expect("own output");
        assert_eq!(back, window.playlist());
    }

    fn arb_text() -> impl Strategy<Value = String> {
        "[A-Za-z0-9 _.,/:?=&-]{0,16}"
    }

    fn arb_uri() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_./?=&-]{1,24}"
    }

    fn arb_variant() -> impl Strategy<Value = Variant> {
        (
            arb_uri(),
            any::<u64>(),
            proptest::option::of(any::<u64>()),
            proptest::option::of((any::<u32>(), any::<u32>())),
            proptest::option::of("[a-z0-9.,]{1,30}"),
            proptest::option::of((1u32..240_000).prop_map(|k| f64::from(k) / 1000.0)),
            proptest::option::of(arb_text()),
        )
            .prop_map(
                |(uri, bandwidth, average_bandwidth, resolution, codecs, frame_rate, name)| {
                    Variant {
                        uri,
                        bandwidth,
                        average_bandwidth,
                        resolution,
                        codecs,
                        frame_rate,
                        name,
                    }
                },
            )
    }

    fn arb_segment() -> impl Strategy<Value = Segment> {
        (
            arb_uri(),
            0u32..100_000,
            any::<bool>(),
            proptest::option::of(0i64..253_402_300_800_000),
            // lines are trimmed when read, so a title cannot end in a space
            proptest::option::of("[A-Za-z0-9 _.,-]{0,15}[A-Za-z0-9_.,-]"),
        )
            .prop_map(|(uri, ms, discontinuity, time, title)| Segment {
                uri,
                duration: f64::from(ms) / 1000.0,
                discontinuity,
                program_date_time: time.map(UtcMillis),
                title,
            })
    }

    proptest! {
        #[test]
        fn master_round_trip(variants in prop::collection::vec(arb_variant(), 0..5)) {
            let playlist = MasterPlaylist { variants };
            let back = parse_master(&playlist.render()).expect("own output parses");
            prop_assert_eq!(back, playlist);
        }

        #[test]
        fn media_round_trip(
            segments in prop::collection::vec(arb_segment(), 0..8),
            media_sequence in any::<u64>(),
            discontinuity_sequence in any::<u64>(),
            kind in proptest::option::of(prop_oneof![Just(PlaylistType::Vod), Just(PlaylistType::Event)]),
            ended in any::<bool>(),
            floor in 0u32..10,
        ) {
            let mut playlist = MediaPlaylist {
                target_duration: None,
                media_sequence,
                discontinuity_sequence,
                playlist_type: kind,
                ended,
                segments,
            };
            playlist.target_duration = Some(playlist.required_target_duration().max(floor));
            let text = playlist.render();
            let back = parse_media(&text).expect("own output parses");
            prop_assert_eq!(&back, &playlist);
            prop_assert_eq!(back.render(), text);
            // RFC 8216 §4.3.3.1: each EXTINF rounded to the nearest integer <= target
            let target = f64::from(back.target_duration.expect("written"));
            for s in &back.segments {
                prop_assert!(s.duration.round() <= target);
            }
        }

        #[test]
        fn live_window_invariants(
            ops in prop::collection::vec((0u32..10_000, any::<bool>()), 0..40),
            capacity in 1usize..8,
        ) {
            let mut window = LiveWindow::new(capacity);
            let mut all = Vec::new();
            for (i, (ms, disc)) in ops.iter().enumerate() {
                let mut seg = Segment::new(format!("{i}.ts"), f64::from(*ms) / 1000.0);
                seg.discontinuity = *disc;
                all.push(seg.clone());
                window.push(seg);
            }
            let keep = all.len().min(capacity);
            let first = all.len() - keep;
            prop_assert_eq!(window.media_sequence(), first as u64);
            let gone_discontinuities = all[..first].iter().filter(|s| s.discontinuity).count();
            prop_assert_eq!(window.discontinuity_sequence(), gone_discontinuities as u64);
            let kept: Vec<Segment> = window.segments().cloned().collect();
            prop_assert_eq!(&kept[..], &all[first..]);
            let playlist = window.playlist();
            let max_ever = all.iter().map(|s| crate::media::target_for(s.duration)).max().unwrap_or(0);
            prop_assert_eq!(playlist.effective_target_duration(), max_ever.max(1));
            prop_assert_eq!(parse_media(&window.render()).expect("parses"), playlist);
        }

        #[test]
        fn parsers_never_panic(text in "(#EXTM3U\n)?(#EXT[A-Z-]{0,20}(:[^\n]{0,30})?\n|[^\n]{0,20}\n){0,10}") {
            let _ = parse_media(&text);
            let _ = parse_master(&text);
        }
    }
}
