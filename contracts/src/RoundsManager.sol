// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./Manager.sol";

// Rounds of `roundLength` blocks. A round must be initialised (once, by anyone) before tickets
// can be redeemed in it; initialisation records the hash that tickets created in it carry.
contract RoundsManager is Manager {
    uint256 public constant PERC_DIVISOR = 1000000;

    uint256 public roundLength;
    // Share of a round, in PERC_DIVISOR parts, at its end during which it counts as locked.
    uint256 public roundLockAmount;
    uint256 public lastInitializedRound;
    // The anchor of the round formula: round `lastRoundLengthUpdateRound` started at block
    // `lastRoundLengthUpdateStartBlock`.
    uint256 public lastRoundLengthUpdateRound;
    uint256 public lastRoundLengthUpdateStartBlock;

    mapping(uint256 => bytes32) private roundBlockHashes;

    event NewRound(uint256 indexed round, bytes32 blockHash);
    event ParameterUpdate(string param);

    // Round 1 starts at the deployment block, so round 0 is never current and can never be
    // mistaken for an initialised round without a block hash.
    constructor(address _controller, uint256 _roundLength, uint256 _roundLockAmount) Manager(_controller) {
        require(_roundLength > 0, "round length cannot be 0");
        require(_roundLockAmount <= PERC_DIVISOR, "round lock amount must be a valid percentage");
        roundLength = _roundLength;
        roundLockAmount = _roundLockAmount;
        lastRoundLengthUpdateRound = 1;
        lastRoundLengthUpdateStartBlock = block.number;
    }

    function setRoundLength(uint256 _roundLength) external onlyControllerOwner {
        require(_roundLength > 0, "round length cannot be 0");
        // Re-anchor so the current round keeps its number and start block.
        lastRoundLengthUpdateRound = currentRound();
        lastRoundLengthUpdateStartBlock = currentRoundStartBlock();
        roundLength = _roundLength;
        emit ParameterUpdate("roundLength");
    }

    function setRoundLockAmount(uint256 _roundLockAmount) external onlyControllerOwner {
        require(_roundLockAmount <= PERC_DIVISOR, "round lock amount must be a valid percentage");
        roundLockAmount = _roundLockAmount;
        emit ParameterUpdate("roundLockAmount");
    }

    function initializeRound() external whenSystemNotPaused {
        uint256 currRound = currentRound();
        require(lastInitializedRound < currRound, "round already initialized");
        lastInitializedRound = currRound;
        bytes32 hash = blockhash(blockNum() - 1);
        roundBlockHashes[currRound] = hash;
        bondingManager().setCurrentRoundTotalActiveStake();
        emit NewRound(currRound, hash);
    }

    function blockNum() public view returns (uint256) {
        return block.number;
    }

    function blockHash(uint256 _block) external view returns (bytes32) {
        uint256 current = blockNum();
        require(_block < current, "can only retrieve past block hashes");
        require(current < 256 || _block >= current - 256, "can only retrieve hashes for last 256 blocks");
        return blockhash(_block);
    }

    function blockHashForRound(uint256 _round) external view returns (bytes32) {
        return roundBlockHashes[_round];
    }

    function currentRound() public view returns (uint256) {
        return lastRoundLengthUpdateRound + (blockNum() - lastRoundLengthUpdateStartBlock) / roundLength;
    }

    function currentRoundStartBlock() public view returns (uint256) {
        return lastRoundLengthUpdateStartBlock + (currentRound() - lastRoundLengthUpdateRound) * roundLength;
    }

    function currentRoundInitialized() external view returns (bool) {
        return lastInitializedRound == currentRound();
    }

    function currentRoundLocked() external view returns (bool) {
        uint256 lockedBlocks = (roundLength * roundLockAmount) / PERC_DIVISOR;
        return blockNum() - currentRoundStartBlock() >= roundLength - lockedBlocks;
    }
}
