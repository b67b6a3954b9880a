// Livefarm's Studio-API conformance suite, driven through the official TypeScript SDK
// (npm `livepeer@3.5.0`): studio-api.md §12 items 1-9 and 14, asserting the typed results.
//
//   node conformance.mjs            run the suite (settings below, from the environment)
//   node conformance.mjs --self-test  check the webhook receiver's signature verification only
//
// Environment (or `--name value` arguments with the same names, lowercase, `_` as `-`):
//   LIVEFARM_API_URL        the SDK's serverURL, e.g. http://127.0.0.1:8080/api
//   LIVEFARM_API_KEY        a key of tenant 1
//   LIVEFARM_OTHER_API_KEY  a key of another tenant
//   LIVEFARM_RTMP_URL       RTMP ingest base, e.g. rtmp://127.0.0.1:1935/live (key appended)
//   LIVEFARM_WEBHOOK_URL    where this suite's receiver listens and what the webhook targets,
//                           e.g. http://127.0.0.1:0/hooks (port 0: any free port); default that
//   LIVEFARM_SDK_TOOLS      the folder scripts/install-sdk-tools.sh filled (node_modules/livepeer);
//                           unset: `livepeer` is resolved the usual way
//   LIVEFARM_SDK_WAIT_S     bound on each wait for the server (default 180)
//
// One line per check (`ok`, `FAIL`, `skip` with the reason); exits 1 when any check failed.

