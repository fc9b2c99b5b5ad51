import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { exporter, NotFoundError as ExporterNotFoundError, InvalidParametersError, NotUnixFSError, OverReadError, UnderReadError } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { pack as tarPack } from 'tar-stream'
import { missingAware, readBlock, readBlockPooled } from './blocks.ts'
import { InvalidCidError, NotAFileError, NotADirectoryError, PathNotFoundError, UnsafePathError } from './errors.ts'
import type { EntryType, GetEntry, LsEntry } from './types.ts'
import type { BufferPool } from '../store/buffer-pool.ts'
import type { RepoBlockstore } from '../store/types.ts'
import type { Blockstore } from 'interface-blockstore'
import type { UnixFSEntry } from 'ipfs-unixfs-exporter'
import type { Header as TarHeader } from 'tar-stream'

export type ExportBlockstore = Pick<Blockstore, 'get'> & { getPooled?: RepoBlockstore['getPooled'] }

export interface ParsedPath {
  cid: CID
  /** Path segments below the CID, never empty strings. */
  segments: string[]
}

/** Accepts `CID`, `CID/a/b`, `/ipfs/CID/a/b` (and a CID object). */
export function parseContentPath (path: string | CID): ParsedPath {
  const asCid = CID.asCID(path)
  if (asCid != null) {
    return { cid: asCid, segments: [] }
  }
  let rest = String(path).trim()
  if (rest.startsWith('/ipfs/')) {
    rest = rest.slice('/ipfs/'.length)
  } else if (rest.startsWith('ipfs/')) {
    rest = rest.slice('ipfs/'.length)
  }
  const [first = '', ...segments] = rest.split('/')
  let cid: CID
  try {
    cid = CID.parse(first)
  } catch (err) {
    throw new InvalidCidError(first, { cause: err })
  }
  return { cid, segments: segments.filter(s => s !== '') }
}

export interface ResolveOptions {
  signal?: AbortSignal
}

/** Walks a content path to its UnixFS (or IPLD) entry, with pinbox's typed errors. */
export async function resolvePath (blockstore: ExportBlockstore, path: string | CID, options: ResolveOptions = {}): Promise<UnixFSEntry> {
  const { cid, segments } = parseContentPath(path)
  const full = [cid.toString(), ...segments].join('/')
  try {
    return await exporter(segments.length === 0 ? cid : full, missingAware(blockstore), { signal: options.signal })
  } catch (err) {
    throw translateError(err, full)
  }
}

function translateError (err: any, path: string): unknown {
  if (err instanceof ExporterNotFoundError) {
    const segment = /No link "([^"]*)"/.exec(err.message)?.[1]
    return new PathNotFoundError(path, segment, { cause: err })
  }
  if (err?.name === 'NotUnixFSError' || err?.name === 'NoResolverError') {
    return new PathNotFoundError(path, undefined, { cause: err })
  }
  return err
}

/** Kubo lists a raw leaf (and an inlined identity block) as a file: to a user it is one. */
function entryType (entry: UnixFSEntry): EntryType {
  if (entry.type === 'file' && entry.unixfs.type === 'symlink') {
    return 'symlink'
  }
  return entry.type === 'raw' || entry.type === 'identity' ? 'file' : entry.type
}

export interface CatOptions {
  offset?: number
  length?: number
  signal?: AbortSignal
  /** Leaf blocks read ahead of the consumer, so the store's latency overlaps the writes. Default 8. */
  readAhead?: number
  /**
   * Raw leaves are read into this pool's buffers and yielded as views of them: the consumer
   * must `release()` every chunk once it is done with its bytes (chunks not from the pool are
   * ignored by release).
   */
  pool?: BufferPool
}

/** The bytes of a file (UnixFS file, raw block or identity CID), optionally a range of them. */
export async function * cat (blockstore: ExportBlockstore, path: string | CID, options: CatOptions = {}): AsyncGenerator<Uint8Array> {
  const entry = await resolvePath(blockstore, path, options)
  const label = typeof path === 'string' ? path : path.toString()
  if (entry.type !== 'file' && entry.type !== 'raw' && entry.type !== 'identity') {
    throw new NotAFileError(label)
  }
  if (entry.type === 'file' && entry.unixfs.type === 'symlink') {
    throw new NotAFileError(label)
  }
  try {
    yield * entryContent(blockstore, entry, options)
  } catch (err) {
    throw translateError(err, label)
  }
}

