//! A bad configuration that only `run` finds exits 64, like one `--set` or `check` refuses.

use livefarm_runtime::testing::assert_bad_config;

#[test]
fn bad_config_found_at_run_time_exits_64() {
    // a bus URL with an unknown scheme (only `run` parses it)
    assert_bad_config(
        env!("CARGO_BIN_EXE_livefarm-ingest"),
        &["auth.mode=allow_any", "bus_url=nope://bus"],
        "nope://bus",
    );
}
