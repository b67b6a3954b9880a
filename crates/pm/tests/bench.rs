//! The benchmark runs end to end with a tiny budget; timings are not asserted.

use std::time::Duration;

use livefarm_pm::bench::{run, BenchOptions};

#[test]
fn bench_report_has_positive_rates() {
    let r = run(BenchOptions {
        measure_for: Duration::from_millis(20),
        rounds: 2,
        pool_size: 40,
    })
    .expect("bench runs");
    assert_eq!(r.tickets_in_pool, 40);
    assert_eq!(r.validation_errors, 0);
    for v in [
        r.raw_secp256k1_recover_per_sec,
        r.full_validation_per_sec_1_thread,
        r.full_validation_per_sec_2_threads,
        r.ratio_vs_raw_recover,
        r.two_thread_speedup,
    ] {
        assert!(v.is_finite() && v > 0.0, "{r:?}");
    }
    #[cfg(feature = "bench-k256")]
    {
        assert!(r.k256_recover_per_sec.is_some_and(|v| v > 0.0));
        assert!(r.k256_ratio_vs_raw_recover.is_some_and(|v| v > 0.0));
    }
    let json = serde_json::to_value(&r).expect("serialise");
    assert!(json.get("ratio_vs_raw_recover").is_some());
    assert!(json.get("k256_ratio_vs_raw_recover").is_some());
    assert_eq!(json["rounds"].as_array().map(Vec::len), Some(2));
}
