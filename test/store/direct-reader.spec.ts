import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { createBlockstore } from '../../src/store/blockstore.ts'
import { createBufferPool } from '../../src/store/buffer-pool.ts'
import { createDirectReader } from '../../src/store/direct-reader.ts'
import { createDirectWriter } from '../../src/store/direct-writer.ts'
import { oDirectDir } from '../helpers/o-direct.ts'

const KIB = 1024
const MIB = 1024 * 1024

/** Pages of `path` in the page cache, from util-linux's fincore (what the bench checks with). */
function cachedPages (path: string): number {
  const run = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'PAGES', path], { encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`fincore failed: ${run.stderr ?? run.error?.message ?? ''}`)
  return Number(run.stdout.trim())
}

/** Writes `bytes` at `path` with O_DIRECT, so none of it is in the page cache. */
async function writeUncached (path: string, bytes: Uint8Array): Promise<void> {
  const writer = createDirectWriter({ slotBytes: bytes.byteLength, slots: 1 })
  expect(await writer.write(path, [bytes], bytes.byteLength)).toBe(true)
  writer.unmap()
}

describe('direct block reads', () => {
  let dir: string
  beforeEach(async () => { dir = await oDirectDir() })
  afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }) })

  it('reads whole files of any size into slots, small ones copied out, larger than a slot declined', async () => {
    const reader = createDirectReader({ slots: 4 })
    try {
      const sizes = [0, 1, 4095, 4096, 64 * KIB - 1, 64 * KIB, 100_000, MIB - 1, MIB]
      const slotViews: Uint8Array[] = []
      for (const size of sizes) {
        const bytes = randomBytes(size)
        const path = join(dir, `f${size}`)
        await fs.writeFile(path, bytes)
        const read = await reader.read(path)
        expect(read, `size ${size}`).toBeDefined()
        expect(Buffer.from(read as Uint8Array).equals(bytes), `size ${size}`).toBe(true)
        if (size >= 64 * KIB) {
          // a view of the mapping the slots live in; given back below
          slotViews.push(read as Uint8Array)
          if (slotViews.length === 4) {
            expect(reader.free).toBe(0)
            for (const view of slotViews.splice(0)) reader.release(view)
          }
        } else {
          expect((read as Uint8Array).byteLength).toBe((read as Uint8Array).buffer.byteLength)
        }
      }
      for (const view of slotViews) reader.release(view)
      expect(reader.free).toBe(4)
      expect(reader.reads).toBe(sizes.length)

      // larger than a slot: not read this way, and the slot is back
      for (const size of [MIB + 1, MIB + 4096, 2 * MIB]) {
        await fs.writeFile(join(dir, 'big'), randomBytes(size))
        expect(await reader.read(join(dir, 'big')), `size ${size}`).toBeUndefined()
        expect(reader.free).toBe(4)
      }
      expect(reader.enabled).toBe(true)
    } finally {
      reader.unmap()
    }
  })

  it('reads only the pages a file needs: small files read through every slot leave them untouched', async () => {
    const reader = createDirectReader({ slots: 24 })
    try {
      const path = join(dir, 'small')
      await fs.writeFile(path, randomBytes(3000))
      const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024
      const before = rss()
      // every slot out at once, then all back: 24 slots of 1 MiB, each read into
      const reads = await Promise.all(Array.from({ length: 24 }, async () => await reader.read(path)))
      expect(reads.every(r => r?.byteLength === 3000)).toBe(true)
      expect(reader.free).toBe(24)
      // a direct read of the slot's length would have faulted in ~24 MiB
      expect(rss() - before).toBeLessThan(8 * MIB)
    } finally {
      reader.unmap()
    }
  })

  it('leaves the page cache out', async () => {
    const bytes = randomBytes(MIB)
    const path = join(dir, 'block')
    await writeUncached(path, bytes)
    expect(cachedPages(path)).toBe(0)
    const reader = createDirectReader({ slots: 1 })
    try {
      const read = await reader.read(path) as Uint8Array
      expect(Buffer.from(read).equals(bytes)).toBe(true)
      expect(cachedPages(path)).toBe(0)
      reader.release(read)
      // the same read through the page cache fills it: the check above can see a cached page
      await fs.readFile(path)
      expect(cachedPages(path)).toBeGreaterThan(0)
    } finally {
      reader.unmap()
    }
  })

  it('with every slot out it declines, and a released slot serves the next read; releases are idempotent', async () => {
    const reader = createDirectReader({ slots: 2 })
    try {
      const a = randomBytes(200 * KIB)
      await fs.writeFile(join(dir, 'a'), a)
      const first = await reader.read(join(dir, 'a')) as Uint8Array
      const second = await reader.read(join(dir, 'a')) as Uint8Array
      expect(await reader.read(join(dir, 'a'))).toBeUndefined()
      reader.release(first)
      reader.release(first)
      expect(reader.free).toBe(1)
      const third = await reader.read(join(dir, 'a')) as Uint8Array
      // the slot first was read into, now holding the third read
      expect(third.buffer).toBe(first.buffer)
      expect(third.byteOffset).toBe(first.byteOffset)
      expect(Buffer.from(third).equals(a)).toBe(true)
      expect(Buffer.from(second).equals(a)).toBe(true)
      // a buffer that is not a slot goes to the fallback pool, not into the slots
      reader.release(new Uint8Array(4096))
      expect(reader.free).toBe(0)
    } finally {
      reader.unmap()
    }
  })

  it('throws for a missing file and keeps its slot', async () => {
    const reader = createDirectReader({ slots: 1 })
    try {
      await expect(reader.read(join(dir, 'nothing'))).rejects.toMatchObject({ code: 'ENOENT' })
      expect(reader.free).toBe(1)
    } finally {
      reader.unmap()
    }
  })

  it('turns itself off when the disk refuses the read (a length the device cannot take)', async () => {
    // reads padded to 256 bytes only: a length of 256 past a 512-byte multiple suits no disk
    const reader = createDirectReader({ slots: 2, align: 256 })
    try {
      await fs.writeFile(join(dir, 'a'), randomBytes(100 * KIB + 100))
      expect(await reader.read(join(dir, 'a'))).toBeUndefined()
      expect(reader.enabled).toBe(false)
      expect(reader.free).toBe(2)
      expect(await reader.read(join(dir, 'a'))).toBeUndefined()
      expect(reader.reads).toBe(0)
    } finally {
      reader.unmap()
    }
  })

  it('takes from and gives back to its fallback pool for reads that are not direct', async () => {
    const fallback = createBufferPool({ bufferBytes: MIB, maxFree: 2 })
    const reader = createDirectReader({ slots: 1, fallback })
    const buffer = reader.take(300 * KIB)
    expect(buffer.buffer.byteLength).toBe(MIB)
    reader.release(buffer)
    expect(fallback.free).toBe(1)
    reader.unmap()
  })

  it('serves the store\'s pooled reads, counted, with the fallback when no slot is free', async () => {
    const store = createBlockstore({ path: join(dir, 'blocks') })
    await store.open()
    try {
      const pool = store.readBuffers
      expect(pool).toBeDefined()
      const blocks = await Promise.all([MIB, 300 * KIB, 10 * KIB].map(async size => {
        const bytes = randomBytes(size)
        const cid = CID.createV1(raw.code, await sha256.digest(bytes))
        await store.put(cid, bytes)
        return { cid, bytes }
      }))
      await store.sync()
      for (const { cid, bytes } of blocks) {
        const read = await store.getPooled(cid, pool!)
        expect(Buffer.from(read).equals(bytes)).toBe(true)
        pool!.release(read)
      }
      expect(store.directReads).toBe(3)
      const missing = CID.createV1(raw.code, await sha256.digest(randomBytes(8)))
      await expect(store.getPooled(missing, pool!)).rejects.toMatchObject({ name: 'NotFoundError' })

      // 24 slots out: the 25th read goes through the page cache into a fallback buffer, still right
      const held: Uint8Array[] = []
      for (let i = 0; i < 25; i++) held.push(await store.getPooled(blocks[0]!.cid, pool!))
      expect(store.directReads).toBe(3 + 24)
      for (const read of held) expect(Buffer.from(read).equals(blocks[0]!.bytes)).toBe(true)
      for (const read of held) pool!.release(read)
    } finally {
      await store.close()
    }
  })
})
