import * as raw from 'multiformats/codecs/raw'
import { fileSystemCandidates, importContent } from '../../content/import.ts'
import { parseChunker } from '../../content/profiles.ts'
import { requestSignal, streamHeaders, ndjson } from '../args.ts'
import { MissingUploadError, NotSupportedError } from '../errors.ts'
import { openClientFile, parseLocalFileClaim } from '../local-file.ts'
import { leasedWriter, uploadEntries } from '../upload.ts'
import { q, query, rpc } from './rpc.ts'
import type { ImportOptions } from '../../content/types.ts'
import type { KnownBlock } from '../../pinning/types.ts'
import type { RouteOptions } from '../server.ts'
import type { UploadEntry } from '../upload.ts'
import type { FastifyInstance } from 'fastify'
import type { FileHandle } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'

/** Bytes an add writes between the sync passes it starts while the upload is still coming in. */
const EARLY_SYNC_BYTES = 64 * 1024 * 1024

interface AddQuery {
  'cid-version'?: number
  'raw-leaves'?: boolean
  chunker?: string
  'wrap-with-directory'?: boolean
  'only-hash'?: boolean
  pin?: boolean
  'pin-name'?: string
  progress?: boolean
  quiet?: boolean
  quieter?: boolean
  silent?: boolean
  hash?: string
  trickle?: boolean
  'local-fd'?: string
  'local-name'?: string
  hidden?: boolean
}

const addQuery = query({
  'cid-version': { type: 'integer', enum: [0, 1] },
  'raw-leaves': q.bool,
  chunker: q.str,
  'wrap-with-directory': q.bool,
  'only-hash': q.bool,
  pin: q.bool,
  'pin-name': q.str,
  progress: q.bool,
  quiet: q.bool,
  quieter: q.bool,
  silent: q.bool,
  hash: q.str,
  trickle: q.bool,
  // pinbox's own: the file or folder a local client holds open, read by the daemon (src/api/local-file.ts)
  'local-fd': q.str,
  'local-name': q.str,
  // Kubo's: dot-files of a folder walked here (a local folder hand-over); uploads are filtered by the client
  hidden: q.bool
})

/** Kubo's flags over the configured profile, with Kubo's rule that CIDv1 implies raw leaves. */
export function importOptionsFor (defaults: ImportOptions, query: AddQuery): ImportOptions {
  if (query.hash != null && query.hash !== 'sha2-256') {
    throw new NotSupportedError(`hash function "${query.hash}" is not supported: only sha2-256`)
  }
  if (query.trickle === true) {
    throw new NotSupportedError('the trickle layout is not supported')
  }
  const cidVersion = query['cid-version'] === 0 || query['cid-version'] === 1 ? query['cid-version'] : defaults.cidVersion
  let rawLeaves = query['raw-leaves'] ?? defaults.rawLeaves
  if (query['raw-leaves'] == null && query['cid-version'] != null) {
    rawLeaves = query['cid-version'] === 1
  }
  return {
    ...defaults,
    cidVersion,
    rawLeaves,
    chunkSize: query.chunker == null ? defaults.chunkSize : parseChunker(query.chunker),
    wrapWithDirectory: query['wrap-with-directory'] ?? defaults.wrapWithDirectory,
    onlyHash: query['only-hash'] ?? defaults.onlyHash
  }
}

interface AddLine {
  Name: string
  Hash?: string
  Size?: string
  Bytes?: number
}

