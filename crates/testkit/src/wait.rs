//! One way to wait in a test: poll the condition the test claims until it holds or a deadline
//! passes, then fail saying what was awaited and what was seen last. Never a fixed sleep.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long [`wait_until`] rests between two checks.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// What one check of a condition says: it holds (with a value), or not yet (with what was
/// seen, for the failure message).
pub trait Condition {
    type Output;
    /// `Ok` when the condition holds, `Err(observation)` otherwise.
    fn check(self) -> Result<Self::Output, String>;
}

impl Condition for bool {
    type Output = ();
    fn check(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".to_owned())
        }
    }
}

impl<T> Condition for Option<T> {
    type Output = T;
    fn check(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".to_owned())
    }
}

/// `Err(observation)`: not yet, with what was seen (an error, a count, a log tail).
impl<T, E: Display> Condition for Result<T, E> {
    type Output = T;
    fn check(self) -> Result<T, String> {
        self.map_err(|seen| seen.to_string())
    }
}

/// The deadline and the last observation of one wait.
struct Waiter<'a> {
    what: &'a str,
    timeout: Duration,
    deadline: Instant,
    last: String,
}

impl<'a> Waiter<'a> {
    fn new(timeout: Duration, what: &'a str) -> Self {
        Self {
            what,
            timeout,
            deadline: Instant::now() + timeout,
            last: "never checked".to_owned(),
        }
    }

    /// The condition's value when it holds; records the observation otherwise.
    fn observe<C: Condition>(&mut self, condition: C) -> Option<C::Output> {
        match condition.check() {
            Ok(value) => Some(value),
            Err(seen) => {
                self.last = seen;
                None
            }
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// How long to rest before the next check; panics once the deadline has passed.
    fn next_pause(&self) -> Duration {
        let remaining = self.remaining();
        if remaining.is_zero() {
            panic!(
                "waited {:?} for {}; last seen: {}",
                self.timeout, self.what, self.last
            );
        }
        POLL_INTERVAL.min(remaining)
    }
}

/// Checks `condition` every [`POLL_INTERVAL`] until it holds and returns its value; panics
/// after `timeout` with `what` and the last observation. A check still running at the
/// deadline is abandoned (a call to a hung service cannot hold the test forever).
///
/// ```no_run
/// # async fn doc(results: impl Fn() -> usize) {
/// use std::time::Duration;
/// let count = livefarm_testkit::wait_until(Duration::from_secs(10), "3 results", || async {
///     let n = results();
///     if n >= 3 { Ok(n) } else { Err(format!("{n} results")) }
/// })
/// .await;
/// # }
/// ```
pub async fn wait_until<C, F, Fut>(timeout: Duration, what: &str, mut condition: F) -> C::Output
where
    C: Condition,
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
{
    let mut waiter = Waiter::new(timeout, what);
    loop {
        // tokio's timeout polls the check once before looking at the clock: a zero timeout
        // still checks once.
        match tokio::time::timeout(waiter.remaining(), condition()).await {
            Ok(condition) => {
                if let Some(value) = waiter.observe(condition) {
                    return value;
                }
            }
            Err(_) => waiter.last = format!("a check still running (before it: {})", waiter.last),
        }
        tokio::time::sleep(waiter.next_pause()).await;
    }
}

/// [`wait_until`] for tests without a runtime: the same polling, on this thread.
pub fn wait_until_blocking<C: Condition>(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> C,
) -> C::Output {
    let mut waiter = Waiter::new(timeout, what);
    loop {
        if let Some(value) = waiter.observe(condition()) {
            return value;
        }
        std::thread::sleep(waiter.next_pause());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_value_once_the_condition_holds() {
        let checks = AtomicU32::new(0);
        let value = wait_until(Duration::from_secs(5), "three checks", || async {
            let n = checks.fetch_add(1, Ordering::SeqCst) + 1;
            (n >= 3).then_some(n)
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "for the impossible; last seen: 7 apples")]
    async fn panics_with_what_and_the_last_observation() {
        wait_until(Duration::from_millis(50), "the impossible", || async {
            Err::<(), _>("7 apples")
        })
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "a check still running")]
    async fn a_hung_check_ends_at_the_deadline() {
        wait_until(Duration::from_millis(50), "a hung check", || async {
            std::future::pending::<bool>().await
        })
        .await;
    }

    #[test]
    fn blocking_checks_at_least_once_even_with_no_time() {
        wait_until_blocking(Duration::ZERO, "true", || true);
    }

    #[test]
    #[should_panic(expected = "waited")]
    fn blocking_panics_after_the_timeout() {
        wait_until_blocking(Duration::from_millis(30), "false", || false);
    }
}
