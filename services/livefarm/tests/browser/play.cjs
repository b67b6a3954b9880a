// Drives headless Chromium through playwright-core: plays an HLS master playlist with hls.js,
// waits for real playback, forces a level switch, checks frames still advance, takes a
// screenshot and prints one JSON report line on stdout (the Rust test asserts it).
//
// usage: node play.cjs '{"masterUrl":..., "toolsDir":..., "chromium":..., "screenshot":...}'
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const config = JSON.parse(process.argv[2]);
const modules = path.join(config.toolsDir, 'node_modules');
const { chromium } = require(path.join(modules, 'playwright-core'));
const hlsJs = fs.readFileSync(path.join(modules, 'hls.js', 'dist', 'hls.min.js'));
const page = fs.readFileSync(path.join(__dirname, 'player.html'));

// The flags ../shared/TOOLING.md lists for Chromium on these machines.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
  '--autoplay-policy=no-user-gesture-required',
];

const report = { ok: false, steps: [] };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function step(name, extra) {
  report.steps.push({ name, atMs: Date.now() - started, ...extra });
}

async function waitFor(tab, what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await tab.evaluate(check);
    if (value) return value;
    const errors = await tab.evaluate(() => window.player.errors);
    if (errors.length) throw new Error(`player failed while waiting for ${what}: ${errors.join('; ')}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

const state = () => {
  const v = document.getElementById('video');
  const q = v.getVideoPlaybackQuality();
  return {
    currentTime: v.currentTime, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
    width: v.videoWidth, height: v.videoHeight, paused: v.paused,
    level: window.hls ? window.hls.currentLevel : -1,
  };
};

const stateExpr = `(${state.toString()})()`;
const started = Date.now();

async function main() {
  const server = http.createServer((req, res) => {
    if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
    } else if (req.url === '/hls.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(hlsJs);
    } else if (req.url === '/favicon.ico') {
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const pageUrl = `http://127.0.0.1:${server.address().port}/`;

  const browser = await chromium.launch({
    executablePath: config.chromium, headless: true, args: CHROMIUM_ARGS,
  });
  let tab;
  try {
    tab = await browser.newPage({ viewport: { width: 640, height: 400 } });
    tab.on('console', (m) => { if (m.type() === 'error') report.console = (report.console || []).concat(m.text()); });
    await tab.goto(pageUrl);
    report.userAgent = await tab.evaluate(() => navigator.userAgent);
    report.h264 = await tab.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"'));
    const supported = await tab.evaluate((src) => window.startPlayer(src), config.masterUrl);
    if (!supported) throw new Error(`hls.js cannot play here: ${await tab.evaluate(() => window.player.errors.join('; '))}`);

    report.levels = await waitFor(tab, 'the master playlist', 30000, () => window.player.levels);
    step('manifest', { levels: report.levels.length });

    // playing for real: past 3 s of media time and at least 3 s of it played here
    const first = await waitFor(tab, 'playback to start', 45000, () => {
      const v = document.getElementById('video');
      return v.currentTime > 0 && !v.paused ? v.currentTime : 0;
    });
    report.firstTime = first;
    const playing = await waitFor(tab, 'currentTime to pass 3 s', 60000,
      `(() => { const s = ${stateExpr}; return s.currentTime > 3 && s.currentTime - ${first} > 3 ? s : null; })()`);
    report.playing = playing;
    step('played 3 s', { currentTime: playing.currentTime });

    // force a switch to a level of another height than the one on screen
    const target = report.levels
      .map((l, i) => ({ ...l, index: i }))
      .filter((l) => l.height && l.height !== playing.height)
      .sort((a, b) => a.height - b.height)[0];
    if (!target) throw new Error(`no level with a height other than ${playing.height}`);
    report.switchTo = target.index;
    await tab.evaluate((n) => { window.hls.currentLevel = n; }, target.index);
    await waitFor(tab, `LEVEL_SWITCHED to level ${target.index}`, 30000,
      `window.player.switched.includes(${target.index})`);
    step('level switched', { level: target.index });
    const onScreen = await waitFor(tab, `frames of ${target.height}p on screen`, 30000,
      `(() => { const s = ${stateExpr}; return s.height === ${target.height} ? s : null; })()`);
    report.afterSwitch = onScreen;
    const advanced = await waitFor(tab, 'frames to advance after the switch', 30000,
      `(() => { const s = ${stateExpr};
        return s.currentTime - ${onScreen.currentTime} > 1.5 && s.frames > ${onScreen.frames} + 10 ? s : null; })()`);
    report.advanced = advanced;
    report.switchedLevels = await tab.evaluate(() => window.player.switched);
    report.frameSpread = await tab.evaluate(() => window.frameSpread());
    report.warnings = await tab.evaluate(() => window.player.warnings);
    step('advanced', { currentTime: advanced.currentTime });
    report.ok = true;
  } catch (error) {
    report.error = String(error && error.stack || error);
    if (tab) {
      report.lastState = await tab.evaluate(state).catch(() => null);
      report.playerErrors = await tab.evaluate(() => window.player.errors).catch(() => null);
      report.warnings = await tab.evaluate(() => window.player.warnings).catch(() => null);
    }
  } finally {
    if (tab) {
      fs.mkdirSync(path.dirname(config.screenshot), { recursive: true });
      await tab.screenshot({ path: config.screenshot }).then(
        () => { report.screenshot = config.screenshot; },
        (e) => { report.screenshotError = String(e); });
    }
    await browser.close();
    server.close();
  }
}

main().then(
  () => { console.log(JSON.stringify(report)); process.exit(report.ok ? 0 : 1); },
  (error) => { report.error = String(error && error.stack || error); console.log(JSON.stringify(report)); process.exit(1); },
);
