//! The whole redeemer service (`livefarm_redeemer::run`) on a real anvil and Redis, scraped on
//! its admin port's `/metrics`. Its own test binary, hence its own process: the metrics are
//! process-wide and the leader gauge would count the leaders of concurrent tests in anvil.rs.
//! Skipped (loudly) only when anvil is missing and LIVEFARM_REQUIRE_ANVIL is unset.

use std::net::SocketAddr;
use std::time::Duration;

use livefarm_bus::BusOptions;
use livefarm_chain::testing::anvil_path;
use livefarm_chain::U256;
use livefarm_redeemer::store::hash_hex;
use livefarm_redeemer::testnet::{publish, TestNet};
use livefarm_redeemer::{Store, TicketState};
use livefarm_runtime::Shutdown;
use livefarm_testkit::{free_addr, redis_bus, wait_until};

const ETH: u64 = 1_000_000_000_000_000_000;
const WAIT: Duration = Duration::from_secs(60);

const REDEEMED: &str = "livefarm_redeemer_tickets_finished_total{outcome=\"redeemed\"}";
const EXPIRY_COUNT: &str = "livefarm_redeemer_expiry_to_redeemed_seconds_count";
const EXPIRY_SUM: &str = "livefarm_redeemer_expiry_to_redeemed_seconds_sum";
const SENT: &str = "livefarm_redeemer_transactions_sent_total";
const TAKEN: &str = "livefarm_redeemer_tickets_taken_total";
const LEADER: &str = "livefarm_redeemer_leader";
const TERMS: &str = "livefarm_redeemer_leader_terms_total";

/// The sample `series` (name and labels exactly as rendered) in OpenMetrics text; 0 when the
/// series was not created yet (a label value never used, the metrics not touched).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0.0)
}

async fn scrape(admin: SocketAddr) -> String {
    let response = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("scrape /metrics");
    assert!(response.status().is_success(), "{}", response.status());
    response.text().await.expect("metrics body")
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_a_redemption_and_the_leadership() {
    if anvil_path().is_none() {
        if std::env::var_os("LIVEFARM_REQUIRE_ANVIL").is_some() {
            panic!("LIVEFARM_REQUIRE_ANVIL is set but anvil is missing: run scripts/install-chain-tools.sh");
        }
        eprintln!("!!! SKIPPED: anvil not found (run scripts/install-chain-tools.sh or set LIVEFARM_ANVIL)");
        return;
    }
    let net = TestNet::start().await.expect("test network");
    let (redis, bus) = redis_bus(BusOptions::default()).await;
    net.bcast
        .fund_deposit_and_reserve(U256::from(ETH), U256::from(ETH))
        .await
        .expect("fund");
    let mut config = net.redeemer_config(&redis.url(), "metrics");
    config.admin_listen = free_addr();
    config.grpc_listen = free_addr();
    let admin = config.admin_listen;

    // The same registry the admin port renders; deltas, should another test join this binary.
    let before = livefarm_telemetry::metrics::render();
    let shutdown = Shutdown::new();
    let service = tokio::spawn(livefarm_redeemer::run(config.clone(), shutdown.clone()));

    let head = net.bcast.block_number().await.expect("head");
    let face = U256::from(ETH / 100);
    let ticket = net
        .ticket(&net.bcast_signer, face, 1, head)
        .await
        .expect("ticket");
    publish(&bus, &config.stream, &ticket)
        .await
        .expect("publish");

    let (service_ref, before_ref) = (&service, &before);
    let after = wait_until(WAIT, "the redeemed counter to move", || async move {
        if service_ref.is_finished() {
            return Ok(None);
        }
        // The admin port may not be up yet: keep trying until the deadline.
        let response = reqwest::get(format!("http://{admin}/metrics"))
            .await
            .map_err(|e| format!("no metrics yet: {e}"))?;
        let text = response.text().await.expect("metrics body");
        if sample(&text, REDEEMED) > sample(before_ref, REDEEMED) {
            Ok(Some(text))
        } else {
            Err(format!("{REDEEMED} {}", sample(&text, REDEEMED)))
        }
    })
    .await;
    let Some(after) = after else {
        panic!("the redeemer stopped: {:?}", service.await)
    };

    // What the counter says is what the record says.
    let store = Store::connect(&redis.url(), &config.key_prefix)
        .await
        .expect("store");
    let record = store
        .get(&hash_hex(&ticket.ticket_hash))
        .await
        .expect("store get")
        .expect("record");
    assert!(
        matches!(record.state, TicketState::Redeemed { .. }),
        "{record:?}"
    );

    let delta = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(delta(REDEEMED), 1.0, "{after}");
    assert_eq!(delta(EXPIRY_COUNT), 1.0, "{after}");
    assert!(delta(EXPIRY_SUM) >= 0.0, "{after}");
    assert_eq!(delta(SENT), 1.0, "{after}");
    assert!(delta(TAKEN) >= 1.0, "{after}");
    assert_eq!(sample(&after, LEADER), 1.0, "{after}");
    assert!(delta(TERMS) >= 1.0, "{after}");
    // Nothing else is left to redeem, as the next poll sees.
    wait_until(WAIT, "open tickets to go to 0", || async move {
        let open = sample(&scrape(admin).await, "livefarm_redeemer_open_tickets");
        if open == 0.0 {
            Ok(())
        } else {
            Err(format!("{open} open tickets"))
        }
    })
    .await;

    shutdown.trigger();
    service
        .await
        .expect("join")
        .expect("the redeemer stops cleanly");
    // The admin port is gone; the registry says this process no longer leads.
    assert_eq!(sample(&livefarm_telemetry::metrics::render(), LEADER), 0.0);
}
