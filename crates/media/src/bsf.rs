//! The one bitstream filter the engine needs: ADTS-framed AAC (as MPEG-TS carries it) into raw
//! AAC plus an AudioSpecificConfig (as MP4 wants it).

use std::ffi::CString;
use std::ptr;

use ffmpeg::ffi;
use ffmpeg::format::context::Output;
use ffmpeg::packet::Mut;
use ffmpeg::Packet;
use ffmpeg_next as ffmpeg;

fn is_adts(packet: &Packet) -> bool {
    packet
        .data()
        .is_some_and(|d| d.len() >= 2 && d[0] == 0xff && d[1] & 0xf0 == 0xf0)
}

/// Converts `packets` of output stream `stream_index` and installs the resulting codec
/// parameters (with the AudioSpecificConfig) on that stream. Call before `write_header`.
pub(crate) fn adts_to_asc(
    output: &mut Output,
    stream_index: usize,
    packets: Vec<Packet>,
) -> Result<Vec<Packet>, String> {
    if !packets.first().is_some_and(is_adts) {
        return Ok(packets);
    }
    let name = CString::new("aac_adtstoasc").expect("static name has no nul");
    // SAFETY: standard libavcodec BSF lifecycle; every pointer is checked, and the context is
    // freed on every path through `Guard`.
    unsafe {
        let filter = ffi::av_bsf_get_by_name(name.as_ptr());
        if filter.is_null() {
            return Err("aac_adtstoasc filter missing from this ffmpeg build".to_string());
        }
        let mut ctx: *mut ffi::AVBSFContext = ptr::null_mut();
        if ffi::av_bsf_alloc(filter, &mut ctx) < 0 {
            return Err("cannot allocate aac_adtstoasc".to_string());
        }
        struct Guard(*mut ffi::AVBSFContext);
        impl Drop for Guard {
            fn drop(&mut self) {
                // SAFETY: the context was allocated by av_bsf_alloc and is freed once.
                unsafe { ffi::av_bsf_free(&mut self.0) };
            }
        }
        let guard = Guard(ctx);
        let stream = output
            .stream(stream_index)
            .ok_or_else(|| "audio stream missing".to_string())?;
        ffi::avcodec_parameters_copy((*ctx).par_in, (*stream.as_ptr()).codecpar);
        (*ctx).time_base_in = ffi::AVRational {
            num: 1,
            den: 90_000,
        };
        if ffi::av_bsf_init(ctx) < 0 {
            return Err("cannot initialise aac_adtstoasc".to_string());
        }
        let mut out = Vec::with_capacity(packets.len());
        for mut packet in packets {
            if ffi::av_bsf_send_packet(ctx, packet.as_mut_ptr()) < 0 {
                return Err("malformed adts audio packet".to_string());
            }
            loop {
                let mut filtered = Packet::empty();
                if ffi::av_bsf_receive_packet(ctx, filtered.as_mut_ptr()) < 0 {
                    break;
                }
                out.push(filtered);
            }
        }
        let mut stream = output
            .stream_mut(stream_index)
            .ok_or_else(|| "audio stream missing".to_string())?;
        ffi::avcodec_parameters_copy((*stream.as_mut_ptr()).codecpar, (*ctx).par_out);
        drop(guard);
        Ok(out)
    }
}
