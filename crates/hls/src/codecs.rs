//! RFC 6381 codec strings for the `CODECS` attribute.

use crate::error::HlsError;

/// AAC-LC audio.
pub const MP4A_AAC_LC: &str = "mp4a.40.2";
/// HE-AAC (AAC-LC + SBR) audio.
pub const MP4A_HE_AAC: &str = "mp4a.40.5";

/// `avc1.PPCCLL`: profile_idc, constraint-flag byte and level_idc in lowercase hex.
pub fn avc1(profile_idc: u8, constraint_flags: u8, level_idc: u8) -> String {
    format!("avc1.{profile_idc:02x}{constraint_flags:02x}{level_idc:02x}")
}

/// Joins codec strings into one `CODECS` value (`"avc1.64001f,mp4a.40.2"`).
pub fn join<S: AsRef<str>>(codecs: &[S]) -> String {
    codecs
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(",")
}

/// Profile, constraint flags and level of an H.264 stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AvcProfileLevel {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
}

impl AvcProfileLevel {
    /// The `avc1.PPCCLL` codec string.
    pub fn codec_string(&self) -> String {
        avc1(self.profile_idc, self.constraint_flags, self.level_idc)
    }

    /// Reads an SPS NAL unit (starting at its one-byte NAL header, type 7).
    pub fn from_sps_nal(nal: &[u8]) -> Result<Self, HlsError> {
        let header = *nal.first().ok_or(HlsError::Truncated("empty nal unit"))?;
        if header & 0x1f != NAL_SPS {
            return Err(HlsError::NoSps);
        }
        // the first payload bytes cannot hold an emulation-prevention byte in a
        // valid SPS (profile_idc is never 0), but strip them to be safe
        let mut payload = [0u8; 3];
        let mut filled = 0;
        let mut zeros = 0;
        for &byte in &nal[1..] {
            if filled == payload.len() {
                break;
            }
            if zeros >= 2 && byte == 0x03 {
                zeros = 0;
                continue;
            }
            zeros = if byte == 0 { zeros + 1 } else { 0 };
            payload[filled] = byte;
            filled += 1;
        }
        if filled < payload.len() {
            return Err(HlsError::Truncated("sps shorter than 4 bytes"));
        }
        Ok(AvcProfileLevel {
            profile_idc: payload[0],
            constraint_flags: payload[1],
            level_idc: payload[2],
        })
    }

    /// Finds the first SPS in an Annex-B byte stream (`00 00 01` / `00 00 00 01` start codes).
    pub fn from_annex_b(data: &[u8]) -> Result<Self, HlsError> {
        annex_b_nals(data)
            .find(|nal| nal.first().is_some_and(|h| h & 0x1f == NAL_SPS))
            .map_or(Err(HlsError::NoSps), Self::from_sps_nal)
    }

    /// Reads an `avcC` record (ISO 14496-15 `AVCDecoderConfigurationRecord`):
    /// the first SPS it carries, else the profile/level bytes of its header.
    pub fn from_avcc(record: &[u8]) -> Result<Self, HlsError> {
        if record.len() < 4 {
            return Err(HlsError::Truncated("avcC shorter than 4 bytes"));
        }
        let header = AvcProfileLevel {
            profile_idc: record[1],
            constraint_flags: record[2],
            level_idc: record[3],
        };
        // byte 5: numOfSequenceParameterSets (low 5 bits), then u16 length + SPS
        let sps_count = record.get(5).map_or(0, |b| b & 0x1f);
        if sps_count == 0 {
            return Ok(header);
        }
        let Some(len_bytes) = record.get(6..8) else {
            return Ok(header);
        };
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        match record.get(8..8 + len) {
            Some(sps) => Self::from_sps_nal(sps).or(Ok(header)),
            None => Ok(header),
        }
    }

    /// Reads codec extradata in either form: avcC (first byte 1) or Annex-B.
    pub fn from_extradata(extradata: &[u8]) -> Result<Self, HlsError> {
        if extradata.first() == Some(&1) {
            Self::from_avcc(extradata)
        } else {
            Self::from_annex_b(extradata)
        }
    }
}

const NAL_SPS: u8 = 7;

/// The `avc1` codec string of the first SPS in an Annex-B buffer or avcC record.
pub fn avc1_from_extradata(extradata: &[u8]) -> Result<String, HlsError> {
    AvcProfileLevel::from_extradata(extradata).map(|p| p.codec_string())
}

