import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import all from 'it-all'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { createBlockstore } from '../../src/store/blockstore.ts'
import { createDirectWriter } from '../../src/store/direct-writer.ts'
import { oDirectDir } from '../helpers/o-direct.ts'
import type { DirectWriter } from '../../src/store/direct-writer.ts'

async function expectFile (path: string, bytes: Uint8Array): Promise<void> {
  expect((await fs.readFile(path)).equals(bytes), path).toBe(true)
}

/** The files `writer` wrote in `dir` hold these bytes and nothing else is there; then its slots go. */
async function expectWritten (writer: DirectWriter, dir: string, files: Record<string, Uint8Array>): Promise<void> {
  expect((await fs.readdir(dir)).sort()).toEqual(Object.keys(files).sort())
  for (const [name, bytes] of Object.entries(files)) await expectFile(join(dir, name), bytes)
  expect(writer.written).toBe(Object.keys(files).length)
  writer.unmap()
}

async function block (bytes: Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> {
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

describe('direct block writes', () => {
  let dir: string
  beforeEach(async () => { dir = await oDirectDir() })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('writes big blocks with O_DIRECT, padded and truncated to their size, and small ones through the page cache', async () => {
    const store = createBlockstore({ path: join(dir, 'blocks') })
    await store.open()
    try {
      const whole = await block(randomBytes(1024 * 1024))
      // not a multiple of 4 KiB: written padded, then cut back
      const odd = await block(randomBytes(100_001))
      const small = await block(randomBytes(10_000))
      // a leaf the importer hands over as the list of chunks it was cut from
      await store.put(whole.cid, [whole.bytes.subarray(0, 300_000), whole.bytes.subarray(300_000)])
      await store.put(odd.cid, odd.bytes)
      await store.put(small.cid, small.bytes)
      expect(store.directWrites).toBe(2)
      for (const b of [whole, odd, small]) {
        expect(await store.size(b.cid)).toBe(b.bytes.byteLength)
        expect(Buffer.concat(await all(store.get(b.cid))).equals(b.bytes)).toBe(true)
      }
    } finally {
      await store.close()
    }
  })

  it('leaves an existing block alone: the writer\'s exclusive open is EEXIST, and the store\'s putNew answers false without writing', async () => {
    const writer = createDirectWriter()
    const first = randomBytes(300_000)
    expect(await writer.write(join(dir, 'a'), [first], first.byteLength)).toBe(true)
    const err = await writer.write(join(dir, 'a'), [randomBytes(300_000)], 300_000).catch((e: unknown) => e)
    expect(err).toHaveProperty('code', 'EEXIST')
    await expectWritten(writer, dir, { a: first })

    const store = createBlockstore({ path: join(dir, 'blocks') })
    await store.open()
    try {
      const big = await block(randomBytes(1024 * 1024))
      expect(await store.putNew(big.cid, big.bytes)).toBe(true)
      expect(await store.putNew(big.cid, big.bytes)).toBe(false)
      expect(store.directWrites).toBe(1)
      expect(store.stat()).toEqual({ blocks: 1, bytes: 1024 * 1024 })
    } finally {
      await store.close()
    }
  })

  it('has, size and get issued while a block is being written in place wait for it and see it whole', async () => {
    const store = createBlockstore({ path: join(dir, 'blocks') })
    await store.open()
    try {
      const big = await block(randomBytes(1024 * 1024))
      const putting = store.put(big.cid, big.bytes)
      const [has, size, bytes] = await Promise.all([store.has(big.cid), store.size(big.cid), all(store.get(big.cid))])
      await putting
      expect(store.directWrites).toBe(1)
      expect(has).toBe(true)
      expect(size).toBe(big.bytes.byteLength)
      expect(Buffer.concat(bytes).equals(big.bytes)).toBe(true)
    } finally {
      await store.close()
    }
  })

  it('writes nothing directly when turned off', async () => {
    const store = createBlockstore({ path: join(dir, 'blocks'), directWrites: false })
    await store.open()
    try {
      const big = await block(randomBytes(1024 * 1024))
      await store.put(big.cid, big.bytes)
      expect(store.directWrites).toBe(0)
      expect(Buffer.concat(await all(store.get(big.cid))).equals(big.bytes)).toBe(true)
    } finally {
      await store.close()
    }
  })

  it('declines, leaving no file, when every slot is in use or the block does not fit one', async () => {
    const writer = createDirectWriter({ slots: 1, slotBytes: 64 * 1024 })
    const bytes = randomBytes(64 * 1024)
    const [first, second] = await Promise.all([
      writer.write(join(dir, 'a'), [bytes], bytes.byteLength),
      writer.write(join(dir, 'b'), [bytes], bytes.byteLength)
    ])
    expect([first, second]).toEqual([true, false])
    expect(await writer.write(join(dir, 'c'), [randomBytes(64 * 1024 + 1)], 64 * 1024 + 1)).toBe(false)
    await expectWritten(writer, dir, { a: bytes })
  })

  it('lets its slots go when idle and maps new ones for the next write', async () => {
    const writer = createDirectWriter({ idleMs: 10 })
    expect(writer.mapped).toBe(false)
    const first = randomBytes(70_000)
    expect(await writer.write(join(dir, 'a'), [first], first.byteLength)).toBe(true)
    expect(writer.mapped).toBe(true)
    for (let i = 0; i < 100 && writer.mapped; i++) await new Promise(resolve => setTimeout(resolve, 10))
    expect(writer.mapped).toBe(false)
    const second = randomBytes(70_000)
    expect(await writer.write(join(dir, 'b'), [second], second.byteLength)).toBe(true)
    expect(writer.mapped).toBe(true)
    writer.unmap()
    expect(writer.mapped).toBe(false)
    const third = randomBytes(5000)
    expect(await writer.write(join(dir, 'c'), [third], third.byteLength)).toBe(true)
    await expectWritten(writer, dir, { a: first, b: second, c: third })
  })

  it('turns itself off, leaving no file, when the disk refuses the write (a length the device cannot take)', async () => {
    // alignment 1: a 1000-byte O_DIRECT write, which no block device accepts
    const writer = createDirectWriter({ align: 1 })
    expect(await writer.write(join(dir, 'a'), [randomBytes(1000)], 1000)).toBe(false)
    expect(writer.enabled).toBe(false)
    await expectWritten(writer, dir, {})
  })

  it('lends its slots: a block filled in one is written from it without a second slot, and the slot comes back on release', async () => {
    const writer = createDirectWriter({ slots: 1, slotBytes: 256 * 1024 })
    const bytes = randomBytes(200_000)
    const lent = writer.take(bytes.byteLength)
    // an aligned slot of the writer's own memory, not a buffer of its own
    expect(lent.byteLength).toBe(bytes.byteLength)
    expect(lent.buffer.byteLength).toBeGreaterThanOrEqual(256 * 1024)
    expect(lent.byteOffset % 4096).toBe(0)
    expect(writer.free).toBe(0)
    // with the only slot lent, more takes get plain buffers, and small ones always do
    expect(writer.take(100_000).buffer.byteLength).toBe(100_000)
    expect(writer.take(1000).buffer.byteLength).toBe(1000)
    lent.set(bytes)
    // written from the lent slot though no slot is free; a plain block in its place is declined
    expect(await writer.write(join(dir, 'plain'), [randomBytes(1000)], 1000)).toBe(false)
    expect(await writer.write(join(dir, 'lent'), [lent], lent.byteLength)).toBe(true)
    // the slot is still the caller's until it is given back
    expect(writer.free).toBe(0)
    writer.release(new Uint8Array(10))
    expect(writer.free).toBe(0)
    writer.release(lent)
    expect(writer.free).toBe(1)
    // given back once: a second release does not hand it out twice
    writer.release(lent)
    expect(writer.free).toBe(1)
    await expectWritten(writer, dir, { lent: bytes })
  })

  it('does not take back a slot lent before its memory was let go', async () => {
    const writer = createDirectWriter({ slots: 1, slotBytes: 256 * 1024 })
    const old = writer.take(100_000)
    writer.unmap()
    writer.release(old)
    expect(writer.free).toBe(0)
    const fresh = writer.take(100_000)
    expect(fresh.buffer).not.toBe(old.buffer)
    // a block still in the old memory is not mistaken for a lent slot: it is copied into a free one
    writer.release(fresh)
    const bytes = randomBytes(100_000)
    old.set(bytes)
    expect(await writer.write(join(dir, 'old'), [old], old.byteLength)).toBe(true)
    await expectWritten(writer, dir, { old: bytes })
  })
})
