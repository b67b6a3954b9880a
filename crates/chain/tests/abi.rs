//! The compiled ABI against the Livepeer selectors and topics of livepeer-protocol.md §12, and
//! the committed artifacts against the current sources. No node needed.

use std::path::PathBuf;

use alloy::json_abi::JsonAbi;
use alloy::primitives::hex;
use livefarm_chain::bindings::ARTIFACTS;
use livefarm_chain::contract_id;
use sha2::{Digest, Sha256};

fn abi(name: &str) -> JsonAbi {
    let (_, text) = ARTIFACTS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no artifact for {name}"));
    let v: serde_json::Value = serde_json::from_str(text).expect("artifact is json");
    serde_json::from_value(v["abi"].clone()).expect("artifact abi parses")
}

/// `(selector, signature)` pairs as §12 lists them.
fn assert_functions(contract: &str, expected: &[(&str, &str)]) {
    let abi = abi(contract);
    for (selector, signature) in expected {
        let name = signature.split('(').next().expect("signature has a name");
        let found = abi
            .function(name)
            .unwrap_or_else(|| panic!("{contract} has no function {name}"));
        let f = found
            .iter()
            .find(|f| f.signature() == *signature)
            .unwrap_or_else(|| {
                let have: Vec<_> = found.iter().map(|f| f.signature()).collect();
                panic!("{contract}: no {signature}, have {have:?}")
            });
        assert_eq!(
            hex::encode_prefixed(f.selector()),
            *selector,
            "{contract}.{signature}"
        );
    }
}

/// `(topic, signature)` with `*` after each indexed type, as §12 lists them.
fn assert_events(contract: &str, expected: &[(&str, &str)]) {
    let abi = abi(contract);
    for (topic, marked) in expected {
        let name = marked.split('(').next().expect("signature has a name");
        let events = abi
            .event(name)
            .unwrap_or_else(|| panic!("{contract} has no event {name}"));
        assert_eq!(events.len(), 1, "{contract}.{name} overloaded");
        let e = &events[0];
        let types: Vec<String> = e
            .inputs
            .iter()
            .map(|p| format!("{}{}", p.ty, if p.indexed { "*" } else { "" }))
            .collect();
        assert_eq!(
            format!("{name}({})", types.join(",")),
            *marked,
            "{contract} event"
        );
        assert_eq!(
            hex::encode_prefixed(e.selector()),
            *topic,
            "{contract}.{marked}"
        );
    }
}

const TICKET: &str = "(address,address,uint256,uint256,uint256,bytes32,bytes)";

#[test]
fn ticket_broker_selectors_match_livepeer() {
    let redeem = format!("redeemWinningTicket({TICKET},bytes,uint256)");
    let batch = format!("batchRedeemWinningTickets({TICKET}[],bytes[],uint256[])");
    let hash = format!("getTicketHash({TICKET})");
    assert_functions(
        "TicketBroker",
        &[
            ("0xec8b3cb6", &redeem),
            ("0xd01b808e", &batch),
            ("0x6caa736b", "fundDeposit()"),
            ("0x6f9c3c8f", "fundReserve()"),
            ("0x511f4073", "fundDepositAndReserve(uint256,uint256)"),
            (
                "0x989f789c",
                "fundDepositAndReserveFor(address,uint256,uint256)",
            ),
            ("0xa69df4b5", "unlock()"),
            ("0xc2c4c2c8", "cancelUnlock()"),
            ("0x3ccfd60b", "withdraw()"),
            ("0xe1a589da", "getSenderInfo(address)"),
            ("0x5b6333eb", "getReserveInfo(address)"),
            ("0x4ac826da", "claimedReserve(address,address)"),
            ("0x81779f38", "claimableReserve(address,address)"),
            ("0x59a515ba", "usedTickets(bytes32)"),
            ("0xb03fa864", &hash),
            ("0x121cdcc2", "isUnlockInProgress(address)"),
            ("0x20d3a0b4", "unlockPeriod()"),
            ("0x856a2cf8", "ticketValidityPeriod()"),
        ],
    );
    // The return shape go-livepeer decodes: ((deposit, withdrawRound), (funds, claimed)).
    let abi = abi("TicketBroker");
    let info = &abi.function("getSenderInfo").expect("getSenderInfo")[0];
    let outs: Vec<String> = info
        .outputs
        .iter()
        .map(|p| p.selector_type().into_owned())
        .collect();
    assert_eq!(outs, ["(uint256,uint256)", "(uint256,uint256)"]);
}

