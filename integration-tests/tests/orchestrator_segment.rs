//! The Livepeer orchestrator surface end to end, over TLS on loopback: a broadcaster written
//! with `livefarm_pm` (crates/orchestrator's `Broadcaster`) discovers the orchestrator with
//! GetOrchestrator, pays for 20 segments of real video with tickets, and gets every rendition
//! back through the worker pool (a real transcoder worker on the in-process bus); then the bad
//! inputs of §4.2, each with its status and text, while a good session keeps going.
//!
//! Needs the `ffmpeg` and `ffprobe` CLIs (apt: ffmpeg). The chain is the in-memory
//! `ChainState` (the chain issue supplies the real one).

use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use livefarm_bus::JobBus;
use livefarm_integration_tests::Sandbox;
use livefarm_orchestrator::broadcaster::{
    http_client, signed_seg_data, verify_result_signature, Broadcaster,
};
use livefarm_orchestrator::segment::encode_header;
use livefarm_orchestrator::{
    net, server, BusTicketSink, OrchestratorConfig, OrchestratorService, PoolTranscoder,
    SegmentState, WINNING_TICKETS_STREAM,
};
use livefarm_pm::{
    Address, InMemoryChain, Recipient, RecipientConfig, ReserveInfo, Sender, SenderConfig,
    SenderInfo, Signer, WinningTicket, U256,
};
use livefarm_profiles::{preset, Profile};
use num_rational::BigRational;
use num_traits::Zero as _;

const ORCH_KEY: [u8; 32] = [0x11; 32];
const BROADCASTER_KEY: [u8; 32] = [0x22; 32];
const TICKET_EV: u64 = 1_000_000_000;
/// Wei per pixel: a 2 s segment of the ladder costs most of a ticket's EV.
const PRICE: i64 = 100;

fn profiles() -> Vec<Profile> {
    vec![
        preset("P144p30fps16x9").expect("builtin"),
        preset("P240p30fps16x9").expect("builtin"),
    ]
}

/// 2 s MPEG-TS segments of a 40 s, 320x180 cut of the fixture, made once per process.
fn segments() -> &'static Vec<Bytes> {
    static SEGMENTS: OnceLock<Vec<Bytes>> = OnceLock::new();
    SEGMENTS.get_or_init(|| {
        let out = livefarm_integration_tests::fixture_segments(40);
        assert!(out.len() >= 20, "expected 20 segments, got {}", out.len());
        out
    })
}

struct Node {
    uri: String,
    orchestrator: OrchestratorService,
    chain: Arc<InMemoryChain>,
    bus: Arc<dyn JobBus>,
    _sandbox: Sandbox,
}

/// An on-chain orchestrator (in-memory chain) with one transcoder worker behind it.
async fn start_node(name: &str, max_sessions: usize, max_segment_bytes: usize) -> Node {
    let sandbox = Sandbox::builder(&format!("orch-{name}")).start().await;
    sandbox.transcoder(&format!("{name}-worker"));
    let shutdown = &sandbox.shutdown;

    let orch_address = Signer::from_bytes(ORCH_KEY).expect("key").address();
    let broadcaster = Signer::from_bytes(BROADCASTER_KEY).expect("key").address();
    let chain = Arc::new(InMemoryChain::new());
    chain.set_round(5, [0xab; 32]);
    chain.set_l1_block(1000);
    chain.set_gas_price(U256::from(1u64));
    chain.set_pool_size(1);
    chain.set_active(orch_address, 1, 1000);
    chain.set_sender(
        broadcaster,
        SenderInfo {
            deposit: U256::from(10u64).pow(U256::from(18u64)),
            reserve: ReserveInfo {
                funds_remaining: U256::from(10u64).pow(U256::from(18u64)),
                claimed_in_current_round: U256::ZERO,
            },
            withdraw_round: 0,
        },
    );
    // Face value twice the EV: half the tickets win, so a run of 20 has winners.
    let recipient = Recipient::new(
        orch_address,
        RecipientConfig {
            ev: U256::from(TICKET_EV),
            max_face_value: U256::from(2 * TICKET_EV),
            ..RecipientConfig::default()
        },
        chain.clone(),
    )
    .expect("recipient");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let uri = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let orchestrator = OrchestratorService::new(
        OrchestratorConfig {
            on_chain: true,
            service_uri: uri.clone(),
            price_per_unit: PRICE,
            pixels_per_unit: 1,
            auto_adjust_price: false,
            max_sessions,
            signer_key: Some(ORCH_KEY),
            ..OrchestratorConfig::default()
        },
        Some(Arc::new(recipient)),
    )
    .expect("orchestrator");

    let (bus, storage) = (sandbox.bus.clone(), sandbox.storage.clone());
    let stop = shutdown.clone();
    let segments =
        livefarm_jobs::SegmentClient::start(bus.clone(), async move { stop.triggered().await });
    let mut state = SegmentState::new(
        orchestrator.clone(),
        Arc::new(PoolTranscoder::new(segments, storage)),
        Arc::new(BusTicketSink::new(bus.clone())),
    );
    state.max_segment_bytes = max_segment_bytes;
    let tls = livefarm_orchestrator::tls::server_config(
        &livefarm_orchestrator::tls::self_signed("127.0.0.1").expect("cert"),
    )
    .expect("tls");
    let stop = shutdown.clone();
    tokio::spawn(server::serve(
        listener,
        server::app(state),
        Some(tls),
        async move { stop.triggered().await },
    ));
    Node {
        uri,
        orchestrator,
        chain,
        bus,
        _sandbox: sandbox,
    }
}

