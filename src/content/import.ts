import { createHash, webcrypto } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, opendir, readlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { importer } from 'ipfs-unixfs-importer'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { createBufferPool } from '../store/buffer-pool.ts'
import { concatBytes, copyInto } from './blocks.ts'
import { IsDirectoryError, NotFoundError } from './errors.ts'
import type { ImportCandidate, ImportedEntry, ImportOptions } from './types.ts'
import type { Hash } from 'node:crypto'
import type { Stats } from 'node:fs'
import type { Blockstore } from 'interface-blockstore'
import type { BufferImporter, BufferImporterResult, ImportCandidate as UnixfsCandidate } from 'ipfs-unixfs-importer'
import type { Chunker } from 'ipfs-unixfs-importer/chunker'

export type ImportBlockstore = Pick<Blockstore, 'put'>

/** 1 MiB reads: one syscall per default-profile chunk instead of sixteen 64 KiB ones. */
const READ_HIGH_WATER_MARK = 1_048_576

/** Leaf writes in flight per file: enough to keep the disk busy, few enough to bound memory (1 MiB each). */
const BLOCK_WRITE_CONCURRENCY = 8

/** `onlyHash`: the importer still "puts" every block, into nothing. */
const discardingBlockstore: ImportBlockstore = {
  put: async (cid: CID) => cid
}

/**
 * Cuts, hashes and writes a file's leaves. The importer's own path concatenates every leaf into a
 * fresh buffer (its chunker) and runs writes through `it-parallel-batch`, which collects a whole
 * batch of leaves before writing any: reading and writing never overlap, and a slow source (an
 * upload) leaves the disk idle. Here a big raw leaf is copied once into a buffer reused across
 * the file, hashed on the thread pool and written from there, and the source chunks it was cut
 * from are freed as soon as they are copied, so a big add allocates no buffer per leaf and the
 * daemon's GC has little external memory to chase; its write starts as soon as it is cut, while
 * the next one is read, with up to `concurrency` in flight. Small leaves are hashed as their
 * chunks arrive. The importer's chunker is a pass-through and its batch size 1, so it only takes
 * the results in order.
 */
