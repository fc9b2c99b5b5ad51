import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { Signature, Wallet, ZeroAddress, hexlify, parseEther } from 'ethers'
import { generateKeyPair, publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { startAnvil, deploy, expectRevert } from '../helpers/anvil.ts'
import type { Anvil } from '../helpers/anvil.ts'
import { commit, proofOf, segmentAt } from './segment-tree.ts'
import type { TreeCommitment } from './segment-tree.ts'

const GIB = 1n << 30n
const EPOCH = 20
const WINDOW = 5
const UNBONDING = 10
const STAKE = parseEther('1000')
const PRICE = parseEther('1') + 7n
const EMISSION = 1000n
const CONFIG = {
  epochLength: EPOCH,
  proofWindow: WINDOW,
  unbondingDelay: UNBONDING,
  faultThreshold: 2,
  faultWindow: 10,
  slashBps: 6000,
  bountyBps: 1000,
  emissionPerByteEpoch: EMISSION
}

interface Content { bytes: Buffer, tree: TreeCommitment }

function content (size: number): Content {
  const bytes = randomBytes(size)
  return { bytes, tree: commit(bytes) }
}

describe('PinboxStorage on anvil cancun', () => {
  let anvil: Anvil
  let admin: Wallet
  let requester: Wallet
  let ownerA: Wallet
  let opA: Wallet
  let ownerB: Wallet
  let opB: Wallet
  let ownerC: Wallet
  let opC: Wallet
  let reporter: Wallet
  let stranger: Wallet
  let token: any
  let storage: any
  let storageAddr: string
  let genesis: number
  let poolId: bigint
  let base: string
  const contents = new Map<bigint, Content>()

  const S = (w: Wallet): any => storage.connect(w)
  const T = (w: Wallet): any => token.connect(w)
  const send = async (p: Promise<any>): Promise<any> => await (await p).wait()
  const epochOf = (block: number): number => Math.floor((block - genesis) / EPOCH) + 1
  const epochStart = (e: number): number => genesis + (e - 1) * EPOCH
  const randomWallet = (): Wallet => new Wallet(hexlify(randomBytes(32)), anvil.provider)
  const bal = async (a: string): Promise<bigint> => await token.balanceOf(a)

  async function mineTo (block: number): Promise<void> {
    const now = await anvil.blockNumber()
    if (block > now) await anvil.mine(block - now)
  }

  /** Mines so the next transaction lands early in a fresh epoch; returns that epoch. */
  async function freshEpoch (): Promise<number> {
    const e = epochOf(await anvil.blockNumber() + 1) + 1
    await mineTo(epochStart(e))
    return e
  }

  async function join (pool: bigint, owner: Wallet, operator: Wallet, signer: Wallet = operator): Promise<any> {
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key).toMultihash().bytes
    const digest: string = await storage.joinDigest(pool, owner.address, operator.address, peerId)
    const domain = { name: 'PinboxStorage', version: '1', chainId: anvil.chainId, verifyingContract: storageAddr }
    const types = {
      Join: [{ name: 'poolId', type: 'uint256' }, { name: 'owner', type: 'address' }, { name: 'operator', type: 'address' }, { name: 'peerId', type: 'bytes' }]
    }
    const operatorSig = await signer.signTypedData(domain, types, { poolId: pool, owner: owner.address, operator: operator.address, peerId })
    const peerSig = await key.sign(Buffer.from(digest.slice(2), 'hex'))
    return { peerId, operatorSig, peerSig, key, tx: () => S(owner).join(pool, operator.address, peerId, operatorSig, peerSig) }
  }

  async function openDeal (c: Content, replicas: number, epochs: number, from: Wallet = requester): Promise<bigint> {
    const receipt = await send(S(from).openDeal(poolId, Uint8Array.of(1, 0x55), c.tree.root, c.tree.size, c.tree.segments, replicas, epochs))
    const log = receipt.logs.map((l: any) => storage.interface.parseLog(l)).find((l: any) => l?.name === 'DealOpened')
    const id: bigint = log.args.dealId
    contents.set(id, c)
    return id
  }

  /** The operator's current challenge, mining until its seed block is history. */
  async function challenge (op: Wallet): Promise<{ epoch: number, dealId: bigint, index: number, deadline: number, seedBlock: number }> {
    const epoch = epochOf(await anvil.blockNumber() + 1)
    let c = await storage.challengeOf(op.address, epoch)
    if (!c.challenged) throw new Error(`not challenged in ${epoch}`)
    await mineTo(Number(c.seedBlock) + 1)
    c = await storage.challengeOf(op.address, epoch)
    return { epoch, dealId: c.dealId, index: Number(c.index), deadline: Number(c.deadline), seedBlock: Number(c.seedBlock) }
  }

  function proofFor (dealId: bigint, index: number): { segment: Buffer, proof: string[] } {
    const c = contents.get(dealId)
    if (c == null) throw new Error(`no content for deal ${dealId}`)
    return { segment: segmentAt(c.bytes, index), proof: proofOf(c.tree.levels, index) }
  }

  async function prove (op: Wallet): Promise<any> {
    const ch = await challenge(op)
    const { segment, proof } = proofFor(ch.dealId, ch.index)
    const receipt = await send(S(op).proveSegment(ch.dealId, ch.index, segment, proof))
    const log = receipt.logs.map((l: any) => storage.interface.parseLog(l)).find((l: any) => l?.name === 'Proven')
    return { receipt, ...ch, pay: log.args.pay as bigint, emission: log.args.emission as bigint }
  }

  beforeAll(async () => {
    anvil = await startAnvil({ hardfork: 'cancun' })
    ;[admin, requester, ownerA, opA, ownerB, opB, ownerC, opC, reporter, stranger] =
      Array.from({ length: 10 }, (_, i) => anvil.wallet(i)) as [Wallet, Wallet, Wallet, Wallet, Wallet, Wallet, Wallet, Wallet, Wallet, Wallet]
    token = await deploy('PinboxToken', admin, ['Pinbox', 'PIN', parseEther('1000000000'), admin.address])
    storage = await deploy('PinboxStorage', admin, [await token.getAddress(), admin.address, CONFIG])
    storageAddr = await storage.getAddress()
    genesis = Number(await storage.genesisBlock())
    for (const w of [requester, ownerA, ownerB, ownerC, reporter, stranger, admin]) {
      await send(token.mint(w.address, parseEther('100000')))
      await send(T(w).approve(storageAddr, parseEther('100000')))
    }
    await send(storage.createPool('home', STAKE, PRICE))
    poolId = 1n
    for (const [o, op] of [[ownerA, opA], [ownerB, opB], [ownerC, opC]] as const) {
      await send((await join(poolId, o, op)).tx())
    }
    base = await anvil.snapshot()
  })
  afterAll(async () => { await anvil?.stop() })
  beforeEach(async () => { await anvil.revert(base); base = await anvil.snapshot() })
  afterEach(() => { contents.clear() })

  describe('pools and membership', () => {
    it('lists members and binds the peer id with an operator signature; the peer signature is in the event', async () => {
      expect(await storage.poolMembers(poolId)).toEqual([opA.address, opB.address, opC.address])
      const pool = await storage.getPool(poolId)
      expect(pool.stake).toBe(STAKE)
      const ownerD = stranger
      const opD = randomWallet()
      const j = await join(poolId, ownerD, opD)
      const before = await bal(ownerD.address)
      const receipt = await send(j.tx())
      const ev = receipt.logs.map((l: any) => storage.interface.parseLog(l)).find((l: any) => l?.name === 'MemberJoined')
      expect(ev.args.peerId).toBe(hexlify(j.peerId))
      // anyone can check the peer key side off-chain: the peer id embeds the Ed25519 public key
      const digest = await storage.joinDigest(poolId, ownerD.address, opD.address, j.peerId)
      const pub = publicKeyFromProtobuf(j.peerId.subarray(2))
      expect(await pub.verify(Buffer.from(digest.slice(2), 'hex'), Buffer.from(ev.args.peerSig.slice(2), 'hex'))).toBe(true)
      expect(await bal(ownerD.address)).toBe(before - STAKE)
      expect((await storage.getMember(opD.address)).owner).toBe(ownerD.address)
      await expectRevert(S(ownerD).join(poolId, opD.address, Uint8Array.of(1, 2, 3), j.operatorSig, '0x'), 'PinboxStorageAlreadyMember')
    })

    it('rejects a forged, replayed or reused binding', async () => {
      const opD = randomWallet()
      const forged = await join(poolId, stranger, opD, stranger)
      await expectRevert(forged.tx(), 'PinboxStorageBadSignature')
      await send(storage.createPool('other', STAKE, PRICE))
      const good = await join(poolId, stranger, opD)
      // the same signature used for pool 2 signs a different message
      await expectRevert(S(stranger).join(2n, opD.address, good.peerId, good.operatorSig, '0x'), 'PinboxStorageBadSignature')
      // a peer id already bound to another member
      const taken = (await storage.getMember(opA.address)).peerIdHash
      expect(await storage.operatorOfPeer(taken)).toBe(opA.address)
      await send(good.tx())
      const opE = randomWallet()
      const domain = { name: 'PinboxStorage', version: '1', chainId: anvil.chainId, verifyingContract: storageAddr }
      const types = { Join: [{ name: 'poolId', type: 'uint256' }, { name: 'owner', type: 'address' }, { name: 'operator', type: 'address' }, { name: 'peerId', type: 'bytes' }] }
      const sig = await opE.signTypedData(domain, types, { poolId, owner: admin.address, operator: opE.address, peerId: good.peerId })
      await expectRevert(storage.join(poolId, opE.address, good.peerId, sig, '0x'), 'PinboxStoragePeerIdTaken')
      await expectRevert(S(stranger).join(poolId, stranger.address, good.peerId, sig, '0x'), 'PinboxStorageInvalidOperator')
      await expectRevert(S(stranger).join(9n, opE.address, good.peerId, sig, '0x'), 'PinboxStorageUnknownPool')
    })

    it('leaves only after the unbonding delay and with no slot held; the stake comes back', async () => {
      const deal = await openDeal(content(3000), 1, 2)
      await send(S(ownerA).acceptSlot(deal, opA.address))
      await send(S(ownerA).requestLeave(opA.address))
      await expectRevert(S(ownerA).requestLeave(opA.address), 'PinboxStorageLeaving')
      await expectRevert(S(ownerA).withdraw(opA.address), 'PinboxStorageStillBonded')
      await anvil.mine(UNBONDING)
      await expectRevert(S(ownerA).withdraw(opA.address), 'PinboxStorageHoldsSlots')
      await expectRevert(S(ownerA).acceptSlot(await openDeal(content(10), 1, 1), opA.address), 'PinboxStorageLeaving')
      await mineTo(epochStart(epochOf(await anvil.blockNumber()) + 3))
      await send(S(stranger).finalizeDeal(deal))
      const before = await bal(ownerA.address)
      await send(S(ownerA).withdraw(opA.address))
      expect(await bal(ownerA.address)).toBe(before + STAKE)
      expect(await storage.poolMembers(poolId)).toEqual([opC.address, opB.address])
      expect((await storage.getMember(opA.address)).owner).toBe(ZeroAddress)
    })
  })

  describe('deals', () => {
    it('runs a whole deal with exact balances: escrow, per-slot pay, emission until the reserve is empty, refund', async () => {
      const c = content(5 * 1024 + 100)
      await send(storage.fundReserve(12_000_000n))
      const e0 = await freshEpoch()
      const reqBefore = await bal(requester.address)
      const deal = await openDeal(c, 2, 3)
      const escrow = PRICE * BigInt(c.tree.size) * 2n * 3n / GIB
      const perSlot = escrow / 6n
      expect(escrow % 6n).not.toBe(0n) // rounding is exercised
      const d = await storage.getDeal(deal)
      expect(d.escrow).toBe(escrow)
      expect(d.perSlot).toBe(perSlot)
      expect(await bal(requester.address)).toBe(reqBefore - escrow)
      await expectRevert(S(requester).acceptSlot(deal, opA.address), 'PinboxStorageNotOwner')
      await send(S(ownerA).acceptSlot(deal, opA.address))
      await expectRevert(S(ownerA).acceptSlot(deal, opA.address), 'PinboxStorageAlreadyAccepted')
      await send(S(ownerB).acceptSlot(deal, opB.address))
      await expectRevert(S(ownerC).acceptSlot(deal, opC.address), 'PinboxStorageNoFreeSlot')
      expect(await storage.dealProviders(deal)).toEqual([opA.address, opB.address])

      const size = BigInt(c.tree.size)
      const full = size * EMISSION
      const a0 = await prove(opA)
      const b0 = await prove(opB)
      expect([a0.epoch, b0.epoch]).toEqual([e0, e0])
      expect([a0.pay, a0.emission, b0.pay, b0.emission]).toEqual([perSlot, full, perSlot, full])
      await mineTo(epochStart(e0 + 1))
      const a1 = await prove(opA) // B misses this epoch
      expect([a1.pay, a1.emission]).toEqual([perSlot, 12_000_000n - 2n * full])
      await mineTo(epochStart(e0 + 2))
      const a2 = await prove(opA)
      const b2 = await prove(opB)
      // an empty reserve credits 0 and does not revert
      expect([a2.pay, a2.emission, b2.pay, b2.emission]).toEqual([perSlot, 0n, perSlot, 0n])
      expect((await storage.reserve())[0]).toBe(0n)

      await expectRevert(S(stranger).finalizeDeal(deal), 'PinboxStorageDealActive')
      await mineTo(epochStart(e0 + 3))
      // the deal is over: a proof in a later epoch pays nothing for it
      const receipt = await send(S(stranger).finalizeDeal(deal))
      const closed = receipt.logs.map((l: any) => storage.interface.parseLog(l)).find((l: any) => l?.name === 'DealClosed')
      expect(closed.args.paid).toBe(5n * perSlot)
      expect(closed.args.refund).toBe(escrow - 5n * perSlot)
      expect(await bal(requester.address)).toBe(reqBefore - 5n * perSlot)
      await expectRevert(S(stranger).finalizeDeal(deal), 'PinboxStorageDealClosed')

      const wantA = 3n * perSlot + full + (12_000_000n - 2n * full)
      const wantB = 2n * perSlot + full
      expect(await storage.claimable(ownerA.address)).toBe(wantA)
      expect(await storage.claimable(ownerB.address)).toBe(wantB)
      const [aBefore, bBefore] = [await bal(ownerA.address), await bal(ownerB.address)]
      await send(S(ownerA).claim())
      await send(S(ownerB).claim())
      expect(await bal(ownerA.address)).toBe(aBefore + wantA)
      expect(await bal(ownerB.address)).toBe(bBefore + wantB)
      await expectRevert(S(ownerA).claim(), 'PinboxStorageNothingToClaim')
      // nothing is stuck: what the contract holds is exactly the three stakes
      expect(await bal(storageAddr)).toBe(3n * STAKE)
      expect(await storage.slotsOf(opA.address)).toEqual([])
    })

    it('stops paying a slot when its deal ends even before anyone finalizes it', async () => {
      await freshEpoch()
      const long = await openDeal(content(4096), 1, 10)
      const short = await openDeal(content(2048), 1, 1)
      await send(S(ownerA).acceptSlot(long, opA.address))
      await send(S(ownerA).acceptSlot(short, opA.address))
      const e = epochOf(await anvil.blockNumber())
      const dl = await storage.getDeal(long)
      const ds = await storage.getDeal(short)
      const first = await prove(opA)
      expect(first.epoch).toBe(e)
      expect(first.pay).toBe(dl.perSlot + ds.perSlot)
      await mineTo(epochStart(e + 1))
      const second = await prove(opA)
      expect(second.pay).toBe(dl.perSlot)
      expect(second.emission).toBe(0n)
      const before = await bal(requester.address)
      await send(S(stranger).finalizeDeal(short))
      expect(await bal(requester.address)).toBe(before + ds.escrow - ds.perSlot)
      await send(S(requester).cancelDeal(long))
      expect(await bal(requester.address)).toBe(before + ds.escrow - ds.perSlot + dl.escrow - 2n * dl.perSlot)
      expect(await storage.claimable(ownerA.address)).toBe(2n * dl.perSlot + ds.perSlot)
    })

    it('tracks more than three providers of a deal and settles them all on cancel', async () => {
      const extra: Wallet[] = []
      for (const owner of [stranger, reporter, admin]) {
        const op = randomWallet()
        await send((await join(poolId, owner, op)).tx())
        extra.push(op)
      }
      const owners = [ownerA, ownerB, ownerC, stranger, reporter, admin]
      const ops = [opA, opB, opC, ...extra]
      await freshEpoch()
      const deal = await openDeal(content(3000), 6, 4)
      for (let i = 0; i < 6; i++) await send(S(owners[i] as Wallet).acceptSlot(deal, (ops[i] as Wallet).address))
      expect(await storage.dealProviders(deal)).toEqual(ops.map(o => o.address))
      const d = await storage.getDeal(deal)
      // the operators without ETH can't send: prove with the funded ones
      await prove(opA)
      await prove(opC)
      const before = await bal(requester.address)
      await send(S(requester).cancelDeal(deal))
      expect(await bal(requester.address)).toBe(before + d.escrow - 2n * d.perSlot)
      for (const op of ops) expect(await storage.slotHeld(deal, op.address)).toBe(false)
      expect((await storage.getDeal(deal)).filled).toBe(0n)
    })

    it('validates deals: commitment size, replicas, pool; the requester cannot provide', async () => {
      const c = content(3000)
      await expectRevert(S(requester).openDeal(poolId, '0x01', c.tree.root, 3000, 2, 1, 1), 'PinboxStorageInvalidDeal')
      await expectRevert(S(requester).openDeal(poolId, '0x01', c.tree.root, 3000, 3, 0, 1), 'PinboxStorageInvalidDeal')
      await expectRevert(S(requester).openDeal(poolId, '0x01', c.tree.root, 3000, 3, 17, 1), 'PinboxStorageInvalidDeal')
      await expectRevert(S(requester).openDeal(7n, '0x01', c.tree.root, 3000, 3, 1, 1), 'PinboxStorageUnknownPool')
      const own = await openDeal(c, 1, 3, ownerA)
      await expectRevert(S(ownerA).acceptSlot(own, opA.address), 'PinboxStorageRequesterCannotProvide')
      await expectRevert(S(ownerB).cancelDeal(own), 'PinboxStorageNotRequester')
    })
  })

  describe('proofs', () => {
    it('verifySegment follows the commitment rules for every index and shape', async () => {
      for (const n of [1, 2, 3, 5, 7, 8, 9]) {
        const c = content((n - 1) * 1024 + 1 + Math.floor(Math.random() * 1023))
        expect(c.tree.segments).toBe(n)
        for (let i = 0; i < n; i++) {
          const seg = segmentAt(c.bytes, i)
          const proof = proofOf(c.tree.levels, i)
          expect(await storage.verifySegment(c.tree.root, n, i, seg, proof)).toBe(true)
          expect(await storage.verifySegment(c.tree.root, n, i, seg, [...proof, c.tree.root])).toBe(false)
        }
      }
      const c = content(5000)
      const last = c.tree.segments - 1
      const seg = segmentAt(c.bytes, last)
      const proof = proofOf(c.tree.levels, last)
      // an index past the end, a short segment, an unpadded last segment
      expect(await storage.verifySegment(c.tree.root, c.tree.segments, c.tree.segments, seg, proof)).toBe(false)
      expect(await storage.verifySegment(c.tree.root, c.tree.segments, last, seg.subarray(0, 1023), proof)).toBe(false)
      expect(await storage.verifySegment(c.tree.root, c.tree.segments, last, c.bytes.subarray(last * 1024), proof)).toBe(false)
      // a leaf moved to another position
      expect(await storage.verifySegment(c.tree.root, c.tree.segments, 1, segmentAt(c.bytes, 0), proofOf(c.tree.levels, 0))).toBe(false)
    })

    it('rejects wrong bytes, index, past-the-end index, moved leaf, foreign slot, owner key, second and late proofs', async () => {
      const c = content(9 * 1024)
      await freshEpoch()
      const deal = await openDeal(c, 2, 5)
      const other = await openDeal(content(2048), 1, 5)
      await send(S(ownerA).acceptSlot(deal, opA.address))
      await send(S(ownerB).acceptSlot(deal, opB.address))
      await send(S(ownerB).acceptSlot(other, opB.address))
      const ch = await challenge(opA)
      expect(ch.dealId).toBe(deal)
      const { segment, proof } = proofFor(deal, ch.index)
      const n = c.tree.segments
      const j = (ch.index + 1) % n
      const bad = Buffer.from(segment)
      bad[17] = (bad[17] ?? 0) ^ 1
      await expectRevert(S(opA).proveSegment(deal, ch.index, bad, proof), 'PinboxStorageInvalidProof')
      await expectRevert(S(opA).proveSegment(deal, j, segmentAt(c.bytes, j), proofOf(c.tree.levels, j)), 'PinboxStorageWrongChallenge')
      await expectRevert(S(opA).proveSegment(deal, n, segment, proof), 'PinboxStorageWrongChallenge')
      await expectRevert(S(opA).proveSegment(deal, ch.index, segmentAt(c.bytes, j), proofOf(c.tree.levels, j)), 'PinboxStorageInvalidProof')
      await expectRevert(S(opA).proveSegment(other, 0, segmentAt(c.bytes, 0), []), 'PinboxStorageNotSlotHolder')
      await expectRevert(S(ownerA).proveSegment(deal, ch.index, segment, proof), 'PinboxStorageNotMember')
      await send(S(opA).proveSegment(deal, ch.index, segment, proof))
      await expectRevert(S(opA).proveSegment(deal, ch.index, segment, proof), 'PinboxStorageAlreadyProven')
      expect(await storage.claimable(ownerA.address)).toBe((await storage.getDeal(deal)).perSlot)

      // next epoch: the window closes a few blocks after the seed block
      await mineTo(epochStart(ch.epoch + 1))
      const late = await challenge(opA)
      await mineTo(late.deadline)
      const p = proofFor(late.dealId, late.index)
      await expectRevert(S(opA).proveSegment(late.dealId, late.index, p.segment, p.proof), 'PinboxStorageOutsideWindow')
    })
  })

  describe('faults', () => {
    it('reports a missed window after it closes, slashes after F faults within W epochs (never more than the stake) and frees the slot', async () => {
      const d1 = await openDeal(content(3000), 2, 20)
      const d2 = await openDeal(content(5000), 2, 20)
      await send(S(ownerB).acceptSlot(d1, opB.address))
      await send(S(ownerB).acceptSlot(d2, opB.address))
      await send(S(ownerA).acceptSlot(d1, opA.address))
      const e = await freshEpoch()
      const a = await prove(opA)
      const ch = await challenge(opB)
      await expectRevert(S(reporter).reportFault(opB.address, e), 'PinboxStorageWindowOpen')
      await mineTo(ch.deadline)
      await expectRevert(S(reporter).reportFault(opA.address, a.epoch), 'PinboxStorageAlreadyProven')
      const r1 = await send(S(reporter).reportFault(opB.address, e))
      const names1 = r1.logs.map((l: any) => storage.interface.parseLog(l)?.name)
      expect(names1).toEqual(['FaultReported'])
      await expectRevert(S(reporter).reportFault(opB.address, e), 'PinboxStorageFaultAlreadyReported')

      await mineTo(epochStart(e + 1))
      const ch2 = await challenge(opB)
      await mineTo(ch2.deadline)
      const resBefore = (await storage.reserve())[0]
      const r2 = await send(S(reporter).reportFault(opB.address, e + 1))
      const slashed = r2.logs.map((l: any) => storage.interface.parseLog(l)).find((l: any) => l?.name === 'Slashed')
      const slash1 = STAKE * 6000n / 10000n
      const bounty1 = slash1 / 10n
      expect(slashed.args.amount).toBe(slash1)
      expect(slashed.args.bounty).toBe(bounty1)
      expect(slashed.args.dealId).toBe(ch2.dealId)
      expect((await storage.getMember(opB.address)).stake).toBe(STAKE - slash1)
      expect((await storage.reserve())[0]).toBe(resBefore + slash1 - bounty1)
      expect(await storage.claimable(reporter.address)).toBe(bounty1)
      expect(await storage.slotHeld(ch2.dealId, opB.address)).toBe(false)
      expect((await storage.slotsOf(opB.address)).length).toBe(1)
      // the freed slot is open to another member
      await send(S(ownerC).acceptSlot(ch2.dealId, opC.address))
      // and an under-staked member takes no new slot
      await expectRevert(S(ownerB).acceptSlot(await openDeal(content(100), 1, 3), opB.address), 'PinboxStorageStakeTooLow')

      for (const k of [2, 3]) {
        await mineTo(epochStart(e + k))
        const c = await challenge(opB)
        await mineTo(c.deadline)
        await send(S(reporter).reportFault(opB.address, e + k))
      }
      const slash2 = (STAKE - slash1) * 6000n / 10000n
      const left = (await storage.getMember(opB.address)).stake
      expect(left).toBe(STAKE - slash1 - slash2)
      expect(slash1 + slash2 + left).toBe(STAKE)
      expect(await storage.slotsOf(opB.address)).toEqual([])
      await mineTo(epochStart(e + 4) + WINDOW + 2)
      await expectRevert(S(reporter).reportFault(opB.address, e + 4), 'PinboxStorageNotChallenged')
      const before = await bal(reporter.address)
      await send(S(reporter).claim())
      expect(await bal(reporter.address)).toBe(before + bounty1 + slash2 / 10n)
    })
  })

  describe('seeds', () => {
    it('never uses a zero block hash: a fault older than 256 blocks cannot be reported', async () => {
      await freshEpoch()
      const deal = await openDeal(content(2048), 1, 100)
      await send(S(ownerB).acceptSlot(deal, opB.address))
      const e = await freshEpoch()
      const ch = await challenge(opB)
      await anvil.mine(300)
      const args = await expectRevert(S(reporter).reportFault(opB.address, e), 'PinboxStorageSeedUnavailable')
      expect(args).toEqual([BigInt(ch.seedBlock)])
    })
  })

  describe('ended deals', () => {
    it('a challenge on a deal that has ended is not a fault, and the ended slot pays nothing', async () => {
      await freshEpoch()
      const deal = await openDeal(content(2048), 1, 1)
      await send(S(ownerB).acceptSlot(deal, opB.address))
      const e = await freshEpoch()
      const ch = await challenge(opB)
      expect(ch.dealId).toBe(deal)
      await mineTo(ch.deadline)
      await expectRevert(S(reporter).reportFault(opB.address, e), 'PinboxStorageNotChallenged')
      await mineTo(epochStart(e + 1))
      const p = await prove(opB)
      expect([p.pay, p.emission]).toEqual([0n, 0n])
    })
  })

  describe('access and pause', () => {
    it('reverts unauthorized callers', async () => {
      await expectRevert(S(stranger).createPool('x', 1, 1), 'AccessControlUnauthorizedAccount')
      await expectRevert(S(stranger).pause(), 'AccessControlUnauthorizedAccount')
      await expectRevert(S(stranger).setEmissionRate(1), 'AccessControlUnauthorizedAccount')
      await expectRevert(S(stranger).grantRole(await storage.PAUSER_ROLE(), stranger.address), 'AccessControlUnauthorizedAccount')
      const deal = await openDeal(content(100), 1, 2)
      await expectRevert(S(stranger).acceptSlot(deal, opA.address), 'PinboxStorageNotOwner')
      // the operator hot key proves and nothing else
      await expectRevert(S(opA).acceptSlot(deal, opA.address), 'PinboxStorageNotOwner')
      await expectRevert(S(opA).requestLeave(opA.address), 'PinboxStorageNotOwner')
      await expectRevert(S(opA).withdraw(opA.address), 'PinboxStorageNotOwner')
      await expectRevert(S(stranger).cancelDeal(deal), 'PinboxStorageNotRequester')
      await send(storage.setEmissionRate(5))
      expect((await storage.reserve())[1]).toBe(5n)
    })

    it('pause stops new pools, joins, deals and slots but never proofs, claims, exits or refunds', async () => {
      await freshEpoch()
      const deal = await openDeal(content(2000), 1, 3)
      await send(S(ownerA).acceptSlot(deal, opA.address))
      const open = await openDeal(content(2000), 1, 3)
      await send(storage.pause())
      const c = content(100)
      await expectRevert(storage.createPool('p', 1, 1), 'EnforcedPause')
      await expectRevert((await join(poolId, stranger, randomWallet())).tx(), 'EnforcedPause')
      await expectRevert(S(requester).openDeal(poolId, '0x01', c.tree.root, 100, 1, 1, 1), 'EnforcedPause')
      await expectRevert(S(ownerB).acceptSlot(open, opB.address), 'EnforcedPause')
      const p = await prove(opA)
      expect(p.pay).toBeGreaterThan(0n)
      await send(S(ownerA).claim())
      const before = await bal(requester.address)
      await send(S(requester).cancelDeal(open))
      expect(await bal(requester.address)).toBe(before + (await storage.getDeal(open)).escrow)
      await send(S(ownerC).requestLeave(opC.address))
      await anvil.mine(UNBONDING)
      await send(S(ownerC).withdraw(opC.address))
      await send(storage.unpause())
      await send(storage.createPool('p', 1, 1))
    })
  })

  describe('reentrancy', () => {
    it('a token that calls back into the contract cannot drain claims or refunds', async () => {
      const rtoken = await deploy('ReentrantToken', admin)
      const rs = await deploy('PinboxStorage', admin, [await rtoken.getAddress(), admin.address, CONFIG])
      const rsAddr = await rs.getAddress()
      const attacker = await deploy('ReentrancyAttacker', admin)
      const attackerAddr = await attacker.getAddress()
      const rtAddr = await rtoken.getAddress()
      const R = (w: Wallet): any => rs.connect(w)
      await send(rtoken.mint(attackerAddr, parseEther('10000')))
      await send(rtoken.mint(requester.address, parseEther('10000')))
      await send(rtoken.connect(requester).approve(rsAddr, parseEther('10000')))
      await send(attacker.execute(rtAddr, rtoken.interface.encodeFunctionData('approve', [rsAddr, parseEther('10000')])))
      await send(rs.createPool('r', STAKE, PRICE * 1000n))
      // the attacker contract is the owner; opA is its operator
      const key = await generateKeyPair('Ed25519')
      const peerId = peerIdFromPrivateKey(key).toMultihash().bytes
      const domain = { name: 'PinboxStorage', version: '1', chainId: anvil.chainId, verifyingContract: rsAddr }
      const types = { Join: [{ name: 'poolId', type: 'uint256' }, { name: 'owner', type: 'address' }, { name: 'operator', type: 'address' }, { name: 'peerId', type: 'bytes' }] }
      const sig = Signature.from(await opA.signTypedData(domain, types, { poolId: 1n, owner: attackerAddr, operator: opA.address, peerId })).serialized
      await send(attacker.execute(rsAddr, rs.interface.encodeFunctionData('join', [1n, opA.address, peerId, sig, '0x'])))
      const c = content(4096)
      const rGenesis = Number(await rs.genesisBlock())
      // start early in an epoch of this deployment so the challenge window fits
      const rNext = Math.floor((await anvil.blockNumber() + 1 - rGenesis) / EPOCH) + 1
      await mineTo(rGenesis + rNext * EPOCH)
      await send(R(requester).openDeal(1n, '0x01', c.tree.root, c.tree.size, c.tree.segments, 1, 5))
      await send(attacker.execute(rsAddr, rs.interface.encodeFunctionData('acceptSlot', [1n, opA.address])))
      const block = await anvil.blockNumber()
      const epoch = Math.floor((block + 1 - rGenesis) / EPOCH) + 1
      let ch = await rs.challengeOf(opA.address, epoch)
      await mineTo(Number(ch.seedBlock) + 1)
      ch = await rs.challengeOf(opA.address, epoch)
      await send(R(opA).proveSegment(ch.dealId, ch.index, segmentAt(c.bytes, Number(ch.index)), proofOf(c.tree.levels, Number(ch.index))))
      const owed: bigint = await rs.claimable(attackerAddr)
      expect(owed).toBeGreaterThan(0n)

      const claimData = rs.interface.encodeFunctionData('claim', [])
      await send(attacker.arm(rsAddr, claimData))
      const [aBefore, sBefore] = [await rtoken.balanceOf(attackerAddr), await rtoken.balanceOf(rsAddr)]
      // a fixed gas limit: estimateGas would find a limit where the swallowed hook runs out of gas
      await send(attacker.execute(rsAddr, claimData, { gasLimit: 1_000_000 }))
      expect(await attacker.attempts()).toBe(1n)
      expect(await attacker.successes()).toBe(0n)
      expect(await rtoken.balanceOf(attackerAddr)).toBe(aBefore + owed)
      expect(await rtoken.balanceOf(rsAddr)).toBe(sBefore - owed)

      // as a requester: a re-entered cancel during the refund gets nothing more
      await send(attacker.execute(rsAddr, rs.interface.encodeFunctionData('openDeal', [1n, '0x01', c.tree.root, c.tree.size, c.tree.segments, 2, 3])))
      const escrow = (await rs.getDeal(2n)).escrow
      const cancelData = rs.interface.encodeFunctionData('cancelDeal', [2n])
      await send(attacker.arm(rsAddr, cancelData))
      const before = await rtoken.balanceOf(attackerAddr)
      await send(attacker.execute(rsAddr, cancelData, { gasLimit: 1_000_000 }))
      expect(await attacker.attempts()).toBe(2n)
      expect(await attacker.successes()).toBe(0n)
      expect(await rtoken.balanceOf(attackerAddr)).toBe(before + escrow)
      // the contract still holds the stake and the first deal's unearned escrow
      const d1 = await rs.getDeal(1n)
      expect(await rtoken.balanceOf(rsAddr)).toBe(STAKE + d1.escrow - d1.perSlot)
    })
  })
})
