import { Readable } from 'node:stream'
import { CID } from 'multiformats/cid'
import { InvalidCidError } from '../content/errors.ts'
import { InvalidArgumentError } from './errors.ts'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** A Kubo path argument split into its root CID and the path below it. */
export interface IpfsPath {
  cid: CID
  /** Segments below the root, without leading or trailing slashes; '' for the root itself. */
  rest: string
  /** The whole path as `CID/rest`, for content functions that take a path string. */
  path: string
}

export function parseCid (value: string): CID {
  try {
    return CID.parse(value.trim())
  } catch (err) {
    throw new InvalidCidError(value, { cause: err })
  }
}

/** Accepts `CID`, `CID/a/b`, `/ipfs/CID/a/b` and `/ipld/CID/a/b`, as Kubo does. */
export function parseIpfsPath (value: string): IpfsPath {
  let s = value.trim()
  if (s.startsWith('/ipns/')) {
    throw new InvalidArgumentError(`IPNS paths are not supported: ${value}`)
  }
  for (const prefix of ['/ipfs/', '/ipld/']) {
    if (s.startsWith(prefix)) {
      s = s.slice(prefix.length)
      break
    }
  }
  const segments = s.split('/').filter(part => part !== '')
  const first = segments.shift()
  if (first == null) {
    throw new InvalidArgumentError(`invalid path "${value}": expected a CID or /ipfs/CID/path`)
  }
  const cid = parseCid(first)
  const rest = segments.join('/')
  return { cid, rest, path: rest === '' ? cid.toString() : `${cid}/${rest}` }
}

/** `arg` values in the order given; fastify's schema coercion makes a single one an array. */
export function args (query: { arg?: string[] }, count?: { min?: number, max?: number, name?: string }): string[] {
  const list = query.arg ?? []
  const name = count?.name ?? 'argument'
  if (count?.min != null && list.length < count.min) {
    throw new InvalidArgumentError(`argument "${name}" is required`)
  }
  if (count?.max != null && list.length > count.max) {
    throw new InvalidArgumentError(`expected at most ${count.max} ${name} argument(s), got ${list.length}`)
  }
  return list
}

/** Aborted when the client goes away before the response is complete, so work stops with it. */
export function requestSignal (request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort()
  })
  request.raw.once('aborted', () => { controller.abort() })
  return controller.signal
}

/**
 * Pulls the first value before the status line goes out, so errors found up front (a missing
 * path, a missing root block, an unpinned CID) become a proper error response instead of a
 * cut-off 200.
 */
export async function primed<T> (source: AsyncIterable<T>): Promise<AsyncGenerator<T>> {
  const iterator = source[Symbol.asyncIterator]()
  const first = await iterator.next()
  return (async function * () {
    try {
      if (first.done === true) return
      yield first.value
      while (true) {
        const next = await iterator.next()
        if (next.done === true) return
        yield next.value
      }
    } finally {
      await iterator.return?.()
    }
  })()
}

export async function primedStream (source: AsyncIterable<Uint8Array>): Promise<Readable> {
  return Readable.from(await primed(source), { objectMode: false })
}

/** One JSON object per line, Kubo's streaming output encoding. */
export function ndjson (source: AsyncIterable<unknown>): Readable {
  const lines = async function * (): AsyncGenerator<string> {
    for await (const value of source) {
      yield JSON.stringify(value) + '\n'
    }
  }
  return Readable.from(lines(), { objectMode: false })
}

/** Headers Kubo sets on streamed output; clients use them to pick a decoder. */
export function streamHeaders (reply: FastifyReply, kind: 'ndjson' | 'bytes', contentType?: string): void {
  if (kind === 'ndjson') {
    reply.header('content-type', 'application/json; charset=utf-8')
    reply.header('x-chunked-output', '1')
  } else {
    reply.header('content-type', contentType ?? 'application/octet-stream')
    reply.header('x-stream-output', '1')
  }
}
