//! The admin server over real HTTP on a loopback port.

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use livefarm_runtime::{admin, Readiness, RuntimeError, Shutdown};
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

// a minimal HTTP/1.1 GET: the server closes after one response because we ask it to
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::other("response timed out"))??;
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header terminator");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}

static REQUESTS: LazyLock<Counter> = LazyLock::new(|| {
    let counter = Counter::default();
    livefarm_telemetry::metrics::registry().register(
        "livefarm_admintest_requests",
        "requests seen by the admin test",
        counter.clone(),
    );
    counter
});

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("loopback address")
}

#[tokio::test]
async fn probes_metrics_and_shutdown() {
    let readiness = Readiness::new();
    let shutdown = Shutdown::new();
    let server = admin::serve(loopback(), readiness.clone(), shutdown.clone())
        .await
        .expect("admin server starts");
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "port 0 resolves to a real port");

    let live = get(addr, "/livez").await.expect("livez");
    assert_eq!((live.status, live.body.as_str()), (200, "ok"));

    let ready = get(addr, "/readyz").await.expect("readyz");
    assert_eq!(ready.status, 503, "not ready before set_ready");
    readiness.set_ready(true);
    let ready = get(addr, "/readyz").await.expect("readyz");
    assert_eq!(ready.status, 200);

    REQUESTS.inc_by(4);
    let metrics = get(addr, "/metrics").await.expect("metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(
        metrics.body.contains("livefarm_admintest_requests_total 4"),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains("livefarm_process_start_time_seconds"),
        "{}",
        metrics.body
    );

    let missing = get(addr, "/nope").await.expect("404");
    assert_eq!(missing.status, 404);

    // shutdown: not ready at once, still alive while draining
    shutdown.trigger();
    let ready = get(addr, "/readyz").await.expect("readyz after shutdown");
    assert_eq!(ready.status, 503);
    let live = get(addr, "/livez").await.expect("livez while draining");
    assert_eq!(live.status, 200);

    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("stops in time")
        .expect("clean stop");
    assert!(get(addr, "/livez").await.is_err(), "listener closed");
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let server = admin::serve(loopback(), Readiness::new(), Shutdown::new())
        .await
        .expect("admin server starts");
    let addr = server.local_addr();
    assert_eq!(get(addr, "/livez").await.expect("livez").status, 200);
    drop(server);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get(addr, "/livez").await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still serving after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bind_conflict_is_reported() {
    let taken = tokio::net::TcpListener::bind(loopback())
        .await
        .expect("bind");
    let addr = taken.local_addr().expect("addr");
    let err = admin::serve(addr, Readiness::new(), Shutdown::new())
        .await
        .expect_err("port in use");
    assert!(matches!(err, RuntimeError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
