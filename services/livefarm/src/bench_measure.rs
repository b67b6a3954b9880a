//! Measuring for the benchmarks (`livefarm bench ...`, [`crate::bus_bench`]): CPU seconds of
//! threads, processes and children; medians, spreads and the `stable` flag of interleaved
//! rounds; load averages; and the sanity bound of a ratio against a physical baseline.
//!
//! Why CPU time: on a shared 2-core machine a neighbour takes cores away for seconds at a time,
//! which moves wall-clock rates by a third, while the CPU a piece of work needs moves far less.
//! Headline ratios therefore compare CPU seconds per operation where the work is CPU-bound, with
//! wall ratios beside them, over at least [`MIN_ROUNDS`] alternating rounds.

use std::io;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Fewest rounds for a figure to count as stable.
pub const MIN_ROUNDS: usize = 5;
/// A figure is stable when its interquartile range is at most this share of its median.
pub const STABLE_SPREAD: f64 = 0.10;
/// A ratio against a physical baseline (validation against the bare signature recovery it
/// contains, bus against the bare XADD it issues) above this is a measurement error.
pub const PHYSICAL_BOUND: f64 = 1.05;

/// Whose CPU time [`cpu_seconds`] reads.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    /// This process, every thread, including threads that have exited.
    SelfProcess,
    /// Children that were waited for (`wait`/`wait4` put their CPU here).
    Children,
}

/// User + system CPU seconds used so far by `who` (`getrusage`).
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

/// CPU seconds of the calling thread, to the nanosecond (`CLOCK_THREAD_CPUTIME_ID`).
pub fn current_thread_cpu_seconds() -> io::Result<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

/// Clock ticks per second of the times in `/proc/.../stat`.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// The fields of a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` line the benches use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatTimes {
    /// The thread or process name (`comm`, at most 15 bytes).
    pub comm: String,
    pub ppid: u32,
    /// User and system time of the thread or process (all its threads, for a process), ticks.
    pub utime: u64,
    pub stime: u64,
    /// User and system time of its waited-for children, ticks.
    pub cutime: u64,
    pub cstime: u64,
}

impl StatTimes {
    /// Own user + system seconds.
    pub fn seconds(&self) -> f64 {
        (self.utime + self.stime) as f64 / ticks_per_second()
    }
}

/// Parses a `stat` line. The name sits in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<StatTimes> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    // After the name: state (field 3), ppid (4), ... utime (14), stime (15), cutime (16), cstime (17).
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(StatTimes {
        comm,
        ppid: u32::try_from(field(4)?).ok()?,
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
    })
}

/// The first field of a `schedstat` file: nanoseconds on a CPU, as seconds.
pub fn parse_schedstat(text: &str) -> Option<f64> {
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// CPU seconds of one thread of this process: `schedstat` (nanoseconds) where the kernel keeps
/// it, else `stat` (clock ticks).
pub fn thread_cpu_seconds(tid: u32) -> io::Result<f64> {
    let dir = format!("/proc/self/task/{tid}");
    if let Some(seconds) = std::fs::read_to_string(format!("{dir}/schedstat"))
        .ok()
        .and_then(|t| parse_schedstat(&t))
    {
        return Ok(seconds);
    }
    let text = std::fs::read_to_string(format!("{dir}/stat"))?;
    parse_stat(&text)
        .map(|s| s.seconds())
        .ok_or_else(|| invalid(format!("cannot read {dir}/stat")))
}

/// CPU used by this process's live threads whose name starts with a prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ThreadsCpu {
    /// Threads that matched.
    pub threads: usize,
    /// Their CPU seconds so far.
    pub seconds: f64,
}

/// Sums the CPU of this process's threads named `prefix...` (names from
/// `/proc/self/task/<tid>/comm`). Threads that exited are gone from the sum, so measure over
/// threads that live through the window (a runtime's workers, a connection's worker).
pub fn threads_cpu_seconds(prefix: &str) -> io::Result<ThreadsCpu> {
    Ok(ThreadSnapshot::take()?.named(prefix))
}

/// Every live thread of this process at one moment: tid -> (name, CPU seconds).
#[derive(Debug, Clone, Default)]
pub struct ThreadSnapshot {
    threads: std::collections::HashMap<u32, (String, f64)>,
}

