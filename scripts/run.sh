#!/usr/bin/env bash
# Livefarm's main job with embedded defaults: every service in one process (`livefarm up`:
# in-process bus, local storage, no chain), with a demo stream published over RTMP from the
# bundled real clip (looped by ffmpeg at real-time pace), so the ladder plays at once.
#
# Environment: DATA_DIR (default livefarm-data), RTMP/PLAYBACK ports via LIVEFARM_UP_ARGS
# (extra `livefarm up` flags), NO_DEMO=1 to start without the demo publisher.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p livefarm

DATA_DIR="${DATA_DIR:-livefarm-data}"
mkdir -p "$DATA_DIR"
# up rewrites demo-stream.json on every start (the demo stream and the API key are kept in the
# data directory's database between runs): wait for a file newer than this marker
started="$DATA_DIR/.run-started"
touch "$started"
./target/release/livefarm up --data-dir "$DATA_DIR" ${LIVEFARM_UP_ARGS:-} &
up_pid=$!
pusher_pid=""
cleanup() {
  [ -n "$pusher_pid" ] && kill "$pusher_pid" 2>/dev/null || true
  kill "$up_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

fresh() { [ -s "$DATA_DIR/demo-stream.json" ] && [ "$DATA_DIR/demo-stream.json" -nt "$started" ]; }
for _ in $(seq 1 100); do
  fresh && break
  kill -0 "$up_pid" 2>/dev/null || { echo "run: livefarm up exited" >&2; exit 1; }
  sleep 0.1
done
fresh || { echo "run: no demo stream after 10 s" >&2; exit 1; }

if [ "${NO_DEMO:-0}" != "1" ]; then
  key="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["streamKey"])' "$DATA_DIR/demo-stream.json")"
  playback="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["playbackId"])' "$DATA_DIR/demo-stream.json")"
  # The clip has one keyframe in 5 s: re-encode with a 2 s GOP so segments are 2 s, as an
  # encoder set up for live streaming (OBS: keyframe interval 2) would send.
  ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 \
    -i fixtures/media/bbb-720p25-5s.mp4 \
    -c:v libx264 -preset veryfast -tune zerolatency -g 50 -keyint_min 50 -sc_threshold 0 \
    -b:v 2500k -maxrate 2500k -bufsize 5000k -c:a aac -b:a 128k \
    -f flv "rtmp://127.0.0.1:1935/live/$key" &
  pusher_pid=$!
  cat <<MSG

Publishing the demo clip to the demo stream over RTMP. Play the adaptive ladder (ready in ~6 s):
  ffplay http://127.0.0.1:8080/hls/$playback/index.m3u8
  (or open that URL in Safari, VLC, or any hls.js player)
Publish your own: OBS or ffmpeg to rtmp://127.0.0.1:1935/live/$key
API key (for the SDKs and \`livefarm stream create\`): $(cat "$DATA_DIR/api-key")
Ctrl-C stops everything.
MSG
fi
wait "$up_pid"
