//! NVIDIA hardware decoding (NVDEC through FFmpeg's `cuda` hwaccel).
//!
//! Built for real but unverified on this project's CI machines, which have no GPU: a failure
//! here makes the session fall back to CPU decoding (see `accel::StagePlan::fall_back`).

use std::ffi::CString;
use std::ptr;

use ffmpeg::ffi;
use ffmpeg::{codec, frame};
use ffmpeg_next as ffmpeg;

/// Picks CUDA surfaces when the decoder offers them.
unsafe extern "C" fn pick_cuda_format(
    _ctx: *mut ffi::AVCodecContext,
    mut formats: *const ffi::AVPixelFormat,
) -> ffi::AVPixelFormat {
    // SAFETY: FFmpeg passes a list terminated by AV_PIX_FMT_NONE.
    unsafe {
        let first = *formats;
        while *formats != ffi::AVPixelFormat::AV_PIX_FMT_NONE {
            if *formats == ffi::AVPixelFormat::AV_PIX_FMT_CUDA {
                return ffi::AVPixelFormat::AV_PIX_FMT_CUDA;
            }
            formats = formats.add(1);
        }
        first
    }
}

/// Gives an unopened decoder a CUDA device on GPU `index`.
pub(crate) fn attach_cuda_decoder(
    context: &mut codec::context::Context,
    index: u32,
) -> Result<(), String> {
    let device = CString::new(index.to_string()).expect("digits have no nul");
    // SAFETY: the device reference is created, handed to the codec context (which takes its own
    // reference) and our reference released.
    unsafe {
        let mut hw_device: *mut ffi::AVBufferRef = ptr::null_mut();
        let rc = ffi::av_hwdevice_ctx_create(
            &mut hw_device,
            ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
            device.as_ptr(),
            ptr::null_mut(),
            0,
        );
        if rc < 0 || hw_device.is_null() {
            return Err(format!(
                "cuda device {index} could not be opened ({})",
                ffmpeg::Error::from(rc)
            ));
        }
        let raw = context.as_mut_ptr();
        (*raw).hw_device_ctx = ffi::av_buffer_ref(hw_device);
        (*raw).get_format = Some(pick_cuda_format);
        // Decoded surfaces wait in the rendition queues (8 frames each) while being scaled on
        // the GPU: give the decoder's fixed surface pool room for them.
        (*raw).extra_hw_frames = 48;
        ffi::av_buffer_unref(&mut hw_device);
    }
    Ok(())
}

/// Copies a CUDA frame into system memory (NV12) for the CPU stages; other frames pass through.
pub(crate) fn download(decoded: &frame::Video) -> Result<frame::Video, String> {
    if decoded.format() != ffmpeg::format::Pixel::CUDA {
        return Ok(decoded.clone());
    }
    let mut software = frame::Video::empty();
    // SAFETY: both frames are valid; transfer allocates the destination buffers.
    unsafe {
        let rc = ffi::av_hwframe_transfer_data(software.as_mut_ptr(), decoded.as_ptr(), 0);
        if rc < 0 {
            return Err(format!(
                "gpu frame download failed ({})",
                ffmpeg::Error::from(rc)
            ));
        }
        ffi::av_frame_copy_props(software.as_mut_ptr(), decoded.as_ptr());
    }
    Ok(software)
}
