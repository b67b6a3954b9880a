// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./Manager.sol";

// Probabilistic micropayments, ABI-compatible with Livepeer's TicketBroker: senders fund a
// deposit and a reserve (held by the Minter); recipients redeem winning tickets, paid from the
// deposit first and then from the sender's reserve, capped per round and per active transcoder.
contract TicketBroker is Manager {
    struct Ticket {
        address recipient;
        address sender;
        uint256 faceValue;
        uint256 winProb;
        uint256 senderNonce;
        bytes32 recipientRandHash;
        bytes auxData;
    }

    struct Sender {
        uint256 deposit;
        uint256 withdrawRound;
    }

    struct ReserveInfo {
        uint256 fundsRemaining;
        uint256 claimedInCurrentRound;
    }

    struct Reserve {
        uint256 funds;
        mapping(uint256 => uint256) claimedForRound;
        mapping(uint256 => mapping(address => uint256)) claimedByAddress;
    }

    // secp256k1n / 2: larger s values are the malleable twin of a valid signature.
    uint256 internal constant MAX_S = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    uint256 public unlockPeriod;
    uint256 public ticketValidityPeriod;

    mapping(address => Sender) private senders;
    mapping(address => Reserve) private reserves;
    mapping(bytes32 => bool) public usedTickets;

    event DepositFunded(address indexed sender, uint256 amount);
    event ReserveFunded(address indexed reserveHolder, uint256 amount);
    event ReserveClaimed(address indexed reserveHolder, address claimant, uint256 amount);
    event WinningTicketRedeemed(
        address indexed sender,
        address indexed recipient,
        uint256 faceValue,
        uint256 winProb,
        uint256 senderNonce,
        uint256 recipientRand,
        bytes auxData
    );
    event WinningTicketTransfer(address indexed sender, address indexed recipient, uint256 amount);
    event Unlock(address indexed sender, uint256 startRound, uint256 endRound);
    event UnlockCancelled(address indexed sender);
    event Withdrawal(address indexed sender, uint256 deposit, uint256 reserve);
    event ParameterUpdate(string param);

    modifier currentRoundInitialized() {
        require(roundsManager().currentRoundInitialized(), "current round is not initialized");
        _;
    }

    constructor(address _controller, uint256 _unlockPeriod, uint256 _ticketValidityPeriod) Manager(_controller) {
        require(_ticketValidityPeriod > 0, "ticketValidityPeriod must be greater than 0");
        unlockPeriod = _unlockPeriod;
        ticketValidityPeriod = _ticketValidityPeriod;
    }

    function setUnlockPeriod(uint256 _unlockPeriod) external onlyControllerOwner {
        unlockPeriod = _unlockPeriod;
        emit ParameterUpdate("unlockPeriod");
    }

    function setTicketValidityPeriod(uint256 _ticketValidityPeriod) external onlyControllerOwner {
        require(_ticketValidityPeriod > 0, "ticketValidityPeriod must be greater than 0");
        ticketValidityPeriod = _ticketValidityPeriod;
        emit ParameterUpdate("ticketValidityPeriod");
    }

    // ---- funding, unlock, withdraw ----

    function fundDeposit() external payable whenSystemNotPaused {
        addDeposit(msg.sender, msg.value);
        forwardToMinter(msg.value);
    }

    function fundReserve() external payable whenSystemNotPaused {
        addReserve(msg.sender, msg.value);
        forwardToMinter(msg.value);
    }

    function fundDepositAndReserve(uint256 _depositAmount, uint256 _reserveAmount) external payable {
        fundDepositAndReserveFor(msg.sender, _depositAmount, _reserveAmount);
    }

    function fundDepositAndReserveFor(address _sender, uint256 _depositAmount, uint256 _reserveAmount)
        public
        payable
        whenSystemNotPaused
    {
        require(
            msg.value == _depositAmount + _reserveAmount,
            "msg.value does not equal sum of deposit amount and reserve amount"
        );
        addDeposit(_sender, _depositAmount);
        addReserve(_sender, _reserveAmount);
        forwardToMinter(msg.value);
    }

    function unlock() external whenSystemNotPaused {
        Sender storage sender = senders[msg.sender];
        require(sender.deposit > 0 || reserves[msg.sender].funds > 0, "sender deposit and reserve are zero");
        require(!unlockInProgress(sender), "unlock already initiated");
        uint256 currRound = roundsManager().currentRound();
        sender.withdrawRound = currRound + unlockPeriod;
        emit Unlock(msg.sender, currRound, sender.withdrawRound);
    }

    function cancelUnlock() external whenSystemNotPaused {
        Sender storage sender = senders[msg.sender];
        require(unlockInProgress(sender), "no unlock request in progress");
        sender.withdrawRound = 0;
        emit UnlockCancelled(msg.sender);
    }

    // Pays out deposit and reserve together. withdrawRound stays set, as Livepeer leaves it.
    function withdraw() external whenSystemNotPaused {
        Sender storage sender = senders[msg.sender];
        uint256 deposit = sender.deposit;
        uint256 reserve = reserves[msg.sender].funds;
        require(deposit > 0 || reserve > 0, "sender deposit and reserve are zero");
        require(unlockInProgress(sender), "no unlock request in progress");
        require(!isLocked(sender), "account is locked");
        sender.deposit = 0;
        reserves[msg.sender].funds = 0;
        minter().trustedWithdrawETH(payable(msg.sender), deposit + reserve);
        emit Withdrawal(msg.sender, deposit, reserve);
    }

    // ---- redemption ----

    function redeemWinningTicket(Ticket calldata _ticket, bytes calldata _sig, uint256 _recipientRand)
        external
        whenSystemNotPaused
        currentRoundInitialized
    {
        bytes32 ticketHash = getTicketHash(_ticket);
        requireValidWinningTicket(_ticket, ticketHash, _sig, _recipientRand);

        Sender storage sender = senders[_ticket.sender];
        require(isLocked(sender), "sender is unlocked");
        require(sender.deposit > 0 || reserves[_ticket.sender].funds > 0, "sender deposit and reserve are zero");

        usedTickets[ticketHash] = true;

        uint256 amount;
        if (_ticket.faceValue > sender.deposit) {
            amount = sender.deposit
                + claimFromReserve(_ticket.sender, _ticket.recipient, _ticket.faceValue - sender.deposit);
            sender.deposit = 0;
        } else {
            amount = _ticket.faceValue;
            sender.deposit -= _ticket.faceValue;
        }

        if (amount > 0) {
            (uint256 creationRound,) = abi.decode(_ticket.auxData, (uint256, bytes32));
            bondingManager().updateTranscoderWithFees(_ticket.recipient, amount, creationRound);
            emit WinningTicketTransfer(_ticket.sender, _ticket.recipient, amount);
        }

        emit WinningTicketRedeemed(
            _ticket.sender,
            _ticket.recipient,
            _ticket.faceValue,
            _ticket.winProb,
            _ticket.senderNonce,
            _recipientRand,
            _ticket.auxData
        );
    }

    // Each ticket is redeemed in its own external self-call, so one failing ticket does not
    // revert the others.
    function batchRedeemWinningTickets(
        Ticket[] calldata _tickets,
        bytes[] calldata _sigs,
        uint256[] calldata _recipientRands
    ) external whenSystemNotPaused currentRoundInitialized {
        for (uint256 i = 0; i < _tickets.length; i++) {
            try this.redeemWinningTicket(_tickets[i], _sigs[i], _recipientRands[i]) {} catch {}
        }
    }

    // ---- views ----

    function getTicketHash(Ticket memory _ticket) public pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                _ticket.recipient,
                _ticket.sender,
                _ticket.faceValue,
                _ticket.winProb,
                _ticket.senderNonce,
                _ticket.recipientRandHash,
                _ticket.auxData
            )
        );
    }

    function getSenderInfo(address _sender) external view returns (Sender memory sender, ReserveInfo memory reserve) {
        sender = senders[_sender];
        reserve = getReserveInfo(_sender);
    }

    function getReserveInfo(address _reserveHolder) public view returns (ReserveInfo memory info) {
        Reserve storage reserve = reserves[_reserveHolder];
        info.fundsRemaining = reserve.funds;
        info.claimedInCurrentRound = reserve.claimedForRound[roundsManager().currentRound()];
    }

    function claimedReserve(address _reserveHolder, address _claimant) external view returns (uint256) {
        return reserves[_reserveHolder].claimedByAddress[roundsManager().currentRound()][_claimant];
    }

    // An active transcoder's share of the reserve this round: (what is left + what was already
    // claimed this round) split evenly over the pool, less what it has claimed this round.
    function claimableReserve(address _reserveHolder, address _claimant) public view returns (uint256) {
        if (!bondingManager().isActiveTranscoder(_claimant)) {
            return 0;
        }
        uint256 poolSize = bondingManager().getTranscoderPoolSize();
        if (poolSize == 0) {
            return 0;
        }
        Reserve storage reserve = reserves[_reserveHolder];
        uint256 currRound = roundsManager().currentRound();
        uint256 allocation = (reserve.funds + reserve.claimedForRound[currRound]) / poolSize;
        uint256 claimed = reserve.claimedByAddress[currRound][_claimant];
        return claimed >= allocation ? 0 : allocation - claimed;
    }

    function isUnlockInProgress(address _sender) external view returns (bool) {
        return unlockInProgress(senders[_sender]);
    }

    // ---- internals ----

    function addDeposit(address _sender, uint256 _amount) private {
        Sender storage sender = senders[_sender];
        sender.deposit += _amount;
        cancelUnlockOnFunding(sender, _sender);
        emit DepositFunded(_sender, _amount);
    }

    function addReserve(address _reserveHolder, uint256 _amount) private {
        reserves[_reserveHolder].funds += _amount;
        cancelUnlockOnFunding(senders[_reserveHolder], _reserveHolder);
        emit ReserveFunded(_reserveHolder, _amount);
    }

    // Funding an account shows the intent to keep using it, so a pending unlock is dropped.
    function cancelUnlockOnFunding(Sender storage _sender, address _addr) private {
        if (unlockInProgress(_sender)) {
            _sender.withdrawRound = 0;
            emit UnlockCancelled(_addr);
        }
    }

    function forwardToMinter(uint256 _amount) private {
        if (_amount > 0) {
            minter().depositETH{value: _amount}();
        }
    }

    function claimFromReserve(address _reserveHolder, address _claimant, uint256 _amount) private returns (uint256) {
        uint256 claimable = claimableReserve(_reserveHolder, _claimant);
        uint256 claimAmount = _amount > claimable ? claimable : _amount;
        if (claimAmount > 0) {
            Reserve storage reserve = reserves[_reserveHolder];
            uint256 currRound = roundsManager().currentRound();
            reserve.claimedForRound[currRound] += claimAmount;
            reserve.claimedByAddress[currRound][_claimant] += claimAmount;
            reserve.funds -= claimAmount;
            emit ReserveClaimed(_reserveHolder, _claimant, claimAmount);
        }
        return claimAmount;
    }

    function requireValidWinningTicket(
        Ticket calldata _ticket,
        bytes32 _ticketHash,
        bytes calldata _sig,
        uint256 _recipientRand
    ) private view {
        require(_ticket.recipient != address(0), "ticket recipient is null address");
        require(_ticket.sender != address(0), "ticket sender is null address");
        requireValidTicketAuxData(_ticket.auxData);
        require(
            keccak256(abi.encodePacked(_recipientRand)) == _ticket.recipientRandHash,
            "recipientRand does not match recipientRandHash"
        );
        require(!usedTickets[_ticketHash], "ticket is used");
        require(recoverPersonalSigner(_ticketHash, _sig) == _ticket.sender, "invalid signature over ticket hash");
        require(uint256(keccak256(abi.encodePacked(_sig, _recipientRand))) < _ticket.winProb, "ticket did not win");
    }

    function requireValidTicketAuxData(bytes calldata _auxData) private view {
        require(_auxData.length == 64, "invalid length for ticket auxData: must be 64 bytes");
        (uint256 creationRound, bytes32 creationRoundBlockHash) = abi.decode(_auxData, (uint256, bytes32));
        IRoundsManager rm = roundsManager();
        bytes32 blockHash = rm.blockHashForRound(creationRound);
        require(blockHash != bytes32(0), "ticket creationRound does not have a block hash");
        require(creationRoundBlockHash == blockHash, "ticket creationRoundBlockHash invalid for creationRound");
        require(creationRound + ticketValidityPeriod > rm.currentRound(), "ticket is expired");
    }

    // personal_sign recovery with the malleability checks (and messages) Livepeer's deployed
    // build uses.
    function recoverPersonalSigner(bytes32 _hash, bytes calldata _sig) private pure returns (address) {
        require(_sig.length == 65, "INVALID_SIGNATURE_LENGTH");
        bytes32 digest = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", _hash));
        bytes32 r = bytes32(_sig[0:32]);
        bytes32 s = bytes32(_sig[32:64]);
        uint8 v = uint8(_sig[64]);
        require(uint256(s) <= MAX_S, "ECDSA: invalid signature 's' value");
        require(v == 27 || v == 28, "ECDSA: invalid signature 'v' value");
        address signer = ecrecover(digest, v, r, s);
        require(signer != address(0), "ECDSA: invalid signature");
        return signer;
    }

    function unlockInProgress(Sender storage _sender) private view returns (bool) {
        return _sender.withdrawRound > 0;
    }

    function isLocked(Sender storage _sender) private view returns (bool) {
        return _sender.withdrawRound == 0 || roundsManager().currentRound() < _sender.withdrawRound;
    }
}
