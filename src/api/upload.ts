import { BodyTooLargeError } from './errors.ts'
import type { Lease } from '../store/types.ts'
import type { MultipartFile } from '@fastify/multipart'
import type { FastifyRequest } from 'fastify'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

/** One file or directory of a multipart upload, as kubo-rpc-client and `ipfs` send them. */
export interface UploadEntry {
  /** Path inside the upload ('' for a nameless file). */
  path: string
  /** Absent for a directory part and a symlink. */
  content?: AsyncIterable<Uint8Array>
  /** A symlink's target (an `application/symlink` part, as Kubo's clients send symlinks). */
  symlinkTarget?: string
  mode?: number
  mtime?: { secs: bigint, nsecs?: number }
}

export interface UploadOptions {
  maxBytes: number
  signal: AbortSignal
  /** Called per chunk with the bytes read so far of the current file. */
  onFileProgress?(path: string, bytes: number): void
}

const DIRECTORY_TYPE = 'application/x-directory'
const SYMLINK_TYPE = 'application/symlink'
/** PATH_MAX: no symlink target is longer. */
const MAX_SYMLINK_TARGET = 4096
/** Bigger than busboy's lookbehind (a boundary is at most 70 bytes). */
const SMALL_CHUNK = 1024

/** Kubo's clients put mode and mtime in the field name: `file-1?mode=0644&mtime=1&mtime-nsecs=2`. */
function fieldMeta (fieldname: string): Pick<UploadEntry, 'mode' | 'mtime'> {
  const at = fieldname.indexOf('?')
  if (at === -1) return {}
  const params = new URLSearchParams(fieldname.slice(at + 1))
  const out: Pick<UploadEntry, 'mode' | 'mtime'> = {}
  const mode = params.get('mode')
  if (mode != null && /^[0-7]{1,6}$/.test(mode)) out.mode = parseInt(mode, 8)
  const mtime = params.get('mtime')
  if (mtime != null && /^-?\d+$/.test(mtime)) {
    const nsecs = params.get('mtime-nsecs')
    out.mtime = { secs: BigInt(mtime), ...(nsecs != null && /^\d+$/.test(nsecs) ? { nsecs: Number(nsecs) } : {}) }
  }
  return out
}

function decodePath (filename: string): string {
  let path = filename
  try {
    path = decodeURIComponent(filename)
  } catch {
    // not percent-encoded (curl -F); take it as is
  }
  return path.replace(/^\/+/, '').replace(/\/+$/, '')
}

/**
 * Streams the file parts of a multipart request, one at a time and never buffered whole. The
 * next part is only read once the consumer has finished the previous file's content, because
 * busboy cannot skip ahead; consumers that pull entries concurrently (the UnixFS importer does)
 * are held back here. Total file bytes over `maxBytes` fail the upload with ERR_BODY_TOO_LARGE.
 */
export async function * uploadEntries (request: FastifyRequest, options: UploadOptions): AsyncGenerator<UploadEntry> {
  const { signal } = options
  let total = 0
  const aborted = new Promise<void>(resolve => {
    if (signal.aborted) resolve()
    signal.addEventListener('abort', () => { resolve() }, { once: true })
  })

  for await (const part of request.parts()) {
    signal.throwIfAborted()
    if (part.type !== 'file') continue
    const file: MultipartFile = part
    const path = decodePath(file.filename)
    const meta = fieldMeta(file.fieldname)
    if (file.mimetype === DIRECTORY_TYPE) {
      file.file.resume()
      yield { path, ...meta }
      continue
    }
    if (file.mimetype === SYMLINK_TYPE) {
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of file.file as AsyncIterable<Buffer>) {
        size += chunk.byteLength
        if (size > MAX_SYMLINK_TARGET) throw new BodyTooLargeError(`symlink target of ${path} too long: the limit is ${MAX_SYMLINK_TARGET} bytes`)
        chunks.push(chunk)
      }
      yield { path, symlinkTarget: Buffer.concat(chunks).toString('utf8'), ...meta }
      continue
    }

    let release!: () => void
    const consumed = new Promise<void>(resolve => { release = resolve })
    const content = async function * (): AsyncGenerator<Uint8Array> {
      let bytes = 0
      try {
        for await (const chunk of file.file as AsyncIterable<Buffer>) {
          total += chunk.byteLength
          bytes += chunk.byteLength
          if (total > options.maxBytes) {
            throw await refused(request, new BodyTooLargeError(`upload too large: the limit is ${options.maxBytes} bytes`))
          }
          options.onFileProgress?.(path, bytes)
          // busboy hands out views of its small lookbehind buffer, which it goes on using; the add
          // frees each chunk's buffer once its leaf is written (releaseChunks), so those go as copies
          yield chunk.byteLength < SMALL_CHUNK ? new Uint8Array(chunk) : chunk
        }
        // busboy flags a file cut at its size limit instead of failing it
        if ((file.file as { truncated?: boolean }).truncated === true) {
          throw await refused(request, new BodyTooLargeError(`upload too large: the limit is ${options.maxBytes} bytes`))
        }
      } finally {
        release()
      }
    }
    yield { path, content: content(), ...meta }
    await Promise.race([consumed, aborted])
    signal.throwIfAborted()
  }
}

