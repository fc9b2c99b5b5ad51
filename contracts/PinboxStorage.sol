// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IPinboxStorage} from "./IPinboxStorage.sol";

/**
 * @title PinboxStorage
 * @notice Pools of staked storage providers, storage deals paid from escrow, per-epoch
 * proofs of retrievability over a SHA-256 segment commitment, faults, slashing and
 * pull-based rewards. Works with any ERC-20 (no fee-on-transfer or rebasing tokens:
 * amounts are booked as requested, not as received).
 *
 * @dev Storage commitment (the exact rules every tool must follow): S = the bytes of every
 * block reachable from the root (DFS pre-order, distinct) cut into 1024-byte segments, the
 * last zero-padded; `segments` = their count, so `segments == ceil(size / 1024)` where
 * `size` = |S|. Leaf i = sha256(0x00 || segment_i); parent = sha256(0x01 || left || right);
 * each level is paired left to right and an odd last node is carried up unchanged; the root
 * is the one node left. A proof for index i lists the sibling hashes from the leaf up,
 * skipping levels where the node was carried up.
 *
 * Identities: a member is keyed by its operator address (the box's hot key). The operator
 * only proves. Stake, accepting slots, leaving and rewards belong to the owner address.
 *
 * Epochs: epoch(b) = (b - genesisBlock) / epochLength + 1. In epoch e a member holding at
 * least one slot is challenged with seed = blockhash(seedBlock), where seedBlock is the
 * epoch's first block, or the block after the member's last slot change if that is later
 * (so the seed always comes from a block mined after the member's last action). The proof
 * must land in (seedBlock, seedBlock + proofWindow]; if that window would reach into the
 * next epoch the member is not challenged in e (and earns nothing in e). With
 * h = keccak256(abi.encode(seed, operator)), the challenged slot is `h % slotCount` in the
 * member's slot array and the segment is `(h >> 128) % segments` of that deal.
 *
 * Pay: a slot of a deal earns `perSlot = escrow / (replicas * durationEpochs)` for each epoch
 * its holder proves while holding it, plus `size * emissionPerByteEpoch` from the reward
 * reserve while it lasts. The proof credits all the member's slots at once from running
 * sums (pay and bytes over held slots); deal expiry is applied from per-epoch expiry
 * buckets, so proof gas does not depend on the number of deals held (it grows only with
 * the number of epochs since the member's previous proof). What a deal did not pay out
 * returns to its requester on finalize or cancel, to the wei. Escrow is
 * `pricePerGiBEpoch * size * replicas * durationEpochs / 2^30` (integer division).
 *
 * Faults and slashing: after the window closes anyone may report a missed proof. F faults
 * within W epochs slash `stake * slashBps / 10000` (never more than the stake); the reporter
 * of the F-th fault gets `bountyBps` of it, the rest goes to the reserve, and the slot of the
 * deal challenged in that epoch is freed. A member whose stake fell below its pool's stake
 * takes no new slot. A challenge that lands on a deal already ended is not a fault.
 *
 * Limitations, on purpose: a member's slot array keeps ended deals until someone finalizes
 * them (anyone may); every slot change (accept, free, finalize) re-seeds the member's
 * challenge, so a missed epoch followed by a slot change in a later block can no longer be
 * reported: reporters should report when the window closes. Faults are reportable while the
 * seed block hash is available (256 blocks) and within the last 64 proven epochs.
 */