impl ThreadSnapshot {
    pub fn take() -> io::Result<Self> {
        let mut threads = std::collections::HashMap::new();
        for entry in std::fs::read_dir("/proc/self/task")? {
            let entry = entry?;
            let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) else {
                continue;
            };
            if let Ok(seconds) = thread_cpu_seconds(tid) {
                threads.insert(tid, (name.trim_end_matches('\n').to_owned(), seconds));
            }
        }
        Ok(ThreadSnapshot { threads })
    }

    /// How many threads are named `prefix...` and the CPU seconds they used so far.
    pub fn named(&self, prefix: &str) -> ThreadsCpu {
        self.threads
            .values()
            .filter(|(name, _)| name.starts_with(prefix))
            .fold(ThreadsCpu::default(), |total, (_, seconds)| ThreadsCpu {
                threads: total.threads + 1,
                seconds: total.seconds + seconds,
            })
    }

    /// CPU seconds that threads named `prefix...` used between `before` and `self`; a thread
    /// born in between counts from zero (one that died in between is lost: measure over
    /// long-lived threads).
    pub fn since(&self, before: &ThreadSnapshot, prefix: &str) -> f64 {
        self.threads
            .iter()
            .filter(|(_, (name, _))| name.starts_with(prefix))
            .map(|(tid, (_, now))| {
                let then = before.threads.get(tid).map_or(0.0, |(_, s)| *s);
                (now - then).max(0.0)
            })
            .sum()
    }
}

/// CPU seconds of the live descendants of `root` (not `root` itself) whose name starts with
/// `prefix`: a PostgreSQL server and its backends started by this process, say.
pub fn descendants_cpu_seconds(root: u32, prefix: &str) -> io::Result<f64> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(stat) = process_stat(pid) {
            all.push((pid, stat));
        }
    }
    Ok(descendants_seconds(root, prefix, &all))
}

fn descendants_seconds(root: u32, prefix: &str, all: &[(u32, StatTimes)]) -> f64 {
    let mut members = vec![root];
    let mut i = 0;
    while let Some(&parent) = members.get(i) {
        for (pid, stat) in all {
            if stat.ppid == parent && *pid != root && !members.contains(pid) {
                members.push(*pid);
            }
        }
        i += 1;
    }
    all.iter()
        .filter(|(pid, stat)| {
            *pid != root && members.contains(pid) && stat.comm.starts_with(prefix)
        })
        .map(|(_, stat)| stat.seconds())
        .sum()
}

/// `stat` of any process.
pub fn process_stat(pid: u32) -> io::Result<StatTimes> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path)?;
    parse_stat(&text).ok_or_else(|| invalid(format!("cannot read {path}")))
}

/// CPU seconds of a process (every thread, live or exited), from `/proc/<pid>/stat`.
pub fn process_cpu_seconds(pid: u32) -> io::Result<f64> {
    Ok(process_stat(pid)?.seconds())
}

/// CPU seconds of a process and every live descendant (a PostgreSQL postmaster and its
/// backends, say), each counted once.
pub fn process_tree_cpu_seconds(root: u32) -> io::Result<f64> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(stat) = process_stat(pid) {
            all.push((pid, stat));
        }
    }
    Ok(tree_seconds(root, &all))
}

fn tree_seconds(root: u32, all: &[(u32, StatTimes)]) -> f64 {
    let mut members = vec![root];
    let mut i = 0;
    while let Some(&parent) = members.get(i) {
        for (pid, stat) in all {
            if stat.ppid == parent && *pid != root && !members.contains(pid) {
                members.push(*pid);
            }
        }
        i += 1;
    }
    all.iter()
        .filter(|(pid, _)| members.contains(pid))
        .map(|(_, stat)| stat.seconds())
        .sum()
}

/// `/proc/loadavg`: runnable tasks averaged over 1, 5 and 15 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

impl LoadAverage {
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.split_whitespace().map(|v| v.parse::<f64>().ok());
        Some(LoadAverage {
            one: fields.next()??,
            five: fields.next()??,
            fifteen: fields.next()??,
        })
    }

    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/loadavg").ok()?)
    }
}

/// Median of the samples (mean of the middle two for an even count); 0 without samples.
pub fn median(samples: &[f64]) -> f64 {
    quantile(samples, 0.5).unwrap_or(0.0)
}

/// The `q` quantile, interpolating between closest ranks; `None` without samples.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (a, b) = (sorted[lo], sorted[hi]);
    Some(a + (b - a) * (pos - lo as f64))
}

/// `a / b`, or `None` when `b` is not a usable divisor.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && b.is_finite() && a.is_finite()).then(|| a / b)
}

