#!/usr/bin/env bash
# Smoke-fuzzes the media engine's segment input for a short while.
#
# With a nightly toolchain: cargo-fuzz runs fuzz/fuzz_targets/segment_input.rs for FUZZ_SECONDS
# (default 30), seeded with small real segments made by the ffmpeg CLI (cargo-fuzz is installed
# when missing). Without nightly: the stable smoke fuzzer test (crates/media/tests/fuzz_smoke.rs).
# Either way a panic or crash fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
seconds="${FUZZ_SECONDS:-30}"

command -v ffmpeg >/dev/null || { echo "fuzz-smoke: ffmpeg is required (apt-get install ffmpeg)" >&2; exit 1; }

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz-smoke: no nightly toolchain; running the stable smoke fuzzer instead" >&2
  cargo test -p livefarm-media --test fuzz_smoke -- --nocapture
  exec cargo test -p livefarm-orchestrator --lib segment::tests::garbage_headers_never_panic -- --nocapture
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

# Seed corpus: the first byte picks the container hint (even: probe, odd: MPEG-TS).
corpus=fuzz/corpus/segment_input
mkdir -p "$corpus"
if [ -z "$(ls -A "$corpus")" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  ffmpeg -hide_banner -nostdin -v error -y -f lavfi -i testsrc2=size=96x54:rate=25:duration=0.4 \
    -f lavfi -i sine=duration=0.4 -c:v libx264 -preset ultrafast -g 5 -c:a aac -b:a 32k -f mpegts "$tmp/a.ts"
  ffmpeg -hide_banner -nostdin -v error -y -f lavfi -i testsrc2=size=64x64:rate=30:duration=0.3 \
    -c:v libx264 -preset ultrafast -bf 2 -f mpegts "$tmp/b.ts"
  ffmpeg -hide_banner -nostdin -v error -y -f lavfi -i testsrc2=size=80x48:rate=25:duration=0.3 \
    -c:v libx264 -preset ultrafast -movflags +faststart -f mp4 "$tmp/c.mp4"
  { printf '\001'; cat "$tmp/a.ts"; } > "$corpus/ts-h264-aac"
  { printf '\000'; cat "$tmp/b.ts"; } > "$corpus/probe-h264-bframes"
  { printf '\000'; cat "$tmp/c.mp4"; } > "$corpus/probe-mp4"
fi

# FFmpeg's own one-time allocations are not leaks of ours; the session threads live on.
cargo +nightly fuzz run --fuzz-dir fuzz segment_input "$corpus" -- \
  -max_total_time="$seconds" -detect_leaks=0 -rss_limit_mb=4096 -max_len=262144

# The orchestrator's header decoders (Livepeer-Segment, Livepeer-Payment) and payment
# processing; no seeds needed, the first byte switches to raw protobuf mode.
mkdir -p fuzz/corpus/livepeer_headers
cargo +nightly fuzz run --fuzz-dir fuzz livepeer_headers fuzz/corpus/livepeer_headers -- \
  -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=65536
