//! `livefarm stream create`: creates a stream through a running api (`--api`, the default:
//! the api of `livefarm up`) with an API key (`--api-key`, `LIVEFARM_API_KEY`, or the data
//! directory's `api-key` file, in that order) and prints it as JSON.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use livefarm::api_key::{resolve_api_key, studio_profiles, API_KEY_ENV, DEFAULT_DATA_DIR};
use livefarm::UsageError;
use livefarm_profiles::{parse_profiles_arg, Profile};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest an API call may take, connect to last byte.
const API_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Create a stream; prints {id, streamKey, playbackId, profiles, rtmpUrl?, hlsUrl?, ...}.
    Create(CreateArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The stream's name.
    #[arg(long)]
    pub name: String,
    /// Comma-separated preset names (P720p30fps16x9, 360p0...) or @ladder.json. Default:
    /// Livepeer Studio's ladder (240p0, 360p0, 480p0, 720p0).
    #[arg(long)]
    pub profiles: Option<String>,
    /// Keep the whole session as a VOD playlist (`/hls/{playbackId}/recording.m3u8`).
    #[arg(long)]
    pub record: bool,
    /// The API key (`Authorization: Bearer`); default: $LIVEFARM_API_KEY, else the
    /// `api-key` file of --data-dir.
    #[arg(long)]
    pub api_key: Option<String>,
    /// The data directory of `livefarm up`, whose `api-key` file is the last place a key is
    /// looked for.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Create through this API (`POST /api/stream`); default: the one `livefarm up` serves.
    #[arg(long, env = "LIVEFARM_API_URL")]
    pub api: Option<String>,
    /// RTMP ingest base, e.g. rtmp://host:1935/live; prints rtmpUrl = {base}/{streamKey}.
    #[arg(long)]
    pub rtmp_url: Option<String>,
    /// Playback base, e.g. http://host:8080; prints hlsUrl = {base}/hls/{playbackId}/index.m3u8.
    /// Default: the --api URL.
    #[arg(long)]
    pub playback_url: Option<String>,
}

const DEFAULT_API: &str = "http://127.0.0.1:8080";

pub fn run(command: StreamCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match command {
        StreamCommand::Create(args) => {
            let created = runtime.block_on(create(&args))?;
            println!("{}", serde_json::to_string_pretty(&created)?);
            Ok(())
        }
    }
}

fn usage(message: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(message))
}

/// Creates the stream `args` describe and returns the JSON to print.
pub async fn create(args: &CreateArgs) -> Result<Value> {
    let name = args.name.trim();
    if name.is_empty() {
        return Err(usage("--name must not be empty".to_owned()));
    }
    let profiles = match &args.profiles {
        Some(spec) => {
            Some(parse_profiles_arg(spec).map_err(|e| usage(format!("--profiles: {e}")))?)
        }
        None => None,
    };
    let api = args.api.as_deref().unwrap_or(DEFAULT_API);
    let target = HttpTarget::parse(api).map_err(|e| usage(format!("--api: {e}")))?;
    let key = resolve_api_key(
        args.api_key.as_deref(),
        std::env::var(API_KEY_ENV).ok(),
        &args.data_dir,
    )?;
    let mut out =
        create_through_api(api, &target, &key, name, profiles.as_deref(), args.record).await?;
    let playback_base = args.playback_url.as_deref().unwrap_or(api);
    let stream_key = string_field(&out, "streamKey", api)?;
    let playback_id = string_field(&out, "playbackId", api)?;
    if let Some(base) = &args.rtmp_url {
        out["rtmpUrl"] = json!(format!("{}/{}", base.trim_end_matches('/'), stream_key));
    }
    out["hlsUrl"] = json!(format!(
        "{}/hls/{}/index.m3u8",
        playback_base.trim_end_matches('/'),
        playback_id
    ));
    Ok(out)
}

/// A string field of the api's stream object.
fn string_field(stream: &Value, field: &str, api: &str) -> Result<String> {
    stream[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the api at {api} answered with a stream without {field}"))
}

/// `POST {api}/api/stream` with the key and the stream it answers with.
async fn create_through_api(
    api: &str,
    target: &HttpTarget,
    key: &str,
    name: &str,
    profiles: Option<&[Profile]>,
    record: bool,
) -> Result<Value> {
    let mut body = json!({ "name": name, "record": record });
    if let Some(profiles) = profiles {
        body["profiles"] = json!(studio_profiles(profiles));
    }
    let path = format!("{}/api/stream", target.path_prefix);
    let (status, reply) = tokio::time::timeout(
        API_TIMEOUT,
        post_json(target, &path, key, &serde_json::to_vec(&body)?),
    )
    .await
    .map_err(|_| anyhow!("the api at {api} did not answer within {API_TIMEOUT:?}"))?
    .with_context(|| format!("cannot reach the api at {api} (is `livefarm up` running?)"))?;
    if status != 201 && status != 200 {
        // the API explains itself as {"errors": [...]}
        let reason = serde_json::from_slice::<Value>(&reply)
            .ok()
            .and_then(|v| v["errors"][0].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&reply).into_owned());
        if status == 401 {
            bail!("the api refused the API key ({status}): {reason}");
        }
        bail!("the api refused to create the stream ({status}): {reason}");
    }
    serde_json::from_slice::<Value>(&reply)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| anyhow!("the api at {api} answered with something that is not a stream"))
}

