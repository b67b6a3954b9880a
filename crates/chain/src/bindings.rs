//! Bindings generated from the committed artifacts in `contracts/artifacts` (ABI and bytecode,
//! built by `scripts/build-contracts.sh`).

#![allow(missing_docs, clippy::too_many_arguments)]

use alloy::sol;

sol!(
    #[sol(rpc)]
    Controller,
    "../../contracts/artifacts/Controller.json"
);
sol!(
    #[sol(rpc)]
    Minter,
    "../../contracts/artifacts/Minter.json"
);
sol!(
    #[sol(rpc)]
    RoundsManager,
    "../../contracts/artifacts/RoundsManager.json"
);
sol!(
    #[sol(rpc)]
    BondingManager,
    "../../contracts/artifacts/BondingManager.json"
);
sol!(
    #[sol(rpc)]
    TicketBroker,
    "../../contracts/artifacts/TicketBroker.json"
);
sol!(
    #[sol(rpc)]
    ServiceRegistry,
    "../../contracts/artifacts/ServiceRegistry.json"
);

/// The artifacts as committed, `(contract name, JSON text)`. Including them here also makes
/// cargo rebuild the bindings when an artifact changes.
pub const ARTIFACTS: [(&str, &str); 6] = [
    (
        "Controller",
        include_str!("../../../contracts/artifacts/Controller.json"),
    ),
    (
        "Minter",
        include_str!("../../../contracts/artifacts/Minter.json"),
    ),
    (
        "RoundsManager",
        include_str!("../../../contracts/artifacts/RoundsManager.json"),
    ),
    (
        "BondingManager",
        include_str!("../../../contracts/artifacts/BondingManager.json"),
    ),
    (
        "TicketBroker",
        include_str!("../../../contracts/artifacts/TicketBroker.json"),
    ),
    (
        "ServiceRegistry",
        include_str!("../../../contracts/artifacts/ServiceRegistry.json"),
    ),
];
