//! Shared pieces of the `livefarm` command.

use std::fmt;

pub mod api_key;
pub mod bench_measure;
pub mod bus_bench;

/// A mistake in what the user asked for (exit code 64).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Logs to stderr (`RUST_LOG` overrides the configured filter) and exports spans over OTLP when
/// `telemetry.otlp_endpoint` is set.
pub fn init_logging(config: &livefarm_telemetry::TelemetryConfig) {
    match livefarm_telemetry::init(config) {
        // The guard flushes exporters at exit; the process keeps it for its whole life.
        Ok(guard) => std::mem::forget(guard),
        Err(error) => eprintln!("warning: logging could not be initialised: {error}"),
    }
}

/// Keeps freed video buffers in the heap instead of handing them back to the kernel: encoders are
/// reopened every segment, and returning their frame pools to the kernel only to fault them in
/// again (zeroed) a moment later costs measurable CPU (seen as page clearing in profiles).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts glibc's allocator thresholds; called before other threads start.
    unsafe {
        // 32 MiB is glibc's ceiling for this threshold on 64-bit.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 * 1024 * 1024);
    }
}