/** A file entry's bytes: UnixFS files through `fileBytes`, raw and identity blocks (already read) sliced. */
function entryContent (blockstore: ExportBlockstore, entry: UnixFSEntry, options: CatOptions): AsyncGenerator<Uint8Array> {
  if (entry.type === 'file' && (entry.unixfs.type === 'file' || entry.unixfs.type === 'raw')) {
    return fileBytes(blockstore, entry.node, entry.unixfs, options)
  }
  if (entry.type === 'file' || entry.type === 'raw' || entry.type === 'identity') {
    return entry.content(options)
  }
  throw new NotAFileError(entry.path)
}

const FILE_READ_AHEAD = 8

/** A child block of a file and where its bytes sit in the file, per its parent's blockSizes. */
interface Span {
  cid: CID
  start: number
}

/**
 * The bytes of a UnixFS file, read straight from the store. The exporter copies every leaf
 * into a new buffer (it-to-buffer) and runs a queue per child; here a raw leaf is yielded as
 * the store returned it (a subarray at the range's edges) and a dag-pb leaf as a view of its
 * Data, with the next few blocks of the depth-first walk already being read. Ranges, the
 * size checks and their errors follow the exporter's `file.js`.
 */
async function * fileBytes (blockstore: ExportBlockstore, root: dagPb.PBNode, unixfs: UnixFS, options: CatOptions): AsyncGenerator<Uint8Array> {
  const { signal } = options
  const readAhead = Math.max(0, options.readAhead ?? FILE_READ_AHEAD)
  const size = Number(unixfs.fileSize())
  const start = options.offset ?? 0
  if (start < 0) throw new InvalidParametersError('Offset must be greater than or equal to 0')
  if (start > size) throw new InvalidParametersError('Offset must be less than the file size')
  if (options.length != null && options.length < 0) throw new InvalidParametersError('Length must be greater than or equal to 0')
  // the exporter reads a length equal to the file size as "to the end", whatever the offset
  const end = options.length == null || options.length === size ? size : Math.min(size, start + options.length)
  if (end <= start) return
  const wanted = end - start

  // Depth-first: the next block to visit is on top.
  const stack: Span[] = []
  const pending = new Map<Span, Promise<Uint8Array>>()

  /** The node's own data (in range) and its children that overlap the range, pushed for the walk. */
  const expand = (node: dagPb.PBNode, file: UnixFS, position: number): Uint8Array | undefined => {
    if (node.Links.length !== file.blockSizes.length) throw new NotUnixFSError('Inconsistent block sizes and dag links')
    let own: Uint8Array | undefined
    if (file.data != null && file.data.byteLength > 0) {
      own = slice(file.data, position, start, end)
      position += file.data.byteLength
    }
    const children: Span[] = []
    for (let i = 0; i < node.Links.length && position < end; i++) {
      const childEnd = position + Number(file.blockSizes[i])
      if (childEnd > start) children.push({ cid: (node.Links[i] as dagPb.PBLink).Hash, start: position })
      position = childEnd
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as Span)
    return own
  }

  // only raw leaves are pooled: a dag-pb node's links become CIDs that outlive its buffer
  const readSpan = (span: Span): Promise<Uint8Array> => span.cid.code === raw.code
    ? readBlockPooled(blockstore, span.cid, options.pool, { signal })
    : readBlock(blockstore, span.cid, { signal })

  const prefetch = (): void => {
    for (let i = stack.length - 1, n = 0; i >= 0 && n < readAhead; i--, n++) {
      const span = stack[i] as Span
      if (!pending.has(span)) {
        const p = readSpan(span)
        // the error surfaces when the walk reaches this block; never as an unhandled rejection
        p.catch(() => {})
        pending.set(span, p)
      }
    }
  }

  let read = 0
  const emit = (chunk: Uint8Array): void => {
    read += chunk.byteLength
    if (read > wanted) throw new OverReadError('Read too many bytes - the file size reported by the UnixFS data in the root node may be incorrect')
  }

  try {
    const own = expand(root, unixfs, 0)
    if (own != null && own.byteLength > 0) {
      emit(own)
      yield own
    }
    while (stack.length > 0 && read < wanted) {
      signal?.throwIfAborted()
      prefetch()
      const span = stack.pop() as Span
      const bytes = await (pending.get(span) ?? readSpan(span))
      pending.delete(span)
      let chunk: Uint8Array | undefined
      if (span.cid.code === raw.code) {
        chunk = slice(bytes, span.start, start, end)
      } else if (span.cid.code === dagPb.code) {
        const node = dagPb.decode(bytes)
        chunk = expand(node, unixfsOf(node), span.start)
      } else {
        throw new NotUnixFSError(`Unsupported codec: ${span.cid.code}`)
      }
      if (chunk != null && chunk.byteLength > 0) {
        emit(chunk)
        yield chunk
      }
    }
  } finally {
    // reads still in flight when the consumer stopped: their buffers go back once they land
    for (const p of pending.values()) p.then(bytes => { options.pool?.release(bytes) }, () => {})
    pending.clear()
  }
  if (read < wanted) throw new UnderReadError('Traversed entire DAG but did not read enough bytes')
}

