# Livefarm: the two set-up commands are `make run` and `make test` (see README.md).
.PHONY: run test deps build release fmt clippy bench

run:
	scripts/run.sh

test:
	scripts/test.sh

deps:
	scripts/install-deps.sh

build:
	cargo build --workspace

release:
	cargo build --release -p livefarm

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# Every benchmark, each against a baseline run in the same job, as one JSON object (each
# bench's figures under its name, a summary of the headline ratios first; see
# docs/BENCHMARKS.md). valgrind makes the tickets figure an instruction count; the indexer
# bench needs scripts/install-chain-tools.sh, the api bench PostgreSQL's server binaries.
bench: release
	scripts/install-bench-tools.sh
	PATH="$(CURDIR)/.tools/bench/bin:$(CURDIR)/.tools/chain/node_modules/.bin:$$PATH" \
		./target/release/livefarm bench all --json
