import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { readdirSync } from 'node:fs'
import { CarBlockIterator } from '@ipld/car'
import * as raw from 'multiformats/codecs/raw'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { assertComplete, encodeCarHeader, exportCar, importCar } from '../../src/content/car.ts'
import { bytesOf, collect, expectCode, FIXTURES, tempStore } from './helpers.ts'
import type { TempStore } from './helpers.ts'

function findCars (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(d => d.isDirectory() ? findCars(join(dir, d.name)) : d.name.endsWith('.car') ? [join(dir, d.name)] : [])
}

const ALL_CARS = findCars(FIXTURES).sort()
const MISSING_BLOCK_CAR = join(FIXTURES, 'trustless_gateway_car/file-3k-and-3-blocks-missing-block.car')

async function carBlocks (source: AsyncIterable<Uint8Array>): Promise<{ roots: CID[], cids: string[] }> {
  const it = await CarBlockIterator.fromIterable(source)
  const cids: string[] = []
  for await (const b of it) cids.push(b.cid.toString())
  return { roots: await it.getRoots(), cids }
}

async function rawBlock (text: string): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = new TextEncoder().encode(text)
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

/** A CARv1 built by hand, so tests can corrupt it at exact places. */
function carOf (roots: CID[], blocks: Array<{ cid: CID, bytes: Uint8Array }>): Uint8Array {
  const parts: Uint8Array[] = [encodeCarHeader(roots)]
  for (const { cid, bytes } of blocks) {
    const len = cid.bytes.length + bytes.length
    const varint: number[] = []
    let n = len
    while (n >= 0x80) { varint.push((n & 0x7f) | 0x80); n >>>= 7 }
    varint.push(n)
    parts.push(Uint8Array.from(varint), cid.bytes, bytes)
  }
  return Buffer.concat(parts)
}

describe('CAR import/export', () => {
  let t: TempStore
  beforeEach(async () => { t = await tempStore() })
  afterEach(async () => { await t.cleanup() })

  it('finds the conformance fixtures', () => {
    expect(ALL_CARS.length).toBeGreaterThanOrEqual(20)
    expect(ALL_CARS).toContain(MISSING_BLOCK_CAR)
  })

  for (const car of ALL_CARS) {
    it(`imports ${relative(FIXTURES, car)} and exports its roots to the same blocks in the same order`, async () => {
      const original = await carBlocks(createReadStream(car))
      const result = await importCar(t.store, createReadStream(car))
      expect(result.roots.map(String)).toEqual(original.roots.map(String))
      expect(result.blocks).toBe(original.cids.length)
      expect(t.store.stat().blocks).toBeLessThanOrEqual(original.cids.length)
      if (car === MISSING_BLOCK_CAR) {
        await expectCode(collect(exportCar(t.store, result.roots)), 'ERR_BLOCK_MISSING')
        return
      }
      for (const root of result.roots) {
        await assertComplete(t.store, root)
      }
      const exported = await carBlocks(exportCar(t.store, result.roots))
      expect(exported.roots.map(String)).toEqual(original.roots.map(String))
      // Kubo writes these fixtures depth-first, links in order: the same walk as ours
      expect(exported.cids).toEqual(original.cids)
    })
  }

  it('the missing-block fixture fails assertComplete naming the block, quickly', async () => {
    const { roots } = await importCar(t.store, createReadStream(MISSING_BLOCK_CAR))
    const started = Date.now()
    const err: any = await expectCode(assertComplete(t.store, roots[0]!), 'ERR_BLOCK_MISSING')
    expect(Date.now() - started).toBeLessThan(2000)
    expect(err.cid).toBeInstanceOf(CID)
    expect(err.message).toContain(err.cid.toString())
    expect(await t.store.has(err.cid)).toBe(false)
  })

  it('a flipped byte gives ERR_BLOCK_HASH_MISMATCH naming the CID; blocks before it stay, none after', async () => {
    const a = await rawBlock('first block')
    const b = await rawBlock('second block')
    const c = await rawBlock('third block')
    const bytes = carOf([a.cid], [a, b, c])
    // flip the last byte of block b's data
    const tampered = bytes.slice()
    const bEnd = Buffer.from(bytes).indexOf(Buffer.from(b.bytes)) + b.bytes.length - 1
    tampered[bEnd] = (tampered[bEnd] ?? 0) ^ 0x01
    let closed = false
    const source = async function * (): AsyncGenerator<Uint8Array> {
      try {
        yield tampered
        yield new Uint8Array(0)
      } finally {
        closed = true
      }
    }
    const err: any = await expectCode(importCar(t.store, source()), 'ERR_BLOCK_HASH_MISMATCH')
    // the failed import closed its source (for a file: the fd)
    expect(closed).toBe(true)
    expect(err.message).toContain(b.cid.toString())
    expect(err.blocksStored).toBe(1)
    expect(await t.store.has(a.cid)).toBe(true)
    expect(await t.store.has(b.cid)).toBe(false)
    expect(await t.store.has(c.cid)).toBe(false)
  })

  it('a truncated CAR gives ERR_CAR_TRUNCATED, a non-CAR ERR_CAR_INVALID', async () => {
    const whole = await readFile(join(FIXTURES, 'path_gateway_unixfs/dir-with-files.car'))
    await expectCode(importCar(t.store, bytesOf(whole.subarray(0, whole.length - 7))), 'ERR_CAR_TRUNCATED')
    await expectCode(importCar(t.store, bytesOf(new TextEncoder().encode('hello, this is not a CAR file at all'))), 'ERR_CAR_INVALID')
    await expectCode(importCar(t.store, bytesOf()), 'ERR_CAR_INVALID')
    // a stream cut in tiny pieces still imports: the reader must not depend on chunk boundaries
    const pieces = Array.from({ length: Math.ceil(whole.length / 3) }, (_, i) => whole.subarray(i * 3, i * 3 + 3))
    expect((await importCar(t.store, bytesOf(...pieces))).blocks).toBe(9)
  })

  it('refuses an oversized block before buffering it', async () => {
    const big = await rawBlock('x'.repeat(2000))
    await expectCode(importCar(t.store, bytesOf(carOf([big.cid], [big])), { maxBlockBytes: 1024 }), 'ERR_BLOCK_TOO_LARGE')
    expect(await t.store.has(big.cid)).toBe(false)
    expect((await importCar(t.store, bytesOf(carOf([big.cid], [big])), { maxBlockBytes: 4096 })).blocks).toBe(1)
    // a section header claiming 1 GiB must fail at once, not wait for (or allocate) a gigabyte
    const header = encodeCarHeader([big.cid])
    const lie = Buffer.concat([header, Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x04]), big.cid.bytes])
    await expectCode(importCar(t.store, bytesOf(lie)), 'ERR_BLOCK_TOO_LARGE')
  })

  it('exports many roots sharing blocks once each', async () => {
    const a = await rawBlock('shared')
    const out = await carBlocks(exportCar(await (async () => { await t.store.put(a.cid, a.bytes); return t.store })(), [a.cid, a.cid]))
    expect(out.cids).toEqual([a.cid.toString()])
    expect(out.roots.map(String)).toEqual([a.cid.toString(), a.cid.toString()])
  })
})