export async function addRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const { components, maxBodyBytes } = options

  rpc<AddQuery>(app, '/add', { querystring: addQuery }, async (request, reply) => {
    const qs = request.query
    const importOptions = importOptionsFor(components.importDefaults, qs)
    const pin = (qs.pin ?? true) && !importOptions.onlyHash
    // checked before anything is read, so a refused hand-over leaves the client free to upload
    const local = qs['local-fd'] == null ? undefined : await openClientFile(request.raw.socket, parseLocalFileClaim(qs['local-fd']), { directories: true })
    if (local == null && !request.isMultipart()) {
      throw new MissingUploadError()
    }
    // closed after the add (below), and at the latest when the response is over, also when a client
    // gone before a streamed reply started means the add never ran (a second close is a no-op)
    reply.raw.once('close', () => { local?.close().catch(() => {}) })
    const signal = requestSignal(request, reply)
    const controller = new AbortController()
    const abort = (): void => { controller.abort(signal.reason) }
    signal.addEventListener('abort', abort, { once: true })

    const run = async (push: (line: AddLine) => void): Promise<void> => {
      let lease: ReturnType<typeof components.leases.open>
      try {
        lease = components.leases.open()
      } catch (err) {
        await local?.close()
        throw err
      }
      try {
        const entries = local != null
          ? localEntries(local, qs['local-name'] ?? '', { signal: controller.signal, hidden: qs.hidden === true, ...(qs.progress === true ? { onProgress: (path, bytes) => { push({ Name: path, Bytes: bytes }) } } : {}) })
          : uploadEntries(request, {
            maxBytes: maxBodyBytes,
            signal: controller.signal,
            ...(qs.progress === true ? { onFileProgress: (path, bytes) => { push({ Name: path, Bytes: bytes }) } } : {})
          })
        const candidates = async function * () {
          for await (const entry of entries) {
            yield {
              ...(entry.path === '' ? {} : { path: entry.path }),
              ...(entry.content == null ? {} : { content: entry.content }),
              ...(entry.symlinkTarget == null ? {} : { symlinkTarget: entry.symlinkTarget }),
              ...(entry.mode == null ? {} : { mode: entry.mode }),
              ...(entry.mtime == null ? {} : { mtime: entry.mtime })
            }
          }
        }
        const lines: AddLine[] = []
        const roots: CID[] = []
        // the file leaves this add wrote and hashed: the pin lists them without reading them back
        const written: KnownBlock[] = []
        let unsynced = 0
        let early: Promise<void> | undefined
        let sawEntry = false
        try {
          // one file at a time: busboy yields the next part only once this one was read
          const writer = leasedWriter(components.blockstore, lease, (cid, size) => {
            if (cid.code === raw.code) written.push({ cid, size })
            // fsync what is written while the upload goes on, so the pin's sync finds little left; a
            // failure here only leaves those files dirty for that final sync, which reports it
            unsynced += size
            if (unsynced >= EARLY_SYNC_BYTES && early == null) {
              unsynced = 0
              early = components.blockstore.sync().catch(() => {}).finally(() => { early = undefined })
            }
          })
          const source = importContent(writer, candidates(), { ...importOptions, fileImportConcurrency: 1, releaseChunks: true, signal: controller.signal })
          for await (const entry of source) {
            sawEntry = true
            // Kubo names a nameless file by its CID; the wrapping directory keeps ''
            const name = entry.path === '' && !importOptions.wrapWithDirectory ? entry.cid.toString() : entry.path
            lines.push({ Name: name, Hash: entry.cid.toString(), Size: entry.size.toString() })
            // top-level entries are what the user added; with wrapping, only the wrapper
            const topLevel = importOptions.wrapWithDirectory ? entry.path === '' : !entry.path.includes('/')
            if (topLevel) roots.push(entry.cid)
          }
        } catch (err) {
          // stop reading the upload; the error decides the response
          controller.abort(err)
          throw err
        }
        if (!sawEntry) {
          throw new MissingUploadError()
        }
        if (!importOptions.onlyHash) {
          if (pin) {
            for (const root of uniqueCids(roots)) {
              await components.pins.add(root, { ...(qs['pin-name'] == null ? {} : { name: qs['pin-name'] }), knownBlocks: written, signal: controller.signal })
            }
          } else {
            await components.blockstore.sync({ signal: controller.signal })
          }
        }
        // the last line tells the client the add is done, so it goes out only once pins are durable
        const quietest = qs.quieter === true || qs.silent === true
        for (const line of quietest ? lines.slice(-1) : lines) {
          if (qs.silent !== true) push(line)
        }
      } finally {
        lease.close()
        signal.removeEventListener('abort', abort)
        await local?.close()
      }
      if (!importOptions.onlyHash) components.autoGc?.poke()
    }

    if (qs.progress !== true) {
      // without progress nothing needs streaming, so an error still gets its own status
      const lines: AddLine[] = []
      await run(line => { lines.push(line) })
      streamHeaders(reply, 'ndjson')
      return reply.send(lines.map(line => JSON.stringify(line) + '\n').join(''))
    }
    streamHeaders(reply, 'ndjson')
    return reply.send(ndjson(channel(run)))
  })
}

/** 1 MiB reads: one per leaf of the default profile. */
const LOCAL_READ_BYTES = 1024 * 1024

interface LocalEntriesOptions {
  signal: AbortSignal
  /** Dot-files of a folder too. */
  hidden: boolean
  onProgress?(path: string, bytes: number): void
}

/**
 * The file or folder of a local hand-over, in the shape of an upload's entries, named `name` (the
 * client's name for it). A folder is walked through the daemon's own descriptor of it, like
 * `pinbox add -r` walks it on the client: sorted, symlinks kept as symlinks.
 */
async function * localEntries (handle: FileHandle, name: string, options: LocalEntriesOptions): AsyncGenerator<UploadEntry> {
  const { signal, onProgress } = options
  const top = name.replace(/^\/+/, '').replace(/\/+$/, '')
  const counted = async function * (path: string, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    let bytes = 0
    for await (const chunk of source) {
      signal.throwIfAborted()
      bytes += chunk.byteLength
      onProgress?.(path, bytes)
      yield chunk
    }
  }
  if (!(await handle.stat()).isDirectory()) {
    const source = handle.createReadStream({ highWaterMark: LOCAL_READ_BYTES, autoClose: false, start: 0, signal }) as AsyncIterable<Buffer>
    yield { path: top, content: counted(top, source) }
    return
  }
  // the trailing slash makes lstat follow the descriptor's magic link to the folder itself
  const rootName = String(handle.fd)
  for await (const candidate of fileSystemCandidates(`/proc/self/fd/${rootName}/`, { recursive: true, hidden: options.hidden })) {
    // the walk names entries after the descriptor's number; the client's name replaces it
    const relative = candidate.path ?? rootName
    const path = top + relative.slice(rootName.length)
    if (candidate.symlinkTarget != null) yield { path, symlinkTarget: candidate.symlinkTarget }
    else if (candidate.content != null) yield { path, content: counted(path, candidate.content) }
    else yield { path }
  }
}

function uniqueCids (cids: CID[]): CID[] {
  const seen = new Set<string>()
  return cids.filter(cid => {
    const key = cid.toString()
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** Turns a producer that pushes values into an async generator that yields them as they come. */
async function * channel<T> (produce: (push: (value: T) => void) => Promise<void>): AsyncGenerator<T> {
  const queue: T[] = []
  let wake: (() => void) | undefined
  let done = false
  let failure: { err: unknown } | undefined
  const notify = (): void => {
    const w = wake
    wake = undefined
    w?.()
  }
  produce(value => { queue.push(value); notify() }).then(
    () => { done = true; notify() },
    (err: unknown) => { failure = { err }; done = true; notify() }
  )
  while (true) {
    if (queue.length > 0) {
      yield queue.shift() as T
      continue
    }
    if (done) break
    await new Promise<void>(resolve => { wake = resolve })
  }
  if (failure != null) throw failure.err
}
