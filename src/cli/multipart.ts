import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readdir, readlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { InvalidArgumentError } from './errors.ts'

/** One entry of an upload, in the shape Kubo's `add` and `dag/import` take. */
export interface FormPart {
  /** Path inside the upload ('' for stdin); directories use '/' separators. */
  path: string
  /** File bytes; absent for a directory. */
  content?: AsyncIterable<Uint8Array> | Uint8Array
  /** Set for a symlink: its target, sent as an `application/symlink` part like Kubo's clients. */
  symlink?: string
}

export interface MultipartBody {
  stream: ReadableStream<Uint8Array>
  contentType: string
  boundary: string
}

const encoder = new TextEncoder()
const CHUNK = 256 * 1024

/**
 * A streaming multipart/form-data encoder. Parts are pulled one at a time as fetch consumes the
 * body, so a file is read from disk only as fast as the daemon takes it and never held whole.
 * Field names and percent-encoded filenames follow kubo-rpc-client (`file`, `dir-1`, …), which is
 * what Kubo-compatible servers parse.
 */
export function encodeMultipart (parts: AsyncIterable<FormPart> | Iterable<FormPart>, options: { boundary?: string } = {}): MultipartBody {
  const boundary = options.boundary ?? `----pinbox-${randomBytes(12).toString('hex')}`

  async function * frames (): AsyncGenerator<Uint8Array> {
    let index = 0
    for await (const part of parts) {
      const kind = part.symlink != null ? 'symlink' : part.content != null ? 'file' : 'dir'
      const field = index === 0 ? kind : `${kind}-${index}`
      const type = part.symlink != null ? 'application/symlink' : part.content != null ? 'application/octet-stream' : 'application/x-directory'
      const head = `${index === 0 ? '' : '\r\n'}--${boundary}\r\n` +
        `Content-Disposition: form-data; name="${field}"; filename="${encodeURIComponent(part.path)}"\r\n` +
        `Content-Type: ${type}\r\n\r\n`
      yield encoder.encode(head)
      if (part.symlink != null) {
        yield encoder.encode(part.symlink)
      } else if (part.content instanceof Uint8Array) {
        yield part.content
      } else if (part.content != null) {
        for await (const chunk of part.content) yield chunk
      }
      index++
    }
    yield encoder.encode(`${index === 0 ? '' : '\r\n'}--${boundary}--\r\n`)
  }

  const iterator = frames()
  const stream = new ReadableStream<Uint8Array>({
    async pull (controller) {
      try {
        const { value, done } = await iterator.next()
        if (done === true) controller.close()
        else controller.enqueue(value)
      } catch (err) {
        controller.error(err)
      }
    },
    async cancel (reason) {
      await iterator.throw(reason).catch(() => {})
    }
  })
  return { stream, boundary, contentType: `multipart/form-data; boundary=${boundary}` }
}

export interface PathPartsOptions {
  recursive?: boolean
  /** Include dot-files when walking a directory (Kubo's `--hidden`). */
  hidden?: boolean
}

/**
 * Opened when the encoder pulls the first chunk: a part taken only to check its path (add does,
 * before the upload) then holds no file open, and an open error rejects the upload instead of
 * surfacing as an unhandled stream 'error'.
 */
async function * fileContent (path: string): AsyncGenerator<Uint8Array> {
  yield * createReadStream(path, { highWaterMark: CHUNK })
}

/** A file or a directory tree on disk as upload parts, named from the path's last segment. */
export async function * pathParts (path: string, options: PathPartsOptions = {}): AsyncGenerator<FormPart> {
  const st = await lstat(path)
  const name = basename(path)
  if (st.isDirectory()) {
    if (options.recursive !== true) throw new InvalidArgumentError(`${path} is a directory; use -r to add it`)
    yield * walk(path, name, options.hidden === true)
  } else if (st.isSymbolicLink()) {
    yield { path: name, symlink: await readlink(path) }
  } else if (st.isFile()) {
    yield { path: name, content: fileContent(path) }
  } else {
    throw new InvalidArgumentError(`${path} is not a regular file or directory`)
  }
}

async function * walk (dir: string, rel: string, hidden: boolean): AsyncGenerator<FormPart> {
  yield { path: rel }
  // Sorted so that the same tree always produces the same upload order.
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  for (const entry of entries) {
    if (!hidden && entry.name.startsWith('.')) continue
    const abs = join(dir, entry.name)
    const childRel = `${rel}/${entry.name}`
    if (entry.isDirectory()) yield * walk(abs, childRel, hidden)
    else if (entry.isSymbolicLink()) yield { path: childRel, symlink: await readlink(abs) }
    else if (entry.isFile()) yield { path: childRel, content: fileContent(abs) }
  }
}

/** Bytes and files an upload of `path` will send, for a progress bar's total. */
export async function measurePath (path: string, options: PathPartsOptions = {}): Promise<number> {
  const st = await lstat(path)
  if (st.isFile()) return st.size
  if (!st.isDirectory() || options.recursive !== true) return 0
  let total = 0
  for (const entry of await readdir(path, { withFileTypes: true })) {
    if (options.hidden !== true && entry.name.startsWith('.')) continue
    total += await measurePath(join(path, entry.name), options)
  }
  return total
}

/** Standard input as one unnamed file part (Kubo names it by its CID). */
export function stdinPart (stdin: AsyncIterable<Uint8Array | string>, name = ''): FormPart {
  async function * bytes (): AsyncGenerator<Uint8Array> {
    for await (const chunk of stdin) yield typeof chunk === 'string' ? encoder.encode(chunk) : chunk
  }
  return { path: name, content: bytes() }
}