contract PinboxStorage is IPinboxStorage, AccessControl, Pausable, ReentrancyGuardTransient, EIP712 {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    bytes32 public constant POOL_ADMIN_ROLE = keccak256("POOL_ADMIN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    bytes32 public constant PARAMS_ROLE = keccak256("PARAMS_ROLE");
    bytes32 public constant JOIN_TYPEHASH =
        keccak256("Join(uint256 poolId,address owner,address operator,bytes peerId)");

    uint256 public constant SEGMENT_SIZE = 1024;
    uint256 public constant GIB = 1 << 30;
    uint256 public constant MAX_REPLICAS = 16;
    uint256 public constant MAX_FAULT_THRESHOLD = 8;
    uint256 public constant MAX_PEER_ID_LENGTH = 128;
    /// @dev how many past epochs the proven-epoch bitmask remembers; older faults can't be reported
    uint256 public constant PROOF_MEMORY = 64;

    IERC20 public immutable token;
    uint256 public immutable genesisBlock;
    uint256 public immutable epochLength;
    uint256 public immutable proofWindow;
    uint256 public immutable unbondingDelay;
    uint256 public immutable faultThreshold;
    uint256 public immutable faultWindow;
    uint256 public immutable slashBps;
    uint256 public immutable bountyBps;

    struct Pool {
        uint128 stake;
        uint128 pricePerGiBEpoch;
        address creator;
        string name;
    }

    /// @dev Field order is storage-slot order, packed for the gas of proofs and accepts.
    struct Member {
        // slot 0, read by proofs
        address owner;
        uint32 poolId;
        uint32 id;
        bool underStaked;
        // slot 1, written by proofs
        uint40 lastChangeBlock;
        uint32 lastProvenEpoch;
        uint32 provenCount;
        uint64 provenMask;
        uint40 leaveRequestedAt;
        uint32 memberIndex;
        bool live1; // never zero, so the first write of the slot is not a 20k zero-to-non-zero one
        // slot 2, running sums over held slots, read by proofs
        uint112 payPerEpoch;
        uint80 bytesHeld;
        uint32 slotCount;
        bool live2;
        // cold
        uint128 stake;
        bytes32 peerIdHash;
    }

    /// @dev `segments` is not stored: it is `ceil(size / 1024)`, checked when the deal opens.
    struct Deal {
        bytes32 root;
        // slot 1, read by proofs and accepts
        uint64 size;
        uint32 endEpoch;
        uint8 replicas;
        uint8 filled;
        uint8 providerCount;
        bool closed;
        uint32 poolId;
        uint96 perSlot;
        // slot 2: the first three providers' member ids share the requester's slot
        address requester;
        uint32 provider0;
        uint32 provider1;
        uint32 provider2;
        // cold
        uint128 escrow;
        uint128 paid;
        uint32 startEpoch;
    }

    struct SlotInfo {
        uint32 index;
        uint32 provenAtStart;
        bool held;
        bool used;
    }

    struct Expiry {
        uint112 pay;
        uint80 bytes_;
        uint32 provenBefore;
    }

    struct Reserve {
        uint128 balance;
        uint128 emissionPerByteEpoch;
    }

    /// @notice Deployment parameters.
    struct Config {
        uint256 epochLength;
        uint256 proofWindow;
        uint256 unbondingDelay;
        uint256 faultThreshold;
        uint256 faultWindow;
        uint256 slashBps;
        uint256 bountyBps;
        uint256 emissionPerByteEpoch;
    }

    uint256 public poolCount;
    uint256 public dealCount;
    Reserve internal _reserve;

    mapping(uint256 poolId => Pool) internal _pools;
    mapping(uint256 poolId => address[]) internal _poolMembers;
    mapping(address operator => Member) internal _members;
    mapping(bytes32 peerIdHash => address operator) public operatorOfPeer;
    mapping(uint256 dealId => Deal) internal _deals;
    /// @dev member ids of providers 3.. of a deal, eight uint32 per word
    mapping(uint256 dealId => mapping(uint256 word => uint256 ids)) internal _moreProviders;
    mapping(uint256 id => address operator) public operatorById;
    uint256 public memberCount;
    mapping(uint256 dealId => mapping(address operator => SlotInfo)) internal _slotInfo;
    mapping(address operator => mapping(uint256 index => uint256 dealId)) internal _slotDeal;
    mapping(address operator => mapping(uint256 epoch => Expiry)) internal _expiries;
    mapping(address operator => uint256) internal _faultLog;
    mapping(address operator => mapping(uint256 epoch => bool)) public faultReported;
    /// @dev claimable amount + 1 once an account was credited or joined: a claim leaves 1, so
    /// the next credit is a cheap non-zero-to-non-zero write
    mapping(address account => uint256) internal _claimable;

    /**
     * @param token_ the ERC-20 used for stakes, escrow, rewards and the reserve
     * @param admin receives DEFAULT_ADMIN_ROLE, POOL_ADMIN_ROLE, PAUSER_ROLE and PARAMS_ROLE
     * @param config epoch length (blocks), proof window (blocks, 1..min(255, epochLength-1)),
     * unbonding delay (blocks), F (faults that trigger a slash, 1..8), W (epochs), slash
     * fraction and bounty fraction in basis points (<= 10000), emission per byte-epoch
     */
    constructor(IERC20 token_, address admin, Config memory config) EIP712("PinboxStorage", "1") {
        if (address(token_) == address(0) || admin == address(0)) revert PinboxStorageZeroAddress();
        if (
            config.epochLength < 2 || config.proofWindow == 0 || config.proofWindow >= config.epochLength
                || config.proofWindow > 255 || config.faultThreshold == 0
                || config.faultThreshold > MAX_FAULT_THRESHOLD || config.faultWindow == 0
                || config.slashBps > 10_000 || config.bountyBps > 10_000
        ) revert PinboxStorageInvalidConfig();
        token = token_;
        genesisBlock = block.number;
        epochLength = config.epochLength;
        proofWindow = config.proofWindow;
        unbondingDelay = config.unbondingDelay;
        faultThreshold = config.faultThreshold;
        faultWindow = config.faultWindow;
        slashBps = config.slashBps;
        bountyBps = config.bountyBps;
        _reserve.emissionPerByteEpoch = config.emissionPerByteEpoch.toUint128();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(POOL_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(PARAMS_ROLE, admin);
    }

    // ------------------------------------------------------------------ admin

    /// @notice Stops new pools, joins, deals and slot acceptances. Claims, exits and refunds go on.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @notice Sets the emission paid from the reserve per stored byte per proven epoch.
    /// Emits {EmissionRateSet}.
    function setEmissionRate(uint256 emissionPerByteEpoch) external onlyRole(PARAMS_ROLE) {
        _reserve.emissionPerByteEpoch = emissionPerByteEpoch.toUint128();
        emit EmissionRateSet(emissionPerByteEpoch);
    }

    /// @notice Adds `amount` tokens from the caller to the reward reserve. Emits {ReserveFunded}.
    function fundReserve(uint256 amount) external nonReentrant {
        _reserve.balance = (uint256(_reserve.balance) + amount).toUint128();
        emit ReserveFunded(msg.sender, amount);
        // interaction last: state is booked before the token is called
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    // ------------------------------------------------------------------ pools

    /**
     * @notice Creates a pool. Requirements: caller has POOL_ADMIN_ROLE; not paused.
     * Emits {PoolCreated}.
     */
    function createPool(string calldata name, uint256 stake, uint256 pricePerGiBEpoch)
        external
        onlyRole(POOL_ADMIN_ROLE)
        whenNotPaused
        returns (uint256 poolId)
    {
        poolId = ++poolCount;
        _pools[poolId] = Pool(stake.toUint128(), pricePerGiBEpoch.toUint128(), msg.sender, name);
        emit PoolCreated(poolId, msg.sender, name, stake, pricePerGiBEpoch);
    }

    /**
     * @notice Joins pool `poolId` with the caller as owner, staking the pool's required stake
     * (pulled from the caller; approve first).
     *
     * Peer-id binding: `operatorSig` is an EIP-712 signature by `operator` over
     * Join(poolId, owner, operator, peerId) in this contract's domain (chain id and address
     * included) and IS verified here, so the operator key vouches for the peer id and the
     * binding can't be replayed to another pool, chain or contract. `peerSig` is the node's
     * libp2p (e.g. Ed25519) signature over the same EIP-712 digest; it is NOT verified
     * on-chain (no Ed25519 precompile) but emitted in {MemberJoined} so anyone can check
     * that the peer key agrees; pool peers do so before trusting the member. The peer id
     * must be unused by any other member.
     *
     * Requirements: not paused; pool exists; operator is not zero, not the owner and not a
     * member; 0 < peerId.length <= 128; valid operator signature.
     * Emits {MemberJoined}.
     */
    function join(
        uint256 poolId,
        address operator,
        bytes calldata peerId,
        bytes calldata operatorSig,
        bytes calldata peerSig
    ) external whenNotPaused nonReentrant {
        bytes32 peerHash = _checkJoin(poolId, operator, peerId, operatorSig);
        uint256 stake = _enroll(poolId, operator, peerHash);
        emit MemberJoined(poolId, operator, msg.sender, peerId, peerSig, stake);
        // interaction last
        token.safeTransferFrom(msg.sender, address(this), stake);
    }

    function _checkJoin(uint256 poolId, address operator, bytes calldata peerId, bytes calldata operatorSig)
        internal
        view
        returns (bytes32 peerHash)
    {
        if (_pools[poolId].creator == address(0)) revert PinboxStorageUnknownPool(poolId);
        if (operator == address(0) || operator == msg.sender) revert PinboxStorageInvalidOperator(operator);
        if (_members[operator].owner != address(0)) revert PinboxStorageAlreadyMember(operator);
        if (peerId.length == 0 || peerId.length > MAX_PEER_ID_LENGTH) revert PinboxStorageInvalidPeerId();
        peerHash = keccak256(peerId);
        if (operatorOfPeer[peerHash] != address(0)) revert PinboxStoragePeerIdTaken(peerHash);
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecover(joinDigest(poolId, msg.sender, operator, peerId), operatorSig);
        if (err != ECDSA.RecoverError.NoError || signer != operator) revert PinboxStorageBadSignature();
    }

    function _enroll(uint256 poolId, address operator, bytes32 peerHash) internal returns (uint256 stake) {
        stake = _pools[poolId].stake;
        Member storage m = _members[operator];
        uint256 id = ++memberCount;
        m.owner = msg.sender;
        m.poolId = poolId.toUint32();
        m.id = id.toUint32();
        m.live1 = true;
        m.live2 = true;
        m.stake = uint128(stake);
        operatorById[id] = operator;
        if (_claimable[msg.sender] == 0) _claimable[msg.sender] = 1;
        m.peerIdHash = peerHash;
        m.lastProvenEpoch = uint32(currentEpoch() - 1);
        m.memberIndex = uint32(_poolMembers[poolId].length);
        _poolMembers[poolId].push(operator);
        operatorOfPeer[peerHash] = operator;
    }

    /// @notice The EIP-712 digest the operator (and the peer key) sign to join.
    function joinDigest(uint256 poolId, address owner, address operator, bytes calldata peerId)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(JOIN_TYPEHASH, poolId, owner, operator, keccak256(peerId))));
    }

    /**
     * @notice Starts the unbonding delay of `operator`'s membership; it accepts no new slots.
     * Requirements: caller is the member's owner; not already leaving. Emits {LeaveRequested}.
     */
    function requestLeave(address operator) external {
        Member storage m = _ownedMember(operator);
        if (m.leaveRequestedAt != 0) revert PinboxStorageLeaving(operator);
        m.leaveRequestedAt = uint40(block.number);
        emit LeaveRequested(operator, block.number + unbondingDelay);
    }

    /**
     * @notice Ends `operator`'s membership and returns its remaining stake to the owner.
     * Works while paused.
     * Requirements: caller is the owner; leave requested at least `unbondingDelay` blocks
     * ago; no replica slot held. Emits {MemberLeft}.
     */
    function withdraw(address operator) external nonReentrant {
        Member storage m = _ownedMember(operator);
        uint256 requested = m.leaveRequestedAt;
        if (requested == 0 || block.number < requested + unbondingDelay) revert PinboxStorageStillBonded(operator);
        if (m.slotCount != 0) revert PinboxStorageHoldsSlots(operator, m.slotCount);
        uint256 poolId = m.poolId;
        uint256 stake = m.stake;
        address[] storage list = _poolMembers[poolId];
        uint256 idx = m.memberIndex;
        address moved = list[list.length - 1];
        list[idx] = moved;
        _members[moved].memberIndex = uint32(idx);
        list.pop();
        delete operatorOfPeer[m.peerIdHash];
        delete _members[operator];
        delete _faultLog[operator];
        emit MemberLeft(poolId, operator, msg.sender, stake);
        // interaction last
        token.safeTransfer(msg.sender, stake);
    }

    // ------------------------------------------------------------------ deals

    /**
     * @notice Opens a deal in `poolId` for content `cid` with storage commitment `root` over
     * `size` bytes (`segments == ceil(size / 1024)`), `replicas` slots for `durationEpochs`
     * epochs starting with the current one, escrowing
     * `price * size * replicas * durationEpochs / GiB` (pulled from the caller).
     * Requirements: not paused; pool exists; size > 0; 1 <= replicas <= 16; duration > 0.
     * Emits {DealOpened}.
     */
    function openDeal(
        uint256 poolId,
        bytes calldata cid,
        bytes32 root,
        uint256 size,
        uint256 segments,
        uint256 replicas,
        uint256 durationEpochs
    ) external whenNotPaused nonReentrant returns (uint256 dealId) {
        dealId = _storeDeal(poolId, root, size, segments, replicas, durationEpochs);
        uint256 escrow = _emitOpened(dealId, cid);
        // interaction last
        token.safeTransferFrom(msg.sender, address(this), escrow);
    }

    function _storeDeal(
        uint256 poolId,
        bytes32 root,
        uint256 size,
        uint256 segments,
        uint256 replicas,
        uint256 durationEpochs
    ) internal returns (uint256 dealId) {
        Pool storage pool = _pools[poolId];
        if (pool.creator == address(0)) revert PinboxStorageUnknownPool(poolId);
        if (size == 0 || size > type(uint64).max || segments != (size + SEGMENT_SIZE - 1) / SEGMENT_SIZE) {
            revert PinboxStorageInvalidDeal();
        }
        if (replicas == 0 || replicas > MAX_REPLICAS || durationEpochs == 0 || durationEpochs > type(uint16).max) {
            revert PinboxStorageInvalidDeal();
        }
        uint256 escrow = uint256(pool.pricePerGiBEpoch) * size * replicas * durationEpochs / GIB;
        uint256 epoch = currentEpoch();
        dealId = ++dealCount;
        Deal storage d = _deals[dealId];
        d.root = root;
        d.size = uint64(size);
        d.startEpoch = uint32(epoch);
        d.endEpoch = uint32(epoch + durationEpochs);
        d.replicas = uint8(replicas);
        d.poolId = poolId.toUint32();
        d.requester = msg.sender;
        d.perSlot = (escrow / (replicas * durationEpochs)).toUint96();
        d.escrow = escrow.toUint128();
    }

    function _emitOpened(uint256 dealId, bytes calldata cid) internal returns (uint256 escrow) {
        Deal storage d = _deals[dealId];
        escrow = d.escrow;
        emit DealOpened(
            dealId, d.poolId, d.requester, cid, d.root, d.size, d.replicas, d.endEpoch - d.startEpoch, escrow
        );
    }

    /**
     * @notice Takes a replica slot of `dealId` for member `operator`. The owner is expected
     * to have fetched the content and recomputed the commitment before accepting.
     * Requirements: not paused; caller is the member's owner; member not leaving and staked
     * at least the pool's stake; same pool; deal open, not ended, with a free slot; neither
     * owner nor operator is the requester; the member never held a slot of this deal.
     * Emits {SlotAccepted}.
     */
    function acceptSlot(uint256 dealId, address operator) external whenNotPaused {
        Member storage m = _ownedMember(operator);
        Deal storage d = _deals[dealId];
        address requester = d.requester;
        if (requester == address(0)) revert PinboxStorageUnknownDeal(dealId);
        uint256 epoch = currentEpoch();
        if (d.closed || epoch >= d.endEpoch) revert PinboxStorageDealClosed(dealId);
        if (m.leaveRequestedAt != 0) revert PinboxStorageLeaving(operator);
        if (d.poolId != m.poolId) revert PinboxStorageWrongPool(dealId, m.poolId);
        if (requester == msg.sender || requester == operator) revert PinboxStorageRequesterCannotProvide(dealId);
        if (d.filled >= d.replicas) revert PinboxStorageNoFreeSlot(dealId);
        SlotInfo storage s = _slotInfo[dealId][operator];
        if (s.used) revert PinboxStorageAlreadyAccepted(dealId, operator);
        if (m.underStaked) revert PinboxStorageStakeTooLow(operator, m.stake);

        uint256 count = m.slotCount;
        uint256 lastProven = m.lastProvenEpoch;
        // With no slot held there is no pending expiry bucket, so the proof cursor may jump
        // forward: a member idle for many epochs doesn't pay for the gap in its next proof.
        if (count == 0 && lastProven + 1 < epoch) {
            uint256 gap = epoch - 1 - lastProven;
            m.provenMask = gap >= PROOF_MEMORY ? 0 : uint64(uint256(m.provenMask) << gap);
            m.lastProvenEpoch = uint32(epoch - 1);
        }
        uint256 perSlot = d.perSlot;
        uint256 size = d.size;
        _slotDeal[operator][count] = dealId;
        s.index = uint32(count);
        s.provenAtStart = m.provenCount;
        s.held = true;
        s.used = true;
        m.slotCount = uint32(count + 1);
        m.payPerEpoch = (m.payPerEpoch + perSlot).toUint112();
        m.bytesHeld = (m.bytesHeld + size).toUint80();
        m.lastChangeBlock = uint40(block.number);
        Expiry storage ex = _expiries[operator][d.endEpoch];
        ex.pay = (ex.pay + perSlot).toUint112();
        ex.bytes_ = (ex.bytes_ + size).toUint80();
        _recordProvider(dealId, d, m.id);
        d.filled += 1;
        emit SlotAccepted(dealId, operator, m.owner);
    }

    /**
     * @notice Ends deal `dealId` after its last epoch: frees every slot still held and
     * refunds the escrow not earned to the requester. Anyone may call it; works while paused.
     * Emits {DealClosed}.
     */
    function finalizeDeal(uint256 dealId) external nonReentrant {
        Deal storage d = _deals[dealId];
        if (d.requester == address(0)) revert PinboxStorageUnknownDeal(dealId);
        if (currentEpoch() < d.endEpoch) revert PinboxStorageDealActive(dealId);
        _close(dealId, d);
    }

    /**
     * @notice Cancels deal `dealId` now: slots are freed (their holders keep what they earned)
     * and the rest of the escrow returns to the requester. Works while paused.
     * Requirements: caller is the requester. Emits {DealClosed}.
     */
    function cancelDeal(uint256 dealId) external nonReentrant {
        Deal storage d = _deals[dealId];
        if (d.requester == address(0)) revert PinboxStorageUnknownDeal(dealId);
        if (d.requester != msg.sender) revert PinboxStorageNotRequester(dealId, msg.sender);
        _close(dealId, d);
    }

    // ------------------------------------------------------------------ proofs

    /**
     * @notice Answers the current epoch's challenge of the caller (an operator) with the
     * challenged segment of `dealId` at `index` and its Merkle path; credits the owner with
     * one epoch of pay for every slot held plus emission from the reserve (capped by it).
     * Works while paused.
     * Requirements: caller is a member operator with slots; challenged this epoch; inside the
     * window; not yet proven this epoch; `dealId`/`index` are the challenged ones; the proof
     * verifies against the deal's commitment. Emits {Proven}.
     */
    function proveSegment(uint256 dealId, uint256 index, bytes calldata segment, bytes32[] calldata proof)
        external
    {
        Member storage m = _members[msg.sender];
        uint256 epoch = _checkProof(m, dealId, index, segment, proof);
        (uint256 pay, uint256 emission) = _credit(m, epoch);
        emit Proven(msg.sender, epoch, dealId, index, pay, emission);
    }

    function _checkProof(
        Member storage m,
        uint256 dealId,
        uint256 index,
        bytes calldata segment,
        bytes32[] calldata proof
    ) internal view returns (uint256 epoch) {
        if (m.owner == address(0)) revert PinboxStorageNotMember(msg.sender);
        epoch = currentEpoch();
        if (m.lastProvenEpoch >= epoch) revert PinboxStorageAlreadyProven(msg.sender, epoch);
        uint256 slotCount = m.slotCount;
        if (slotCount == 0) revert PinboxStorageNotChallenged(msg.sender, epoch);
        uint256 h = _seedFor(msg.sender, epoch, m.lastChangeBlock, true);
        if (dealId != _slotDeal[msg.sender][h % slotCount]) {
            if (!_slotInfo[dealId][msg.sender].held) revert PinboxStorageNotSlotHolder(dealId, msg.sender);
            revert PinboxStorageWrongChallenge(dealId, index);
        }
        Deal storage d = _deals[dealId];
        uint256 segments = (uint256(d.size) + SEGMENT_SIZE - 1) / SEGMENT_SIZE;
        if (index != (h >> 128) % segments) revert PinboxStorageWrongChallenge(dealId, index);
        if (!verifySegment(d.root, segments, index, segment, proof)) revert PinboxStorageInvalidProof(dealId, index);
    }

    function _credit(Member storage m, uint256 epoch) internal returns (uint256 pay, uint256 emission) {
        uint256 lastProven = m.lastProvenEpoch;
        uint256 count = m.provenCount;
        uint256 bytesHeld;
        (pay, bytesHeld) = _applyExpiries(m, msg.sender, lastProven, epoch, count);
        uint256 gap = epoch - lastProven;
        m.provenMask = uint64(gap >= PROOF_MEMORY ? 1 : (uint256(m.provenMask) << gap) | 1);
        m.lastProvenEpoch = uint32(epoch);
        m.provenCount = uint32(count + 1);
        if (bytesHeld != 0) {
            Reserve memory r = _reserve;
            emission = bytesHeld * r.emissionPerByteEpoch;
            if (emission > r.balance) emission = r.balance;
            // an empty reserve credits nothing and never reverts
            if (emission != 0) _reserve.balance = uint128(r.balance - emission);
        }
        uint256 amount = pay + emission;
        if (amount != 0) _addClaimable(m.owner, amount);
    }

    /**
     * @notice Reports that `operator` missed its challenge window in `epoch`. After F faults
     * within W epochs the member is slashed (stake * slashBps / 10000, never more than the
     * stake), the caller gets `bountyBps` of the slash credited as claimable, the rest goes
     * to the reserve, and the member's slot in the faulted deal is freed.
     * Requirements: the window has closed, the proof is missing, the seed block is within
     * the last 256 blocks (its hash is needed to name the faulted deal) and the epoch is
     * within the last 64 epochs the member's proof record covers; not reported before.
     * A slot change after the epoch moves the member's seed block, which makes that epoch
     * unreportable: reporters should report as soon as the window closes.
     * Emits {FaultReported} and possibly {Slashed}.
     */
    function reportFault(address operator, uint256 epoch) external nonReentrant {
        Member storage m = _members[operator];
        if (m.owner == address(0)) revert PinboxStorageNotMember(operator);
        uint256 slotCount = m.slotCount;
        if (epoch == 0 || epoch > currentEpoch() || slotCount == 0) revert PinboxStorageNotChallenged(operator, epoch);
        uint256 lastProven = m.lastProvenEpoch;
        if (epoch <= lastProven) {
            uint256 age = lastProven - epoch;
            if (age >= PROOF_MEMORY) revert PinboxStorageFaultTooOld(operator, epoch);
            if ((m.provenMask >> age) & 1 == 1) revert PinboxStorageAlreadyProven(operator, epoch);
        }
        if (faultReported[operator][epoch]) revert PinboxStorageFaultAlreadyReported(operator, epoch);
        uint256 h = _seedFor(operator, epoch, m.lastChangeBlock, false);
        uint256 dealId = _slotDeal[operator][h % slotCount];
        // an ended deal's data may be dropped: a challenge on a slot not yet released is excused
        if (_deals[dealId].endEpoch <= epoch) revert PinboxStorageNotChallenged(operator, epoch);
        faultReported[operator][epoch] = true;
        emit FaultReported(operator, epoch, dealId, msg.sender);

        uint256 log = (_faultLog[operator] << 32) | epoch;
        uint256 recent;
        for (uint256 i = 0; i < faultThreshold; ++i) {
            uint256 e = (log >> (32 * i)) & 0xffffffff;
            if (e != 0 && e + faultWindow > epoch) ++recent;
        }
        if (recent < faultThreshold) {
            _faultLog[operator] = log;
            return;
        }
        _faultLog[operator] = 0;
        uint256 stake = m.stake;
        uint256 slash = stake * slashBps / 10_000;
        uint256 bounty = slash * bountyBps / 10_000;
        m.stake = uint128(stake - slash);
        if (stake - slash < _pools[m.poolId].stake) m.underStaked = true;
        _reserve.balance = (uint256(_reserve.balance) + slash - bounty).toUint128();
        if (bounty != 0) _addClaimable(msg.sender, bounty);
        Deal storage d = _deals[dealId];
        _removeSlot(dealId, d, operator, m);
        emit Slashed(operator, dealId, slash, bounty, msg.sender);
    }

    /**
     * @notice Sends the caller's claimable rewards to it. Works while paused.
     * Requirements: something to claim. Emits {Claimed}.
     */
    function claim() external nonReentrant returns (uint256 amount) {
        uint256 stored = _claimable[msg.sender];
        if (stored <= 1) revert PinboxStorageNothingToClaim(msg.sender);
        amount = stored - 1;
        _claimable[msg.sender] = 1;
        emit Claimed(msg.sender, amount);
        // interaction last: the balance is zeroed before the token (and any hook) runs
        token.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ views

    /**
     * @notice Checks a segment against a storage commitment (rules in the contract NatSpec).
     * Returns false for `index >= segments`, a segment that is not 1024 bytes, a proof of the
     * wrong length or a root mismatch.
     */
    function verifySegment(
        bytes32 root,
        uint256 segments,
        uint256 index,
        bytes calldata segment,
        bytes32[] calldata proof
    ) public pure returns (bool) {
        if (index >= segments || segment.length != SEGMENT_SIZE) return false;
        return _asPure(_walk)(root, segments, index, segment, proof);
    }

    /// @dev The Merkle walk in assembly: the Solidity version spent ~20k gas on bounds checks and
    /// per-level allocations, a fifth of a proof's budget.
    function _walk(bytes32 root, uint256 n, uint256 index, bytes calldata segment, bytes32[] calldata proof)
        private
        view
        returns (bool ok)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x00)
            calldatacopy(add(ptr, 1), segment.offset, 1024)
            if iszero(staticcall(gas(), 0x02, ptr, 1025, 0x00, 0x20)) { revert(0, 0) }
            let node := mload(0x00)
            mstore8(ptr, 0x01)
            let p := proof.offset
            let end := add(p, shl(5, proof.length))
            let short := 0
            for {} gt(n, 1) {} {
                // the odd last node of a level is carried up with no sibling
                if iszero(and(eq(index, sub(n, 1)), iszero(and(index, 1)))) {
                    if eq(p, end) {
                        short := 1
                        break
                    }
                    let sibling := calldataload(p)
                    p := add(p, 0x20)
                    switch and(index, 1)
                    case 0 {
                        mstore(add(ptr, 1), node)
                        mstore(add(ptr, 33), sibling)
                    }
                    default {
                        mstore(add(ptr, 1), sibling)
                        mstore(add(ptr, 33), node)
                    }
                    if iszero(staticcall(gas(), 0x02, ptr, 65, 0x00, 0x20)) { revert(0, 0) }
                    node := mload(0x00)
                }
                index := shr(1, index)
                n := shr(1, add(n, 1))
            }
            ok := and(iszero(short), and(eq(p, end), eq(node, root)))
        }
    }

    /// @dev The sha256 precompile only reads its input; calling it is pure in all but the
    /// compiler's view of a `staticcall`.
    function _asPure(
        function(bytes32, uint256, uint256, bytes calldata, bytes32[] calldata) internal view returns (bool) f
    )
        private
        pure
        returns (function(bytes32, uint256, uint256, bytes calldata, bytes32[] calldata) internal pure returns (bool) g)
    {
        assembly {
            g := f
        }
    }

    function currentEpoch() public view returns (uint256) {
        return (block.number - genesisBlock) / epochLength + 1;
    }

    function epochStart(uint256 epoch) public view returns (uint256) {
        return genesisBlock + (epoch - 1) * epochLength;
    }

    /**
     * @notice The challenge of `operator` in `epoch` as far as it is known now: whether it is
     * challenged, the seed block and the last block a proof may land in; `dealId` and
     * `index` are 0 until the seed block's hash is available.
     */
    function challengeOf(address operator, uint256 epoch)
        external
        view
        returns (bool challenged, uint256 seedBlock, uint256 deadline, uint256 dealId, uint256 index)
    {
        Member storage m = _members[operator];
        if (m.owner == address(0) || m.slotCount == 0 || epoch == 0) return (false, 0, 0, 0, 0);
        (challenged, seedBlock, deadline) = _window(epoch, m.lastChangeBlock);
        if (!challenged || seedBlock >= block.number) return (challenged, seedBlock, deadline, 0, 0);
        bytes32 bh = blockhash(seedBlock);
        if (bh == bytes32(0)) return (challenged, seedBlock, deadline, 0, 0);
        uint256 h = uint256(keccak256(abi.encode(bh, operator)));
        dealId = _slotDeal[operator][h % m.slotCount];
        index = (h >> 128) % ((uint256(_deals[dealId].size) + SEGMENT_SIZE - 1) / SEGMENT_SIZE);
    }

    function getPool(uint256 poolId) external view returns (Pool memory) {
        return _pools[poolId];
    }

    function poolMembers(uint256 poolId) external view returns (address[] memory) {
        return _poolMembers[poolId];
    }

    function getMember(address operator) external view returns (Member memory) {
        return _members[operator];
    }

    function getDeal(uint256 dealId) external view returns (Deal memory) {
        return _deals[dealId];
    }

    function slotsOf(address operator) external view returns (uint256[] memory ids) {
        uint256 n = _members[operator].slotCount;
        ids = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) ids[i] = _slotDeal[operator][i];
    }

    /// @notice Every member that ever took a slot of `dealId`, in order (held or freed).
    function dealProviders(uint256 dealId) external view returns (address[] memory list) {
        Deal storage d = _deals[dealId];
        uint256 n = d.providerCount;
        list = new address[](n);
        for (uint256 i = 0; i < n; ++i) list[i] = _providerAt(dealId, d, i);
    }

    /// @notice Rewards `account` can claim now.
    function claimable(address account) external view returns (uint256) {
        uint256 stored = _claimable[account];
        return stored == 0 ? 0 : stored - 1;
    }

    function slotHeld(uint256 dealId, address operator) external view returns (bool) {
        return _slotInfo[dealId][operator].held;
    }

    function reserve() external view returns (uint256 balance, uint256 emissionPerByteEpoch) {
        return (_reserve.balance, _reserve.emissionPerByteEpoch);
    }

    // ------------------------------------------------------------------ internals

    function _ownedMember(address operator) internal view returns (Member storage m) {
        m = _members[operator];
        if (m.owner == address(0)) revert PinboxStorageNotMember(operator);
        if (m.owner != msg.sender) revert PinboxStorageNotOwner(operator, msg.sender);
    }

    function _window(uint256 epoch, uint256 lastChange)
        internal
        view
        returns (bool challenged, uint256 seedBlock, uint256 deadline)
    {
        uint256 start = epochStart(epoch);
        seedBlock = lastChange >= start ? lastChange + 1 : start;
        deadline = seedBlock + proofWindow;
        challenged = deadline < start + epochLength;
    }

    /// @dev The challenge hash; `forProof` checks the window is open, otherwise that it closed.
    function _seedFor(address operator, uint256 epoch, uint256 lastChange, bool forProof)
        internal
        view
        returns (uint256)
    {
        (bool challenged, uint256 seedBlock, uint256 deadline) = _window(epoch, lastChange);
        if (!challenged) revert PinboxStorageNotChallenged(operator, epoch);
        if (forProof) {
            if (block.number <= seedBlock || block.number > deadline) {
                revert PinboxStorageOutsideWindow(operator, seedBlock, deadline);
            }
        } else if (block.number <= deadline) {
            revert PinboxStorageWindowOpen(operator, deadline);
        }
        bytes32 bh = blockhash(seedBlock);
        // blockhash is 0 for blocks older than 256 (or not yet mined): never a seed
        if (bh == bytes32(0)) revert PinboxStorageSeedUnavailable(seedBlock);
        return uint256(keccak256(abi.encode(bh, operator)));
    }

    /// @dev Drops from the running sums the slots whose deals ended in (lastProven, epoch].
    function _applyExpiries(Member storage m, address operator, uint256 lastProven, uint256 epoch, uint256 count)
        internal
        returns (uint256 pay, uint256 bytesHeld)
    {
        pay = m.payPerEpoch;
        bytesHeld = m.bytesHeld;
        bool changed;
        for (uint256 e = lastProven + 1; e <= epoch; ++e) {
            Expiry storage ex = _expiries[operator][e];
            uint256 exPay = ex.pay;
            uint256 exBytes = ex.bytes_;
            if (exPay == 0 && exBytes == 0) continue;
            pay -= exPay;
            bytesHeld -= exBytes;
            ex.provenBefore = uint32(count);
            changed = true;
        }
        if (changed) {
            m.payPerEpoch = uint112(pay);
            m.bytesHeld = uint80(bytesHeld);
        }
    }

    /// @dev Frees `operator`'s slot in `dealId` and books what it earned into `d.paid`.
    function _removeSlot(uint256 dealId, Deal storage d, address operator, Member storage m) internal {
        SlotInfo storage s = _slotInfo[dealId][operator];
        uint256 idx = s.index;
        uint256 last = m.slotCount - 1;
        if (idx != last) {
            uint256 moved = _slotDeal[operator][last];
            _slotDeal[operator][idx] = moved;
            _slotInfo[moved][operator].index = uint32(idx);
        }
        delete _slotDeal[operator][last];
        m.slotCount = uint32(last);

        uint256 end = d.endEpoch;
        uint256 endCount;
        uint256 perSlot = d.perSlot;
        if (end <= m.lastProvenEpoch) {
            // the expiry bucket was applied by a proof; it recorded the count at that moment
            endCount = _expiries[operator][end].provenBefore;
        } else {
            endCount = m.provenCount;
            uint256 size = d.size;
            m.payPerEpoch -= uint112(perSlot);
            m.bytesHeld -= uint80(size);
            Expiry storage ex = _expiries[operator][end];
            ex.pay -= uint112(perSlot);
            ex.bytes_ -= uint80(size);
        }
        d.paid += uint128((endCount - s.provenAtStart) * perSlot);
        s.held = false;
        d.filled -= 1;
        m.lastChangeBlock = uint40(block.number);
        emit SlotFreed(dealId, operator);
    }

    function _addClaimable(address account, uint256 amount) internal {
        uint256 stored = _claimable[account];
        _claimable[account] = (stored == 0 ? 1 : stored) + amount;
    }

    function _recordProvider(uint256 dealId, Deal storage d, uint32 id) internal {
        uint256 k = d.providerCount;
        if (k == 0) d.provider0 = id;
        else if (k == 1) d.provider1 = id;
        else if (k == 2) d.provider2 = id;
        else _moreProviders[dealId][(k - 3) >> 3] |= uint256(id) << (((k - 3) & 7) * 32);
        d.providerCount = uint8(k + 1);
    }

    function _providerAt(uint256 dealId, Deal storage d, uint256 k) internal view returns (address) {
        uint256 id;
        if (k == 0) id = d.provider0;
        else if (k == 1) id = d.provider1;
        else if (k == 2) id = d.provider2;
        else id = (_moreProviders[dealId][(k - 3) >> 3] >> (((k - 3) & 7) * 32)) & 0xffffffff;
        return operatorById[id];
    }

    function _close(uint256 dealId, Deal storage d) internal {
        if (d.closed) revert PinboxStorageDealClosed(dealId);
        uint256 n = d.providerCount;
        for (uint256 k = 0; k < n; ++k) {
            address operator = _providerAt(dealId, d, k);
            if (_slotInfo[dealId][operator].held) _removeSlot(dealId, d, operator, _members[operator]);
        }
        d.closed = true;
        uint256 refund = d.escrow - d.paid;
        address requester = d.requester;
        emit DealClosed(dealId, d.paid, refund);
        // interaction last
        if (refund != 0) token.safeTransfer(requester, refund);
    }
}