/** What is left of a refused body that is still read (and dropped), and for how long at most. */
const DRAIN_BYTES = 8 * 1024 * 1024
const DRAIN_MS = 2000

/**
 * Reads and drops what is left of a refused upload before the error answer goes out. Node closes
 * a connection whose request body was not read to its end, and a client still sending then gets
 * EPIPE instead of our 413 (measured: `pinbox add --no-local` of a folder 3x over the limit showed
 * "cannot reach the daemon: write EPIPE" in ~1 run of 5). Bounded, as Go's net/http bounds it, so
 * a hostile client cannot keep the daemon reading: past the bound the connection is cut as before.
 */
async function refused (request: FastifyRequest, err: Error): Promise<Error> {
  const raw = request.raw
  if (raw.complete || raw.destroyed) return err
  raw.unpipe()
  await new Promise<void>(resolve => {
    let seen = 0
    const done = (): void => {
      clearTimeout(timer)
      raw.off('data', onData)
      raw.off('end', done)
      raw.off('close', done)
      raw.off('error', done)
      resolve()
    }
    const onData = (chunk: Buffer): void => {
      seen += chunk.byteLength
      if (seen > DRAIN_BYTES) done()
    }
    const timer = setTimeout(done, DRAIN_MS)
    raw.on('data', onData)
    raw.once('end', done)
    raw.once('close', done)
    raw.once('error', done)
    raw.resume()
  })
  return err
}

/** Reads the first uploaded file whole, up to `maxBytes` (for block/put, where a block is small). */
export async function readSingleUpload (request: FastifyRequest, maxBytes: number, onTooLarge: () => Error): Promise<Uint8Array | undefined> {
  let result: Uint8Array | undefined
  for await (const part of request.parts()) {
    if (part.type !== 'file') continue
    if (result != null) {
      // extra files are ignored, but must be read for the request to complete
      part.file.resume()
      continue
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of part.file as AsyncIterable<Buffer>) {
      size += chunk.byteLength
      if (size > maxBytes) {
        throw onTooLarge()
      }
      chunks.push(chunk)
    }
    result = new Uint8Array(Buffer.concat(chunks))
  }
  return result
}

/**
 * A put-only view of the blockstore that leases every block before writing it, so GC keeps it.
 * `written` is told of each block once it is stored (an add's pin takes them from there).
 */
export function leasedWriter (blockstore: Pick<Blockstore, 'put'>, lease: Lease, written?: (cid: CID, size: number) => void): Pick<Blockstore, 'put'> {
  return {
    put: async (cid, bytes, options) => {
      lease.add(cid)
      const stored = await blockstore.put(cid, bytes, options)
      if (written != null) {
        // a leaf may come as the list of chunks it was cut from; a one-shot iterable has no size to tell
        if (bytes instanceof Uint8Array) written(cid, bytes.byteLength)
        else if (Array.isArray(bytes)) written(cid, bytes.reduce((n: number, part: Uint8Array) => n + part.byteLength, 0))
      }
      return stored
    }
  }
}