/// How far the rounds of one ratio spread.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub rounds: usize,
    pub min: f64,
    pub max: f64,
    /// First and third quartiles.
    pub q1: f64,
    pub q3: f64,
    /// (q3 - q1) / median: what `stable` is judged on.
    pub iqr_over_median: f64,
    /// (max - min) / median.
    pub range_over_median: f64,
    /// At least [`MIN_ROUNDS`] rounds and `iqr_over_median` at most [`STABLE_SPREAD`].
    pub stable: bool,
}

/// The rounds of one ratio, summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioStats {
    pub median: f64,
    pub rounds: Vec<f64>,
    pub spread: Spread,
}

impl RatioStats {
    /// `None` without rounds or with a round that is not a finite number.
    pub fn of(rounds: &[f64]) -> Option<Self> {
        if rounds.is_empty() || rounds.iter().any(|r| !r.is_finite()) {
            return None;
        }
        let median = median(rounds);
        let q1 = quantile(rounds, 0.25)?;
        let q3 = quantile(rounds, 0.75)?;
        let min = rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rounds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let relative = |width: f64| {
            if median.abs() > 0.0 {
                width / median.abs()
            } else if width == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        };
        let iqr_over_median = relative(q3 - q1);
        Some(RatioStats {
            median,
            rounds: rounds.to_vec(),
            spread: Spread {
                rounds: rounds.len(),
                min,
                max,
                q1,
                q3,
                iqr_over_median,
                range_over_median: relative(max - min),
                stable: rounds.len() >= MIN_ROUNDS && iqr_over_median <= STABLE_SPREAD,
            },
        })
    }
}

/// One ratio of a bench: its rounds, and its value unless it broke a physical bound.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioFigure {
    pub name: String,
    /// The median round, or `None` when unmeasured or a measurement error.
    pub value: Option<f64>,
    pub stats: Option<RatioStats>,
    /// Why the value is withheld.
    pub error: Option<String>,
}

/// The ratios of one bench, in the order added. Serialises (flattened into the bench's JSON
/// object) as `NAME` (the median, or null), `NAME_rounds`, `NAME_spread` for each ratio, then
/// `headline` (the name of the bench's headline ratio), `stable` (the headline's) and
/// `measurement_errors`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub ratios: Vec<RatioFigure>,
    pub headline: Option<String>,
}

impl Figures {
    /// Adds a ratio from its rounds. With `physical_bound`, a median above
    /// [`PHYSICAL_BOUND`] is recorded as a measurement error and the value withheld.
    pub fn add(&mut self, name: &str, rounds: &[f64], physical_bound: bool) -> Option<f64> {
        let stats = RatioStats::of(rounds);
        let mut error = None;
        let mut value = stats.as_ref().map(|s| s.median);
        if let Some(v) = value.filter(|v| physical_bound && *v > PHYSICAL_BOUND) {
            error = Some(format!(
                "{name} = {v:.3} is above {PHYSICAL_BOUND}: the measured side cannot beat the \
                 physical baseline it contains, so the rounds were skewed (a measurement error, \
                 not a result)"
            ));
            value = None;
        }
        self.ratios.push(RatioFigure {
            name: name.to_owned(),
            value,
            stats,
            error,
        });
        value
    }

    /// Marks the headline ratio (added before or after).
    pub fn set_headline(&mut self, name: &str) {
        self.headline = Some(name.to_owned());
    }

    pub fn get(&self, name: &str) -> Option<&RatioFigure> {
        self.ratios.iter().find(|r| r.name == name)
    }

    pub fn value(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(|r| r.value)
    }

    /// The headline's `stable` (false without a headline, or with a measurement error).
    pub fn stable(&self) -> bool {
        self.headline
            .as_deref()
            .and_then(|h| self.get(h))
            .is_some_and(|r| r.error.is_none() && r.stats.as_ref().is_some_and(|s| s.spread.stable))
    }

    pub fn errors(&self) -> Vec<String> {
        self.ratios.iter().filter_map(|r| r.error.clone()).collect()
    }
}

