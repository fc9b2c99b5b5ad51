/**
 * Gas figures of the storage contract on anvil at the cancun hardfork: a proof for a 1 GiB
 * deal of random content with 1 and with 100 deals held, a claim, accepting a slot. Writes
 * (replaces) the "## Gas (cancun)" section of bench/results.md.
 *
 * Run: npx node bench/gas.ts
 */
import { createCipheriv, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseEther } from 'ethers'
import type { Wallet } from 'ethers'
import { startAnvil, deploy } from '../test/helpers/anvil.ts'
import { buildLevels, leafHash, proofOf, rootOf, SEGMENT_SIZE } from '../test/contracts/segment-tree.ts'
import { ROOT } from '../contracts/build.ts'

const SIZE = 1 << 30
const SEGMENTS = SIZE / SEGMENT_SIZE
const EPOCH = 50
const WINDOW = 10
const LIMITS = { proof: 100_000n, claim: 65_000n, accept: 150_000n }

// 1 GiB of random content without holding it: AES-256-CTR under a random key, so any
// segment can be regenerated from its index (segment i starts at counter i * 64).
const key = randomBytes(32)
function counterIv (block: number): Buffer {
  const iv = Buffer.alloc(16)
  iv.writeBigUInt64BE(BigInt(block), 8)
  return iv
}
function segment (index: number): Buffer {
  return createCipheriv('aes-256-ctr', key, counterIv(index * 64)).update(Buffer.alloc(SEGMENT_SIZE))
}

const t0 = Date.now()
const leaves = Buffer.alloc(SEGMENTS * 32)
const CHUNK = 64 << 20
const cipher = createCipheriv('aes-256-ctr', key, counterIv(0))
const zeros = Buffer.alloc(CHUNK)
for (let offset = 0; offset < SIZE; offset += CHUNK) {
  const bytes = cipher.update(zeros)
  for (let s = 0; s < CHUNK / SEGMENT_SIZE; s++) {
    leafHash(bytes.subarray(s * SEGMENT_SIZE, (s + 1) * SEGMENT_SIZE)).copy(leaves, (offset / SEGMENT_SIZE + s) * 32)
  }
}
const levels = buildLevels(leaves)
const root = rootOf(levels)
console.log(`commitment of 1 GiB: ${root} in ${((Date.now() - t0) / 1000).toFixed(1)} s`)