async fn broadcaster(node: &Node, manifest: &str) -> Broadcaster {
    let signer = Signer::from_bytes(BROADCASTER_KEY).expect("key");
    let sender = Sender::new(
        Signer::from_bytes(BROADCASTER_KEY).expect("key"),
        SenderConfig::default(),
        node.chain.clone(),
    );
    Broadcaster::connect(&node.uri, signer, Some(Arc::new(sender)), manifest)
        .await
        .expect("GetOrchestrator over TLS")
}

fn probe(data: &[u8]) -> (u32, u32, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.ts");
    std::fs::write(&path, data).expect("write");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=width,height,nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "rendition does not decode");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split(',')
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            f.trim()
                .parse()
                .unwrap_or_else(|_| panic!("ffprobe said {text:?}"))
        })
        .collect();
    (fields[0] as u32, fields[1] as u32, fields[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_paid_segments_over_tls_come_back_signed_and_balanced() {
    let node = start_node("e2e", 10, 300_000_000).await;
    let b = broadcaster(&node, "e2e-manifest").await;
    let info = b.info();
    assert!(info.ticket_params.is_some(), "on-chain info carries params");
    let orch_address = Address::from_slice_lenient(&info.address);
    let profiles = profiles();
    let mut tickets = 0usize;
    let mut pixels = 0i64;
    for (seq, data) in segments().iter().take(20).enumerate() {
        let reply = b
            .submit(seq as i64, data.clone(), &profiles, Duration::from_secs(2))
            .await
            .unwrap_or_else(|e| panic!("segment {seq}: {e}"));
        tickets += reply.tickets;
        assert_eq!(reply.result.seq, seq as i64);
        let Some(net::transcode_result::Result::Data(result)) = reply.result.result.clone() else {
            panic!("segment {seq} failed: {:?}", reply.result.result);
        };
        assert_eq!(result.segments.len(), profiles.len());
        let mut outputs = Vec::new();
        for (segment, profile) in result.segments.iter().zip(&profiles) {
            assert!(segment.url.starts_with(&node.uri), "{}", segment.url);
            let bytes = b.download(&segment.url).await.expect("download");
            let (w, h, frames) = probe(&bytes);
            assert_eq!((w, h), (profile.width, profile.height), "{}", segment.url);
            assert!(
                (55..=65).contains(&frames),
                "2 s at 30 fps: {frames} frames"
            );
            pixels += segment.pixels;
            outputs.push(bytes);
        }
        assert!(
            verify_result_signature(&orch_address, &outputs, &result.sig),
            "result signature of segment {seq}"
        );
    }
    assert!(tickets >= 12, "most segments needed a ticket: {tickets}");

    // Both sides agree, and on what the arithmetic says: tickets × EV − pixels × price.
    let session = info.auth_token.as_ref().expect("token").session_id.clone();
    let sender = b.address();
    let ours = b.balance();
    let theirs = node
        .orchestrator
        .balances()
        .balance(sender, &session)
        .expect("orchestrator balance");
    // EV = faceValue × winProb / (2^256 − 1), exactly (about TICKET_EV).
    let ev = livefarm_pm::TicketParams::from_wire(
        &livefarm_orchestrator::FromProto::from_proto(info.ticket_params.clone().expect("params")),
        livefarm_pm::Price::new(PRICE, 1).expect("price"),
    )
    .expect("params")
    .ev();
    let expected = ev * BigRational::from_integer(tickets.into())
        - BigRational::from_integer((pixels * PRICE).into());
    assert_eq!(theirs, expected, "orchestrator balance");
    assert_eq!(ours, expected, "broadcaster balance");
    assert!(!theirs.is_zero());

    // Winners were queued on the bus with what the redeemer needs.
    let entries = node
        .bus
        .range(WINNING_TICKETS_STREAM, None, 1000)
        .await
        .expect("winning tickets");
    assert!(!entries.is_empty(), "half the tickets should win");
    assert!(entries.len() <= tickets);
    for entry in entries {
        let ticket: WinningTicket = serde_json::from_slice(&entry.payload).expect("json");
        assert_eq!(ticket.sender, sender);
        assert_eq!(ticket.recipient, orch_address);
        assert!(ticket
            .ticket()
            .is_winning(&ticket.sig, &ticket.recipient_rand));
        assert_eq!(ticket.ticket().hash(), ticket.ticket_hash);
    }
}

/// Sends one raw `/segment` request; returns the status and the body text.
async fn raw_segment(
    client: &reqwest::Client,
    uri: &str,
    seg_header: &str,
    payment_header: &str,
    body: Bytes,
) -> (u16, String) {
    let response = client
        .post(format!("{uri}/segment"))
        .header("Livepeer-Segment", seg_header)
        .header("Livepeer-Payment", payment_header)
        .header("Content-Type", "video/MP2T")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, text.trim().to_string())
}

/// A paid payment header for `b`'s current session, with `n` fresh tickets.
fn paid_payment(b: &Broadcaster, sender: &Sender, pm_session: &str, n: usize) -> String {
    let info = b.info();
    let batch = sender.create_ticket_batch(pm_session, n).expect("tickets");
    let price = info.price_info.clone().expect("price");
    let payment = livefarm_pm::sender::gen_payment(
        sender.address(),
        livefarm_orchestrator::FromProto::from_proto(price),
        Some(&batch),
    );
    encode_header(&livefarm_orchestrator::ToProto::to_proto(&payment))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_their_status_and_text_and_leave_a_good_session_alone() {
    let node = start_node("bad", 3, 4 * 1024 * 1024).await;
    let profiles = profiles();
    let data = segments()[0].clone();
    let client = http_client().expect("client");

    // A good session runs the whole time.
    let good = broadcaster(&node, "good").await;
    let good_run = {
        let profiles = profiles.clone();
        tokio::spawn(async move {
            for (seq, segment) in segments().iter().take(6).enumerate() {
                let reply = good
                    .submit(
                        seq as i64,
                        segment.clone(),
                        &profiles,
                        Duration::from_secs(2),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("good segment {seq}: {e}"));
                reply.segments().expect("good segment transcoded");
            }
        })
    };

    // A second broadcaster session to misbehave in.
    let bad = broadcaster(&node, "bad").await;
    let info = bad.info();
    let token = info.auth_token.clone().expect("token");
    let signer = Signer::from_bytes(BROADCASTER_KEY).expect("key");
    let seg = |token: Option<net::AuthToken>, body: &[u8]| {
        encode_header(&signed_seg_data(
            &signer,
            "bad",
            1,
            body,
            &profiles,
            Duration::from_secs(2),
            token,
        ))
    };
    let sender = Sender::new(
        Signer::from_bytes(BROADCASTER_KEY).expect("key"),
        SenderConfig::default(),
        node.chain.clone(),
    );
    let params = livefarm_pm::TicketParams::from_wire(
        &livefarm_orchestrator::FromProto::from_proto(info.ticket_params.clone().expect("params")),
        livefarm_pm::Price::new(PRICE, 1).expect("price"),
    )
    .expect("params");
    let pm_session = sender.start_session(params);
    let good_seg = seg(Some(token.clone()), &data);

    // Broken payment encodings: 402.
    let (status, text) = raw_segment(&client, &node.uri, &good_seg, "%%%", data.clone()).await;
    assert_eq!(status, 402, "{text}");
    assert!(text.contains("base64"), "{text}");
    let (status, text) = raw_segment(&client, &node.uri, &good_seg, "/////w==", data.clone()).await;
    assert_eq!(status, 402, "{text}");
    assert!(text.contains("proto"), "{text}");

    // Broken segment encodings and credentials: 403.
    let payment = paid_payment(&bad, &sender, &pm_session, 1);
    let (status, text) = raw_segment(&client, &node.uri, "@@@", &payment, data.clone()).await;
    assert_eq!((status, text.as_str()), (403, "ErrorSegEncoding"));
    let (status, text) = raw_segment(&client, &node.uri, "/////w==", &payment, data.clone()).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("proto"), "{text}");
    let mut wrong_sig = signed_seg_data(
        &signer,
        "bad",
        1,
        &data,
        &profiles,
        Duration::from_secs(2),
        Some(token.clone()),
    );
    wrong_sig.seq = 2; // signed for seq 1
    let (status, text) = raw_segment(
        &client,
        &node.uri,
        &encode_header(&wrong_sig),
        &payment,
        data.clone(),
    )
    .await;
    assert_eq!((status, text.as_str()), (403, "ErrSegSig"));
    let mut forged = token.clone();
    forged.token[0] ^= 1;
    let (status, text) = raw_segment(
        &client,
        &node.uri,
        &seg(Some(forged), &data),
        &payment,
        data.clone(),
    )
    .await;
    assert_eq!((status, text.as_str()), (403, "invalid auth token"));
    let expired = node
        .orchestrator
        .auth_tokens()
        .issue_for(&token.session_id, 1_000_000);
    let (status, text) = raw_segment(
        &client,
        &node.uri,
        &seg(Some(expired), &data),
        &payment,
        data.clone(),
    )
    .await;
    assert_eq!((status, text.as_str()), (403, "expired auth token"));
    let (status, text) = raw_segment(
        &client,
        &node.uri,
        &seg(None, &data),
        &payment,
        data.clone(),
    )
    .await;
    assert_eq!((status, text.as_str()), (403, "missing auth token"));
    let mut hevc = signed_seg_data(
        &signer,
        "bad",
        1,
        &data,
        &profiles,
        Duration::from_secs(2),
        Some(token.clone()),
    );
    hevc.capabilities = Some(net::Capabilities {
        bitstring: livefarm_orchestrator::capabilities::bitstring(&[
            livefarm_orchestrator::capabilities::HEVC_ENCODE,
        ]),
        ..net::Capabilities::default()
    });
    let (status, text) = raw_segment(
        &client,
        &node.uri,
        &encode_header(&hevc),
        &payment,
        data.clone(),
    )
    .await;
    assert_eq!((status, text.as_str()), (403, "incompatible capabilities"));

    // Hash mismatch: the body is not what was signed.
    let (status, text) = raw_segment(
        &client,
        &node.uri,
        &good_seg,
        &paid_payment(&bad, &sender, &pm_session, 1),
        Bytes::from_static(b"not the segment"),
    )
    .await;
    assert_eq!((status, text.as_str()), (403, "Forbidden"));

    // Oversized body (this node takes 4 MiB).
    let big = Bytes::from(vec![0x47u8; 5 * 1024 * 1024]);
    let (status, text) = raw_segment(
        &client,
        &node.uri,
        &seg(Some(token.clone()), &big),
        &paid_payment(&bad, &sender, &pm_session, 1),
        big,
    )
    .await;
    assert_eq!(status, 413, "{text}");

    // Replayed nonce: the same payment twice.
    let payment = paid_payment(&bad, &sender, &pm_session, 1);
    let (status, _) = raw_segment(&client, &node.uri, &good_seg, &payment, data.clone()).await;
    assert_eq!(status, 200, "first use of the tickets");
    let (status, text) = raw_segment(&client, &node.uri, &good_seg, &payment, data.clone()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("already seen"), "{text}");

    // A priced payment without tickets in a session with no credit: insufficient balance.
    let fresh = broadcaster(&node, "broke").await;
    let fresh_info = fresh.info();
    let unpaid = livefarm_pm::sender::gen_payment(
        fresh.address(),
        livefarm_orchestrator::FromProto::from_proto(fresh_info.price_info.clone().expect("price")),
        None,
    );
    let (status, text) = raw_segment(
        &client,
        &node.uri,
        &seg(fresh_info.auth_token.clone(), &data),
        &encode_header(&livefarm_orchestrator::ToProto::to_proto(&unpaid)),
        data.clone(),
    )
    .await;
    assert_eq!((status, text.as_str()), (400, "Insufficient balance"));

    // Over capacity: this node has 3 slots; "good" and "bad" hold two, "broke" never got
    // one (refused before transcoding). Two more sessions fill it and the next is capped.
    let third = broadcaster(&node, "third").await;
    third
        .submit(0, data.clone(), &profiles, Duration::from_secs(2))
        .await
        .expect("third session fits");
    let (status, text) = raw_segment(
        &client,
        &node.uri,
        &seg(fresh_info.auth_token.clone(), &data),
        &paid_payment(&bad, &sender, &pm_session, 1),
        data.clone(),
    )
    .await;
    assert_eq!((status, text.as_str()), (403, "OrchestratorCapped"));
    let error = Broadcaster::connect(
        &node.uri,
        Signer::from_bytes(BROADCASTER_KEY).expect("key"),
        None,
        "fourth",
    )
    .await
    .err()
    .expect("GetOrchestrator is capped too");
    assert!(error.to_string().contains("OrchestratorCapped"), "{error}");

    good_run.await.expect("the good session was not disturbed");
}
