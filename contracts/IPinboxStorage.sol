// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title IPinboxStorage
 * @notice Errors and events of the pinbox storage contract.
 */
interface IPinboxStorage {
    error PinboxStorageZeroAddress();
    error PinboxStorageInvalidConfig();
    error PinboxStorageUnknownPool(uint256 poolId);
    error PinboxStorageInvalidOperator(address operator);
    error PinboxStorageAlreadyMember(address operator);
    error PinboxStorageInvalidPeerId();
    error PinboxStoragePeerIdTaken(bytes32 peerIdHash);
    error PinboxStorageBadSignature();
    error PinboxStorageNotMember(address account);
    error PinboxStorageNotOwner(address operator, address caller);
    error PinboxStorageLeaving(address operator);
    error PinboxStorageStillBonded(address operator);
    error PinboxStorageHoldsSlots(address operator, uint256 slots);
    error PinboxStorageInvalidDeal();
    error PinboxStorageUnknownDeal(uint256 dealId);
    error PinboxStorageDealClosed(uint256 dealId);
    error PinboxStorageDealActive(uint256 dealId);
    error PinboxStorageNotRequester(uint256 dealId, address caller);
    error PinboxStorageWrongPool(uint256 dealId, uint256 memberPoolId);
    error PinboxStorageRequesterCannotProvide(uint256 dealId);
    error PinboxStorageNoFreeSlot(uint256 dealId);
    error PinboxStorageAlreadyAccepted(uint256 dealId, address operator);
    error PinboxStorageStakeTooLow(address operator, uint256 stake);
    error PinboxStorageAlreadyProven(address operator, uint256 epoch);
    error PinboxStorageNotChallenged(address operator, uint256 epoch);
    error PinboxStorageOutsideWindow(address operator, uint256 seedBlock, uint256 deadline);
    error PinboxStorageWindowOpen(address operator, uint256 deadline);
    error PinboxStorageSeedUnavailable(uint256 seedBlock);
    error PinboxStorageNotSlotHolder(uint256 dealId, address operator);
    error PinboxStorageWrongChallenge(uint256 dealId, uint256 index);
    error PinboxStorageInvalidProof(uint256 dealId, uint256 index);
    error PinboxStorageFaultTooOld(address operator, uint256 epoch);
    error PinboxStorageFaultAlreadyReported(address operator, uint256 epoch);
    error PinboxStorageNothingToClaim(address owner);

    event EmissionRateSet(uint256 emissionPerByteEpoch);
    event ReserveFunded(address indexed from, uint256 amount);
    event PoolCreated(uint256 indexed poolId, address indexed creator, string name, uint256 stake, uint256 pricePerGiBEpoch);
    event MemberJoined(
        uint256 indexed poolId, address indexed operator, address indexed owner, bytes peerId, bytes peerSig, uint256 stake
    );
    event LeaveRequested(address indexed operator, uint256 withdrawableAt);
    event MemberLeft(uint256 indexed poolId, address indexed operator, address indexed owner, uint256 stake);
    event DealOpened(
        uint256 indexed dealId,
        uint256 indexed poolId,
        address indexed requester,
        bytes cid,
        bytes32 root,
        uint256 size,
        uint256 replicas,
        uint256 durationEpochs,
        uint256 escrow
    );
    event SlotAccepted(uint256 indexed dealId, address indexed operator, address indexed owner);
    event SlotFreed(uint256 indexed dealId, address indexed operator);
    event DealClosed(uint256 indexed dealId, uint256 paid, uint256 refund);
    event Proven(address indexed operator, uint256 indexed epoch, uint256 indexed dealId, uint256 index, uint256 pay, uint256 emission);
    event FaultReported(address indexed operator, uint256 indexed epoch, uint256 indexed dealId, address reporter);
    event Slashed(address indexed operator, uint256 indexed dealId, uint256 amount, uint256 bounty, address indexed reporter);
    event Claimed(address indexed owner, uint256 amount);
}