function leafImporter (options: Pick<ImportContentOptions, 'cidVersion' | 'rawLeaves' | 'chunkSize' | 'releaseChunks'>, concurrency: number): BufferImporter {
  const { chunkSize, rawLeaves } = options
  return async function * (file, blockstore) {
    const window: Array<Promise<BufferImporterResult>> = []
    let leaves = 0
    // a leaf's joined copy lives until its write lands; with `concurrency` in flight they are reused
    const pool = createBufferPool({ bufferBytes: chunkSize, maxFree: concurrency + 1 })
    // releaseChunks: a chunk that is its buffer's only view is freed once every leaf holding part of it is written
    const holds = new Map<ArrayBufferLike, number>()
    const hold = (buffer: ArrayBufferLike): void => {
      const n = holds.get(buffer)
      if (n != null) holds.set(buffer, n + 1)
    }
    const drop = (buffer: ArrayBufferLike): void => {
      const n = holds.get(buffer)
      if (n == null) return
      if (n > 1) {
        holds.set(buffer, n - 1)
        return
      }
      holds.delete(buffer)
      // detaching frees the memory now instead of at the next full GC, which an upload of 64 KiB
      // socket buffers otherwise triggers every 64 MB
      if (buffer instanceof ArrayBuffer) (buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0)
    }

    const persist = async (parts: Uint8Array[], length: number, hash: Hash | undefined, index: number): Promise<BufferImporterResult> => {
      let joined: Uint8Array | undefined
      let pooled = false
      try {
        if (rawLeaves && hash == null) {
          // a big raw leaf: joined here so its hash can run on the thread pool, and its source
          // chunks are free as soon as they are copied, not when the write lands
          // (the importer keeps a file's first leaf, so that one must not be a pooled buffer; nor
          // may any leaf be, unless the store is known to be done with the bytes when put() returns)
          pooled = index !== 0 && options.releaseChunks === true
          joined = pooled ? copyInto(pool.take(length), parts) : concatBytes(parts, length)
          for (const part of parts) drop(part.buffer)
          parts = []
          const digest = new Uint8Array(await webcrypto.subtle.digest('SHA-256', joined))
          const cid = CID.createV1(raw.code, Digest.create(sha256.code, digest))
          await blockstore.put(cid, joined)
          return { cid, size: BigInt(length), block: index === 0 ? joined : EMPTY }
        }
        return await write(parts, length, hash)
      } finally {
        for (const part of parts) drop(part.buffer)
        if (joined != null && pooled) pool.release(joined)
      }
    }
    const write = async (parts: Uint8Array[], length: number, hash: Hash | undefined): Promise<BufferImporterResult> => {
      if (rawLeaves && hash != null) {
        const cid = CID.createV1(raw.code, Digest.create(sha256.code, hash.digest()))
        // one leaf may become the file itself, so the importer keeps the block; it is small here
        const block = concatBytes(parts, length)
        await blockstore.put(cid, block)
        return { cid, size: BigInt(length), block }
      }
      // Kubo's balanced builder wraps non-raw leaves as UnixFS `file` nodes
      const unixfs = new UnixFS({ type: 'file', data: concatBytes(parts, length) })
      const block = dagPb.encode({ Data: unixfs.marshal(), Links: [] })
      const cid = CID.create(options.cidVersion, dagPb.code, await sha256.digest(block))
      await blockstore.put(cid, block)
      return { cid, unixfs, size: BigInt(block.byteLength), block }
    }

    // raw leaves of a big chunk size are hashed whole on the thread pool; small ones as they arrive
    const offThread = rawLeaves && chunkSize >= THREAD_HASH_MIN_BYTES
    const newHash = (): Hash | undefined => rawLeaves && !offThread ? createHash('sha256') : undefined
    let parts: Uint8Array[] = []
    let length = 0
    let hash = newHash()
    const cut = (): void => {
      const p = persist(parts, length, hash, leaves++)
      // a failure surfaces when its turn comes; until then it must not count as unhandled
      p.catch(noop)
      window.push(p)
      parts = []
      length = 0
      hash = newHash()
    }

    try {
      for await (const chunk of file.content) {
        const source = chunk.buffer
        if (options.releaseChunks === true && chunk.byteOffset === 0 && chunk.byteLength === source.byteLength && chunk.byteLength > 0) {
          // held by the loop below until the chunk is cut up
          holds.set(source, 1)
        }
        let rest = chunk
        while (rest.byteLength > 0) {
          const take = Math.min(rest.byteLength, chunkSize - length)
          const part = take === rest.byteLength ? rest : rest.subarray(0, take)
          rest = rest.subarray(take)
          parts.push(part)
          hold(part.buffer)
          hash?.update(part)
          length += take
          if (length < chunkSize) continue
          cut()
          if (window.length >= concurrency) {
            const next = window.shift() as Promise<BufferImporterResult>
            yield async () => await next
          }
        }
        drop(source)
      }
      // an empty file is one empty leaf, like the fixed-size chunker makes it
      if (leaves === 0 || length > 0) cut()
      while (window.length > 0) {
        const next = window.shift() as Promise<BufferImporterResult>
        yield async () => await next
      }
    } finally {
      // abandoned (an error or an abort): let the writes in flight settle before the caller moves on
      await Promise.allSettled(window)
    }
  }
}

/** The chunking happens in `leafImporter`, on the source's own buffers. */
const passThrough: Chunker = (source) => source

const EMPTY = new Uint8Array(0)

/**
 * From this chunk size on, a raw leaf's SHA-256 runs on libuv's thread pool (WebCrypto's digest)
 * instead of the event loop. Measured on a 1 GiB add: hashing was 22 % of the daemon's samples,
 * all on the main thread, which was the add's bottleneck; the copy that joins the leaf for it costs
 * ~0.1 s per GiB. Small leaves are hashed as they arrive: a thread-pool round trip would cost more.
 */
const THREAD_HASH_MIN_BYTES = 64 * 1024

function noop (): void {}

export interface ImportContentOptions extends ImportOptions {
  /**
   * The sources' chunks belong to the import (an upload's socket buffers): a chunk that is the
   * only view of its buffer has that buffer detached once its leaves are written. It also promises
   * that the blockstore is done with the bytes when put() returns (the flat store has written
   * them), so big leaves are joined in a few reused buffers instead of one new buffer each.
   */
  releaseChunks?: boolean
}

/**
 * Imports files and directories as UnixFS and yields every entry (files, then directories up to
 * the root, which comes last). Content is streamed chunk by chunk; nothing holds a whole file.
 */
