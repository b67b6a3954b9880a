//! The `livefarm` command's configuration: defaults, then `--config FILE` (TOML), then
//! `LIVEFARM_<SECTION>__<KEY>` environment variables, then `--set section.key=value` flags.
//! `livefarm --dump-config` prints the result.

use livefarm_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LivefarmConfig {
    pub telemetry: TelemetryConfig,
    pub media: MediaConfig,
}

/// How transcode sessions are built.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaConfig {
    /// auto, cpu or nvidia.
    pub accel: String,
    /// GPU indexes to use (empty = all).
    pub gpus: Vec<u32>,
    /// Transcode sessions per GPU (NVENC limits of consumer cards lower it further).
    pub max_sessions_per_gpu: u32,
    /// libx264 preset for CPU encodes.
    pub x264_preset: String,
    /// NVENC preset (p1..p7).
    pub nvenc_preset: String,
    /// Target segment duration, seconds.
    pub segment_duration: f64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            accel: "auto".to_string(),
            gpus: Vec::new(),
            max_sessions_per_gpu: 8,
            x264_preset: "veryfast".to_string(),
            nvenc_preset: "p4".to_string(),
            segment_duration: 2.0,
        }
    }
}