/// Where an `http://host:port[/prefix]` URL points.
#[derive(Debug, PartialEq)]
struct HttpTarget {
    authority: String,
    path_prefix: String,
}

impl HttpTarget {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?} must start with http:// (https is not supported)"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(HttpTarget {
            authority,
            path_prefix: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// A one-shot HTTP/1.1 POST (`Connection: close`); returns the status and the body.
async fn post_json(
    target: &HttpTarget,
    path: &str,
    key: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>)> {
    if key.bytes().any(|b| b.is_ascii_control()) {
        return Err(usage("the API key has control characters".to_owned()));
    }
    let mut stream = TcpStream::connect(&target.authority).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        target.authority,
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed http reply"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("malformed http status line"))?;
    let chunked = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = &raw[split + 4..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("malformed chunked body"))?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| anyhow!("malformed chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body
            .get(..size)
            .ok_or_else(|| anyhow!("truncated chunked body"))?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn args(name: &str) -> CreateArgs {
        CreateArgs {
            name: name.to_owned(),
            profiles: None,
            record: false,
            api_key: Some("lf_test".to_owned()),
            data_dir: PathBuf::from("/nonexistent/livefarm-data"),
            api: None,
            rtmp_url: None,
            playback_url: None,
        }
    }

    #[test]
    fn api_urls_parse() {
        let t = HttpTarget::parse("http://127.0.0.1:8080").expect("url");
        assert_eq!(
            (t.authority.as_str(), t.path_prefix.as_str()),
            ("127.0.0.1:8080", "")
        );
        let t = HttpTarget::parse("http://api.local/v1/").expect("url");
        assert_eq!(
            (t.authority.as_str(), t.path_prefix.as_str()),
            ("api.local:80", "/v1")
        );
        assert!(HttpTarget::parse("https://x").is_err());
        assert!(HttpTarget::parse("http:///x").is_err());
    }

    #[test]
    fn chunked_replies_are_joined() {
        let raw = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=1\r\n\":1}\r\n0\r\n\r\n";
        let (status, body) = parse_response(raw).expect("parses");
        assert_eq!(status, 201);
        assert_eq!(body, b"{\"a\":1}");
        assert!(parse_response(b"garbage").is_err());
    }

    /// A real HTTP server on loopback answering one request with `status` and `body`; returns
    /// its URL and the request it received (head and body).
    async fn one_shot_server(
        status: u16,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // read the head, then the body by its Content-Length
            loop {
                let n = socket.read(&mut buf).await.expect("read");
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_string();
                if let Some(split) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if seen.len() >= split + 4 + length || n == 0 {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(reply.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&seen).to_string()
        });
        (url, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn creates_through_the_api_with_the_key() {
        let (api, request) = one_shot_server(
            201,
            r#"{"id":"s1","name":"cam","streamKey":"k-1","playbackId":"p-1","record":true}"#,
        )
        .await;
        let created = create(&CreateArgs {
            profiles: Some("P360p30fps16x9,240p0".to_owned()),
            record: true,
            api: Some(api.clone()),
            rtmp_url: Some("rtmp://ingest.example:1935/live/".to_owned()),
            ..args(" cam ")
        })
        .await
        .expect("created");
        let request = request.await.expect("server");
        assert!(
            request.starts_with("POST /api/stream HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\nAuthorization: Bearer lf_test\r\n"),
            "{request}"
        );
        let body: Value = serde_json::from_str(request.split_once("\r\n\r\n").expect("a body").1)
            .expect("json body");
        assert_eq!(body["name"], "cam");
        assert_eq!(body["record"], true);
        // Studio's FfmpegProfile shape
        assert_eq!(
            body["profiles"][0],
            json!({"name": "P360p30fps16x9", "width": 640, "height": 360, "bitrate": 1200000, "fps": 30})
        );
        assert_eq!(body["profiles"][1]["height"], 240);
        assert_eq!(created["id"], "s1");
        assert_eq!(created["rtmpUrl"], "rtmp://ingest.example:1935/live/k-1");
        assert_eq!(created["hlsUrl"], format!("{api}/hls/p-1/index.m3u8"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_apis_refusals_reach_the_user() {
        let (api, _request) = one_shot_server(401, r#"{"errors":["invalid api key"]}"#).await;
        let refused = create(&CreateArgs {
            api: Some(api.clone()),
            ..args("x")
        })
        .await
        .expect_err("401");
        let message = format!("{refused:#}");
        assert!(
            message.contains("API key") && message.contains("invalid api key"),
            "{message}"
        );

        // nothing listens there any more
        let unreachable = create(&CreateArgs {
            api: Some(api),
            ..args("x")
        })
        .await
        .expect_err("no api");
        assert!(
            format!("{unreachable:#}").contains("cannot reach"),
            "{unreachable:#}"
        );
    }

    #[tokio::test]
    async fn bad_input_is_a_usage_error() {
        for bad in [
            CreateArgs {
                profiles: Some("P9999p".to_owned()),
                ..args("x")
            },
            CreateArgs {
                api: Some("https://x".to_owned()),
                ..args("x")
            },
            args("  "),
        ] {
            let error = create(&bad).await.expect_err("refused");
            assert!(error.downcast_ref::<UsageError>().is_some(), "{error:#}");
        }
    }
}