#[test]
fn ticket_broker_topics_match_livepeer() {
    assert_events(
        "TicketBroker",
        &[
            (
                "0x5159e237d952190e68d5215430f305831be7c9c8776d1377c76679ae4773413f",
                "DepositFunded(address*,uint256)",
            ),
            (
                "0xb52b99b9e83551fcbd069b559cc3e823e2a1a3bad8ece46561ea77524394c850",
                "ReserveFunded(address*,uint256)",
            ),
            (
                "0x5c2b394723f408a40a60335e24b71829642e35f350cebe2036a96a66e895ea98",
                "ReserveClaimed(address*,address,uint256)",
            ),
            (
                "0xc389eb51ed006dbf2528507f010efdf5225ea596e1e1741d74f550dab1925ee7",
                "WinningTicketRedeemed(address*,address*,uint256,uint256,uint256,uint256,bytes)",
            ),
            (
                "0x8b87351a208c06e3ceee59d80725fd77a23b4129e1b51ca231fc89b40712649c",
                "WinningTicketTransfer(address*,address*,uint256)",
            ),
            (
                "0xf7870c5b224cbc19873599e46ccfc7103934650509b1af0c3ce90138377c2004",
                "Unlock(address*,uint256,uint256)",
            ),
            (
                "0xfa044b7b93a40365dc68049797c2eb06918523d694e5d56e406cac3eb35578e5",
                "UnlockCancelled(address*)",
            ),
            (
                "0xdf273cb619d95419a9cd0ec88123a0538c85064229baa6363788f743fff90deb",
                "Withdrawal(address*,uint256,uint256)",
            ),
        ],
    );
}

#[test]
fn rounds_manager_matches_livepeer() {
    assert_functions(
        "RoundsManager",
        &[
            ("0x8a19c8bc", "currentRound()"),
            ("0x219bc76c", "currentRoundInitialized()"),
            ("0x3aa4add4", "blockHashForRound(uint256)"),
            ("0x8b649b94", "roundLength()"),
            ("0x8807f36e", "lastInitializedRound()"),
            ("0x8fa148f2", "currentRoundStartBlock()"),
            ("0xd4807fb2", "initializeRound()"),
            ("0x8ae63d6d", "blockNum()"),
            ("0x6841f253", "currentRoundLocked()"),
        ],
    );
    assert_events(
        "RoundsManager",
        &[(
            "0x22f2fc17c5daf07db2379b3a03a8ef20a183f761097a58fce219c8a14619e786",
            "NewRound(uint256*,bytes32)",
        )],
    );
}

#[test]
fn bonding_manager_matches_livepeer() {
    assert_functions(
        "BondingManager",
        &[
            ("0x2a4e0d55", "getTranscoderPoolSize()"),
            ("0x08802374", "isActiveTranscoder(address)"),
            ("0x5dce9948", "getTranscoder(address)"),
            ("0x88a6c749", "getFirstTranscoderInPool()"),
            ("0x235c9603", "getNextTranscoderInPool(address)"),
            ("0x43d3461a", "transcoder(uint256,uint256)"),
        ],
    );
    let abi = abi("BondingManager");
    assert_eq!(
        abi.function("getTranscoder").expect("getTranscoder")[0]
            .outputs
            .len(),
        10
    );
    assert_events(
        "BondingManager",
        &[
            (
                "0x65d72d782835d64c3287844a829608d5abdc7e864cc9affe96d910ab3db665e9",
                "TranscoderActivated(address*,uint256)",
            ),
            (
                "0xfee3e693fc72d0a0a673805f3e606c551f4c677b9072444b90dd2d0406bc995c",
                "TranscoderDeactivated(address*,uint256)",
            ),
            (
                "0x7346854431dbb3eb8e373c604abf89e90f4865b8447e1e2834d7b3e4677bf544",
                "TranscoderUpdate(address*,uint256,uint256)",
            ),
            (
                "0xe5917769f276ddca9f2ee7c6b0b33e1d1e1b61008010ce622c632dd20d168a23",
                "Bond(address*,address*,address*,uint256,uint256)",
            ),
            (
                "0x2d5d98d189bee5496a08db2a5948cb7e5e786f09d17d0c3f228eb41776c24a06",
                "Unbond(address*,address*,uint256,uint256,uint256)",
            ),
            (
                "0x9f5b64cc71e1e26ff178caaa7877a04d8ce66fde989251870e80e6fbee690c17",
                "Rebond(address*,address*,uint256,uint256)",
            ),
            (
                "0x1340f1a8f3d456a649e1a12071dfa15655e3d09252131d0f980c3b405cc8dd2e",
                "WithdrawStake(address*,uint256,uint256,uint256)",
            ),
            (
                "0x619caafabdd75649b302ba8419e48cccf64f37f1983ac4727cfb38b57703ffc9",
                "Reward(address*,uint256)",
            ),
            (
                "0x40e200718fe552021167687e5491d09f5931275b6f88f14a462650f0effb5237",
                "TreasuryReward(address*,address,uint256)",
            ),
            (
                "0xf136b986590e86cf1abd7b6600186a7a1178ad3cbbdf0f3312e79f6214a2a567",
                "TransferBond(address*,address*,uint256,uint256,uint256)",
            ),
            (
                "0x4f1b51dd7a2fcb861aa2670f668be66835c4ee12b4bbbf037e4d0018f39819e4",
                "WithdrawFees(address*,address,uint256)",
            ),
            (
                "0xd7eab0765b772ea6ea859d5633baf737502198012e930f257f90013d9b211094",
                "EarningsClaimed(address*,address*,uint256,uint256,uint256,uint256)",
            ),
        ],
    );
}

