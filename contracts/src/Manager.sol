// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./Interfaces.sol";

// Base of every registered contract: finds its peers in the Controller at call time, so a
// peer can be replaced by registering a new address.
abstract contract Manager {
    bytes32 internal constant TICKET_BROKER_ID = keccak256("TicketBroker");
    bytes32 internal constant ROUNDS_MANAGER_ID = keccak256("RoundsManager");
    bytes32 internal constant BONDING_MANAGER_ID = keccak256("BondingManager");
    bytes32 internal constant MINTER_ID = keccak256("Minter");

    IController public immutable controller;

    constructor(address _controller) {
        require(_controller != address(0), "controller is null address");
        controller = IController(_controller);
    }

    modifier whenSystemNotPaused() {
        require(!controller.paused(), "system is paused");
        _;
    }

    modifier onlyControllerOwner() {
        require(msg.sender == controller.owner(), "caller must be Controller owner");
        _;
    }

    function roundsManager() internal view returns (IRoundsManager) {
        return IRoundsManager(controller.getContract(ROUNDS_MANAGER_ID));
    }

    function bondingManager() internal view returns (IBondingManager) {
        return IBondingManager(controller.getContract(BONDING_MANAGER_ID));
    }

    function minter() internal view returns (IMinter) {
        return IMinter(controller.getContract(MINTER_ID));
    }
}
