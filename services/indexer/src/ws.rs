//! The `newHeads` WebSocket subscription: each notification wakes the follow loop at once
//! instead of after `poll_interval`. Only a wake-up signal: headers and logs still come over
//! HTTP, so reorg checks, batching and persistence do not depend on it. A subscription that
//! cannot connect or drops is logged and retried with backoff; the service never fails for it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use alloy::providers::{Provider, ProviderBuilder, WsConnect};
use alloy::pubsub::SubscriptionItem;
use livefarm_runtime::Shutdown;
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::error::IndexerError;
use crate::follower::Stats;
use crate::rpc::RawHeader;

/// First pause before reconnecting; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Connecting and subscribing must finish within this (a blackholed host never refuses).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks a `ws_url` value: `ws://` or `wss://`.
pub(crate) fn validate_url(url: &str) -> Result<(), IndexerError> {
    let bad = |reason: String| IndexerError::Config {
        key: "ws_url",
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("{url}: {e}")))?;
    match parsed.scheme() {
        "ws" | "wss" => Ok(()),
        other => Err(bad(format!("{url}: scheme {other} is not ws or wss"))),
    }
}

/// The watcher task; aborted when dropped, so it never outlives the follow loop.
pub(crate) struct HeadWatcher(JoinHandle<()>);

impl Drop for HeadWatcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Spawns the subscription to `url`; every new head calls `wake.notify_one()`.
pub(crate) fn spawn(
    url: String,
    wake: Arc<Notify>,
    stats: Arc<Stats>,
    shutdown: Shutdown,
) -> HeadWatcher {
    HeadWatcher(tokio::spawn(watch(url, wake, stats, shutdown)))
}

async fn watch(url: String, wake: Arc<Notify>, stats: Arc<Stats>, shutdown: Shutdown) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let outcome = tokio::select! {
            r = subscribe_and_wake(&url, &wake, &stats, &mut backoff) => r,
            _ = shutdown.triggered() => return,
        };
        stats.ws_connected.store(false, Ordering::Relaxed);
        match outcome {
            Ok(()) => warn!(url, ?backoff, "newHeads subscription closed, reconnecting"),
            Err(reason) => {
                warn!(url, %reason, ?backoff, "newHeads subscription unavailable, polling only until it reconnects");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.triggered() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects, subscribes and wakes on each head until the subscription ends. `Err` when it
/// could not be set up at all.
async fn subscribe_and_wake(
    url: &str,
    wake: &Notify,
    stats: &Stats,
    backoff: &mut Duration,
) -> Result<(), String> {
    // one quick retry inside alloy, then this loop takes over with its own backoff and log
    let connect = WsConnect::new(url).with_max_retries(1);
    let setup = async {
        let provider = ProviderBuilder::new()
            .connect_ws(connect)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let sub = provider
            .subscribe::<_, RawHeader>(("newHeads",))
            .await
            .map_err(|e| format!("eth_subscribe: {e}"))?;
        Ok::<_, String>((provider, sub))
    };
    let (_provider, mut sub) = tokio::time::timeout(CONNECT_TIMEOUT, setup)
        .await
        .map_err(|_| format!("no answer within {CONNECT_TIMEOUT:?}"))??;
    stats.ws_subscriptions.fetch_add(1, Ordering::Relaxed);
    stats.ws_connected.store(true, Ordering::Relaxed);
    *backoff = MIN_BACKOFF;
    info!(url, "subscribed to newHeads");
    // the first step may already be past the head this wakes for; one extra step is cheap
    wake.notify_one();
    loop {
        match sub.recv_any().await {
            Ok(item) => {
                if let SubscriptionItem::Item(h) = &item {
                    debug!(block = h.number, "new head over websocket");
                }
                // a head that does not decode as expected is still a new head
                stats.ws_heads.fetch_add(1, Ordering::Relaxed);
                wake.notify_one();
            }
            Err(broadcast::error::RecvError::Lagged(_)) => wake.notify_one(),
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_websocket_urls_are_accepted() {
        validate_url("ws://127.0.0.1:8545").expect("ws");
        validate_url("wss://arb1.example/ws/key").expect("wss");
        assert!(validate_url("http://127.0.0.1:8545").is_err());
        assert!(validate_url("127.0.0.1:8545").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_retried_without_failing() {
        // a port nothing listens on: bind, read the port, close
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let wake = Arc::new(Notify::new());
        let stats = Arc::new(Stats::default());
        let stop = Shutdown::new();
        let watcher = spawn(
            format!("ws://127.0.0.1:{port}"),
            wake.clone(),
            stats.clone(),
            stop.clone(),
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!watcher.0.is_finished(), "keeps retrying");
        assert_eq!(stats.ws_subscriptions.load(Ordering::Relaxed), 0);
        assert!(!stats.ws_connected.load(Ordering::Relaxed));
        stop.trigger();
        tokio::time::timeout(Duration::from_secs(5), async {
            while !watcher.0.is_finished() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("stops on shutdown");
    }
}
