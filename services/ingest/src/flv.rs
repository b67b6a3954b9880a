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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_layout() {
        let t = tag(TAG_VIDEO, 0x0102_0304, b"abc");
        assert_eq!(&t[..11], &[9, 0, 0, 3, 0x02, 0x03, 0x04, 0x01, 0, 0, 0]);
        assert_eq!(&t[11..14], b"abc");
        assert_eq!(&t[14..], &14u32.to_be_bytes());
        assert_eq!(header().len(), 13);
    }
}