export async function * importContent (blockstore: ImportBlockstore, candidates: AsyncIterable<ImportCandidate> | Iterable<ImportCandidate>, options: ImportContentOptions): AsyncGenerator<ImportedEntry> {
  const signal = options.signal
  signal?.throwIfAborted()
  let bytesRead = 0

  const count = async function * (content: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of content) {
      signal?.throwIfAborted()
      bytesRead += chunk.byteLength
      options.onProgress?.(bytesRead)
      yield chunk
    }
  }

  const source = async function * (): AsyncGenerator<UnixfsCandidate> {
    for await (const candidate of candidates) {
      signal?.throwIfAborted()
      const common = {
        ...(candidate.mode == null ? {} : { mode: candidate.mode }),
        ...(candidate.mtime == null ? {} : { mtime: candidate.mtime })
      }
      if (candidate.symlinkTarget != null) {
        yield { path: candidate.path ?? '', link: candidate.symlinkTarget, ...common }
      } else if (candidate.content == null) {
        yield { path: candidate.path ?? '', ...common }
      } else {
        yield { ...(candidate.path == null ? {} : { path: candidate.path }), content: count(candidate.content), ...common }
      }
    }
  }

  const target = options.onlyHash ? discardingBlockstore : blockstore
  for await (const entry of importer(source(), target, {
    cidVersion: options.cidVersion,
    rawLeaves: options.rawLeaves,
    chunker: passThrough,
    layout: balanced({ maxChildrenPerNode: options.maxChildrenPerNode }),
    shardSplitThresholdBytes: options.shardSplitThresholdBytes,
    shardSplitStrategy: options.shardSplitStrategy ?? 'links-bytes',
    wrapWithDirectory: options.wrapWithDirectory,
    // Kubo's balanced builder wraps non-raw leaves as UnixFS `file` nodes
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    bufferImporter: leafImporter(options, BLOCK_WRITE_CONCURRENCY),
    blockWriteConcurrency: 1,
    ...(options.fileImportConcurrency == null ? {} : { fileImportConcurrency: options.fileImportConcurrency })
  })) {
    signal?.throwIfAborted()
    yield { path: entry.path ?? entry.cid.toString(), cid: entry.cid, size: entry.size }
  }
}

export interface FileSystemCandidatesOptions {
  recursive?: boolean
  /** Include dot-files and dot-directories (Kubo's `--hidden`). */
  hidden?: boolean
}

/**
 * Turns a file, or a directory tree with `recursive`, into import candidates whose paths are
 * relative to the parent of `path` (so the root keeps its own name, like `ipfs add -r`).
 * Files are opened only when the importer reads them, so a large tree never holds many fds.
 */
export async function * fileSystemCandidates (path: string, options: FileSystemCandidatesOptions = {}): AsyncGenerator<ImportCandidate> {
  const stats = await lstatOrThrow(path)
  const name = basename(path)
  if (stats.isDirectory()) {
    if (options.recursive !== true) {
      throw new IsDirectoryError(path)
    }
    yield * walkDirectory(path, name, options.hidden === true)
    return
  }
  if (stats.isSymbolicLink()) {
    yield { path: name, symlinkTarget: await readlink(path) }
    return
  }
  yield { path: name, content: readFile(path) }
}

async function * walkDirectory (dir: string, relative: string, hidden: boolean): AsyncGenerator<ImportCandidate> {
  // Empty directories must be imported too, so every directory is its own candidate.
  yield { path: relative }
  const names: string[] = []
  for await (const dirent of await opendir(dir)) {
    if (!hidden && dirent.name.startsWith('.')) {
      continue
    }
    names.push(dirent.name)
  }
  names.sort()
  for (const name of names) {
    const full = join(dir, name)
    const rel = `${relative}/${name}`
    const stats = await lstatOrThrow(full)
    if (stats.isDirectory()) {
      yield * walkDirectory(full, rel, hidden)
    } else if (stats.isSymbolicLink()) {
      yield { path: rel, symlinkTarget: await readlink(full) }
    } else if (stats.isFile()) {
      yield { path: rel, content: readFile(full) }
    }
    // sockets, fifos and devices have no UnixFS form; Kubo skips them as well
  }
}

async function * readFile (path: string): AsyncGenerator<Uint8Array> {
  const stream = createReadStream(path, { highWaterMark: READ_HIGH_WATER_MARK })
  try {
    for await (const chunk of stream) {
      yield chunk as Buffer
    }
  } catch (err: any) {
    if (err?.code === 'ENOENT') {
      throw new NotFoundError(path, { cause: err })
    }
    throw err
  } finally {
    stream.destroy()
  }
}

async function lstatOrThrow (path: string): Promise<Stats> {
  try {
    return await lstat(path)
  } catch (err: any) {
    if (err?.code === 'ENOENT' || err?.code === 'ENOTDIR') {
      throw new NotFoundError(path, { cause: err })
    }
    throw err
  }
}
