//! go-livepeer's HTTP push end to end: real segments PUT over HTTP to ingest, transcoded by a
//! real worker (in-process, memory bus, a storage directory), renditions back in a
//! multipart/mixed reply and checked with ffprobe.

use std::path::Path;
use std::process::Command;

use livefarm_ingest::IngestConfig;
use livefarm_runtime::Shutdown;
use livefarm_storage::Storage;
use livefarm_testkit::{http_request, HttpReply};
use livefarm_transcoder::TranscoderConfig;

/// Three real 2 s MPEG-TS segments (H.264 + AAC, 320x180) cut by Livefarm's segmenter.
fn segments(dir: &Path) -> Vec<Vec<u8>> {
    let source = dir.join("source.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc2=size=320x180:rate=25:duration=6")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=6"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&source)
        .status()
        .expect("ffmpeg must be installed (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg failed to make the test source");
    livefarm_media::segmenter::Segmenter::open_file(&source, 2.0)
        .expect("segmenter")
        .map(|s| s.expect("segment").data.to_vec())
        .collect()
}

fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    http_request(addr, method, path, headers, body)
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
}

/// Splits a multipart/mixed body into (part headers, part body).
fn parts(reply: &HttpReply) -> Vec<(String, Vec<u8>)> {
    let boundary = reply
        .header("content-type")
        .filter(|v| v.to_ascii_lowercase().starts_with("multipart/mixed"))
        .and_then(|v| v.split("boundary=").nth(1))
        .map(|b| b.trim().to_string())
        .expect("multipart boundary");
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    let mut rest = reply.body.as_slice();
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        rest = &rest[2..];
        let head_end = find(rest, b"\r\n\r\n").expect("part head");
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("part length");
        let body = rest[head_end + 4..head_end + 4 + length].to_vec();
        rest = &rest[head_end + 4 + length..];
        out.push((head, body));
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn probe_size(file: &Path) -> (u32, u32, bool) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe must be installed");
    assert!(out.status.success(), "ffprobe failed on {}", file.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let video = text
        .lines()
        .find(|l| l.starts_with("video"))
        .expect("a video stream");
    let fields: Vec<&str> = video.split(',').collect();
    (
        fields[1].parse().expect("width"),
        fields[2].parse().expect("height"),
        text.lines().any(|l| l.starts_with("audio")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_segments_come_back_as_renditions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = dir.path().join("objects");
    let storage_url = format!("file://{}", objects.display());
    let bus_url = format!("memory://ingest-push-{}", std::process::id());
    let shutdown = Shutdown::new();
    let worker = tokio::spawn(livefarm_transcoder::run(
        TranscoderConfig {
            bus_url: bus_url.clone(),
            storage_url: storage_url.clone(),
            worker_id: "push-worker".to_owned(),
            accel: "cpu".to_owned(),
            x264_preset: "ultrafast".to_owned(),
            poll_interval_ms: 50,
            grpc_listen: "127.0.0.1:0".parse().expect("addr"),
            admin_listen: "127.0.0.1:0".parse().expect("addr"),
            ..TranscoderConfig::default()
        },
        shutdown.clone(),
    ));
    let bus = livefarm_bus::connect(&bus_url).await.expect("bus");
    let storage = Storage::from_url(&storage_url).await.expect("storage");
    let stop = shutdown.clone();
    let client = livefarm_ingest::SegmentClient::start(bus, async move { stop.triggered().await });
    let state = livefarm_ingest::state(client, storage, &IngestConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, livefarm_ingest::router(state))
            .with_graceful_shutdown(async move { stop.triggered().await })
            .await
    });

    let segments = segments(dir.path());
    assert_eq!(segments.len(), 3);
    let config = r#"{"profiles":[{"name":"160p","width":284,"height":160,"bitrate":200000},{"name":"90p","width":160,"height":90,"bitrate":100000}]}"#;
    for (seq, segment) in segments.iter().enumerate() {
        let path = format!("/live/pushtest/{seq}.ts");
        let segment = segment.clone();
        let reply = tokio::task::spawn_blocking(move || {
            http(
                addr,
                "PUT",
                &path,
                &[
                    ("Accept", "multipart/mixed"),
                    ("Content-Duration", "2000"),
                    ("Livepeer-Transcode-Configuration", config),
                ],
                &segment,
            )
        })
        .await
        .expect("request");
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let parts = parts(&reply);
        let names: Vec<String> = parts
            .iter()
            .map(|(head, _)| {
                head.lines()
                    .find_map(|l| l.strip_prefix("Rendition-Name: "))
                    .expect("name")
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            ["160p", "90p"],
            "one part per profile, in profile order"
        );
        for ((head, body), (w, h)) in parts.iter().zip([(284, 160), (160, 90)]) {
            assert!(head.contains("Content-Type: video/mp2t"), "{head}");
            assert!(
                head.contains(&format!(
                    "filename=\"{}_{seq}.ts\"",
                    if w == 284 { "160p" } else { "90p" }
                )),
                "{head}"
            );
            let file = dir.path().join(format!("part-{seq}-{w}.ts"));
            std::fs::write(&file, body).expect("write part");
            assert_eq!(
                probe_size(&file),
                (w, h, true),
                "rendition decodes with its size and audio"
            );
        }
    }

    // Without Accept: multipart/mixed the reply is an empty 200.
    let segment = segments[0].clone();
    let plain = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "POST",
            "/live/plain/0.ts",
            &[("Livepeer-Transcode-Configuration", config)],
            &segment,
        )
    })
    .await
    .expect("request");
    assert_eq!(plain.status, 200);
    assert!(plain.body.is_empty());

    // Bad requests get go-livepeer's statuses and leave the stream alone.
    let bad = tokio::task::spawn_blocking(move || {
        (
            http(addr, "PUT", "/live/pushtest/index.m3u8", &[], b"#EXTM3U"),
            http(addr, "GET", "/live/pushtest/1.ts", &[], b""),
            http(
                addr,
                "PUT",
                "/live/pushtest/9.ts",
                &[("Livepeer-Transcode-Configuration", "{oops")],
                b"x",
            ),
            http(
                addr,
                "PUT",
                "/live/pushtest/9.ts",
                &[("Content-Duration", "soon")],
                b"x",
            ),
            http(addr, "PUT", "/live/pushtest/9.ts", &[], b""),
        )
    })
    .await
    .expect("requests");
    assert_eq!(bad.0.status, 400);
    assert_eq!(
        String::from_utf8_lossy(&bad.0.body),
        "ignoring file extension"
    );
    assert_eq!(bad.1.status, 405);
    assert_eq!(bad.2.status, 400);
    assert_eq!(bad.3.status, 400);
    assert_eq!(bad.4.status, 400);

    // A garbage segment is a 422 with the engine's reason, and the stream goes on.
    let garbage = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "PUT",
            "/live/pushtest/3.ts",
            &[("Livepeer-Transcode-Configuration", config)],
            &[0x47u8; 4000],
        )
    })
    .await
    .expect("request");
    assert_eq!(
        garbage.status,
        422,
        "{}",
        String::from_utf8_lossy(&garbage.body)
    );
    let segment = segments[1].clone();
    let after = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "PUT",
            "/live/pushtest/4.ts",
            &[("Livepeer-Transcode-Configuration", config)],
            &segment,
        )
    })
    .await
    .expect("request");
    assert_eq!(after.status, 200, "the stream goes on after a bad segment");

    shutdown.trigger();
    let _ = server.await;
    let _ = worker.await;
}