function unixfsOf (node: dagPb.PBNode): UnixFS {
  if (node.Data == null) throw new NotUnixFSError('no data in PBNode')
  try {
    return UnixFS.unmarshal(node.Data)
  } catch (err: any) {
    throw new NotUnixFSError(err?.message ?? String(err))
  }
}

/** The part of `block` (whose first byte is file byte `position`) inside [start, end), without copying. */
function slice (block: Uint8Array, position: number, start: number, end: number): Uint8Array {
  const from = Math.max(0, start - position)
  const to = Math.min(block.byteLength, end - position)
  if (from === 0 && to === block.byteLength) return block
  return to <= from ? block.subarray(0, 0) : block.subarray(from, to)
}

/** Listing of a directory (HAMT shards included); a file lists as itself, like `ipfs ls`. */
export async function * ls (blockstore: ExportBlockstore, path: string | CID, options: ResolveOptions = {}): AsyncGenerator<LsEntry> {
  const entry = await resolvePath(blockstore, path, options)
  if (entry.type !== 'directory') {
    if (entry.type === 'object') {
      throw new NotADirectoryError(String(path))
    }
    yield { name: entry.name, path: entry.path, cid: entry.cid, size: fileSize(entry), type: entryType(entry) }
    return
  }
  // Each child is loaded for its type and size; a few at a time keeps large directories quick.
  yield * orderedMap(entry.entries({ signal: options.signal }), LS_CONCURRENCY, async (child) => {
    const resolved = await resolvePath(blockstore, child.cid, options)
    return { name: child.name, path: child.path, cid: child.cid, size: fileSize(resolved), type: entryType(resolved) }
  })
}

const LS_CONCURRENCY = 16

function fileSize (entry: UnixFSEntry): bigint {
  switch (entry.type) {
    case 'file':
      return entry.unixfs.type === 'symlink' ? BigInt(entry.unixfs.data?.byteLength ?? 0) : entry.unixfs.fileSize()
    case 'raw':
    case 'identity':
      return entry.size
    default:
      return 0n
  }
}

async function * orderedMap<T, R> (source: AsyncIterable<T>, concurrency: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const queue: Array<Promise<R>> = []
  try {
    for await (const item of source) {
      const p = fn(item)
      p.catch(() => {})
      queue.push(p)
      if (queue.length >= concurrency) {
        yield await (queue.shift() as Promise<R>)
      }
    }
    while (queue.length > 0) {
      yield await (queue.shift() as Promise<R>)
    }
  } finally {
    queue.length = 0
  }
}

/** A name that is safe as one path component on every OS we run on. */
function assertSafeName (name: string, path: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\\') || name.includes('\0')) {
    throw new UnsafePathError(path, name)
  }
}

/**
 * The tree under a path, depth-first: each directory before its contents, link order kept.
 * Paths start with the root's name (its last path segment, or its CID). Link names from the
 * DAG are untrusted: `..`, `/` and empty names stop the walk with ERR_UNSAFE_PATH.
 */
export interface GetOptions extends ResolveOptions {
  /** As `CatOptions.pool`: file chunks are views of pooled buffers the consumer releases. */
  pool?: BufferPool
}

export async function * get (blockstore: ExportBlockstore, path: string | CID, options: GetOptions = {}): AsyncGenerator<GetEntry> {
  const entry = await resolvePath(blockstore, path, options)
  const { cid, segments } = parseContentPath(path)
  const rootName = segments.at(-1) ?? cid.toString()
  yield * getEntries(blockstore, entry, rootName, options)
}

