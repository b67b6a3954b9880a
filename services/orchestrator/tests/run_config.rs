//! A bad configuration that only `run` finds exits 64, like one `--set` or `check` refuses.
//! (Being an integration test, it also has `cargo test --workspace` build the binary that the
//! multi-process tests run with `LIVEFARM_PREBUILT_BINS`.)

use livefarm_runtime::testing::assert_bad_config;

#[test]
fn bad_config_found_at_run_time_exits_64() {
    // a bus URL with an unknown scheme (only `run` parses it)
    assert_bad_config(
        env!("CARGO_BIN_EXE_livefarm-orchestrator"),
        &["bus_url=nope://bus"],
        "nope://bus",
    );
}