impl Serialize for Figures {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for ratio in &self.ratios {
            map.serialize_entry(&ratio.name, &ratio.value)?;
            let rounds = ratio.stats.as_ref().map(|s| s.rounds.as_slice());
            map.serialize_entry(&format!("{}_rounds", ratio.name), &rounds.unwrap_or(&[]))?;
            map.serialize_entry(
                &format!("{}_spread", ratio.name),
                &ratio.stats.as_ref().map(|s| &s.spread),
            )?;
        }
        map.serialize_entry("headline", &self.headline)?;
        map.serialize_entry("stable", &self.stable())?;
        map.serialize_entry("measurement_errors", &self.errors())?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn median_and_quartiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        let five = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&five, 0.25), Some(2.0));
        assert_eq!(quantile(&five, 0.75), Some(4.0));
        assert_eq!(quantile(&[1.0, 2.0], 0.25), Some(1.25));
    }

    #[test]
    fn ratio_refuses_zero_divisors() {
        assert_eq!(ratio(1.0, 2.0), Some(0.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn tight_rounds_are_stable_and_wide_ones_are_not() {
        let tight = RatioStats::of(&[0.80, 0.82, 0.81, 0.79, 0.83]).expect("stats");
        assert!((tight.median - 0.81).abs() < 1e-12);
        assert!((tight.spread.q1 - 0.80).abs() < 1e-12);
        assert!((tight.spread.q3 - 0.82).abs() < 1e-12);
        assert!(tight.spread.stable, "{:?}", tight.spread);
        // The tickets runs: 0.74, 0.90, 1.25, 1.13 (and one more).
        let wide = RatioStats::of(&[0.74, 0.90, 1.25, 1.13, 0.95]).expect("stats");
        assert!(!wide.spread.stable, "{:?}", wide.spread);
        assert!((wide.spread.min - 0.74).abs() < 1e-12);
        assert!((wide.spread.max - 1.25).abs() < 1e-12);
        // One wild round out of five moves the range, not the interquartile range.
        let one_outlier = RatioStats::of(&[0.80, 0.81, 0.82, 0.80, 1.40]).expect("stats");
        assert!(one_outlier.spread.stable);
        assert!(one_outlier.spread.range_over_median > 0.5);
        // Tight but too few rounds to tell.
        let few = RatioStats::of(&[0.80, 0.80, 0.80]).expect("stats");
        assert!(!few.spread.stable);
        assert!(RatioStats::of(&[]).is_none());
        assert!(RatioStats::of(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn a_ratio_above_its_physical_bound_is_an_error_not_a_result() {
        let mut figures = Figures::default();
        let rounds = [1.10, 1.12, 1.09, 1.11, 1.10];
        assert_eq!(figures.add("ratio_vs_raw", &rounds, true), None);
        figures.set_headline("ratio_vs_raw");
        assert!(!figures.stable(), "an error is never stable");
        assert_eq!(figures.errors().len(), 1);
        // The same rounds without a physical bound are a result.
        assert_eq!(figures.add("ratio_wall", &rounds, false), Some(1.10));
        // Just inside the bound.
        assert_eq!(
            figures.add("ratio_cpu", &[1.04, 1.04, 1.04, 1.04, 1.04], true),
            Some(1.04)
        );
        figures.set_headline("ratio_cpu");
        assert!(figures.stable());
        let json = serde_json::to_value(&figures).expect("serialises");
        assert!(json["ratio_vs_raw"].is_null());
        assert_eq!(
            json["ratio_vs_raw_rounds"].as_array().map(Vec::len),
            Some(5)
        );
        assert_eq!(json["ratio_wall"], serde_json::json!(1.10));
        assert_eq!(json["ratio_cpu_spread"]["stable"], serde_json::json!(true));
        assert_eq!(json["headline"], serde_json::json!("ratio_cpu"));
        assert_eq!(json["stable"], serde_json::json!(true));
        assert_eq!(json["measurement_errors"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn stat_lines_parse_whatever_the_name() {
        let line =
            "4242 (tokio (x) 1) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 31 7 3 20 0 4 0 1000 0 0";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(stat.comm, "tokio (x) 1");
        assert_eq!(stat.ppid, 17);
        assert_eq!(
            (stat.utime, stat.stime, stat.cutime, stat.cstime),
            (250, 31, 7, 3)
        );
        assert!(parse_stat("4242 (x) S").is_none());
        assert_eq!(parse_schedstat("1500000000 20 3\n"), Some(1.5));
        assert_eq!(
            LoadAverage::parse("1.74 1.69 1.85 4/137 2737\n"),
            Some(LoadAverage {
                one: 1.74,
                five: 1.69,
                fifteen: 1.85
            })
        );
    }

    #[test]
    fn process_trees_sum_descendants_once() {
        let stat = |ppid: u32, ticks: u64| StatTimes {
            comm: "p".into(),
            ppid,
            utime: ticks,
            stime: 0,
            cutime: 0,
            cstime: 0,
        };
        // 10 -> 11 -> 12, and 13 unrelated.
        let all = vec![
            (10, stat(1, 100)),
            (11, stat(10, 200)),
            (12, stat(11, 300)),
            (13, stat(1, 1000)),
        ];
        let expected = 600.0 / ticks_per_second();
        assert!((tree_seconds(10, &all) - expected).abs() < 1e-9);
        // Descendants only, by name: 11 and 12 are "p", so both count; "q" would not.
        assert!((descendants_seconds(10, "p", &all) - 500.0 / ticks_per_second()).abs() < 1e-9);
        assert_eq!(descendants_seconds(10, "q", &all), 0.0);
    }

    #[test]
    fn snapshots_count_threads_born_in_between() {
        let before = ThreadSnapshot::take().expect("/proc/self/task");
        let (tx, rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let worker = std::thread::Builder::new()
            .name("lfsnap-worker".into())
            .spawn(move || {
                tx.send(spin_for_cpu(0.1)).expect("test alive");
                let _ = release_rx.recv();
            })
            .expect("spawn");
        let used = rx.recv().expect("worker reports");
        let after = ThreadSnapshot::take().expect("/proc/self/task");
        release_tx.send(()).expect("worker alive");
        worker.join().expect("joins");
        let counted = after.since(&before, "lfsnap-");
        assert!(
            counted >= 0.09 && counted <= used + 0.05,
            "{counted} for {used}"
        );
        assert_eq!(after.since(&before, "no-such-"), 0.0);
        // Nothing happened between a snapshot and itself.
        assert_eq!(after.since(&after, "lfsnap-"), 0.0);
    }

    /// Spins until the calling thread has used `seconds` of CPU by its own clock (capped at
    /// 20 s of wall time, so a clock that does not move fails instead of hanging).
    fn spin_for_cpu(seconds: f64) -> f64 {
        let start = std::time::Instant::now();
        let before = current_thread_cpu_seconds().expect("thread clock");
        let mut x = 0u64;
        let mut used = 0.0;
        while used < seconds && start.elapsed().as_secs() < 20 {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            used = current_thread_cpu_seconds().expect("thread clock") - before;
        }
        used
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_seconds(Who::SelfProcess).expect("getrusage works");
        let used = spin_for_cpu(0.05);
        assert!(used >= 0.05, "the thread clock moved {used}");
        let process = cpu_seconds(Who::SelfProcess).expect("getrusage works") - before;
        assert!(
            process >= 0.04,
            "getrusage moved {process} for {used} of thread cpu"
        );
        let own = process_cpu_seconds(std::process::id()).expect("proc stat");
        assert!(own >= 0.04, "/proc/self/stat says {own}");
    }

    #[test]
    fn named_threads_are_counted_by_prefix() {
        // A busy thread and an idle one, both alive while their CPU is read.
        let (busy_done_tx, busy_done_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_idle = mpsc::channel::<()>();
        let busy = std::thread::Builder::new()
            .name("lfmeasure-busy".into())
            .spawn(move || {
                let used = spin_for_cpu(0.2);
                busy_done_tx.send(used).expect("test alive");
                let _ = release_rx.recv();
            })
            .expect("spawn");
        let idle_rx = release_idle.1;
        let idle = std::thread::Builder::new()
            .name("lfmeasure-idle".into())
            .spawn(move || {
                let _ = idle_rx.recv();
            })
            .expect("spawn");
        let used = busy_done_rx.recv().expect("busy thread reports");
        assert!(used >= 0.2, "busy thread clock moved {used}");
        let busy_cpu = threads_cpu_seconds("lfmeasure-busy").expect("/proc/self/task");
        let idle_cpu = threads_cpu_seconds("lfmeasure-idle").expect("/proc/self/task");
        let both = threads_cpu_seconds("lfmeasure-").expect("/proc/self/task");
        release_tx.send(()).expect("busy alive");
        release_idle.0.send(()).expect("idle alive");
        busy.join().expect("busy joins");
        idle.join().expect("idle joins");
        assert_eq!(busy_cpu.threads, 1);
        assert_eq!(idle_cpu.threads, 1);
        assert_eq!(both.threads, 2);
        // /proc may count in 10 ms ticks.
        assert!(
            busy_cpu.seconds >= 0.18,
            "{busy_cpu:?} for {used} s of work"
        );
        assert!(idle_cpu.seconds < 0.05, "{idle_cpu:?}");
        assert!(
            threads_cpu_seconds("no-such-thread")
                .expect("reads")
                .threads
                == 0
        );
    }
}
