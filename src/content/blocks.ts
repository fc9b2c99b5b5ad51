import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as json from 'multiformats/codecs/json'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { webcrypto } from 'node:crypto'
import { BlockMissingError, UnsupportedCodecError, UnsupportedHashError } from './errors.ts'
import type { BufferPool } from '../store/buffer-pool.ts'
import type { RepoBlockstore } from '../store/types.ts'
import type { Blockstore } from 'interface-blockstore'
import type { AbortOptions } from 'abort-error'
import type { MultihashHasher } from 'multiformats/hashes/interface'

export const CBOR_CODE = 0x51
export const IDENTITY_CODE = identity.code

/** Reads one whole block; the store's NotFoundError becomes our typed ERR_BLOCK_MISSING. */
export async function readBlock (blockstore: Pick<Blockstore, 'get'>, cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
  if (cid.multihash.code === IDENTITY_CODE) {
    return cid.multihash.digest
  }
  const chunks: Uint8Array[] = []
  let length = 0
  try {
    for await (const chunk of blockstore.get(cid, options)) {
      chunks.push(chunk)
      length += chunk.byteLength
    }
  } catch (err) {
    throw asBlockMissing(err, cid)
  }
  if (chunks.length === 1 && chunks[0] != null) {
    return chunks[0]
  }
  return concatBytes(chunks, length)
}

/**
 * Like `readBlock`, into a buffer from `pool` when the store can read into one (the caller
 * releases it). Only for blocks whose bytes are not decoded into lasting objects: a CID decoded
 * from a pooled buffer would change under its holder when the buffer is reused.
 */
export async function readBlockPooled (blockstore: Pick<Blockstore, 'get'> & { getPooled?: RepoBlockstore['getPooled'] }, cid: CID, pool: BufferPool | undefined, options: AbortOptions = {}): Promise<Uint8Array> {
  if (pool == null || blockstore.getPooled == null || cid.multihash.code === IDENTITY_CODE) return await readBlock(blockstore, cid, options)
  try {
    return await blockstore.getPooled(cid, pool, options)
  } catch (err) {
    throw asBlockMissing(err, cid)
  }
}

/** The store's NotFoundError as our typed ERR_BLOCK_MISSING; other errors unchanged. */
function asBlockMissing (err: any, cid: CID): unknown {
  return err?.name === 'NotFoundError' || err?.code === 'ERR_NOT_FOUND' ? new BlockMissingError(cid, { cause: err }) : err
}

/** `parts` joined into one new array; `length` is their total, when the caller already counted it. */
export function concatBytes (parts: Uint8Array[], length = parts.reduce((n, p) => n + p.byteLength, 0)): Uint8Array {
  return copyInto(new Uint8Array(length), parts)
}

/** `parts` copied one after another into the start of `target`, which must be long enough; returns `target`. */
export function copyInto (target: Uint8Array, parts: Uint8Array[]): Uint8Array {
  let offset = 0
  for (const part of parts) {
    target.set(part, offset)
    offset += part.byteLength
  }
  return target
}

/**
 * The CIDs a block links to, in the order they appear in its encoding. For dag-cbor and
 * dag-json, map keys are visited in each codec's canonical key order (the order the encoder
 * wrote them), not in JS property order, which would put integer-like keys first.
 */
export function blockLinks (cid: CID, bytes: Uint8Array): CID[] {
  switch (cid.code) {
    case dagPb.code:
      return dagPb.decode(bytes).Links.map(link => link.Hash)
    case raw.code:
    case json.code:
    case CBOR_CODE:
      return []
    case dagCbor.code: {
      const out: CID[] = []
      collectLinks(dagCbor.decode(bytes), out, compareDagCborKeys)
      return out
    }
    case dagJson.code: {
      const out: CID[] = []
      collectLinks(dagJson.decode(bytes), out, compareDagJsonKeys)
      return out
    }
    default:
      throw new UnsupportedCodecError(cid)
  }
}

