//! Traces end to end (issue 16, item 7): a stream published over RTMP through the services in
//! separate processes, every one exporting spans over OTLP/gRPC to a real OTLP receiver in this
//! test (a tonic server decoding with the official opentelemetry-proto definitions), gives one
//! trace per segment: ingest's span for the media from the segment's keyframe on (the root), the
//! segmenter's span that stores and enqueues the segment, the transcoder's span that transcodes
//! it, and the api's span that adds it to the playlists, each the parent of the next. The context
//! crosses ingest -> segmenter in the gRPC publish stream (a keyframe mark), and the bus in the
//! job and in the result (W3C `traceparent`).
//!
//! Needs `redis-server` and the ffmpeg CLI (apt: redis-server ffmpeg).

#[path = "support/farm.rs"]
mod farm;

use std::collections::BTreeMap;
use std::time::Duration;

use fake_opentelemetry_collector::{ExportedSpan, FakeCollectorServer};
use farm::{Farm, FarmOptions};
use livefarm_testkit::wait_until_blocking;

/// The hops of a segment's trace, root first.
const HOPS: [&str; 4] = [
    "ingest_gop",
    "segmenter_segment",
    "transcode_segment",
    "api_result",
];

/// A 6 s clip with a keyframe every 2 s: three segments.
const SEGMENTS: u64 = 3;

fn seq_of(span: &ExportedSpan) -> Option<u64> {
    // The receiver keeps attribute values in their Debug form; a u64 field is exported as a
    // string (it may not fit OTLP's i64): `Some(AnyValue { value: Some(StringValue("2")) })`.
    let text = span.attributes.get("seq")?;
    let value = text.split_once("Value(")?.1;
    let digits: String = value
        .trim_start_matches('"')
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Each segment's spans, by seq, once every hop of every segment arrived.
fn segment_traces(spans: &[ExportedSpan]) -> Result<BTreeMap<u64, Vec<&ExportedSpan>>, String> {
    let mut by_trace: BTreeMap<&str, Vec<&ExportedSpan>> = BTreeMap::new();
    for span in spans.iter().filter(|s| HOPS.contains(&s.name.as_str())) {
        by_trace.entry(&span.trace_id).or_default().push(span);
    }
    let mut by_seq = BTreeMap::new();
    for trace in by_trace.values() {
        let Some(seq) = trace
            .iter()
            .find(|s| s.name == "segmenter_segment")
            .and_then(|s| seq_of(s))
        else {
            continue;
        };
        by_seq.insert(seq, trace.clone());
    }
    let complete = (0..SEGMENTS).all(|seq| {
        by_seq
            .get(&seq)
            .is_some_and(|trace| HOPS.iter().all(|hop| trace.iter().any(|s| s.name == *hop)))
    });
    if complete {
        Ok(by_seq)
    } else {
        let seen: Vec<(u64, Vec<&str>)> = by_seq
            .iter()
            .map(|(seq, t)| (*seq, t.iter().map(|s| s.name.as_str()).collect()))
            .collect();
        let names: Vec<(&str, &str)> = spans
            .iter()
            .map(|s| (s.name.as_str(), s.trace_id.as_str()))
            .collect();
        Err(format!(
            "{} spans {names:?}; segment traces so far: {seen:?}",
            spans.len()
        ))
    }
}

#[test]
fn one_trace_per_segment_from_ingest_to_the_api() {
    // Export each batch within 100 ms instead of the SDK's 5 s (the services read it from the
    // environment they inherit).
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut receiver = runtime
        .block_on(FakeCollectorServer::start())
        .expect("the OTLP receiver starts");
    let farm = Farm::start(&FarmOptions {
        workers: 1,
        max_sessions: 1,
        session_idle_ms: 30_000,
        otlp_endpoint: Some(receiver.endpoint()),
    });
    let clip = farm::clip(farm.dir.path(), 6);
    let status = farm.publish(&clip, "traced", false).wait();
    assert!(status.success(), "the publish failed\n{}", farm.logs());

    let mut spans: Vec<ExportedSpan> = Vec::new();
    let traces = wait_until_blocking(
        Duration::from_secs(60),
        "every hop of every segment's trace",
        || {
            spans.extend(runtime.block_on(receiver.exported_spans(1, Duration::from_millis(200))));
            segment_traces(&spans)
                .map(|traces| {
                    traces
                        .into_iter()
                        .map(|(seq, t)| (seq, t.into_iter().cloned().collect::<Vec<_>>()))
                        .collect::<BTreeMap<_, _>>()
                })
                .map_err(|e| format!("{e}\n{}", farm.logs()))
        },
    );

    let mut trace_ids = Vec::new();
    for seq in 0..SEGMENTS {
        let trace = &traces[&seq];
        let one = |name: &str| -> &ExportedSpan {
            let found: Vec<&ExportedSpan> = trace.iter().filter(|s| s.name == name).collect();
            assert_eq!(found.len(), 1, "segment {seq}: {name} spans {found:?}");
            found[0]
        };
        let ingest = one("ingest_gop");
        let segmenter = one("segmenter_segment");
        let transcoder = one("transcode_segment");
        let api = one("api_result");
        assert!(
            ingest.parent_span_id.is_empty(),
            "segment {seq}: ingest's span is the root: {ingest:?}"
        );
        assert_eq!(segmenter.parent_span_id, ingest.span_id, "segment {seq}");
        assert_eq!(
            transcoder.parent_span_id, segmenter.span_id,
            "segment {seq}"
        );
        assert_eq!(api.parent_span_id, transcoder.span_id, "segment {seq}");
        for span in [segmenter, transcoder, api] {
            assert_eq!(seq_of(span), Some(seq), "{span:?}");
        }
        // the hops happen in order
        assert!(segmenter.start_time_unix_nano >= ingest.start_time_unix_nano);
        assert!(transcoder.start_time_unix_nano >= segmenter.start_time_unix_nano);
        assert!(api.start_time_unix_nano >= transcoder.start_time_unix_nano);
        trace_ids.push(ingest.trace_id.clone());
    }
    trace_ids.sort();
    trace_ids.dedup();
    assert_eq!(trace_ids.len(), SEGMENTS as usize, "one trace per segment");
    drop(farm);
    receiver.abort();
}
