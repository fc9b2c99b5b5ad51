import { exportCar, importCar } from '../../content/car.ts'
import { args, primedStream, requestSignal, streamHeaders } from '../args.ts'
import { MissingUploadError } from '../errors.ts'
import { resolveArg } from '../resolve.ts'
import { leasedWriter, uploadEntries } from '../upload.ts'
import { q, query, rpc } from './rpc.ts'
import type { RouteOptions } from '../server.ts'
import type { FastifyInstance } from 'fastify'
import type { CID } from 'multiformats/cid'

interface ImportQuery {
  'pin-roots'?: boolean
  stats?: boolean
  silent?: boolean
}

export async function dagRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const { components, maxBodyBytes } = options
  const { blockstore, pins, leases } = components

  rpc<{ arg?: string[] }>(app, '/export', {
    querystring: query({ arg: q.args, progress: q.bool })
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const [arg] = args(request.query, { min: 1, max: 1, name: 'root' }) as [string]
    const root = await resolveArg(blockstore, arg, { signal })
    // the header comes first and never fails; prime past it so a missing root block is a 404
    const car = exportCar(blockstore, [root], { signal })
    const iterator = car[Symbol.asyncIterator]()
    const header = await iterator.next()
    const rest = await primedStream((async function * () {
      while (true) {
        const next = await iterator.next()
        if (next.done === true) return
        yield next.value
      }
    })())
    streamHeaders(reply, 'bytes', 'application/vnd.ipld.car')
    rest.unshift(header.value as Uint8Array)
    return reply.send(rest)
  })

  rpc<ImportQuery>(app, '/import', {
    querystring: query({ 'pin-roots': q.bool, stats: q.bool, silent: q.bool, 'allow-big-block': q.bool })
  }, async (request, reply) => {
    if (!request.isMultipart()) throw new MissingUploadError()
    const qs = request.query
    const signal = requestSignal(request, reply)
    const lease = leases.open()
    const roots: CID[] = []
    let blocks = 0
    let bytes = 0
    let files = 0
    const lines: unknown[] = []
    try {
      for await (const entry of uploadEntries(request, { maxBytes: maxBodyBytes, signal })) {
        if (entry.content == null) continue
        files++
        const result = await importCar(leasedWriter(blockstore, lease), entry.content, { signal })
        blocks += result.blocks
        bytes += result.bytes
        for (const root of result.roots) {
          if (!roots.some(r => r.equals(root))) roots.push(root)
        }
      }
      if (files === 0) throw new MissingUploadError('no CAR file was uploaded')
      if (qs['pin-roots'] ?? true) {
        for (const root of roots) {
          let pinError = ''
          try {
            await pins.add(root, { signal })
          } catch (err: any) {
            // Kubo reports a root it could not pin (an incomplete DAG) per root, not as a failure
            if (signal.aborted) throw err
            pinError = String(err?.message ?? err)
          }
          lines.push({ Root: { Cid: { '/': root.toString() }, PinErrorMsg: pinError } })
        }
      } else {
        await blockstore.sync({ signal })
      }
    } finally {
      lease.close()
    }
    components.autoGc?.poke()
    if (qs.stats === true) {
      lines.push({ Stats: { BlockCount: blocks, BlockBytesCount: bytes } })
    }
    streamHeaders(reply, 'ndjson')
    return reply.send(qs.silent === true ? '' : lines.map(line => JSON.stringify(line) + '\n').join(''))
  })
}
