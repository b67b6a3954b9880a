//! `net.Orchestrator` over a real tonic server on loopback (plaintext h2c), called by a
//! tonic client acting as a Livepeer broadcaster.

use std::net::SocketAddr;
use std::sync::Arc;

use livefarm_orchestrator::auth::unix_now;
use livefarm_orchestrator::capabilities::{self, compatible_with, AUTH_TOKEN, H264, MPEGTS};
use livefarm_orchestrator::net::orchestrator_client::OrchestratorClient;
use livefarm_orchestrator::{
    net, FromProto, OrchestratorConfig, OrchestratorService, SessionRegistry, ToProto,
};
use livefarm_pm::hash::keccak256;
use livefarm_pm::sig::verify_message;
use livefarm_pm::wire::{PaymentMsg, PriceInfoMsg, TicketParamsMsg};
use livefarm_pm::{
    gen_payment, Address, Balances, InMemoryChain, Price, Recipient, RecipientConfig, ReserveInfo,
    Sender, SenderConfig, SenderInfo, Signer, TicketParams, U256,
};
use prost::Message;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::Code;

const O_KEY: [u8; 32] = [0x31; 32];

struct Node {
    client: OrchestratorClient<Channel>,
    sessions: Arc<SessionRegistry>,
    o_address: Address,
    service_uri: String,
}

struct Chain {
    chain: Arc<InMemoryChain>,
    recipient: Arc<Recipient>,
    broadcaster: Signer,
}

fn chain() -> Chain {
    let o = Signer::from_bytes(O_KEY).expect("valid key").address();
    let chain = Arc::new(InMemoryChain::new());
    chain.set_round(20, [0x11; 32]);
    chain.set_l1_block(5_000);
    chain.set_pool_size(10);
    chain.set_gas_price(U256::from(10_000_000u64));
    chain.set_active(o, 1, 1_000);
    let broadcaster = Signer::random().expect("rng");
    let eth = U256::from(10u64).pow(U256::from(18u64));
    chain.set_sender(
        broadcaster.address(),
        SenderInfo {
            deposit: eth,
            reserve: ReserveInfo {
                funds_remaining: eth,
                claimed_in_current_round: U256::ZERO,
            },
            withdraw_round: 0,
        },
    );
    let recipient =
        Arc::new(Recipient::new(o, RecipientConfig::default(), chain.clone()).expect("rng"));
    Chain {
        chain,
        recipient,
        broadcaster,
    }
}

async fn start(config: OrchestratorConfig, recipient: Option<Arc<Recipient>>) -> Node {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr: SocketAddr = incoming.local_addr().expect("local addr");
    let service_uri = config.service_uri.clone();
    let svc = OrchestratorService::new(config, recipient).expect("valid config");
    let sessions = svc.sessions();
    let o_address = svc.address();
    tokio::spawn(
        Server::builder()
            .add_service(svc.into_server())
            .serve_with_incoming(incoming),
    );
    let client = OrchestratorClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    Node {
        client,
        sessions,
        o_address,
        service_uri,
    }
}

fn on_chain_config(max_sessions: usize) -> OrchestratorConfig {
    OrchestratorConfig {
        on_chain: true,
        service_uri: "https://o.example:8935".into(),
        // Reduces to 3/2 wei per pixel.
        price_per_unit: 3000,
        pixels_per_unit: 2000,
        auto_adjust_price: false,
        max_sessions,
        signer_key: Some(O_KEY),
        ..OrchestratorConfig::default()
    }
}

fn request(b: &Signer) -> net::OrchestratorRequest {
    net::OrchestratorRequest {
        address: b.address().0.to_vec(),
        sig: b.sign_address().to_vec(),
        capabilities: Some(net::Capabilities {
            bitstring: capabilities::bitstring(&[AUTH_TOKEN, H264, MPEGTS]),
            ..net::Capabilities::default()
        }),
        ignore_capacity_check: false,
    }
}

#[tokio::test]
async fn on_chain_info_carries_params_a_sender_can_pay_and_the_recipient_accepts() {
    let w = chain();
    let mut node = start(on_chain_config(10), Some(w.recipient.clone())).await;
    let info = node
        .client
        .get_orchestrator(request(&w.broadcaster))
        .await
        .expect("good signature")
        .into_inner();

    assert_eq!(info.transcoder, node.service_uri);
    assert_eq!(info.address, node.o_address.0.to_vec());
    let price = info.price_info.clone().expect("on-chain price");
    assert_eq!((price.price_per_unit, price.pixels_per_unit), (3, 2));
    let caps = info.capabilities.clone().expect("capabilities");
    assert_eq!(caps.bitstring, vec![0x4005FFF]);
    assert_eq!(caps.mandatories, vec![0x1000]);
    assert!(compatible_with(
        &request(&w.broadcaster).capabilities.expect("set"),
        &caps
    ));
    let token = info.auth_token.clone().expect("auth token");
    assert_eq!(token.session_id.len(), 8);
    let left = token.expiration - unix_now();
    assert!((1790..=1800).contains(&left), "expires in {left} s");

    let wire_params = info.ticket_params.clone().expect("ticket params");
    assert_eq!(wire_params.recipient, node.o_address.0.to_vec());
    let ep = wire_params
        .expiration_params
        .clone()
        .expect("expiration params");
    assert_eq!(ep.creation_round, 20);
    assert_eq!(ep.creation_round_block_hash, vec![0x11; 32]);

    // B reads the params and pays two tickets, through the proto encoding both ways.
    let price_msg = PriceInfoMsg::from_proto(price);
    let params = TicketParams::from_wire(
        &TicketParamsMsg::from_proto(wire_params),
        Price::from_price_info(&price_msg).expect("valid price"),
    )
    .expect("valid params");
    assert_eq!(params.expiration_block, 5_040);
    let sender = Sender::new(
        w.broadcaster.clone(),
        SenderConfig::default(),
        w.chain.clone(),
    );
    sender
        .validate_ticket_params(&params)
        .expect("B accepts the params");
    let pm_session = sender.start_session(params);
    let batch = sender.create_ticket_batch(&pm_session, 2).expect("batch");
    let payment = gen_payment(w.broadcaster.address(), price_msg, Some(&batch));
    let bytes = payment.to_proto().encode_to_vec();
    let received = PaymentMsg::from_proto(net::Payment::decode(bytes.as_slice()).expect("decodes"));
    assert_eq!(received, payment);

    let balances = Balances::default();
    let outcome = w
        .recipient
        .process_payment(&received, &token.session_id, &balances);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.credited_tickets, 2);
    assert!(balances
        .balance(w.broadcaster.address(), &token.session_id)
        .is_some());

    // A tampered seed no longer matches recipientRandHash.
    let mut tampered = received.clone();
    if let Some(tp) = tampered.ticket_params.as_mut() {
        tp.seed.push(1);
    }
    let bad = w
        .recipient
        .process_payment(&tampered, "other-session", &Balances::default());
    assert!(bad.error.is_some());
}

