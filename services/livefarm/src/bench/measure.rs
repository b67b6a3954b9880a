//! Clocks for the benchmarks: CPU seconds from `getrusage`, medians, and facts about the machine.

use std::io;

use serde::Serialize;

/// Whose CPU time to read.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    /// This process, every thread (the in-process Livefarm side).
    SelfProcess,
    /// Children that were waited for (the `ffmpeg` CLI side).
    Children,
}

/// User + system CPU seconds used so far by `who`.
pub fn cpu_seconds(who: Who) -> io::Result<f64> {
    let which = match who {
        Who::SelfProcess => libc::RUSAGE_SELF,
        Who::Children => libc::RUSAGE_CHILDREN,
    };
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full rusage into the pointer it is given; `which` is valid.
    let rc = unsafe { libc::getrusage(which, usage.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getrusage succeeded, so the struct is initialised (it was zeroed before anyway).
    let usage = unsafe { usage.assume_init() };
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Ok(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// Median of the samples (mean of the middle two for an even count); 0 without samples.
pub fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// `a / b`, or `None` when `b` is not a usable divisor.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && b.is_finite() && a.is_finite()).then(|| a / b)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn ratio_refuses_zero_divisors() {
        assert_eq!(ratio(1.0, 2.0), Some(0.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        // Spin until the process has used 20 ms of CPU by its own count; a measurement that
        // does not move (or moves with wall time only) runs into the 10 s cap and fails. Not
        // a fixed wall-clock spin: on a loaded machine 50 ms of wall time can be 5 ms of CPU.
        let before = cpu_seconds(Who::SelfProcess).expect("getrusage works");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut used = 0.0;
        while used < 0.02 && start.elapsed().as_secs() < 10 {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            used = cpu_seconds(Who::SelfProcess).expect("getrusage works") - before;
        }
        assert!(
            used >= 0.02,
            "spun for {:?} but cpu time moved {used}",
            start.elapsed()
        );
    }
}