import { createHmac, timingSafeEqual, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// ---------------------------------------------------------------- settings and reporting

function setting(name, fallback) {
  const flag = "--" + name.toLowerCase().replaceAll("_", "-");
  const at = process.argv.indexOf(flag);
  if (at >= 0 && at + 1 < process.argv.length) return process.argv[at + 1];
  return process.env[name] ?? fallback;
}

let failed = 0;
let passed = 0;
let skipped = 0;

function ok(what) {
  passed += 1;
  console.log(`ok   ${what}`);
}

function fail(what, why) {
  failed += 1;
  console.log(`FAIL ${what}: ${why}`);
}

function skip(what, why) {
  skipped += 1;
  console.log(`skip ${what}: ${why}`);
}

/** Runs one check; an exception (or a false `check` result) is a failure, never fatal. */
async function check(what, body) {
  try {
    const out = await body();
    if (out === false) {
      fail(what, "condition false");
    } else {
      ok(what);
    }
    return out;
  } catch (error) {
    fail(what, error?.stack ?? String(error));
    return undefined;
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a value other than undefined, or fails after `seconds`. */
async function waitFor(what, seconds, probe) {
  const deadline = Date.now() + seconds * 1000;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${seconds}s waiting for ${what}${last ? `: ${last}` : ""}`);
    }
    await sleep(250);
  }
}

// ---------------------------------------------------------------- webhook receiver

/** Studio's signature check (§5.4): HMAC-SHA256 of the raw body, hex; `t` must equal the body's
 *  `timestamp`. Returns null when it holds, else why not. */
export function verifySignature(secret, rawBody, header) {
  if (!header) return "no Livepeer-Signature header";
  const parts = {};
  for (const item of header.split(",")) {
    const at = item.indexOf("=");
    if (at <= 0) return `malformed element ${JSON.stringify(item)}`;
    parts[item.slice(0, at).trim()] = item.slice(at + 1).trim();
  }
  if (!parts.t || !parts.v1) return `no t or v1 in ${JSON.stringify(header)}`;
  const expected = createHmac("sha256", secret).update(rawBody).digest();
  const given = Buffer.from(parts.v1, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return "v1 is not the HMAC-SHA256 of the body";
  }
  let body;
  try {
    body = JSON.parse(rawBody.toString("utf8"));
  } catch (error) {
    return `body is not JSON: ${error}`;
  }
  if (String(body.timestamp) !== parts.t) {
    return `t=${parts.t} but body.timestamp=${body.timestamp}`;
  }
  return null;
}

/** A loopback HTTP server that checks every delivery's signature and keeps what arrived. */
async function startReceiver(listenUrl, secret) {
  const url = new URL(listenUrl);
  const deliveries = [];
  const rejected = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const why = verifySignature(secret, raw, req.headers["livepeer-signature"]);
      if (why !== null) {
        rejected.push({ why, raw: raw.toString("utf8").slice(0, 300) });
        res.writeHead(401, { "content-type": "text/plain" }).end(why);
        return;
      }
      const body = JSON.parse(raw.toString("utf8"));
      deliveries.push({ body, header: req.headers["livepeer-signature"], at: Date.now() });
      res.writeHead(200, { "content-type": "application/json" }).end('{"received":true}');
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(url.port || 80), url.hostname, resolve);
  });
  url.port = String(server.address().port);
  return { url: url.toString(), deliveries, rejected, close: () => server.close() };
}

// §5.4's test vector.
const VECTOR = {
  secret: "my-secret",
  body:
    '{"id":"9f1c2d3e-0000-4000-8000-000000000001","webhookId":"w-1","createdAt":1700000000000,' +
    '"timestamp":1700000000123,"event":"stream.started","stream":{"id":"s-1","name":"my-stream"}}',
  header: "t=1700000000123,v1=cea29d35441b810217ff0b12cc696bb9fde65938b7c1c13113391e58cbeb7f35",
};

async function post(url, body, header) {
  const headers = { "content-type": "application/json" };
  if (header) headers["livepeer-signature"] = header;
  const res = await fetch(url, { method: "POST", headers, body });
  await res.arrayBuffer();
  return res.status;
}

async function selfTest() {
  const raw = Buffer.from(VECTOR.body);
  await check("signature: the §5.4 test vector verifies", () =>
    eq(verifySignature(VECTOR.secret, raw, VECTOR.header), null, "verdict"));
  await check("signature: a wrong secret is refused", () =>
    expect(verifySignature("other-secret", raw, VECTOR.header) !== null, "accepted"));
  await check("signature: a changed body is refused", () =>
    expect(verifySignature(VECTOR.secret, Buffer.from(VECTOR.body.replace("s-1", "s-2")), VECTOR.header) !== null, "accepted"));
  await check("signature: t other than body.timestamp is refused", () =>
    expect(verifySignature(VECTOR.secret, raw, VECTOR.header.replace("t=1700000000123", "t=1700000000124")) !== null, "accepted"));
  await check("signature: no header is refused", () =>
    expect(verifySignature(VECTOR.secret, raw, undefined) !== null, "accepted"));
  const receiver = await startReceiver("http://127.0.0.1:0/hooks", VECTOR.secret);
  try {
    await check("receiver: takes the vector over HTTP (200) and records it", async () => {
      eq(await post(receiver.url, VECTOR.body, VECTOR.header), 200, "status");
      eq(receiver.deliveries.map((d) => d.body.id), ["9f1c2d3e-0000-4000-8000-000000000001"], "ids");
    });
    await check("receiver: refuses a bad signature over HTTP (401) and records the refusal", async () => {
      eq(await post(receiver.url, VECTOR.body, VECTOR.header.replace("v1=c", "v1=d")), 401, "status");
      eq(await post(receiver.url, VECTOR.body, undefined), 401, "status without header");
      eq(receiver.rejected.length, 2, "rejections");
      eq(receiver.deliveries.length, 1, "deliveries");
    });
  } finally {
    receiver.close();
  }
}

// ---------------------------------------------------------------- SDK helpers

async function loadSdk() {
  const tools = process.env.LIVEFARM_SDK_TOOLS;
  if (tools) {
    const root = join(tools, "node_modules", "livepeer");
    const sdk = await import(pathToFileURL(join(root, "index.js")).href);
    const errors = await import(pathToFileURL(join(root, "models", "errors", "index.js")).href);
    return { Livepeer: sdk.Livepeer, errors };
  }
  const sdk = await import("livepeer");
  const errors = await import("livepeer/models/errors/index.js");
  return { Livepeer: sdk.Livepeer, errors };
}

/** The call must throw the SDK's SDKError with `status` and a `{"errors":[...]}` body. */
async function expectSdkError(errors, status, call) {
  let thrown;
  try {
    await call();
  } catch (error) {
    thrown = error;
  }
  expect(thrown !== undefined, `expected SDKError ${status}, the call succeeded`);
  expect(thrown instanceof errors.SDKError, `expected SDKError ${status}, got ${thrown?.name}: ${thrown?.message}`);
  eq(thrown.statusCode, status, "statusCode");
  const body = JSON.parse(thrown.body);
  expect(Array.isArray(body.errors) && body.errors.length > 0, `body ${thrown.body} has no errors`);
  expect(body.errors.every((e) => typeof e === "string"), `errors are not strings: ${thrown.body}`);
  return body;
}

const DEFAULT_LADDER = [
  ["240p0", 426, 240, 250000],
  ["360p0", 640, 360, 800000],
  ["480p0", 854, 480, 1600000],
  ["720p0", 1280, 720, 3000000],
];

function publish(rtmpUrl, seconds) {
  // A generated test pattern with a tone, in real time, as a publisher would send it.
  const args = [
    "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
    "-f", "lavfi", "-i", `testsrc2=size=320x180:rate=25:duration=${seconds}`,
    "-f", "lavfi", "-i", `sine=frequency=440:sample_rate=44100:duration=${seconds}`,
    "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
    "-g", "50", "-keyint_min", "50", "-c:a", "aac", "-b:a", "64k", "-shortest",
    "-f", "flv", rtmpUrl,
  ];
  const child = spawn("ffmpeg", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  const done = new Promise((resolve) => child.on("close", (code) => resolve({ code, stderr })));
  return { child, done };
}

async function fetchBytes(url) {
  const res = await fetch(url);
  const body = Buffer.from(await res.arrayBuffer());
  expect(res.status === 200, `GET ${url}: ${res.status} ${body.toString("utf8").slice(0, 200)}`);
  return body;
}

/** Fetches an HLS playlist; follows the first variant of a master; returns the media playlist's
 *  segment count after fetching its first segment. */
async function checkHls(url) {
  let text = (await fetchBytes(url)).toString("utf8");
  expect(text.startsWith("#EXTM3U"), `${url} does not start with #EXTM3U`);
  let base = url;
  if (text.includes("#EXT-X-STREAM-INF")) {
    const lines = text.split("\n").map((l) => l.trim());
    const variant = lines[lines.findIndex((l) => l.startsWith("#EXT-X-STREAM-INF")) + 1];
    expect(variant && !variant.startsWith("#"), "master playlist: no variant URI after #EXT-X-STREAM-INF");
    base = new URL(variant, url).toString();
    text = (await fetchBytes(base)).toString("utf8");
    expect(text.startsWith("#EXTM3U"), `${base} does not start with #EXTM3U`);
  }
  const segments = text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  expect(segments.length > 0 && text.includes("#EXTINF"), `${base} lists no segments`);
  expect(text.includes("#EXT-X-ENDLIST"), `${base} has no #EXT-X-ENDLIST (a recording is finished)`);
  const first = await fetchBytes(new URL(segments[0], base).toString());
  expect(first.length > 0, "the first segment is empty");
  return segments.length;
}

// ---------------------------------------------------------------- the suite

async function suite() {
  const serverURL = setting("LIVEFARM_API_URL");
  const apiKey = setting("LIVEFARM_API_KEY");
  const otherKey = setting("LIVEFARM_OTHER_API_KEY");
  const rtmpBase = setting("LIVEFARM_RTMP_URL");
  const hookUrl = setting("LIVEFARM_WEBHOOK_URL", "http://127.0.0.1:0/hooks");
  const waitS = Number(setting("LIVEFARM_SDK_WAIT_S", "180"));
  for (const [name, value] of Object.entries({ serverURL, apiKey, otherKey, rtmpBase })) {
    if (!value) throw new Error(`missing setting ${name} (see the header of this file)`);
  }
  const { Livepeer, errors } = await loadSdk();
  const lp = new Livepeer({ apiKey, serverURL });
  const other = new Livepeer({ apiKey: otherKey, serverURL });
  const tag = `js-${randomBytes(3).toString("hex")}`;

  // 1. auth
  await check("1 auth: a wrong key -> SDKError 401 with {errors:[...]}", () =>
    expectSdkError(errors, 401, () =>
      new Livepeer({ apiKey: "not-a-key-" + tag, serverURL }).stream.getAll()));

  // 14 (first half): a webhook with a real receiver, before anything emits events.
  const secret = randomBytes(16).toString("hex");
  const receiver = await startReceiver(hookUrl, secret);
  console.log(`# webhook receiver on ${receiver.url}`);
  const events = ["stream.started", "stream.idle", "recording.ready", "recording.started", "recording.waiting"];
  const hook = await check("14 webhook.create -> 200 with webhook.id", async () => {
    const res = await lp.webhook.create({ name: `${tag}-hook`, url: receiver.url, events, sharedSecret: secret });
    eq(res.statusCode, 200, "status");
    expect(res.webhook?.id, `no webhook.id in ${JSON.stringify(res.webhook)}`);
    eq(res.webhook.name, `${tag}-hook`, "name");
    eq(res.webhook.url, receiver.url, "url");
    eq([...res.webhook.events].sort(), [...events].sort(), "events");
    return res.webhook;
  });
  if (hook) {
    await check("14 webhook.get -> the webhook", async () => {
      const res = await lp.webhook.get(hook.id);
      eq(res.statusCode, 200, "status");
      eq([res.webhook.id, res.webhook.name, res.webhook.url], [hook.id, hook.name, hook.url], "id, name, url");
    });
    await check("14 webhook.getAll -> lists it", async () => {
      const res = await lp.webhook.getAll();
      expect(res.data.some((w) => w.id === hook.id), "not listed");
    });
    await check("14 webhook.update -> 200 with the full updated object", async () => {
      const res = await lp.webhook.update(
        { name: `${tag}-hook-2`, url: receiver.url, events, sharedSecret: secret }, hook.id);
      eq(res.statusCode, 200, "status");
      eq([res.webhook.id, res.webhook.name, res.webhook.url], [hook.id, `${tag}-hook-2`, receiver.url], "id, name, url");
      eq([...res.webhook.events].sort(), [...events].sort(), "events");
    });
    await check("14 another tenant's webhook.get -> 404", () =>
      expectSdkError(errors, 404, () => other.webhook.get(hook.id)));
  }

  // 2. stream.create with record, a jwt playback policy and a multistream spec target
  const created = await check("2 stream.create(record, playbackPolicy jwt, multistream spec) -> 201", async () => {
    const res = await lp.stream.create({
      name: `${tag}-main`,
      record: true,
      playbackPolicy: { type: "jwt" },
      multistream: { targets: [{ profile: "source", videoOnly: false, spec: { name: "yt", url: "rtmp://127.0.0.1:1/live/never" } }] },
    });
    eq(res.statusCode, 201, "status");
    const s = res.stream;
    expect(s?.id, "no stream.id");
    expect(/^[0-9a-z]{4}(-[0-9a-z]{4}){3}$/.test(s.streamKey), `streamKey ${s.streamKey}`);
    expect(/^[0-9a-z]{16}$/.test(s.playbackId), `playbackId ${s.playbackId}`);
    eq(s.streamKey.slice(0, 4), s.id.slice(0, 4), "streamKey shard prefix");
    eq(s.name, `${tag}-main`, "name");
    eq([s.isActive, s.lastSeen, s.suspended, s.record], [false, 0, false, true], "isActive, lastSeen, suspended, record");
    eq(s.playbackPolicy?.type, "jwt", "playbackPolicy.type");
    eq(s.profiles.map((p) => [p.name, p.width, p.height, p.bitrate]), DEFAULT_LADDER, "default ladder");
    expect(Array.isArray(s.multistream?.targets), "multistream.targets is not an array");
    return s;
  });
  if (created?.multistream?.targets?.length) {
    await check("2 multistream.targets[0].profile is source", () => eq(created.multistream.targets[0].profile, "source", "profile"));
  }
  skip("2 multistream.targets[0].id (the spec becomes a target id)", "multistream targets are part 2 of the Studio API (issue 12 is part 1)");
  skip("5 stream.addMultistreamTarget / removeMultistreamTarget -> 204", "multistream targets are part 2 of the Studio API");

  if (created) {
    const id = created.id;
    // 3. get / getAll
    await check("3 stream.get -> the stream", async () => {
      const res = await lp.stream.get(id);
      eq(res.statusCode, 200, "status");
      eq([res.stream.id, res.stream.name, res.stream.streamKey, res.stream.playbackId],
        [id, created.name, created.streamKey, created.playbackId], "id, name, streamKey, playbackId");
    });
    await check('3 stream.getAll("true") -> lists it', async () => {
      const res = await lp.stream.getAll("true");
      eq(res.statusCode, 200, "status");
      const mine = res.data.find((s) => s.id === id);
      expect(mine, "not listed");
      eq(mine.playbackId, created.playbackId, "playbackId");
    });
    await check("3 another tenant: stream.get -> 404, getAll does not list it", async () => {
      await expectSdkError(errors, 404, () => other.stream.get(id));
      const res = await other.stream.getAll("true");
      expect(!res.data.some((s) => s.id === id), "another tenant lists it");
    });
    await check("3 another tenant: stream.update / delete / terminate -> 404", async () => {
      await expectSdkError(errors, 404, () => other.stream.update({ suspended: true }, id));
      await expectSdkError(errors, 404, () => other.stream.delete(id));
      await expectSdkError(errors, 404, () => other.stream.terminate(id));
    });

    // 8. playback info of a live stream (before suspending)
    await check("8 playback.get -> live info with HLS then WebRTC and the jwt policy", async () => {
      const res = await lp.playback.get(created.playbackId);
      eq(res.statusCode, 200, "status");
      const info = res.playbackInfo;
      eq(info.type, "live", "type");
      expect(info.meta.live === 0 || info.meta.live === 1, `meta.live ${info.meta.live}`);
      eq(info.meta.source[0].hrn, "HLS (TS)", "source[0].hrn");
      eq(info.meta.source[0].type, "html5/application/vnd.apple.mpegurl", "source[0].type");
      expect(info.meta.source[0].url.endsWith(`/hls/${created.playbackId}/index.m3u8`), `HLS url ${info.meta.source[0].url}`);
      eq(info.meta.source[1].hrn, "WebRTC (H264)", "source[1].hrn");
      eq(info.meta.playbackPolicy?.type, "jwt", "meta.playbackPolicy.type");
    });
    await check("8 playback.get of an unknown id -> ErrorT 404", async () => {
      let thrown;
      try {
        await lp.playback.get(`nosuch${tag.replace("-", "")}`);
      } catch (error) {
        thrown = error;
      }
      expect(thrown instanceof errors.ErrorT, `expected ErrorT, got ${thrown?.name}: ${thrown?.message}`);
      expect(Array.isArray(thrown.errors) && thrown.errors.length > 0, "no errors");
    });

    // 4. suspend
    await check("4 stream.update({name, suspended:true}) -> 204", async () => {
      const res = await lp.stream.update({ name: `${tag}-main-2`, suspended: true }, id);
      eq(res.statusCode, 204, "status");
      const got = (await lp.stream.get(id)).stream;
      eq([got.name, got.suspended], [`${tag}-main-2`, true], "name, suspended");
    });
    await check("4 playback.get while suspended -> ErrorT 404", async () => {
      let thrown;
      try {
        await lp.playback.get(created.playbackId);
      } catch (error) {
        thrown = error;
      }
      expect(thrown instanceof errors.ErrorT, `expected ErrorT, got ${thrown ? `${thrown.name}: ${thrown.message}` : "a result"}`);
      // the SDK raises ErrorT only for a 404 with a JSON body (its matcher for this call)
      expect(Array.isArray(thrown.errors) && thrown.errors.length > 0, "no errors");
    });
    await check("4 stream.update({suspended:false}) -> 204, playback works again", async () => {
      const res = await lp.stream.update({ suspended: false }, id);
      eq(res.statusCode, 204, "status");
      eq((await lp.stream.get(id)).stream.suspended, false, "suspended");
      eq((await lp.playback.get(created.playbackId)).playbackInfo.type, "live", "type");
    });

    // 6. terminate
    await check("6 stream.terminate -> 204, again within 5 s -> 429", async () => {
      const res = await lp.stream.terminate(id);
      eq(res.statusCode, 204, "status");
      await expectSdkError(errors, 429, () => lp.stream.terminate(id));
    });

    // 7. delete
    await check("7 stream.delete -> 204, then stream.get -> 404", async () => {
      const res = await lp.stream.delete(id);
      eq(res.statusCode, 204, "status");
      await expectSdkError(errors, 404, () => lp.stream.get(id));
      const all = await lp.stream.getAll("true");
      expect(!all.data.some((s) => s.id === id), "a deleted stream is listed");
    });
  }

  // 9. sessions and recordings from a real RTMP publish
  const live = await check("9 stream.create(record) for the publish -> 201", async () => {
    const res = await lp.stream.create({
      name: `${tag}-live`,
      record: true,
      profiles: [{ name: "144p0", width: 256, height: 144, bitrate: 200000, fps: 0 }],
    });
    eq(res.statusCode, 201, "status");
    eq(res.stream.profiles.map((p) => p.name), ["144p0"], "profiles");
    return res.stream;
  });
  if (live) {
    const seconds = 10;
    const pub = publish(`${rtmpBase.replace(/\/$/, "")}/${live.streamKey}`, seconds);
    await check("9 while publishing: stream.get shows isActive and a fresh lastSeen", () =>
      waitFor("isActive", seconds + 20, async () => {
        const s = (await lp.stream.get(live.id)).stream;
        return s.isActive && s.lastSeen > 0 ? true : undefined;
      }));
    await check("9 while publishing: playback.get says meta.live = 1", () =>
      waitFor("meta.live 1", seconds + 20, async () =>
        (await lp.playback.get(live.playbackId)).playbackInfo.meta.live === 1 ? true : undefined));
    const result = await pub.done;
    await check("9 ffmpeg published over RTMP and exited 0", () =>
      expect(result.code === 0, `ffmpeg exit ${result.code}: ${result.stderr.slice(-500)}`));

    const session = await check("9 session.getRecorded(streamId, true) -> a session that becomes ready", () =>
      waitFor('recordingStatus == "ready"', waitS, async () => {
        const res = await lp.session.getRecorded(live.id, true);
        eq(res.statusCode, 200, "status");
        const ready = res.data.find((s) => s.recordingStatus === "ready");
        return ready ?? undefined;
      }));
    if (session) {
      await check("9 the ready session has the stream's fields and both URLs", () => {
        eq([session.parentId, session.name, session.record, session.playbackId],
          [live.id, live.name, true, live.playbackId], "parentId, name, record, playbackId");
        expect(session.recordingUrl?.endsWith(`/recordings/${session.id}/index.m3u8`), `recordingUrl ${session.recordingUrl}`);
        expect(session.mp4Url?.endsWith(`/recordings/${session.id}/output.mp4`), `mp4Url ${session.mp4Url}`);
        expect(session.sourceSegmentsDuration > 0 && session.lastSeen > 0, "no duration or lastSeen");
      });
      await check("9 session.get -> the session", async () => {
        const res = await lp.session.get(session.id);
        eq(res.statusCode, 200, "status");
        eq([res.session.id, res.session.parentId, res.session.recordingStatus, res.session.recordingUrl, res.session.mp4Url],
          [session.id, live.id, "ready", session.recordingUrl, session.mp4Url], "id, parentId, status, urls");
      });
      await check("9 session.getAll -> lists it", async () => {
        const res = await lp.session.getAll();
        eq(res.statusCode, 200, "status");
        expect(res.data.some((s) => s.id === session.id), "not listed");
      });
      await check("9 another tenant: session.get -> 404, getRecorded -> 404", async () => {
        await expectSdkError(errors, 404, () => other.session.get(session.id));
        await expectSdkError(errors, 404, () => other.session.getRecorded(live.id, true));
      });
      await check("9 recordingUrl plays: HLS parses, segments fetch, #EXT-X-ENDLIST", () => checkHls(session.recordingUrl));
      await check("9 mp4Url downloads: a non-empty MP4 (ftyp box)", async () => {
        const mp4 = await fetchBytes(session.mp4Url);
        expect(mp4.length > 1000, `${mp4.length} bytes`);
        eq(mp4.subarray(4, 8).toString("latin1"), "ftyp", "first box");
      });
      await check("8 playback.get(sessionId) -> recording info with the recording's HLS", async () => {
        const info = (await lp.playback.get(session.id)).playbackInfo;
        eq(info.type, "recording", "type");
        eq([info.meta.source[0].hrn, info.meta.source[0].url], ["HLS (TS)", session.recordingUrl], "source[0]");
      });
    }

    // 14 (second half): what the receiver got
    if (hook) {
      const wanted = ["stream.started", "stream.idle", "recording.ready"];
      await check("14 receiver got stream.started, stream.idle, recording.ready", () =>
        waitFor(wanted.join(", "), waitS, () => {
          const names = new Set(receiver.deliveries.map((d) => d.body.event));
          return wanted.every((e) => names.has(e)) ? true : undefined;
        }));
      await check("14 every delivery was signed correctly (HMAC of the raw body, t == timestamp)", () =>
        expect(receiver.rejected.length === 0, `refused: ${JSON.stringify(receiver.rejected)}`));
      await check("14 each event id arrived once; one started and one idle for the publish", () => {
        const ids = receiver.deliveries.map((d) => d.body.id);
        eq(new Set(ids).size, ids.length, `distinct ids among ${JSON.stringify(ids)}`);
        const forLive = (name) => receiver.deliveries.filter((d) => d.body.event === name && d.body.stream?.id === live.id).length;
        eq([forLive("stream.started"), forLive("stream.idle")], [1, 1], "stream.started, stream.idle for the stream");
      });
      await check("14 delivery bodies: webhookId, createdAt, timestamp, stream without streamKey", () => {
        for (const { body } of receiver.deliveries) {
          eq(body.webhookId, hook.id, "webhookId");
          expect(Number.isInteger(body.createdAt) && Number.isInteger(body.timestamp), `times ${body.createdAt} ${body.timestamp}`);
          expect(events.includes(body.event), `event ${body.event} not subscribed`);
          if (body.event.startsWith("stream.")) {
            eq(body.stream?.id, live.id, "stream.id");
            expect(!("streamKey" in body.stream), "the stream carries its streamKey");
          }
        }
        const ready = receiver.deliveries.find((d) => d.body.event === "recording.ready").body;
        expect(ready.payload?.recordingUrl && ready.payload?.mp4Url, `recording.ready payload ${JSON.stringify(ready.payload)}`);
        if (session) eq(ready.payload.session?.id, session.id, "payload.session.id");
      });
      const logs = await check("14 webhook.getLogs -> a log per delivery", async () => {
        const res = await lp.webhook.getLogs(hook.id);
        eq(res.statusCode, 200, "status");
        expect(res.data.length >= receiver.deliveries.length, `${res.data.length} logs for ${receiver.deliveries.length} deliveries`);
        expect(res.data.every((l) => l.webhookId === hook.id), "a log of another webhook");
        return res.data;
      });
      const started = logs?.find((l) => l.event === "stream.started");
      if (started) {
        await check("14 webhook.getLog -> the log, with the request sent and a 200 response", async () => {
          const res = await lp.webhook.getLog(hook.id, started.id);
          eq(res.statusCode, 200, "status");
          const log = res.webhookLog;
          eq([log.id, log.webhookId, log.event, log.success], [started.id, hook.id, "stream.started", true], "id, webhookId, event, success");
          eq(log.response?.status, 200, "response.status");
          const sent = JSON.parse(log.request.body);
          expect(receiver.deliveries.some((d) => d.body.id === sent.id), "the logged body id never arrived");
        });
        await check("14 webhook.resendLog -> a new log; the receiver gets the same id, newly signed", async () => {
          const before = receiver.deliveries.length;
          const originalId = JSON.parse((await lp.webhook.getLog(hook.id, started.id)).webhookLog.request.body).id;
          const original = receiver.deliveries.find((d) => d.body.id === originalId);
          const res = await lp.webhook.resendLog(hook.id, started.id);
          eq(res.statusCode, 200, "status");
          expect(res.webhookLog.id && res.webhookLog.id !== started.id, `resend log id ${res.webhookLog.id}`);
          eq(res.webhookLog.webhookId, hook.id, "webhookId");
          const again = await waitFor("the resent delivery", 30, () =>
            receiver.deliveries.slice(before).find((d) => d.body.id === originalId));
          expect(again.body.timestamp > original.body.timestamp, "same timestamp as the original");
          expect(again.header !== original.header, "same signature as the original");
          eq(receiver.rejected.length, 0, "refused deliveries");
        });
      } else {
        fail("14 webhook.getLog / resendLog", "no stream.started log to use");
      }
    }
  }

  if (hook) {
    await check("14 webhook.delete -> 200 with the webhook JSON, then get -> 404", async () => {
      const res = await lp.webhook.delete(hook.id);
      eq(res.statusCode, 200, "status");
      eq(res.webhook?.id, hook.id, "webhook.id");
      await expectSdkError(errors, 404, () => lp.webhook.get(hook.id));
    });
  }
  receiver.close();
}

// ---------------------------------------------------------------- main

const selfTestOnly = process.argv.includes("--self-test");
try {
  await selfTest();
  if (!selfTestOnly) await suite();
} catch (error) {
  fail("suite", error?.stack ?? String(error));
}
console.log(`# typescript sdk: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
