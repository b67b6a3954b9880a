//! The one place that converts between go-livepeer's generated `net` types and Livefarm's
//! domain types: the payment structs of `livefarm_pm::wire`, winning tickets, and the profiles
//! of `livefarm_profiles` (feature `pm`). Both sides are foreign to this module's users, so
//! the conversions are two local traits rather than `From` impls.

use crate::livepeer::net;
use crate::ServiceError;
use livefarm_pm::ticket::recipient_rand_hash;
use livefarm_pm::wire::{
    PaymentMsg, PriceInfoMsg, TicketExpirationParamsMsg, TicketParamsMsg, TicketSenderParamsMsg,
};
use livefarm_pm::{Address, Price, Ticket, TicketExpirationParams, WinningTicket, U256};
use livefarm_profiles::{
    net_name, ChromaFormat, EncoderProfile, Format, Gop, Profile, ProfileError, VideoCodec,
};

/// A value with a `net` proto counterpart.
pub trait ToProto {
    /// The generated proto type.
    type Proto;
    /// The proto message, field for field.
    fn to_proto(&self) -> Self::Proto;
}

/// A value readable from a `net` proto message without loss or failure.
pub trait FromProto<P>: Sized {
    /// The value, field for field.
    fn from_proto(proto: P) -> Self;
}

impl ToProto for PriceInfoMsg {
    type Proto = net::PriceInfo;
    fn to_proto(&self) -> net::PriceInfo {
        net::PriceInfo {
            price_per_unit: self.price_per_unit,
            pixels_per_unit: self.pixels_per_unit,
            capability: self.capability,
            constraint: self.constraint.clone(),
        }
    }
}

impl FromProto<net::PriceInfo> for PriceInfoMsg {
    fn from_proto(p: net::PriceInfo) -> Self {
        PriceInfoMsg {
            price_per_unit: p.price_per_unit,
            pixels_per_unit: p.pixels_per_unit,
            capability: p.capability,
            constraint: p.constraint,
        }
    }
}

impl ToProto for TicketExpirationParamsMsg {
    type Proto = net::TicketExpirationParams;
    fn to_proto(&self) -> net::TicketExpirationParams {
        net::TicketExpirationParams {
            creation_round: self.creation_round,
            creation_round_block_hash: self.creation_round_block_hash.clone(),
        }
    }
}

impl FromProto<net::TicketExpirationParams> for TicketExpirationParamsMsg {
    fn from_proto(p: net::TicketExpirationParams) -> Self {
        TicketExpirationParamsMsg {
            creation_round: p.creation_round,
            creation_round_block_hash: p.creation_round_block_hash,
        }
    }
}

impl ToProto for TicketParamsMsg {
    type Proto = net::TicketParams;
    fn to_proto(&self) -> net::TicketParams {
        net::TicketParams {
            recipient: self.recipient.clone(),
            face_value: self.face_value.clone(),
            win_prob: self.win_prob.clone(),
            recipient_rand_hash: self.recipient_rand_hash.clone(),
            seed: self.seed.clone(),
            expiration_block: self.expiration_block.clone(),
            expiration_params: self.expiration_params.as_ref().map(ToProto::to_proto),
        }
    }
}

impl FromProto<net::TicketParams> for TicketParamsMsg {
    fn from_proto(p: net::TicketParams) -> Self {
        TicketParamsMsg {
            recipient: p.recipient,
            face_value: p.face_value,
            win_prob: p.win_prob,
            recipient_rand_hash: p.recipient_rand_hash,
            seed: p.seed,
            expiration_block: p.expiration_block,
            expiration_params: p
                .expiration_params
                .map(TicketExpirationParamsMsg::from_proto),
        }
    }
}

impl ToProto for TicketSenderParamsMsg {
    type Proto = net::TicketSenderParams;
    fn to_proto(&self) -> net::TicketSenderParams {
        net::TicketSenderParams {
            sender_nonce: self.sender_nonce,
            sig: self.sig.clone(),
        }
    }
}

impl FromProto<net::TicketSenderParams> for TicketSenderParamsMsg {
    fn from_proto(p: net::TicketSenderParams) -> Self {
        TicketSenderParamsMsg {
            sender_nonce: p.sender_nonce,
            sig: p.sig,
        }
    }
}

impl ToProto for PaymentMsg {
    type Proto = net::Payment;
    fn to_proto(&self) -> net::Payment {
        net::Payment {
            ticket_params: self.ticket_params.as_ref().map(ToProto::to_proto),
            sender: self.sender.clone(),
            expiration_params: self.expiration_params.as_ref().map(ToProto::to_proto),
            ticket_sender_params: self
                .ticket_sender_params
                .iter()
                .map(ToProto::to_proto)
                .collect(),
            expected_price: self.expected_price.as_ref().map(ToProto::to_proto),
        }
    }
}

