// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Interfaces the Livefarm contracts use to reach one another through the Controller.

interface IController {
    function owner() external view returns (address);

    function paused() external view returns (bool);

    function getContract(bytes32 id) external view returns (address);
}

interface IRoundsManager {
    function currentRound() external view returns (uint256);

    function currentRoundInitialized() external view returns (bool);

    function blockHashForRound(uint256 round) external view returns (bytes32);
}

interface IBondingManager {
    function updateTranscoderWithFees(address transcoder, uint256 fees, uint256 round) external;

    function isActiveTranscoder(address transcoder) external view returns (bool);

    function getTranscoderPoolSize() external view returns (uint256);

    function setCurrentRoundTotalActiveStake() external;
}

interface IMinter {
    function depositETH() external payable returns (bool);

    function trustedWithdrawETH(address payable to, uint256 amount) external;
}
