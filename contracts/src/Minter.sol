// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./Manager.sol";

// Custody of all ETH: TicketBroker deposits senders' funds here, and TicketBroker (sender
// withdrawals) and BondingManager (fee withdrawals) pay out from here. No token minting: the
// farm's chain has no LPT.
contract Minter is Manager {
    constructor(address _controller) Manager(_controller) {}

    function depositETH() external payable returns (bool) {
        require(msg.sender == controller.getContract(TICKET_BROKER_ID), "caller must be TicketBroker");
        return true;
    }

    function trustedWithdrawETH(address payable _to, uint256 _amount) external {
        require(
            msg.sender == controller.getContract(TICKET_BROKER_ID)
                || msg.sender == controller.getContract(BONDING_MANAGER_ID),
            "caller must be TicketBroker or BondingManager"
        );
        (bool ok,) = _to.call{value: _amount}("");
        require(ok, "eth transfer failed");
    }
}
