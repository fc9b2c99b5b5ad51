import { constants } from 'node:fs'
import { lstat, mkdir, open, symlink, utimes } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { BadResponseError, UnsafePathError } from '../errors.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

export interface GetResult {
  path: string
  files: number
  directories: number
  bytes: number
}

/** Splits a tar entry name into safe segments, refusing absolute names and `..` anywhere. */
export function safeSegments (name: string): string[] {
  if (name.startsWith('/') || name.startsWith('\\') || /^[a-zA-Z]:/.test(name)) {
    throw new UnsafePathError(`refusing absolute path in archive: ${name}`)
  }
  const segments = name.split(/[/\\]/).filter((s) => s !== '' && s !== '.')
  if (segments.some((s) => s === '..')) throw new UnsafePathError(`refusing ".." in archive path: ${name}`)
  return segments
}

/** Bytes gathered into one writev; network chunks are ~64 KiB, so one syscall and one thread-pool trip per ~16 of them. */
const WRITE_BATCH_BYTES = 1 << 20
/** Well under IOV_MAX (1024), for streams of tiny chunks. */
const WRITE_BATCH_CHUNKS = 256

/**
 * Writes `source` to `fh` in ~1 MiB writev batches, the next batch gathering from the network
 * while the last one is written. Resolves to the bytes written.
 */
export async function writeBatched (fh: Pick<FileHandle, 'write' | 'writev'>, source: AsyncIterable<Uint8Array>): Promise<number> {
  let total = 0
  let batch: Uint8Array[] = []
  let batchBytes = 0
  let writing: Promise<void> = Promise.resolve()
  const flush = async (): Promise<void> => {
    await writing
    const chunks = batch
    const length = batchBytes
    batch = []
    batchBytes = 0
    writing = writeAllv(fh, chunks, length)
    // awaited at the next flush or at the end; until then a failure must not go unhandled
    writing.catch(() => {})
  }
  for await (const chunk of source) {
    batch.push(chunk)
    batchBytes += chunk.byteLength
    total += chunk.byteLength
    if (batchBytes >= WRITE_BATCH_BYTES || batch.length >= WRITE_BATCH_CHUNKS) await flush()
  }
  if (batch.length > 0) await flush()
  await writing
  return total
}

async function writeAllv (fh: Pick<FileHandle, 'write' | 'writev'>, chunks: Uint8Array[], length: number): Promise<void> {
  const { bytesWritten } = await fh.writev(chunks)
  if (bytesWritten >= length) return
  // a short write (full disk, signal): finish the rest so a success means every byte is down
  let rest = Buffer.concat(chunks).subarray(bytesWritten)
  while (rest.byteLength > 0) {
    const { bytesWritten: n } = await fh.write(rest)
    rest = rest.subarray(n)
  }
}

/**
 * Writes a tar stream (Kubo's `get` reply) under `out`: the archive's top entry becomes `out`
 * itself. Entries are checked twice: by name, and on disk, where every folder on the way is
 * created one level at a time and must not be a symlink, so a symlink placed by an earlier
 * entry cannot redirect a later write (or a later mkdir) outside `out`.
 */
export async function extractTar (source: AsyncIterable<Uint8Array>, out: string): Promise<Omit<GetResult, 'path'>> {
  const input = new ChunkCursor(source)
  const head = await input.read(TAR_BLOCK)
  const single = head.byteLength === TAR_BLOCK ? singleFileHeader(head) : undefined
  if (single != null) return await extractSingleFile(input, single, out)
  return await extractArchive(input.replay(head), out)
}

const TAR_BLOCK = 512
/** Zero bytes allowed after a single file (its padding, the end-of-archive blocks, a writer's record padding). */
const MAX_TAIL_BYTES = 64 * 1024

interface TarFileHeader { name: string, size: number, mode?: number, mtime?: Date }

/**
 * tar-stream's own header decoder. Its package's exports map lists only the stream API, so it
 * is loaded by file path; decoding (checksum, octal and base-256 sizes, ustar prefixes) stays
 * the library's rather than a second copy here.
 */