const anvil = await startAnvil({ hardfork: 'cancun' })
try {
  const [admin, requester, owner1, op1, owner100, op100] = Array.from({ length: 6 }, (_, i) => anvil.wallet(i)) as [Wallet, Wallet, Wallet, Wallet, Wallet, Wallet]
  const token = await deploy('PinboxToken', admin, ['Pinbox', 'PIN', parseEther('1000000000'), admin.address])
  const storage = await deploy('PinboxStorage', admin, [await token.getAddress(), admin.address, {
    epochLength: EPOCH, proofWindow: WINDOW, unbondingDelay: 100, faultThreshold: 3, faultWindow: 10, slashBps: 5000, bountyBps: 1000, emissionPerByteEpoch: 1
  }])
  const addr = await storage.getAddress()
  const send = async (p: Promise<any>): Promise<any> => await (await p).wait()
  for (const w of [admin, requester, owner1, owner100]) {
    await send(token.mint(w.address, parseEther('1000000')))
    await send((token.connect(w) as any).approve(addr, parseEther('1000000')))
  }
  await send(storage.fundReserve(parseEther('1000')))
  await send(storage.createPool('bench', parseEther('100'), parseEther('1')))
  const domain = { name: 'PinboxStorage', version: '1', chainId: anvil.chainId, verifyingContract: addr }
  const types = { Join: [{ name: 'poolId', type: 'uint256' }, { name: 'owner', type: 'address' }, { name: 'operator', type: 'address' }, { name: 'peerId', type: 'bytes' }] }
  const joinGas: bigint[] = []
  for (const [owner, op] of [[owner1, op1], [owner100, op100]] as const) {
    const peerId = randomBytes(38)
    const sig = await op.signTypedData(domain, types, { poolId: 1n, owner: owner.address, operator: op.address, peerId })
    joinGas.push((await send((storage.connect(owner) as any).join(1n, op.address, peerId, sig, randomBytes(64)))).gasUsed)
  }
  const genesis = Number(await storage.genesisBlock())
  const epochOf = (b: number): number => Math.floor((b - genesis) / EPOCH) + 1
  const mineTo = async (b: number): Promise<void> => { const now = await anvil.blockNumber(); if (b > now) await anvil.mine(b - now) }
  const freshEpoch = async (): Promise<number> => {
    const e = epochOf(await anvil.blockNumber() + 1) + 1
    await mineTo(genesis + (e - 1) * EPOCH)
    return e
  }

  await freshEpoch()
  const acceptGas: bigint[] = []
  const openGas: bigint[] = []
  for (let i = 0; i < 101; i++) {
    // different durations put slots into different expiry buckets, like real deals
    const receipt = await send((storage.connect(requester) as any).openDeal(1n, '0x01', root, SIZE, SEGMENTS, 1, 1000 + i))
    openGas.push(receipt.gasUsed)
    const dealId = BigInt(i + 1)
    const [owner, op] = i === 0 ? [owner1, op1] : [owner100, op100]
    acceptGas.push((await send((storage.connect(owner) as any).acceptSlot(dealId, op.address))).gasUsed)
  }
  const cursor = Number((await storage.getMember(op1.address)).lastProvenEpoch)
  console.log(`slots: ${op1.address} holds ${(await storage.slotsOf(op1.address)).length}, ${op100.address} holds ${(await storage.slotsOf(op100.address)).length}`)

  async function prove (op: Wallet): Promise<bigint> {
    const epoch = epochOf(await anvil.blockNumber() + 1)
    let c = await storage.challengeOf(op.address, epoch)
    if (!c.challenged) throw new Error('not challenged')
    await mineTo(Number(c.seedBlock) + 1)
    c = await storage.challengeOf(op.address, epoch)
    const index = Number(c.index)
    const receipt = await send((storage.connect(op) as any).proveSegment(c.dealId, index, segment(index), proofOf(levels, index)))
    return receipt.gasUsed
  }

  // epoch 1 of the run: first proofs (claimable goes 0 -> non-zero); then steady epochs
  const proofs: Record<string, bigint[]> = { one: [], hundred: [] }
  const firstProof: Record<string, bigint> = {}
  let firstEpoch = 0
  for (let k = 0; k < 6; k++) {
    const e = await freshEpoch()
    if (k === 0) firstEpoch = e
    const g1 = await prove(op1)
    const g100 = await prove(op100)
    if (k === 0) { firstProof.one = g1; firstProof.hundred = g100 } else { proofs.one?.push(g1); proofs.hundred?.push(g100) }
  }
  const claimGas: bigint = (await send((storage.connect(owner100) as any).claim())).gasUsed
  await freshEpoch()
  const afterClaim = await prove(op100)

  const max = (xs: bigint[]): bigint => xs.reduce((a, b) => (a > b ? a : b), 0n)
  const min = (xs: bigint[]): bigint => xs.reduce((a, b) => (a < b ? a : b), xs[0] ?? 0n)
  const p1 = max(proofs.one ?? [])
  const p100 = max(proofs.hundred ?? [])
  const acceptMax = max(acceptGas)
  const ok = (v: bigint, limit: bigint): string => (v <= limit ? 'yes' : '**no**')
  const rows = [
    `| proof, 1 GiB deal, 1 deal held (max of 5 epochs) | ${p1} | ${LIMITS.proof} | ${ok(p1, LIMITS.proof)} |`,
    `| proof, 1 GiB deal, 100 deals held (max of 5 epochs) | ${p100} | ${LIMITS.proof} | ${ok(p100, LIMITS.proof)} |`,
    `| claim | ${claimGas} | ${LIMITS.claim} | ${ok(claimGas, LIMITS.claim)} |`,
    `| accept a slot (max of 101; min ${min(acceptGas)}) | ${acceptMax} | ${LIMITS.accept} | ${ok(acceptMax, LIMITS.accept)} |`,
    `| first proof, ${firstEpoch - cursor} epochs after the first accept (the expiry cursor walks each, ~2.1k), 1 / 100 deals | ${firstProof.one} / ${firstProof.hundred} | – | – |`,
    `| first proof after a claim, 100 deals | ${afterClaim} | – | – |`,
    `| open a deal (max) | ${max(openGas)} | – | – |`,
    `| join a pool (max of 2) | ${max(joinGas)} | – | – |`
  ]
  const section = [
    '## Gas (cancun)',
    '',
    `anvil ${EPOCH}-block epochs, ${WINDOW}-block proof window, solc 0.8 optimizer 200 runs, evmVersion cancun. The deal is 1 GiB of random content ` +
      `(AES-CTR stream; ${SEGMENTS} segments, 20-hash Merkle path, 1024-byte segment in calldata); emission from a funded reserve is on, so the reserve is written by every proof. ` +
      'The contract chooses the challenged deal and segment; "max of 5 epochs" is the largest gas over 5 steady epochs. ' +
      'Proof gas does not depend on the number of deals held; it grows by one cold storage read (~2.1k) per epoch since the member\'s previous proof (or its first accept), which the "first proof" row shows. ' +
      'A claim leaves a 1-wei marker in storage so the next credit is not a 20k zero-to-non-zero write (the "first proof after a claim" row).',
    '',
    '| what | gas | limit | within |',
    '| --- | ---: | ---: | --- |',
    ...rows,
    '',
    `Generated by \`npx node bench/gas.ts\` on ${new Date().toISOString()}.`,
    ''
  ].join('\n')
  console.log(section)

  const file = join(ROOT, 'bench', 'results.md')
  let text = ''
  try { text = await readFile(file, 'utf8') } catch { text = '# Benchmarks\n' }
  const start = text.indexOf('## Gas (cancun)')
  if (start >= 0) {
    const next = text.indexOf('\n## ', start + 1)
    text = text.slice(0, start) + section + (next >= 0 ? text.slice(next + 1) : '')
  } else {
    text = text.replace(/\n*$/, '\n\n') + section
  }
  await writeFile(file, text.replace(/\n*$/, '\n'))
} finally {
  await anvil.stop()
}