impl FromProto<net::Payment> for PaymentMsg {
    fn from_proto(p: net::Payment) -> Self {
        PaymentMsg {
            ticket_params: p.ticket_params.map(TicketParamsMsg::from_proto),
            sender: p.sender,
            expiration_params: p
                .expiration_params
                .map(TicketExpirationParamsMsg::from_proto),
            ticket_sender_params: p
                .ticket_sender_params
                .into_iter()
                .map(TicketSenderParamsMsg::from_proto)
                .collect(),
            expected_price: p.expected_price.map(PriceInfoMsg::from_proto),
        }
    }
}

/// Proto int32 from a profile's u32; validated profiles stay far below `i32::MAX`, so
/// saturating only affects values validation already rejects.
fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl ToProto for Profile {
    type Proto = net::VideoProfile;
    fn to_proto(&self) -> net::VideoProfile {
        net::VideoProfile {
            name: self.name.clone(),
            width: to_i32(self.width),
            height: to_i32(self.height),
            bitrate: to_i32(self.bitrate),
            fps: self.fps,
            format: self.format.to_wire(),
            fps_den: self.fps_den,
            profile: self.profile.to_wire(),
            gop: self.gop.to_wire_ms(),
            encoder: self.encoder.to_wire(),
            color_depth: to_i32(self.color_depth),
            chroma_format: self.chroma_format.to_wire(),
            quality: self.quality,
        }
    }
}

fn non_negative(name: &str, field: &'static str, v: i32) -> Result<u32, ProfileError> {
    u32::try_from(v).map_err(|_| ProfileError::Invalid {
        name: name.to_string(),
        field,
        reason: format!("negative value {v}"),
    })
}

/// Reads a wire profile as an orchestrator does (GL `makeFfmpegVideoProfiles`): unknown
/// format, encoder profile or codec values give go-livepeer's error texts, and an empty
/// name becomes `net_{w}x{h}_{bitrate}`. Negative sizes are refused here rather than
/// deep inside the encoder.
pub fn profile_from_proto(p: &net::VideoProfile) -> Result<Profile, ProfileError> {
    let name = if p.name.is_empty() {
        net_name(p.width.into(), p.height.into(), p.bitrate.into())
    } else {
        p.name.clone()
    };
    Ok(Profile {
        width: non_negative(&name, "width", p.width)?,
        height: non_negative(&name, "height", p.height)?,
        bitrate: non_negative(&name, "bitrate", p.bitrate)?,
        fps: p.fps,
        fps_den: p.fps_den,
        format: Format::from_wire(p.format)?,
        profile: EncoderProfile::from_wire(p.profile)?,
        gop: Gop::from_wire_ms(p.gop)?,
        encoder: VideoCodec::from_wire(p.encoder)?,
        color_depth: non_negative(&name, "color_depth", p.color_depth)?,
        chroma_format: ChromaFormat::from_wire(p.chroma_format)?,
        quality: p.quality,
        name,
    })
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::InvalidArgument(message.into())
}

fn be_u256(field: &str, bytes: &[u8]) -> Result<U256, ServiceError> {
    U256::try_from_be_slice(bytes)
        .ok_or_else(|| invalid(format!("{field} is longer than 32 bytes")))
}

/// A 20-byte address field of a request.
pub fn address_from_proto(field: &str, bytes: &[u8]) -> Result<Address, ServiceError> {
    let arr: [u8; 20] = bytes
        .try_into()
        .map_err(|_| invalid(format!("{field} must be 20 bytes")))?;
    Ok(Address(arr))
}