#[tokio::test]
async fn a_wrong_signature_is_refused_on_chain_and_ignored_off_chain() {
    let w = chain();
    let mut node = start(on_chain_config(10), Some(w.recipient.clone())).await;
    let impostor = Signer::random().expect("rng");
    let mut req = request(&w.broadcaster);
    // Signed by someone else over their own address.
    req.sig = impostor.sign_address().to_vec();
    let err = node
        .client
        .get_orchestrator(req.clone())
        .await
        .expect_err("bad signature");
    assert_eq!(err.code(), Code::Unknown);
    assert!(
        err.message().starts_with("Invalid orchestrator request: "),
        "{}",
        err.message()
    );
    req.sig.truncate(64);
    assert!(node.client.get_orchestrator(req.clone()).await.is_err());

    let mut off = start(OrchestratorConfig::default(), None).await;
    let info = off
        .client
        .get_orchestrator(req)
        .await
        .expect("off-chain skips the check")
        .into_inner();
    assert!(info.ticket_params.is_none());
    assert!(info.price_info.is_none());
    assert!(info.auth_token.is_some());
}

#[tokio::test]
async fn a_full_orchestrator_answers_orchestrator_capped() {
    let w = chain();
    let mut node = start(on_chain_config(1), Some(w.recipient.clone())).await;
    assert!(node
        .client
        .get_orchestrator(request(&w.broadcaster))
        .await
        .is_ok());
    assert_eq!(node.sessions.open("aaaa0000"), Ok(true));
    let err = node
        .client
        .get_orchestrator(request(&w.broadcaster))
        .await
        .expect_err("capped");
    assert_eq!(err.code(), Code::Unknown);
    assert_eq!(err.message(), "OrchestratorCapped");
    // A session refresh skips the capacity check.
    let mut refresh = request(&w.broadcaster);
    refresh.ignore_capacity_check = true;
    assert!(node.client.get_orchestrator(refresh).await.is_ok());
}

#[tokio::test]
async fn ping_reply_is_signed_by_the_orchestrator() {
    let mut node = start(
        OrchestratorConfig {
            signer_key: Some(O_KEY),
            ..OrchestratorConfig::default()
        },
        None,
    )
    .await;
    let value = keccak256(b"1700000000").to_vec();
    let reply = node
        .client
        .ping(net::PingPong {
            value: value.clone(),
        })
        .await
        .expect("ping")
        .into_inner();
    assert_eq!(reply.value.len(), 65);
    assert!(verify_message(&node.o_address, &value, &reply.value));
    assert!(!verify_message(&node.o_address, b"other", &reply.value));
    assert_eq!(
        node.o_address,
        Signer::from_bytes(O_KEY).expect("key").address()
    );
}

#[tokio::test]
async fn end_transcoding_session_needs_a_genuine_token() {
    let mut node = start(OrchestratorConfig::default(), None).await;
    let info = node
        .client
        .get_orchestrator(net::OrchestratorRequest::default())
        .await
        .expect("off-chain")
        .into_inner();
    let token = info.auth_token.expect("issued");
    assert_eq!(node.sessions.open(&token.session_id), Ok(true));

    let mut forged = token.clone();
    forged.token[5] ^= 0x80;
    let err = node
        .client
        .end_transcoding_session(net::EndTranscodingSessionRequest {
            auth_token: Some(forged),
        })
        .await
        .expect_err("forged token");
    assert_eq!(err.message(), "invalid auth token");
    let err = node
        .client
        .end_transcoding_session(net::EndTranscodingSessionRequest { auth_token: None })
        .await
        .expect_err("no token");
    assert_eq!(err.message(), "missing auth token");
    assert!(node.sessions.contains(&token.session_id));

    node.client
        .end_transcoding_session(net::EndTranscodingSessionRequest {
            auth_token: Some(token.clone()),
        })
        .await
        .expect("genuine token");
    assert!(!node.sessions.contains(&token.session_id));
}