function decodeTarHeader (block: Uint8Array): { name: string, type: string | null, size: number, mode?: number | null, mtime?: Date | null } | null {
  const require = createRequire(import.meta.url)
  const headers = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as {
    decode(buf: Uint8Array, filenameEncoding: string, allowUnknownFormat: boolean): ReturnType<typeof decodeTarHeader>
  }
  return headers.decode(Buffer.from(block.buffer, block.byteOffset, block.byteLength), 'utf-8', false)
}

/** The archive's first header when it is one plain file at the top (what `get` of a file sends), else undefined. */
function singleFileHeader (block: Uint8Array): TarFileHeader | undefined {
  let header
  try {
    header = decodeTarHeader(block)
  } catch {
    return undefined
  }
  // pax and GNU long-name records, folders, links: the general path handles them
  if (header?.type !== 'file' || !Number.isSafeInteger(header.size) || header.size < 0) return undefined
  if (safeSegments(header.name).length !== 1) return undefined
  return {
    name: header.name,
    size: header.size,
    ...(header.mode == null ? {} : { mode: header.mode }),
    ...(header.mtime == null ? {} : { mtime: header.mtime })
  }
}

/**
 * A single file's bytes go straight from the reply to the file, without tar-stream's extra
 * stream per entry: `get` of one file is the common case and the one measured in bench/. What
 * follows the file must be padding and end-of-archive zeros only.
 */
async function extractSingleFile (input: ChunkCursor, header: TarFileHeader, out: string): Promise<Omit<GetResult, 'path'>> {
  await mkdir(dirname(out), { recursive: true })
  const fh = await open(out, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, header.mode ?? 0o644)
  let written: number
  try {
    written = await writeBatched(fh, input.take(header.size))
  } finally {
    await fh.close()
  }
  if (written !== header.size) throw new BadResponseError(`the archive ended inside ${header.name} (${written} of ${header.size} bytes)`)
  let tail = 0
  for await (const chunk of input.rest()) {
    tail += chunk.byteLength
    if (tail > MAX_TAIL_BYTES || chunk.some(b => b !== 0)) {
      throw new BadResponseError(`archive has more than one top entry (${header.name} and more)`)
    }
  }
  if (header.mtime != null) await utimes(out, header.mtime, header.mtime).catch(() => {})
  return { files: 1, directories: 0, bytes: written }
}

/**
 * Pulls chunks from a byte stream in the sizes a reader asks for. `take(n)` yields the next `n`
 * bytes as the chunks (and views of them) that arrived, never copied.
 */
class ChunkCursor {
  private readonly it: AsyncIterator<Uint8Array>
  private pending: Uint8Array | undefined

  constructor (source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]()
  }

  private async next (): Promise<Uint8Array | undefined> {
    if (this.pending != null) {
      const p = this.pending
      this.pending = undefined
      return p
    }
    const r = await this.it.next()
    return r.done === true ? undefined : r.value
  }

  /** Up to `n` bytes in one array (shorter only at the end of the stream). */
  async read (n: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = []
    let have = 0
    for await (const part of this.take(n)) {
      parts.push(part)
      have += part.byteLength
    }
    return parts.length === 1 ? parts[0] as Uint8Array : Buffer.concat(parts, have)
  }

  async * take (n: number): AsyncGenerator<Uint8Array> {
    let left = n
    while (left > 0) {
      const chunk = await this.next()
      if (chunk == null) return
      if (chunk.byteLength > left) {
        this.pending = chunk.subarray(left)
        yield chunk.subarray(0, left)
        return
      }
      left -= chunk.byteLength
      yield chunk
    }
  }

  async * rest (): AsyncGenerator<Uint8Array> {
    for (let chunk = await this.next(); chunk != null; chunk = await this.next()) yield chunk
  }

  /** `head` (bytes already read) followed by everything not read yet. */
  async * replay (head: Uint8Array): AsyncGenerator<Uint8Array> {
    if (head.byteLength > 0) yield head
    yield * this.rest()
  }
}

