//! Arbitrary input through the orchestrator's `Livepeer-Segment` and `Livepeer-Payment`
//! decoders and on into `coreSegMetadata`, the segment signature's flattening and payment
//! processing (ticket params, recipientRand, replay bookkeeping): nothing may panic.
//!
//! The first byte picks the mode: even, the rest is the header text as sent; odd, the rest
//! is the protobuf bytes, base64-encoded first so the fuzzer reaches the proto decoders fast.

#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use livefarm_orchestrator::segment::{decode_payment, decode_seg_data, flatten, seg_metadata};
use livefarm_orchestrator::FromProto;
use livefarm_pm::wire::PaymentMsg;
use livefarm_pm::{Address, Balances, InMemoryChain, Recipient, RecipientConfig, U256};

fn recipient() -> &'static (Recipient, Balances) {
    static RECIPIENT: OnceLock<(Recipient, Balances)> = OnceLock::new();
    RECIPIENT.get_or_init(|| {
        let chain = Arc::new(InMemoryChain::new());
        let me = Address::from_slice_lenient(&[0x11; 20]);
        chain.set_round(3, [1; 32]);
        chain.set_l1_block(100);
        chain.set_active(me, 1, 10);
        chain.set_gas_price(U256::from(1u64));
        let recipient = Recipient::with_secret(me, [7; 32], RecipientConfig::default(), chain);
        (recipient, Balances::default())
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(rest)
    };
    if let Ok(seg) = decode_seg_data(&text) {
        if let Ok(md) = seg_metadata(seg) {
            let _ = flatten(&md);
        }
    }
    if let Ok(payment) = decode_payment(&text) {
        let msg = PaymentMsg::from_proto(payment);
        let (recipient, balances) = recipient();
        let _ = recipient.process_payment(&msg, "fuzz", balances);
    }
});
