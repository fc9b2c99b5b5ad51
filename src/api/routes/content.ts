import { createGzip } from 'node:zlib'
import { cat, get, ls, resolvePath, tarStream } from '../../content/export.ts'
import { createBufferPool } from '../../store/buffer-pool.ts'
import { args, ndjson, parseIpfsPath, primed, primedStream, requestSignal, streamHeaders } from '../args.ts'
import { sendPooled } from '../pooled-reply.ts'
import { InvalidArgumentError } from '../errors.ts'
import { addRoutes } from './add.ts'
import { q, query, rpc } from './rpc.ts'
import type { EntryType, LsEntry } from '../../content/types.ts'
import type { RouteOptions } from '../server.ts'
import type { FastifyInstance } from 'fastify'

/** UnixFS data types as Kubo's `ls` numbers them. */
const LS_TYPES: Readonly<Record<EntryType, number>> = {
  directory: 1,
  file: 2,
  raw: 2,
  identity: 2,
  symlink: 4,
  object: 0
}

function lsLink (entry: LsEntry): { Name: string, Hash: string, Size: number, Type: number, Target: string } {
  return { Name: entry.name, Hash: entry.cid.toString(), Size: Number(entry.size), Type: LS_TYPES[entry.type], Target: '' }
}

export async function contentRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const { blockstore } = options.components
  // one pool for the file bytes of every cat and get reply (see store/buffer-pool.ts)
  const pool = createBufferPool()

  await app.register(addRoutes, options)

  rpc<{ arg?: string[], offset?: number, length?: number }>(app, '/cat', {
    querystring: query({ arg: q.args, offset: q.int, length: q.int, progress: q.bool })
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const list = args(request.query, { min: 1, name: 'ipfs-path' })
    const paths = list.map(arg => parseIpfsPath(arg).path)
    const { offset, length } = request.query
    if (paths.length > 1 && (offset != null || length != null)) {
      throw new InvalidArgumentError('offset and length apply to a single path')
    }
    const chunks = async function * () {
      for (const path of paths) {
        yield * cat(blockstore, path, { signal, pool, ...(offset == null ? {} : { offset }), ...(length == null ? {} : { length }) })
      }
    }
    const body = await primed(chunks())
    streamHeaders(reply, 'bytes', 'text/plain')
    await sendPooled(reply, body, pool)
  })

  rpc<{ arg?: string[], compress?: boolean, 'compression-level'?: number }>(app, '/get', {
    querystring: query({ arg: q.args, output: q.str, archive: q.bool, compress: q.bool, 'compression-level': { type: 'integer', minimum: -1, maximum: 9 }, progress: q.bool })
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const [arg] = args(request.query, { min: 1, max: 1, name: 'ipfs-path' }) as [string]
    const { path } = parseIpfsPath(arg)
    if (request.query.compress === true) {
      const body = await primedStream(tarStream(get(blockstore, path, { signal })))
      const level = request.query['compression-level']
      streamHeaders(reply, 'bytes', 'application/gzip')
      return reply.send(body.pipe(createGzip(level == null || level === -1 ? {} : { level })))
    }
    const body = await primed(tarStream(get(blockstore, path, { signal, pool })))
    streamHeaders(reply, 'bytes', 'application/x-tar')
    await sendPooled(reply, body, pool)
  })

  rpc<{ arg?: string[], stream?: boolean }>(app, '/ls', {
    querystring: query({ arg: q.args, stream: q.bool, headers: q.bool, 'resolve-type': q.bool, size: q.bool })
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const list = args(request.query, { min: 1, name: 'ipfs-path' })
    const objects = async function * () {
      for (const arg of list) {
        const { path } = parseIpfsPath(arg)
        const root = await resolvePath(blockstore, path, { signal })
        if (root.type !== 'directory') {
          yield { Hash: root.cid.toString(), Links: [] as unknown[] }
          continue
        }
        if (request.query.stream === true) {
          for await (const entry of ls(blockstore, path, { signal })) {
            yield { Hash: root.cid.toString(), Links: [lsLink(entry)] }
          }
          continue
        }
        const links = []
        for await (const entry of ls(blockstore, path, { signal })) {
          links.push(lsLink(entry))
        }
        yield { Hash: root.cid.toString(), Links: links }
      }
    }
    if (request.query.stream === true) {
      const source = await primed(objects())
      streamHeaders(reply, 'ndjson')
      return reply.send(ndjson((async function * () { for await (const o of source) yield { Objects: [o] } })()))
    }
    const all = []
    for await (const o of objects()) all.push(o)
    return reply.type('application/json; charset=utf-8').send({ Objects: all })
  })
}
