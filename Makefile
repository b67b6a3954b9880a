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

# Each benchmark prints ratios against a baseline run in the same job.
bench: release
	./target/release/livefarm bench ladder
	./target/release/livefarm bench capacity
	./target/release/livefarm bench tickets
	./target/release/livefarm bench bus
	./target/release/livefarm bench latency
	./target/release/livefarm bench indexer
	./target/release/livefarm bench api