/** Any archive, through tar-stream's extractor. */
async function extractArchive (source: AsyncIterable<Uint8Array>, out: string): Promise<Omit<GetResult, 'path'>> {
  const stats = { files: 0, directories: 0, bytes: 0 }
  // loaded here, not at the top: every CLI call pays for what main() imports
  const { default: tar } = await import('tar-stream')
  const extract = tar.extract()
  const input = Readable.from(source)
  input.on('error', (err) => extract.destroy(err))
  input.pipe(extract)
  let top: string | undefined

  /** The entry's path below `out` (empty for the top entry itself). */
  const relative = (name: string): string[] => {
    const [first, ...rest] = safeSegments(name)
    if (first == null) throw new UnsafePathError(`empty path in archive: "${name}"`)
    top ??= first
    if (first !== top) throw new BadResponseError(`archive has more than one top entry (${top}, ${first})`)
    return rest
  }
  const ensureDirs = async (segments: string[]): Promise<void> => {
    await mkdir(dirname(out), { recursive: true })
    let path = out
    for (const segment of [undefined, ...segments]) {
      if (segment != null) path = join(path, segment)
      try {
        await mkdir(path)
        continue
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'EEXIST') throw err
      }
      const st = await lstat(path)
      // `out` itself may be a symlink the user chose; below it, nothing from the archive may be.
      if (segment != null && st.isSymbolicLink()) throw new UnsafePathError(`refusing to write through the symlink ${path}`)
      if (!st.isDirectory() && !(segment == null && st.isSymbolicLink())) throw new UnsafePathError(`${path} exists and is not a folder`)
    }
  }

  for await (const entry of extract) {
    const { header } = entry
    const rest = relative(header.name)
    const path = rest.length === 0 ? out : join(out, ...rest)
    if (header.type === 'directory') {
      await ensureDirs(rest)
      stats.directories++
      entry.resume()
    } else if (header.type === 'file' || header.type === 'contiguous-file') {
      if (rest.length === 0) await mkdir(dirname(out), { recursive: true })
      else await ensureDirs(rest.slice(0, -1))
      // O_NOFOLLOW: never write through a symlink that sits where the file should be.
      const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, header.mode ?? 0o644)
      try {
        stats.bytes += await writeBatched(fh, entry as AsyncIterable<Buffer>)
      } finally {
        await fh.close()
      }
      if (header.mtime != null) await utimes(path, header.mtime, header.mtime).catch(() => {})
      stats.files++
    } else if (header.type === 'symlink' && header.linkname != null && rest.length > 0) {
      await ensureDirs(rest.slice(0, -1))
      await symlink(header.linkname, path)
      entry.resume()
    } else {
      entry.resume()
    }
  }
  return stats
}

export function registerGet (program: Command, rt: Runtime): void {
  const cmd = program.command('get')
    .description('download a file or folder (a CID or /ipfs/ path) to disk')
    .argument('<path>', 'CID or /ipfs/CID/sub/path')
    .option('-o, --output <path>', 'where to write it (default: ./<CID or last path segment>)')
    .action(action(rt, async (ctx, c) => {
      const [ipfsPath] = c.processedArgs as [string]
      const opts = c.opts<{ output?: string }>()
      const last = ipfsPath.split('/').filter((s) => s !== '' && s !== 'ipfs').pop() ?? ipfsPath
      const out = resolve(opts.output ?? last)
      const api = await ctx.api()
      const stats = await extractTar(api.stream('get', { arg: ipfsPath }), out)
      return output<GetResult>({ path: out, ...stats }, (d) => `saved ${ipfsPath} to ${d.path} (${d.files} files, ${d.directories} folders, ${d.bytes} bytes)`)
    }))
  example(cmd, 'pinbox get bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi -o ./photos', 'pinbox get /ipfs/bafybei…/notes/today.md')
}
