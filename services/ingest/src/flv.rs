//! RTMP audio/video messages to an FLV byte stream: an RTMP message body is exactly an FLV
//! tag body, so only the 9-byte file header and the 11-byte tag headers are added.

use bytes::{BufMut, Bytes, BytesMut};

/// FLV tag types.
pub const TAG_AUDIO: u8 = 8;
pub const TAG_VIDEO: u8 = 9;

/// The FLV file header (audio and video announced) and the first `PreviousTagSize0`.
pub fn header() -> Bytes {
    Bytes::from_static(&[b'F', b'L', b'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0])
}

/// One FLV tag (`kind` is [`TAG_AUDIO`] or [`TAG_VIDEO`]) followed by its `PreviousTagSize`.
pub fn tag(kind: u8, timestamp_ms: u32, body: &[u8]) -> Bytes {
    // The tag's data size is 24 bits; RTMP messages are far below that.
    let size = body.len().min(0x00ff_ffff);
    let mut out = BytesMut::with_capacity(11 + size + 4);
    out.put_u8(kind);
    out.put_uint(size as u64, 3);
    out.put_uint(u64::from(timestamp_ms & 0x00ff_ffff), 3);
    out.put_u8((timestamp_ms >> 24) as u8);
    out.put_uint(0, 3);
    out.put_slice(&body[..size]);
    out.put_u32((11 + size) as u32);
    out.freeze()
}

/// Whether a video tag body holds a keyframe (not a codec configuration record): FLV's
/// frame type 1, in the legacy layout and in Enhanced RTMP's (`IsExHeader` set).
pub fn is_keyframe(body: &[u8]) -> bool {
    let Some(&first) = body.first() else {
        return false;
    };
    let frame_type = (first >> 4) & 0x07;
    if frame_type != 1 {
        return false;
    }
    if first & 0x80 != 0 {
        // Enhanced RTMP: the packet type is the low nibble; 0 is SequenceStart, 4 SequenceEnd,
        // 5 MPEG-2 TS sequence start, 6 multitrack (counted as media)
        return !matches!(first & 0x0f, 0 | 4 | 5);
    }
    // AVC (codec 7): packet type 0 is the sequence header
    !(first & 0x0f == 7 && body.get(1) == Some(&0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframes() {
        assert!(is_keyframe(&[0x17, 1, 0, 0, 0]));
        // the AVC sequence header is a keyframe-typed tag without a frame
        assert!(!is_keyframe(&[0x17, 0, 0, 0, 0]));
        assert!(!is_keyframe(&[0x27, 1, 0, 0, 0]));
        assert!(!is_keyframe(&[]));
        // Enhanced RTMP: keyframe with CodedFrames (1), and with SequenceStart (0)
        assert!(is_keyframe(&[0x91, b'h', b'v', b'c', b'1']));
        assert!(!is_keyframe(&[0x90, b'h', b'v', b'c', b'1']));
    }

    #[test]
    fn tag_layout() {
        let t = tag(TAG_VIDEO, 0x0102_0304, b"abc");
        assert_eq!(&t[..11], &[9, 0, 0, 3, 0x02, 0x03, 0x04, 0x01, 0, 0, 0]);
        assert_eq!(&t[11..14], b"abc");
        assert_eq!(&t[14..], &14u32.to_be_bytes());
        assert_eq!(header().len(), 13);
    }
}
