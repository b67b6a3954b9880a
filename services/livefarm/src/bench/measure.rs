//! Facts about the machine a bench ran on; the clocks and statistics live in
//! [`livefarm::bench_measure`] (re-exported here).

use serde::Serialize;

pub use livefarm::bench_measure::*;

/// The machine a figure was measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs this process may run on.
    pub cores: usize,
    /// CPUs online.
    pub cores_online: usize,
    pub cpu_model: Option<String>,
    /// First line of `ffmpeg -version`.
    pub ffmpeg_version: Option<String>,
    /// 1-minute load average when the bench started: other work on the machine skews figures.
    pub load_average_1m: Option<f64>,
}

impl Machine {
    /// Call before the bench starts working, so the load average is other processes' load.
    pub fn detect() -> Self {
        // SAFETY: sysconf has no preconditions.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            });
        let ffmpeg_version = std::process::Command::new("ffmpeg")
            .arg("-version")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            });
        let load_average_1m = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next().and_then(|v| v.parse().ok()));
        Machine {
            load_average_1m,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cores_online: usize::try_from(online).unwrap_or(0).max(1),
            cpu_model,
            ffmpeg_version,
        }
    }
}
