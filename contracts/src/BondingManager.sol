// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./Manager.sol";

// The transcoder (orchestrator) pool and its fee accounts. There is no LPT on the farm's chain,
// so there is no stake, delegation or reward: an address joins the pool by calling
// `transcoder(rewardCut, feeShare)`, is active from the next round, and leaves with
// `resignTranscoder()`. Fees from winning tickets accrue wholly to the transcoder (no delegator
// share) and are withdrawn in ETH through the Minter. The event signatures are Livepeer's so a
// Livepeer indexer reads the same logs; the stake events are declared for that ABI only.
contract BondingManager is Manager {
    uint256 public constant PERC_DIVISOR = 1000000;
    uint256 internal constant MAX_FUTURE_ROUND = type(uint256).max;

    struct Transcoder {
        uint256 lastRewardRound;
        uint256 rewardCut;
        uint256 feeShare;
        uint256 lastActiveStakeUpdateRound;
        uint256 activationRound;
        uint256 deactivationRound;
        uint256 activeCumulativeRewards;
        uint256 cumulativeRewards;
        uint256 cumulativeFees;
        uint256 lastFeeRound;
    }

    uint256 public immutable numActiveTranscoders;
    // The round whose active set was last snapshot by RoundsManager.initializeRound.
    uint256 public activeSetRound;

    mapping(address => Transcoder) private transcoders;
    mapping(address => bool) private registered;
    mapping(address => uint256) private withdrawableFees;
    address[] private pool;
    // Position in `pool` plus one; zero means not in the pool.
    mapping(address => uint256) private poolSlot;

    event TranscoderUpdate(address indexed transcoder, uint256 rewardCut, uint256 feeShare);
    event TranscoderActivated(address indexed transcoder, uint256 activationRound);
    event TranscoderDeactivated(address indexed transcoder, uint256 deactivationRound);
    event WithdrawFees(address indexed delegator, address recipient, uint256 amount);
    event Bond(
        address indexed newDelegate,
        address indexed oldDelegate,
        address indexed delegator,
        uint256 additionalAmount,
        uint256 bondedAmount
    );
    event Unbond(
        address indexed delegate,
        address indexed delegator,
        uint256 unbondingLockId,
        uint256 amount,
        uint256 withdrawRound
    );
    event Rebond(address indexed delegate, address indexed delegator, uint256 unbondingLockId, uint256 amount);
    event WithdrawStake(address indexed delegator, uint256 unbondingLockId, uint256 amount, uint256 withdrawRound);
    event Reward(address indexed transcoder, uint256 amount);
    event TreasuryReward(address indexed transcoder, address treasury, uint256 amount);
    event TransferBond(
        address indexed oldDelegator,
        address indexed newDelegator,
        uint256 oldUnbondingLockId,
        uint256 newUnbondingLockId,
        uint256 amount
    );
    event EarningsClaimed(
        address indexed delegate,
        address indexed delegator,
        uint256 rewards,
        uint256 fees,
        uint256 startRound,
        uint256 endRound
    );

    constructor(address _controller, uint256 _numActiveTranscoders) Manager(_controller) {
        require(_numActiveTranscoders > 0, "pool size cannot be 0");
        numActiveTranscoders = _numActiveTranscoders;
    }

    // Registers the caller (or updates its cut and share) and, if it is not in the pool yet,
    // adds it, active from the next round.
    function transcoder(uint256 _rewardCut, uint256 _feeShare) external whenSystemNotPaused {
        require(_rewardCut <= PERC_DIVISOR, "invalid rewardCut percentage");
        require(_feeShare <= PERC_DIVISOR, "invalid feeShare percentage");
        Transcoder storage t = transcoders[msg.sender];
        t.rewardCut = _rewardCut;
        t.feeShare = _feeShare;
        registered[msg.sender] = true;
        if (poolSlot[msg.sender] == 0) {
            require(pool.length < numActiveTranscoders, "transcoder pool is full");
            pool.push(msg.sender);
            poolSlot[msg.sender] = pool.length;
            uint256 activationRound = roundsManager().currentRound() + 1;
            t.activationRound = activationRound;
            t.deactivationRound = MAX_FUTURE_ROUND;
            emit TranscoderActivated(msg.sender, activationRound);
        }
        emit TranscoderUpdate(msg.sender, _rewardCut, _feeShare);
    }

    // Leaves the pool at once; the caller stays active until the end of the current round.
    function resignTranscoder() external whenSystemNotPaused {
        uint256 slot = poolSlot[msg.sender];
        require(slot != 0, "caller is not in the transcoder pool");
        address last = pool[pool.length - 1];
        pool[slot - 1] = last;
        poolSlot[last] = slot;
        pool.pop();
        poolSlot[msg.sender] = 0;
        uint256 deactivationRound = roundsManager().currentRound() + 1;
        transcoders[msg.sender].deactivationRound = deactivationRound;
        emit TranscoderDeactivated(msg.sender, deactivationRound);
    }

    function setCurrentRoundTotalActiveStake() external {
        IRoundsManager rm = roundsManager();
        require(msg.sender == address(rm), "caller must be RoundsManager");
        activeSetRound = rm.currentRound();
    }

    // The round argument is ignored like Livepeer's: fees count in the current round.
    function updateTranscoderWithFees(address _transcoder, uint256 _fees, uint256) external whenSystemNotPaused {
        require(msg.sender == controller.getContract(TICKET_BROKER_ID), "caller must be TicketBroker");
        require(registered[_transcoder], "transcoder must be registered");
        Transcoder storage t = transcoders[_transcoder];
        t.cumulativeFees += _fees;
        t.lastFeeRound = roundsManager().currentRound();
        withdrawableFees[_transcoder] += _fees;
    }

    function withdrawFees(address payable _recipient, uint256 _amount) external whenSystemNotPaused {
        require(_amount <= withdrawableFees[msg.sender], "insufficient fees to withdraw");
        withdrawableFees[msg.sender] -= _amount;
        minter().trustedWithdrawETH(_recipient, _amount);
        emit WithdrawFees(msg.sender, _recipient, _amount);
    }

    // Fees not yet withdrawn; the end round is accepted for Livepeer's signature and ignored.
    function pendingFees(address _delegator, uint256) external view returns (uint256) {
        return withdrawableFees[_delegator];
    }

    function isActiveTranscoder(address _transcoder) public view returns (bool) {
        Transcoder storage t = transcoders[_transcoder];
        uint256 round = roundsManager().currentRound();
        return t.activationRound > 0 && t.activationRound <= round && round < t.deactivationRound;
    }

    function isRegisteredTranscoder(address _transcoder) external view returns (bool) {
        return registered[_transcoder];
    }

    function getTranscoderPoolSize() external view returns (uint256) {
        return pool.length;
    }

    function getTranscoderPoolMaxSize() external view returns (uint256) {
        return numActiveTranscoders;
    }

    function getFirstTranscoderInPool() external view returns (address) {
        return pool.length == 0 ? address(0) : pool[0];
    }

    function getNextTranscoderInPool(address _transcoder) external view returns (address) {
        uint256 slot = poolSlot[_transcoder];
        return slot == 0 || slot >= pool.length ? address(0) : pool[slot];
    }

    function getTranscoder(address _transcoder)
        external
        view
        returns (
            uint256 lastRewardRound,
            uint256 rewardCut,
            uint256 feeShare,
            uint256 lastActiveStakeUpdateRound,
            uint256 activationRound,
            uint256 deactivationRound,
            uint256 activeCumulativeRewards,
            uint256 cumulativeRewards,
            uint256 cumulativeFees,
            uint256 lastFeeRound
        )
    {
        Transcoder storage t = transcoders[_transcoder];
        return (
            t.lastRewardRound,
            t.rewardCut,
            t.feeShare,
            t.lastActiveStakeUpdateRound,
            t.activationRound,
            t.deactivationRound,
            t.activeCumulativeRewards,
            t.cumulativeRewards,
            t.cumulativeFees,
            t.lastFeeRound
        );
    }
}
