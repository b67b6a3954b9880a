#!/usr/bin/env bash
# Installs what Livefarm needs to build, run and test on Debian 12, and nothing that is already
# there. Safe to run again. Needs root (or sudo) for apt.
set -euo pipefail

APT_PACKAGES=(
  # build
  pkg-config clang libclang-dev build-essential protobuf-compiler
  # FFmpeg 5.1 libraries for ffmpeg-next, and the ffmpeg/ffprobe CLIs the tests and benches use
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev
  libavdevice-dev ffmpeg
  # job bus tests and benchmarks (redis-server, redis-benchmark)
  redis-server redis-tools
  # test tools from PyPI (moto_server, an S3-compatible server) go into a venv
  python3-venv python3-pip
)

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Rust toolchain pinned in rust-toolchain.toml. rustup reads the pin by itself.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "cargo not found: installing rustup (https://rustup.rs)" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
echo "dependencies ok: $(ffmpeg -version | head -1 | cut -d' ' -f1-3), $(cargo --version)" >&2
