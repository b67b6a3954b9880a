#!/usr/bin/env bash
# Installs what the browser playback test (services/livefarm/tests/browser.rs) needs:
# Debian's Chromium (apt) and pinned playwright-core + hls.js under <repo>/.tools/browser.
# Idempotent: a second run installs nothing new. `npx playwright install` is never used
# (it downloads a browser, which these machines cannot).
set -euo pipefail

PLAYWRIGHT_CORE_VERSION=1.65.1
HLS_JS_VERSION=1.7.4

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${LIVEFARM_BROWSER_TOOLS:-$repo/.tools/browser}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (apt)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "installing nodejs and npm (apt)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi

installed_version() {
    node -p "require('$tools/node_modules/$1/package.json').version" 2>/dev/null || true
}

if [ "$(installed_version playwright-core)" != "$PLAYWRIGHT_CORE_VERSION" ] \
    || [ "$(installed_version hls.js)" != "$HLS_JS_VERSION" ]; then
    echo "installing playwright-core@$PLAYWRIGHT_CORE_VERSION hls.js@$HLS_JS_VERSION into $tools"
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-audit --no-fund --save-exact \
        "playwright-core@$PLAYWRIGHT_CORE_VERSION" "hls.js@$HLS_JS_VERSION"
fi

echo "browser tools ready: $(command -v chromium), $tools/node_modules"
