//! Byte-level checks that the generated `net` messages use go-livepeer's field numbers.

use livefarm_orchestrator::net;
use livefarm_orchestrator::ToProto;
use livefarm_profiles::Profile;
use prost::Message;

#[test]
fn segdata_profile_lists_use_fields_33_to_35_and_videoprofile_16_up() {
    let profile = net::VideoProfile {
        name: "a".into(),
        width: 1,
        ..net::VideoProfile::default()
    };
    // VideoProfile: name is field 16 (tag 0x82 0x01), width field 17 (tag 0x88 0x01).
    let vp = [0x82, 0x01, 0x01, b'a', 0x88, 0x01, 0x01];
    assert_eq!(profile.encode_to_vec(), vp);

    type SetList = fn(&mut net::SegData, net::VideoProfile);
    let cases: [(SetList, [u8; 2]); 3] = [
        (|s, p| s.full_profiles = vec![p], [0x8a, 0x02]), // 33 << 3 | 2
        (|s, p| s.full_profiles2 = vec![p], [0x92, 0x02]), // 34 << 3 | 2
        (|s, p| s.full_profiles3 = vec![p], [0x9a, 0x02]), // 35 << 3 | 2
    ];
    for (set, tag) in cases {
        let mut seg = net::SegData {
            seq: 5,
            ..net::SegData::default()
        };
        set(&mut seg, profile.clone());
        let mut expected = vec![0x10, 0x05]; // seq: field 2, varint
        expected.extend_from_slice(&tag);
        expected.push(vp.len() as u8);
        expected.extend_from_slice(&vp);
        assert_eq!(seg.encode_to_vec(), expected);
        assert_eq!(
            net::SegData::decode(expected.as_slice()).expect("decodes"),
            seg
        );
    }

    // A profile from livefarm_profiles: fps is field 20 (0xa0 0x01), fpsDen 22 (0xb0 0x01),
    // gop 24 (0xc0 0x01) as a negative int32 (10-byte varint).
    let p = Profile {
        fps: 30,
        fps_den: 1,
        gop: livefarm_profiles::Gop::Intra,
        ..Profile::new("", 0, 0, 0)
    }
    .to_proto();
    let mut expected = vec![0xa0, 0x01, 30, 0xb0, 0x01, 1, 0xc0, 0x01];
    expected.extend_from_slice(&[0xff; 9]);
    expected.push(0x01);
    assert_eq!(p.encode_to_vec(), expected);
}

#[test]
fn ticket_params_and_payment_field_numbers() {
    let tp = net::TicketParams {
        recipient: vec![0xaa; 20],
        face_value: vec![0x01, 0x00],
        expiration_params: Some(net::TicketExpirationParams {
            creation_round: 3,
            creation_round_block_hash: vec![0xbb; 2],
        }),
        ..net::TicketParams::default()
    };
    let mut expected = vec![0x0a, 20];
    expected.extend_from_slice(&[0xaa; 20]);
    expected.extend_from_slice(&[0x12, 2, 0x01, 0x00]);
    // Field 7 nests creation_round (1, varint) and creation_round_block_hash (2, bytes).
    expected.extend_from_slice(&[0x3a, 6, 0x08, 3, 0x12, 2, 0xbb, 0xbb]);
    assert_eq!(tp.encode_to_vec(), expected);

    let payment = net::Payment {
        sender: vec![0xcc; 20],
        ticket_sender_params: vec![net::TicketSenderParams {
            sender_nonce: 7,
            sig: vec![],
        }],
        expected_price: Some(net::PriceInfo {
            price_per_unit: 3,
            pixels_per_unit: 2,
            ..net::PriceInfo::default()
        }),
        ..net::Payment::default()
    };
    let mut expected = vec![0x12, 20];
    expected.extend_from_slice(&[0xcc; 20]);
    expected.extend_from_slice(&[0x22, 2, 0x08, 7]); // 4: ticket_sender_params
    expected.extend_from_slice(&[0x2a, 4, 0x08, 3, 0x10, 2]); // 5: expected_price
    assert_eq!(payment.encode_to_vec(), expected);
}

#[test]
fn orchestrator_info_high_fields_and_auth_token() {
    let info = net::OrchestratorInfo {
        auth_token: Some(net::AuthToken {
            token: vec![1],
            session_id: "ab".into(),
            expiration: 1,
        }),
        nodes: vec!["n".into()],
        ..net::OrchestratorInfo::default()
    };
    // 6: auth_token {1 token, 2 session_id, 3 expiration}; 34: nodes (0x92 0x02).
    let expected = [
        0x32, 9, 0x0a, 1, 1, 0x12, 2, b'a', b'b', 0x18, 1, 0x92, 0x02, 1, b'n',
    ];
    assert_eq!(info.encode_to_vec(), expected);
}
