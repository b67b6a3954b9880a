#!/usr/bin/env bash
# Livefarm's main job with embedded defaults: build, then transcode the bundled real clip into an
# HLS ladder (Livepeer Studio's default ladder plus the source) and say where to play it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p livefarm
INPUT="${INPUT:-fixtures/media/bbb-720p25-5s.mp4}"
OUT="${OUT:-out/ladder}"
rm -rf "$OUT"
./target/release/livefarm transcode "$INPUT" --out "$OUT" ${LIVEFARM_ARGS:-}
cat <<MSG

Open the ladder in any HLS player:
  ffplay $OUT/index.m3u8
or serve it and open http://127.0.0.1:8080/index.m3u8 in Safari, VLC or an hls.js page:
  python3 -m http.server --directory $OUT 8080
MSG