async function * getEntries (blockstore: ExportBlockstore, entry: UnixFSEntry, path: string, options: GetOptions): AsyncGenerator<GetEntry> {
  options.signal?.throwIfAborted()
  const meta = (entry.type === 'file' || entry.type === 'directory')
    ? {
        ...(entry.unixfs.mode == null ? {} : { mode: entry.unixfs.mode }),
        ...(entry.unixfs.mtime == null ? {} : { mtime: new Date(Number(entry.unixfs.mtime.secs) * 1000 + Math.floor((entry.unixfs.mtime.nsecs ?? 0) / 1e6)) })
      }
    : {}
  switch (entry.type) {
    case 'directory': {
      yield { path, type: 'directory', size: 0n, ...meta }
      for await (const child of entry.entries({ signal: options.signal })) {
        assertSafeName(child.name, `${path}/${child.name}`)
        const resolved = await resolvePath(blockstore, child.cid, options)
        yield * getEntries(blockstore, resolved, `${path}/${child.name}`, options)
      }
      return
    }
    case 'file': {
      if (entry.unixfs.type === 'symlink') {
        const target = new TextDecoder().decode(entry.unixfs.data ?? new Uint8Array(0))
        yield { path, type: 'symlink', target, size: BigInt(target.length), ...meta }
        return
      }
      yield { path, type: 'file', size: entry.unixfs.fileSize(), content: () => entryContent(blockstore, entry, options), ...meta }
      return
    }
    case 'raw':
    case 'identity':
      yield { path, type: 'file', size: entry.size, content: () => entryContent(blockstore, entry, options) }
      return
    default:
      throw new NotAFileError(path)
  }
}

/** A tar archive of `get` entries, as Kubo's `/api/v0/get` returns. */
export async function * tarStream (entries: AsyncIterable<GetEntry>): AsyncGenerator<Uint8Array> {
  const pack = tarPack()
  const closed = once(pack, 'close').catch(() => {})

  const addEntry = async (header: Partial<TarHeader> & Pick<TarHeader, 'name'>, content?: AsyncIterable<Uint8Array>): Promise<void> => {
    let done!: (err?: Error | null) => void
    const finished = new Promise<void>((resolve, reject) => {
      done = (err) => {
        if (err == null) {
          resolve()
        } else {
          reject(err)
        }
      }
    })
    const sink = pack.entry(header, (err) => { done(err) })
    if (content != null) {
      for await (const chunk of content) {
        if (!sink.write(chunk)) {
          await Promise.race([once(sink, 'drain'), closed])
        }
      }
    }
    sink.end(undefined)
    await Promise.race([finished, closed])
  }

  const producer = (async () => {
    try {
      for await (const entry of entries) {
        const mtime = entry.mtime ?? new Date(0)
        if (entry.type === 'directory') {
          await addEntry({ name: entry.path, type: 'directory', mode: entry.mode ?? 0o755, mtime })
        } else if (entry.type === 'symlink') {
          await addEntry({ name: entry.path, type: 'symlink', linkname: entry.target ?? '', mode: entry.mode ?? 0o777, mtime })
        } else {
          await addEntry({ name: entry.path, type: 'file', size: Number(entry.size), mode: entry.mode ?? 0o644, mtime }, entry.content?.())
        }
      }
      pack.finalize()
    } catch (err: any) {
      pack.destroy(err)
    }
  })()

  try {
    for await (const chunk of pack) {
      yield chunk as Uint8Array
    }
  } finally {
    pack.destroy()
    await producer
  }
}

/**
 * Writes `get` entries under `outPath` (the root entry becomes `outPath` itself), as
 * `pinbox get -o`. Never follows or replaces anything already on disk: files are created
 * exclusively and every parent must be a directory this call made.
 */
export async function writeToFileSystem (entries: AsyncIterable<GetEntry>, outPath: string): Promise<void> {
  let root: string | undefined
  const madeDirs = new Set<string>()
  for await (const entry of entries) {
    if (root == null) {
      root = entry.path
    }
    let rel: string
    if (entry.path === root) {
      rel = ''
    } else if (entry.path.startsWith(`${root}/`)) {
      rel = entry.path.slice(root.length + 1)
    } else {
      throw new UnsafePathError(entry.path, entry.path)
    }
    const parts = rel === '' ? [] : rel.split('/')
    for (const part of parts) {
      assertSafeName(part, entry.path)
    }
    const parent = parts.slice(0, -1).join('/')
    if (parts.length > 0 && !madeDirs.has(parent)) {
      throw new UnsafePathError(entry.path, parts.at(-1) ?? '')
    }
    const target = parts.length === 0 ? outPath : join(outPath, ...parts)
    if (entry.type === 'directory') {
      await mkdir(target, { recursive: parts.length === 0 })
      madeDirs.add(rel)
    } else if (entry.type === 'symlink') {
      await symlink(entry.target ?? '', target)
    } else {
      const out = createWriteStream(target, { flags: 'wx', mode: entry.mode ?? 0o644 })
      try {
        for await (const chunk of entry.content?.() ?? []) {
          if (!out.write(chunk)) {
            await once(out, 'drain')
          }
        }
        out.end()
        await once(out, 'finish')
      } catch (err) {
        out.destroy()
        throw err
      }
    }
  }
}
