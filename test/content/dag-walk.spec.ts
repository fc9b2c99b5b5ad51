import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import * as raw from 'multiformats/codecs/raw'
import { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { walkDag } from '../../src/content/dag-walk.ts'
import { expectCode, tempStore } from './helpers.ts'
import type { DagBlock } from '../../src/content/types.ts'
import type { TempStore } from './helpers.ts'

describe('walkDag', () => {
  let t: TempStore
  beforeEach(async () => { t = await tempStore() })
  afterEach(async () => { await t.cleanup() })

  const put = async (code: number, bytes: Uint8Array, version: 0 | 1 = 1): Promise<CID> => {
    const digest = await sha256.digest(bytes)
    const cid = version === 0 ? CID.createV0(digest) : CID.createV1(code, digest)
    await t.store.put(cid, bytes)
    return cid
  }
  const leaf = async (text: string): Promise<CID> => put(raw.code, new TextEncoder().encode(text))
  const pbNode = async (links: Array<[string, CID]>): Promise<CID> =>
    put(dagPb.code, dagPb.encode(dagPb.prepare({ Data: new Uint8Array([8, 1]), Links: links.map(([Name, Hash]) => ({ Name, Hash, Tsize: 1 })) })), 0)
  const walk = async (root: CID, options = {}): Promise<DagBlock[]> => {
    const out: DagBlock[] = []
    for await (const b of walkDag(t.store, root, options)) out.push(b)
    return out
  }

  it('visits a dag-pb tree depth-first pre-order, links in encoded order, each block once', async () => {
    const l1 = await leaf('l1')
    const l2 = await leaf('l2')
    const l3 = await leaf('l3')
    const a = await pbNode([['x', l1], ['y', l2]])
    const b = await pbNode([['x', l2], ['y', l3]])
    // dag-pb keeps link order as encoded (names sorted), so a comes before b, and the repeated a is skipped
    const root = await pbNode([['a', a], ['b', b], ['c', a]])
    const order = (await walk(root)).map(x => x.cid.toString())
    expect(order).toEqual([root, a, l1, l2, b, l3].map(String))
    const blocks = await walk(root, { readAhead: 0 })
    expect(blocks.map(x => x.cid.toString())).toEqual(order)
    expect(blocks[0]!.bytes).toEqual(await collectBlock(t, root))
  })

  it('follows dag-cbor and dag-json links in encoded key order, through identity CIDs', async () => {
    const [la, lb, laa, lj, l10] = await Promise.all(['a', 'b', 'aa', 'j', '10'].map(leaf))
    // dag-cbor sorts keys shortest first, then bytewise: a, b, 10, aa (JS property order puts 10 first)
    const cbor = await put(dagCbor.code, dagCbor.encode({ aa: laa!, b: lb!, a: [la!, { deep: la! }], 10: l10!, s: 'not a link' }))
    const json = await put(dagJson.code, dagJson.encode({ z: cbor, j: lj! }))
    // an identity CID holds its block inline: no block is emitted, yet its links are walked
    const inline = CID.createV1(dagCbor.code, identity.digest(dagCbor.encode({ next: json })))
    const root = await put(dagCbor.code, dagCbor.encode({ inline }))
    const order = (await walk(root)).map(x => x.cid.toString())
    expect(order).toEqual([root, json, lj, cbor, la, lb, l10, laa].map(String))
  })

  it('throws ERR_BLOCK_MISSING naming the CID, after yielding what was there', async () => {
    const missing = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('gone')))
    const root = await pbNode([['a', await leaf('here')], ['b', missing]])
    const seen: string[] = []
    const err: any = await expectCode((async () => {
      for await (const b of walkDag(t.store, root)) seen.push(b.cid.toString())
    })(), 'ERR_BLOCK_MISSING')
    expect(err.message).toContain(missing.toString())
    expect(err.cid.equals(missing)).toBe(true)
    expect(seen).toHaveLength(2)
  })

  it('throws ERR_UNSUPPORTED_CODEC for codecs it cannot read links from', async () => {
    const odd = await put(0x300001, new Uint8Array([1, 2, 3]))
    await expectCode(walk(odd), 'ERR_UNSUPPORTED_CODEC')
  })

  it('reports progress and stops on abort', async () => {
    const root = await pbNode([['a', await leaf('1')], ['b', await leaf('2')]])
    const progress: Array<{ blocks: number, bytes: number }> = []
    const blocks = await walk(root, { onProgress: (p: { blocks: number, bytes: number }) => progress.push(p) })
    expect(progress.map(p => p.blocks)).toEqual([1, 2, 3])
    expect(progress.at(-1)!.bytes).toBe(blocks.reduce((n, b) => n + b.bytes.length, 0))
    const controller = new AbortController()
    controller.abort()
    await expect(walk(root, { signal: controller.signal })).rejects.toThrow()
  })
})

async function collectBlock (t: TempStore, cid: CID): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of t.store.get(cid)) parts.push(p)
  return Buffer.concat(parts)
}
