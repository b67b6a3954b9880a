//! A bad configuration that only `run` finds exits 64, like one `--set` or `check` refuses.

use livefarm_runtime::testing::assert_bad_config;

#[test]
fn bad_config_found_at_run_time_exits_64() {
    // an RPC URL that does not parse (only `run` parses it)
    assert_bad_config(
        env!("CARGO_BIN_EXE_livefarm-indexer"),
        &[
            "controller=0x1111111111111111111111111111111111111111",
            "redis_url=",
            "rpc_url=not a url",
        ],
        "rpc_url",
    );
}
