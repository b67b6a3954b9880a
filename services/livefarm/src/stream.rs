//! `livefarm stream create`: registers a stream and prints its ids as JSON, either through a
//! running API (`--api`, the default: the API of `livefarm up`) or straight into a shared
//! registry (`--registry redis://...`).

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use livefarm::UsageError;
use livefarm_api::registry::{self, Stream};
use livefarm_profiles::{parse_profiles_arg, studio_default_ladder, Profile};
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
    /// Write straight into this registry (`redis://host:port`, as the services'
    /// `registry_url`) instead of calling an API.
    #[arg(long, env = "LIVEFARM_REGISTRY_URL", conflicts_with = "api")]
    pub registry: Option<String>,
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
    let (stream, playback_base) = match &args.registry {
        Some(url) => {
            let registry = registry::connect(url).await.map_err(|e| match e {
                registry::RegistryError::InvalidUrl { .. } => usage(format!("--registry: {e}")),
                other => anyhow!(other).context(format!("cannot open the registry at {url}")),
            })?;
            let profiles = profiles.unwrap_or_else(studio_default_ladder);
            let stream = registry
                .create(name.to_owned(), profiles, args.record)
                .await
                .context("creating the stream")?;
            (stream, args.playback_url.clone())
        }
        None => {
            let api = args.api.as_deref().unwrap_or(DEFAULT_API);
            let stream = create_through_api(api, name, profiles.as_deref(), args.record).await?;
            (
                stream,
                Some(args.playback_url.as_deref().unwrap_or(api).to_owned()),
            )
        }
    };
    let mut out = serde_json::to_value(&stream)?;
    if let Some(base) = &args.rtmp_url {
        out["rtmpUrl"] = json!(format!(
            "{}/{}",
            base.trim_end_matches('/'),
            stream.stream_key
        ));
    }
    if let Some(base) = playback_base {
        out["hlsUrl"] = json!(format!(
            "{}/hls/{}/index.m3u8",
            base.trim_end_matches('/'),
            stream.playback_id
        ));
    }
    Ok(out)
}

/// `POST {api}/api/stream` and the stream it answers with.
async fn create_through_api(
    api: &str,
    name: &str,
    profiles: Option<&[Profile]>,
    record: bool,
) -> Result<Stream> {
    let mut body = json!({ "name": name, "record": record });
    if let Some(profiles) = profiles {
        body["profiles"] = serde_json::to_value(profiles)?;
    }
    let target = HttpTarget::parse(api).map_err(|e| usage(format!("--api: {e}")))?;
    let path = format!("{}/api/stream", target.path_prefix);
    let (status, reply) = tokio::time::timeout(
        API_TIMEOUT,
        post_json(&target, &path, &serde_json::to_vec(&body)?),
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
        bail!("the api refused to create the stream ({status}): {reason}");
    }
    serde_json::from_slice(&reply)
        .with_context(|| format!("the api at {api} answered with something that is not a stream"))
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
async fn post_json(target: &HttpTarget, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(&target.authority).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
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
    use livefarm_runtime::Shutdown;

    fn args(name: &str) -> CreateArgs {
        CreateArgs {
            name: name.to_owned(),
            profiles: None,
            record: false,
            registry: None,
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn creates_through_a_running_api() {
        let suffix = registry::random_id(8).expect("random");
        let config = livefarm_api::ApiConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            admin_listen: "127.0.0.1:0".parse().expect("addr"),
            bus_url: format!("memory://stream-cli-{suffix}"),
            registry_url: format!("memory://stream-cli-{suffix}"),
            storage_url: "memory://".to_owned(),
            ..livefarm_api::ApiConfig::default()
        };
        let shutdown = Shutdown::new();
        let server = livefarm_api::start(&config, shutdown.clone())
            .await
            .expect("api starts");
        let api = format!("http://{}", server.local_addr());

        let created = create(&CreateArgs {
            profiles: Some("P360p30fps16x9,240p0".to_owned()),
            record: true,
            api: Some(api.clone()),
            rtmp_url: Some("rtmp://ingest.example:1935/live/".to_owned()),
            ..args(" cam ")
        })
        .await
        .expect("created");
        let key = created["streamKey"].as_str().expect("streamKey");
        let playback = created["playbackId"].as_str().expect("playbackId");
        assert_eq!(created["name"], "cam");
        assert_eq!(created["record"], true);
        let heights: Vec<u64> = created["profiles"]
            .as_array()
            .expect("profiles")
            .iter()
            .map(|p| p["height"].as_u64().expect("height"))
            .collect();
        assert_eq!(heights, [360, 240]);
        assert_eq!(
            created["rtmpUrl"],
            format!("rtmp://ingest.example:1935/live/{key}")
        );
        assert_eq!(
            created["hlsUrl"],
            format!("{api}/hls/{playback}/index.m3u8")
        );
        // the API's registry really holds it
        let registry = registry::connect(&config.registry_url)
            .await
            .expect("registry");
        let stored = registry
            .by_stream_key(key)
            .await
            .expect("lookup")
            .expect("stored");
        assert_eq!(stored.playback_id, playback);
        assert!(stored.record);

        // the API's refusal reaches the user
        let refused = create(&CreateArgs {
            api: Some(format!("{api}/nowhere")),
            ..args("x")
        })
        .await
        .expect_err("no such route");
        assert!(format!("{refused:#}").contains("404"), "{refused:#}");
        shutdown.trigger();
        server.wait().await.expect("clean stop");

        let unreachable = create(&CreateArgs {
            api: Some(api.clone()),
            ..args("x")
        })
        .await
        .expect_err("api stopped");
        assert!(
            format!("{unreachable:#}").contains("cannot reach"),
            "{unreachable:#}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn creates_straight_into_a_redis_registry() {
        let redis =
            livefarm_bus::server::RedisServer::start().expect("this test needs redis-server");
        let created = create(&CreateArgs {
            registry: Some(redis.url()),
            playback_url: Some("http://play.example".to_owned()),
            ..args("direct")
        })
        .await
        .expect("created");
        let registry = registry::connect(&redis.url()).await.expect("registry");
        let id = created["id"].as_str().expect("id");
        let stored = registry.get(id).await.expect("get").expect("stored");
        // no --profiles: Studio's default ladder
        assert_eq!(stored.profiles, studio_default_ladder());
        assert_eq!(created["streamKey"], stored.stream_key.as_str());
        assert_eq!(
            created["hlsUrl"],
            format!("http://play.example/hls/{}/index.m3u8", stored.playback_id)
        );
        assert!(created.get("rtmpUrl").is_none());
    }

    #[tokio::test]
    async fn bad_input_is_a_usage_error() {
        for bad in [
            CreateArgs {
                profiles: Some("P9999p".to_owned()),
                ..args("x")
            },
            CreateArgs {
                registry: Some("etcd://x".to_owned()),
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