const utf8 = new TextEncoder()

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) {
      return d
    }
  }
  return a.length - b.length
}

/** RFC 7049 canonical order, as dag-cbor encodes: shorter keys first, then bytewise. */
function compareDagCborKeys (a: string, b: string): number {
  const ab = utf8.encode(a)
  const bb = utf8.encode(b)
  return ab.length !== bb.length ? ab.length - bb.length : compareBytes(ab, bb)
}

/** dag-json sorts keys as strings. */
function compareDagJsonKeys (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function collectLinks (value: unknown, out: CID[], compare: (a: string, b: string) => number): void {
  if (value == null || typeof value !== 'object' || value instanceof Uint8Array) {
    return
  }
  const cid = CID.asCID(value)
  if (cid != null) {
    out.push(cid)
    return
  }
  if (Array.isArray(value)) {
    for (const item of value) {
      collectLinks(item, out, compare)
    }
    return
  }
  const record = value as Record<string, unknown>
  for (const key of Object.keys(record).sort(compare)) {
    collectLinks(record[key], out, compare)
  }
}

export type Hashers = ReadonlyMap<number, MultihashHasher>

/** The hash functions blocks are checked with: sha2-256, sha2-512 and identity, plus `extra`. */
export function hasherTable (extra: MultihashHasher[] = []): Hashers {
  return new Map([sha256, sha512, identity as MultihashHasher, ...extra].map(h => [h.code, h]))
}

const HASHERS = hasherTable()

/** True when `bytes` hash to `cid`'s multihash; ERR_UNSUPPORTED_HASH when `hashers` lacks its function. */
export async function verifyBlock (cid: CID, bytes: Uint8Array, hashers: Hashers = HASHERS): Promise<boolean> {
  const hasher = hashers.get(cid.multihash.code)
  if (hasher == null) {
    throw new UnsupportedHashError(cid)
  }
  return digestMatches(cid, (await hasher.digest(bytes)).digest)
}

/** Whether `digest`, the full output of `cid`'s hash function, is the one `cid` names. */
function digestMatches (cid: CID, digest: Uint8Array): boolean {
  const expected = cid.multihash.digest
  // truncated multihashes (a shorter declared length) compare on their prefix
  return expected.length <= digest.length && compareBytes(digest.subarray(0, expected.length), expected) === 0
}

/**
 * sha2-256 blocks at least this big are hashed by `verifyBlockOffThread` on libuv's thread pool
 * (WebCrypto), whose job copies its input first: under it, the copy and the hop cost more than they save.
 */
export const OFF_THREAD_HASH_BYTES = 64 * 1024

/**
 * `verifyBlock` with the hashing itself off the main thread where that pays: a sha2-256 block of
 * `OFF_THREAD_HASH_BYTES` or more is hashed on the thread pool, so the caller's loop goes on (reading
 * the network, say) while it runs. The job copies `bytes` before this returns, so the caller may
 * reuse them at once. Others are hashed here, as by `verifyBlock`.
 */
export async function verifyBlockOffThread (cid: CID, bytes: Uint8Array, hashers: Hashers = HASHERS): Promise<boolean> {
  if (cid.multihash.code !== sha256.code || bytes.byteLength < OFF_THREAD_HASH_BYTES || hashers.get(sha256.code) !== sha256) {
    return await verifyBlock(cid, bytes, hashers)
  }
  return digestMatches(cid, new Uint8Array(await webcrypto.subtle.digest('SHA-256', bytes)))
}

/**
 * A view of the store whose `get` throws ERR_BLOCK_MISSING naming the CID, so libraries that read
 * through it (the UnixFS exporter) surface a typed error instead of the store's bare NotFoundError.
 */
export function missingAware (blockstore: Pick<Blockstore, 'get'>): Pick<Blockstore, 'get'> {
  return {
    get: async function * (cid: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
      yield await readBlock(blockstore, cid, options)
    }
  }
}
