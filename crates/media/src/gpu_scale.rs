//! Scaling on the GPU with FFmpeg's `scale_cuda` filter, for frames NVDEC left in GPU memory.
//!
//! The scaled frame is downloaded (`hwdownload`) for the encoder: the download is of the small
//! rendition rather than the full-size source. Built for real but unverified on this project's
//! CI machines, which have no GPU; any failure makes the rendition fall back to downloading the
//! source frame and scaling it with swscale.

use ffmpeg::ffi;
use ffmpeg::{filter, frame};
use ffmpeg_next as ffmpeg;

pub(crate) struct CudaScaler {
    graph: filter::Graph,
    /// (width, height) of the source frames the graph was built for.
    pub(crate) source: (u32, u32),
    /// (width, height) it scales to.
    pub(crate) output: (u32, u32),
}

impl CudaScaler {
    /// Builds `buffer -> scale_cuda -> hwdownload -> format=yuv420p -> buffersink` for CUDA
    /// frames shaped like `sample`.
    pub(crate) fn new(sample: &frame::Video, width: u32, height: u32) -> Result<Self, String> {
        let (src_w, src_h) = (sample.width(), sample.height());
        let mut graph = filter::Graph::new();
        let buffer = filter::find("buffer").ok_or("buffer filter missing")?;
        let sink = filter::find("buffersink").ok_or("buffersink filter missing")?;
        let args = format!(
            "video_size={src_w}x{src_h}:pix_fmt={}:time_base=1/90000:pixel_aspect=1/1",
            ffi::AVPixelFormat::AV_PIX_FMT_CUDA as i32
        );
        graph.add(&buffer, "in", &args).map_err(|e| e.to_string())?;
        {
            let mut source = graph.get("in").ok_or("buffer source missing")?;
            // SAFETY: the parameters struct is allocated by FFmpeg, filled, handed over (the
            // source takes its own reference to hw_frames_ctx) and freed.
            unsafe {
                let params = ffi::av_buffersrc_parameters_alloc();
                if params.is_null() {
                    return Err("out of memory".to_string());
                }
                (*params).format = ffi::AVPixelFormat::AV_PIX_FMT_CUDA as i32;
                (*params).width = src_w as i32;
                (*params).height = src_h as i32;
                (*params).time_base = ffi::AVRational {
                    num: 1,
                    den: 90_000,
                };
                (*params).hw_frames_ctx = (*sample.as_ptr()).hw_frames_ctx;
                let rc = ffi::av_buffersrc_parameters_set(source.as_mut_ptr(), params);
                ffi::av_free(params.cast());
                if rc < 0 {
                    return Err(format!(
                        "buffer source rejected cuda frames ({})",
                        ffmpeg::Error::from(rc)
                    ));
                }
            }
        }
        graph.add(&sink, "out", "").map_err(|e| e.to_string())?;
        let spec = format!(
            "scale_cuda=w={width}:h={height}:interp_algo=bicubic:format=yuv420p,hwdownload,format=yuv420p"
        );
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(&spec))
            .map_err(|e| e.to_string())?;
        graph.validate().map_err(|e| e.to_string())?;
        Ok(CudaScaler {
            graph,
            source: (src_w, src_h),
            output: (width, height),
        })
    }

    /// Scales one CUDA frame into a system-memory `yuv420p` frame.
    pub(crate) fn run(
        &mut self,
        source: &frame::Video,
        output: &mut frame::Video,
    ) -> Result<(), String> {
        let mut input = self.graph.get("in").ok_or("buffer source missing")?;
        // SAFETY: KEEP_REF makes the filter take its own reference: the shared source frame is
        // not modified or released.
        let rc = unsafe {
            ffi::av_buffersrc_add_frame_flags(
                input.as_mut_ptr(),
                source.as_ptr() as *mut _,
                ffi::AV_BUFFERSRC_FLAG_KEEP_REF as i32,
            )
        };
        if rc < 0 {
            return Err(format!(
                "scale_cuda input failed ({})",
                ffmpeg::Error::from(rc)
            ));
        }
        self.graph
            .get("out")
            .ok_or("buffer sink missing")?
            .sink()
            .frame(output)
            .map_err(|e| format!("scale_cuda output failed ({e})"))
    }
}