/// NAL units of an Annex-B stream, without start codes.
fn annex_b_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&next| {
            // the start code before `next` is 3 bytes, plus any leading zero
            let mut end = next - 3;
            while end > 0 && data[end - 1] == 0 {
                end -= 1;
            }
            end
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(move |(start, end)| &data[start..end.max(start)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// SPS of a 1280x720 High@3.1 stream as written by x264.
    const SPS_HIGH_31: [u8; 8] = [0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50];
    /// SPS of a Constrained Baseline@3.0 stream.
    const SPS_CB_30: [u8; 6] = [0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00];

    #[test]
    fn avc1_strings() {
        assert_eq!(avc1(0x64, 0x00, 0x1f), "avc1.64001f");
        assert_eq!(avc1(66, 0xe0, 30), "avc1.42e01e");
        assert_eq!(
            join(&[avc1(0x4d, 0x40, 0x28).as_str(), MP4A_AAC_LC]),
            "avc1.4d4028,mp4a.40.2"
        );
    }

    #[test]
    fn reads_sps_from_annex_b() {
        let mut stream = vec![0, 0, 0, 1, 0x09, 0xf0]; // access unit delimiter
        stream.extend_from_slice(&[0, 0, 0, 1]);
        stream.extend_from_slice(&SPS_HIGH_31);
        stream.extend_from_slice(&[0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb]); // PPS
        assert_eq!(avc1_from_extradata(&stream).as_deref(), Ok("avc1.64001f"));

        let mut short_codes = vec![0, 0, 1];
        short_codes.extend_from_slice(&SPS_CB_30);
        assert_eq!(
            avc1_from_extradata(&short_codes).as_deref(),
            Ok("avc1.42c01e")
        );

        assert_eq!(
            avc1_from_extradata(&[0, 0, 1, 0x68, 0xeb]),
            Err(HlsError::NoSps)
        );
        assert_eq!(avc1_from_extradata(&[]), Err(HlsError::NoSps));
        assert!(matches!(
            avc1_from_extradata(&[0, 0, 1, 0x67, 0x64]),
            Err(HlsError::Truncated(_))
        ));
    }

    #[test]
    fn reads_avcc() {
        // version, profile, compat, level, 0xff (4-byte lengths), 0xe1 (1 SPS), len, SPS, PPS
        let mut record = vec![1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, SPS_CB_30.len() as u8];
        record.extend_from_slice(&SPS_CB_30);
        record.extend_from_slice(&[1, 0x00, 0x04, 0x68, 0xeb, 0xe3, 0xcb]);
        // the SPS wins over the header copy when they differ
        assert_eq!(avc1_from_extradata(&record).as_deref(), Ok("avc1.42c01e"));
        // header only
        assert_eq!(
            avc1_from_extradata(&[1, 0x4d, 0x40, 0x28, 0xff, 0xe0]).as_deref(),
            Ok("avc1.4d4028")
        );
        assert!(AvcProfileLevel::from_avcc(&[1, 0x64]).is_err());
    }

    #[test]
    fn strips_emulation_prevention() {
        // a made-up SPS whose payload starts 00 00 03 01: profile 0, flags 0, level 1
        let nal = [0x67, 0x00, 0x00, 0x03, 0x01];
        let got = AvcProfileLevel::from_sps_nal(&nal).expect("sps");
        assert_eq!(
            (got.profile_idc, got.constraint_flags, got.level_idc),
            (0, 0, 1)
        );
    }

    proptest! {
        #[test]
        fn extradata_never_panics(data in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = avc1_from_extradata(&data);
            let _ = AvcProfileLevel::from_avcc(&data);
            let _ = AvcProfileLevel::from_annex_b(&data);
        }

        #[test]
        fn finds_sps_among_other_nals(
            before in prop::collection::vec(prop::collection::vec(1u8..=255, 1..8), 0..4),
            profile in 1u8..=255, flags in 1u8..=255, level in 1u8..=255,
        ) {
            let mut stream = Vec::new();
            for nal in &before {
                // keep these NALs away from type 7
                let header = if nal[0] & 0x1f == 7 { nal[0] ^ 1 } else { nal[0] };
                stream.extend_from_slice(&[0, 0, 0, 1, header]);
                stream.extend_from_slice(&nal[1..]);
            }
            stream.extend_from_slice(&[0, 0, 1, 0x67, profile, flags, level, 0xff]);
            prop_assert_eq!(avc1_from_extradata(&stream), Ok(avc1(profile, flags, level)));
        }
    }
}
