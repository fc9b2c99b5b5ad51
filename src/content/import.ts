import { createReadStream } from 'node:fs'
import { lstat, opendir, readlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { IsDirectoryError, NotFoundError } from './errors.ts'
import type { Stats } from 'node:fs'
import type { ImportCandidate, ImportedEntry, ImportOptions } from './types.ts'
import type { Blockstore } from 'interface-blockstore'
import type { ImportCandidate as UnixfsCandidate } from 'ipfs-unixfs-importer'
import type { CID } from 'multiformats/cid'

export type ImportBlockstore = Pick<Blockstore, 'put'>

/** 1 MiB reads: one syscall per default-profile chunk instead of sixteen 64 KiB ones. */
const READ_HIGH_WATER_MARK = 1_048_576

/** Keeps at most this many chunks hashing/writing per file, so memory stays bounded on huge files. */
const BLOCK_WRITE_CONCURRENCY = 16

/** `onlyHash`: the importer still "puts" every block, into nothing. */
const discardingBlockstore: ImportBlockstore = {
  put: async (cid: CID) => cid
}

/**
 * Imports files and directories as UnixFS and yields every entry (files, then directories up to
 * the root, which comes last). Content is streamed chunk by chunk; nothing holds a whole file.
 */
export async function * importContent (blockstore: ImportBlockstore, candidates: AsyncIterable<ImportCandidate> | Iterable<ImportCandidate>, options: ImportOptions): AsyncGenerator<ImportedEntry> {
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
    chunker: fixedSize({ chunkSize: options.chunkSize }),
    layout: balanced({ maxChildrenPerNode: options.maxChildrenPerNode }),
    shardSplitThresholdBytes: options.shardSplitThresholdBytes,
    shardSplitStrategy: options.shardSplitStrategy ?? 'links-bytes',
    wrapWithDirectory: options.wrapWithDirectory,
    // Kubo's balanced builder wraps non-raw leaves as UnixFS `file` nodes
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    blockWriteConcurrency: BLOCK_WRITE_CONCURRENCY,
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