#[test]
fn controller_and_service_registry_match_livepeer() {
    assert_functions(
        "Controller",
        &[
            ("0xe16c7d98", "getContract(bytes32)"),
            ("0x613e2de2", "getContractInfo(bytes32)"),
        ],
    );
    assert_functions(
        "ServiceRegistry",
        &[
            ("0x5f11301b", "setServiceURI(string)"),
            ("0x214c2a4b", "getServiceURI(address)"),
        ],
    );
    assert_events(
        "ServiceRegistry",
        &[(
            "0xfbb63068732c85741c9f8e61caffaabe038d577bfafd2d2dcc0e352a4f653a4c",
            "ServiceURIUpdate(address*,string)",
        )],
    );
}

#[test]
fn registry_ids_match_livepeer() {
    for (name, id) in [
        (
            "TicketBroker",
            "0xbd1aa3e8d2464256d7fd3dcf645c16418d5d8c51d971f1ad7d57e7b1b5eee239",
        ),
        (
            "RoundsManager",
            "0xe8438ea868df48e3fc21f2f087b993c9b1837dc0f6135064161ce7d7a1701fe8",
        ),
        (
            "BondingManager",
            "0x2517d59a36a86548e38734e8ab416f42afff4bca78706a66ad65750dae7f9e37",
        ),
        (
            "ServiceRegistry",
            "0x79c5d2a4a07754f4bacb0ffba18ac516030ee589ebc89db8627680c4d4cdb230",
        ),
        (
            "Minter",
            "0x6e58ad548d72b425ea94c15f453bf26caddb061d82b2551db7fdd3cefe0e9940",
        ),
    ] {
        assert_eq!(contract_id(name).to_string(), id, "{name}");
    }
}

/// Fails when a .sol file changed without `scripts/build-contracts.sh` being rerun.
#[test]
fn artifacts_are_built_from_current_sources() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/src");
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .expect("contracts/src is readable")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8 name")
        })
        .filter(|n| n.ends_with(".sol"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "sources found: {names:?}");
    // The same digest contracts/compile.cjs writes: name NUL content NUL for each file.
    let mut hasher = Sha256::new();
    for name in &names {
        hasher.update(name.as_bytes());
        hasher.update([0u8]);
        hasher.update(std::fs::read(src.join(name)).expect("source is readable"));
        hasher.update([0u8]);
    }
    let digest = hex::encode(hasher.finalize());
    for (name, text) in ARTIFACTS {
        let v: serde_json::Value = serde_json::from_str(text).expect("artifact is json");
        assert_eq!(
            v["sourceSha256"].as_str(),
            Some(digest.as_str()),
            "contracts/artifacts/{name}.json is stale: run scripts/build-contracts.sh"
        );
        let code = v["bytecode"].as_str().expect("bytecode is a string");
        assert!(
            code.starts_with("0x") && code.len() > 100,
            "{name} has bytecode"
        );
    }
}
