//! Publishing a segment's result once per `(stream_id, seq)` over an at-least-once bus.
//!
//! A job can run twice (its worker died after the result but before the ack, or two workers
//! briefly both believed they held the stream), so the result goes through a marker key
//! `livefarm:stream:{id}:result:{seq}`:
//! 1. claim the marker with a per-attempt owner (`claim_affinity`, set-if-absent, short TTL);
//!    if it says `done:<id>` the result exists: report a duplicate; if another attempt holds it,
//!    back off (that attempt is publishing right now);
//! 2. on a retry (redelivered job, or an earlier publish of this attempt that failed without an
//!    answer), look for the result in `livefarm:results` after the job's own id, in case the
//!    previous attempt died between publishing and marking;
//! 3. publish, then overwrite the marker with `done:<result id>` for [`DONE_TTL`].

use std::time::Duration;

use livefarm_bus::{BusError, JobBus, KvStore, MessageId, StreamBus};
use livefarm_jobs::{key_from_headers, result_marker_key, SegmentResult, RESULTS_STREAM};

/// How long a pending marker protects one publish attempt.
const PENDING_TTL: Duration = Duration::from_secs(30);
/// How long a published result stays deduplicated; far longer than any redelivery.
pub(crate) const DONE_TTL: Duration = Duration::from_secs(3600);
const DONE_PREFIX: &str = "done:";
const SCAN_PAGE: usize = 500;

/// What [`publish_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Published {
    /// The result is now on the results stream under this id.
    New(MessageId),
    /// A result for this `(stream_id, seq)` was already published; nothing was written.
    Duplicate,
    /// Another attempt is publishing it right now; try again later.
    Busy,
}

/// Publishes `result` unless a result for its key exists (see the module docs).
///
/// `owner` identifies this attempt (the same across its retries); `job_id` is the job's entry
/// id, a lower bound for the id of any result of it; `search` asks for step 2.
pub(crate) async fn publish_once(
    bus: &dyn JobBus,
    result: &SegmentResult,
    owner: &str,
    job_id: MessageId,
    search: bool,
) -> Result<Published, BusError> {
    let marker = result_marker_key(&result.stream_id, result.seq);
    if !bus.claim_affinity(&marker, owner, PENDING_TTL).await? {
        let done = bus
            .get(&marker)
            .await?
            .is_some_and(|value| value.starts_with(DONE_PREFIX.as_bytes()));
        return Ok(if done {
            Published::Duplicate
        } else {
            Published::Busy
        });
    }
    if search {
        if let Some(id) = find_result(bus, &result.stream_id, result.seq, job_id).await? {
            mark_done(bus, &marker, id).await?;
            return Ok(Published::Duplicate);
        }
    }
    let id = bus
        .publish(RESULTS_STREAM, &result.encode(), &result.headers())
        .await?;
    mark_done(bus, &marker, id).await?;
    Ok(Published::New(id))
}

async fn mark_done(bus: &dyn KvStore, marker: &str, id: MessageId) -> Result<(), BusError> {
    bus.set_with_ttl(marker, format!("{DONE_PREFIX}{id}").as_bytes(), DONE_TTL)
        .await
}

/// The id of a result of `(stream_id, seq)` published after `job_id`, if any.
async fn find_result(
    bus: &dyn StreamBus,
    stream_id: &str,
    seq: u64,
    job_id: MessageId,
) -> Result<Option<MessageId>, BusError> {
    // results are stamped by the same clock after their job; a millisecond of slack covers
    // ids with a lower sequence part in the same millisecond
    let mut after = MessageId::new(job_id.ms.saturating_sub(1), 0);
    loop {
        let page = bus.range(RESULTS_STREAM, Some(after), SCAN_PAGE).await?;
        for entry in &page {
            if key_from_headers(&entry.headers)
                .is_some_and(|(stream, s)| stream == stream_id && s == seq)
            {
                return Ok(Some(entry.id));
            }
        }
        match page.last() {
            Some(last) if page.len() == SCAN_PAGE => after = last.id,
            _ => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use livefarm_bus::{BusOptions, Headers, MemoryBus};
    use livefarm_jobs::ResultStatus;

    use super::*;

    fn result(seq: u64) -> SegmentResult {
        SegmentResult::new("s1", seq, "w", ResultStatus::Ok)
    }

    async fn results(bus: &MemoryBus) -> Vec<(String, u64)> {
        bus.range(RESULTS_STREAM, None, 100)
            .await
            .expect("range")
            .iter()
            .filter_map(|m| key_from_headers(&m.headers))
            .collect()
    }

    #[tokio::test]
    async fn second_attempt_is_a_duplicate() {
        let bus = MemoryBus::new(BusOptions::default());
        let job_id = bus
            .publish("jobs", b"j", &Headers::new())
            .await
            .expect("job");
        let first = publish_once(&bus, &result(1), "a:1", job_id, false)
            .await
            .expect("publish");
        assert!(matches!(first, Published::New(_)));
        let again = publish_once(&bus, &result(1), "b:2", job_id, true)
            .await
            .expect("publish");
        assert_eq!(again, Published::Duplicate);
        // the same attempt retrying (its first call's answer was lost) is a duplicate too
        let retry = publish_once(&bus, &result(1), "a:1", job_id, true)
            .await
            .expect("publish");
        assert_eq!(retry, Published::Duplicate);
        publish_once(&bus, &result(2), "b:3", job_id, false)
            .await
            .expect("publish");
        assert_eq!(
            results(&bus).await,
            vec![("s1".to_owned(), 1), ("s1".to_owned(), 2)]
        );
    }

    #[tokio::test]
    async fn concurrent_attempt_backs_off() {
        let bus = MemoryBus::new(BusOptions::default());
        let marker = result_marker_key("s1", 4);
        assert!(bus
            .claim_affinity(&marker, "other:1", PENDING_TTL)
            .await
            .expect("claim"));
        let outcome = publish_once(&bus, &result(4), "me:1", MessageId::default(), false)
            .await
            .expect("publish");
        assert_eq!(outcome, Published::Busy);
        assert!(results(&bus).await.is_empty());
    }

    #[tokio::test]
    async fn attempt_that_died_before_marking_is_found() {
        let bus = MemoryBus::new(BusOptions::default());
        let job_id = bus
            .publish("jobs", b"j", &Headers::new())
            .await
            .expect("job");
        // a previous attempt published, then died before writing `done` (its claim expired)
        let r = result(9);
        bus.publish(RESULTS_STREAM, &r.encode(), &r.headers())
            .await
            .expect("publish");
        let outcome = publish_once(&bus, &r, "next:1", job_id, true)
            .await
            .expect("publish");
        assert_eq!(outcome, Published::Duplicate);
        assert_eq!(results(&bus).await.len(), 1);
        let marker = bus
            .get(&result_marker_key("s1", 9))
            .await
            .expect("get")
            .expect("marker set");
        assert!(marker.starts_with(b"done:"));
    }
}