/// The winning-ticket record for a `net.Ticket` (go-livepeer's `TicketRedeemer.QueueTicket`),
/// read strictly: fixed-size fields must have their size, and the revealed `recipient_rand`
/// must match the params' hash.
pub fn winning_ticket_from_proto(t: &net::Ticket) -> Result<WinningTicket, ServiceError> {
    let params = t
        .ticket_params
        .as_ref()
        .ok_or_else(|| invalid("ticket_params missing"))?;
    let sender_params = t
        .sender_params
        .as_ref()
        .ok_or_else(|| invalid("sender_params missing"))?;
    let expiration = t
        .expiration_params
        .as_ref()
        .or(params.expiration_params.as_ref())
        .ok_or_else(|| invalid("expiration_params missing"))?;
    let block_hash: [u8; 32] = if expiration.creation_round_block_hash.is_empty() {
        [0; 32]
    } else {
        expiration
            .creation_round_block_hash
            .as_slice()
            .try_into()
            .map_err(|_| invalid("creation_round_block_hash must be 32 bytes"))?
    };
    let rand_hash: [u8; 32] = params
        .recipient_rand_hash
        .as_slice()
        .try_into()
        .map_err(|_| invalid("recipient_rand_hash must be 32 bytes"))?;
    let rand = be_u256("recipient_rand", &t.recipient_rand)?;
    if recipient_rand_hash(&rand) != rand_hash {
        return Err(invalid("recipient_rand does not match recipient_rand_hash"));
    }
    let expiration_block = be_u256("expiration_block", &params.expiration_block)?;
    let ticket = Ticket {
        recipient: address_from_proto("recipient", &params.recipient)?,
        sender: address_from_proto("sender", &t.sender)?,
        face_value: be_u256("face_value", &params.face_value)?,
        win_prob: be_u256("win_prob", &params.win_prob)?,
        sender_nonce: sender_params.sender_nonce,
        recipient_rand_hash: rand_hash,
        expiration_params: TicketExpirationParams {
            creation_round: expiration.creation_round,
            creation_round_block_hash: block_hash,
        },
        params_expiration_block: expiration_block.saturating_to(),
        price_per_pixel: Price::zero(),
    };
    if sender_params.sig.len() != 65 {
        return Err(invalid("sig must be 65 bytes"));
    }
    Ok(WinningTicket::new(
        &ticket,
        &sender_params.sig,
        rand,
        "redeemer-grpc",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use livefarm_pm::TicketParams;

    #[test]
    fn ticket_params_round_trip_through_proto() {
        let params = TicketParams {
            recipient: Address([0x0a; 20]),
            face_value: U256::from(1_000_000u64),
            win_prob: U256::from(77u64),
            recipient_rand_hash: [0x42; 32],
            // A leading zero byte must not survive: the wire is minimal big-endian.
            seed: U256::from(0x00ff_u64),
            expiration_block: 5040,
            price_per_pixel: Price::new(3, 2).expect("valid"),
            expiration_params: TicketExpirationParams {
                creation_round: 20,
                creation_round_block_hash: [0x11; 32],
            },
        };
        let wire = params.to_wire(true);
        let proto = wire.to_proto();
        assert_eq!(proto.seed, vec![0xff]);
        assert_eq!(proto.expiration_block, vec![0x13, 0xb0]);
        let ep = proto.expiration_params.clone().expect("set by O");
        assert_eq!(ep.creation_round, 20);
        assert_eq!(TicketParamsMsg::from_proto(proto), wire);
    }

    #[test]
    fn payment_round_trips_through_proto() {
        let msg = PaymentMsg {
            ticket_params: Some(TicketParamsMsg {
                recipient: vec![1; 20],
                face_value: vec![9],
                ..TicketParamsMsg::default()
            }),
            sender: vec![2; 20],
            expiration_params: Some(TicketExpirationParamsMsg {
                creation_round: 7,
                creation_round_block_hash: vec![3; 32],
            }),
            ticket_sender_params: vec![
                TicketSenderParamsMsg {
                    sender_nonce: 1,
                    sig: vec![4; 65],
                },
                TicketSenderParamsMsg {
                    sender_nonce: 2,
                    sig: vec![5; 65],
                },
            ],
            expected_price: Some(PriceInfoMsg {
                price_per_unit: 3,
                pixels_per_unit: 2,
                ..PriceInfoMsg::default()
            }),
        };
        let proto = msg.to_proto();
        assert_eq!(proto.ticket_sender_params[1].sender_nonce, 2);
        assert_eq!(
            proto.expected_price.as_ref().map(|p| p.pixels_per_unit),
            Some(2)
        );
        assert_eq!(PaymentMsg::from_proto(proto), msg);
    }

    #[test]
    fn profile_round_trips_and_enums_map_to_wire_values() {
        let p = Profile {
            fps: 30000,
            fps_den: 1001,
            format: Format::Mp4,
            profile: EncoderProfile::H264High,
            gop: Gop::Intra,
            encoder: VideoCodec::H265,
            color_depth: 2,
            chroma_format: ChromaFormat::Yuv422,
            quality: 23,
            ..Profile::new("720p", 1280, 720, 3_000_000)
        };
        let wire = p.to_proto();
        assert_eq!((wire.format, wire.profile, wire.gop), (1, 3, -1));
        assert_eq!((wire.encoder, wire.chroma_format), (1, 1));
        assert_eq!(profile_from_proto(&wire).expect("valid"), p);
    }

    #[test]
    fn empty_name_becomes_net_name_and_bad_enums_are_refused() {
        let mut wire = Profile::new("", 640, 360, 900_000).to_proto();
        assert_eq!(
            profile_from_proto(&wire).expect("valid").name,
            "net_640x360_900000"
        );
        wire.format = 7;
        let err = profile_from_proto(&wire).expect_err("bad format");
        assert_eq!(err.to_string(), "unrecognized profile output format");
        wire.format = 0;
        wire.profile = 9;
        let err = profile_from_proto(&wire).expect_err("bad profile");
        assert_eq!(err.to_string(), "unrecognized encoder profile");
        wire.profile = 0;
        wire.encoder = 4;
        let err = profile_from_proto(&wire).expect_err("bad codec");
        assert_eq!(err.to_string(), "unrecognized video codec");
        wire.encoder = 0;
        wire.width = -2;
        assert!(profile_from_proto(&wire).is_err());
    }
}
