import { args, ndjson, primed, requestSignal, streamHeaders } from '../args.ts'
import { toKuboError } from '../errors.ts'
import { NotPinnedError, ReplicationUnavailableError } from '../../pinning/errors.ts'
import { resolveArg, resolveArgs } from '../resolve.ts'
import { replicaRoutes } from './replicas.ts'
import { q, query, rpc } from './rpc.ts'
import type { CID } from 'multiformats/cid'
import type { PinListType, PinVerifyResult } from '../../pinning/types.ts'
import type { RouteOptions } from '../server.ts'
import type { FastifyInstance } from 'fastify'

const pinsResponse = {
  200: { type: 'object', properties: { Pins: { type: 'array', items: { type: 'string' } } } }
} as const

/** Pins `pin/rm` removes at once. */
const RM_CONCURRENCY = 16
const PIN_LIST_TYPES = ['all', 'recursive', 'direct', 'indirect'] as const

export async function pinRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const { components } = options
  const { pins, blockstore, replication } = components

  // `options` carries this plugin's '/pin' prefix; the status route sits under it, not below it again
  await app.register(replicaRoutes, { components: options.components, maxBodyBytes: options.maxBodyBytes })

  rpc<{ arg?: string[], recursive?: boolean, name?: string, replicas?: number, wait?: boolean, progress?: boolean }>(app, '/add', {
    querystring: query({ arg: q.args, recursive: q.bool, name: q.str, progress: q.bool, replicas: { type: 'integer', minimum: 1 }, wait: q.bool }),
    response: pinsResponse
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const cids = await resolveArgs(blockstore, args(request.query, { min: 1, name: 'ipfs-path' }), { signal })
    const recursive = request.query.recursive ?? true
    const replicas = request.query.replicas ?? 1
    const nameOpt = request.query.name == null ? {} : { name: request.query.name }
    if (replicas > 1) {
      if (replication == null) throw new ReplicationUnavailableError()
      for (const cid of cids) {
        await replication.replicate(cid, { replicas, signal, ...nameOpt })
      }
      if (request.query.wait === true) {
        for (const cid of cids) await replication.settled(cid, { signal })
      }
      return { Pins: cids.map(cid => cid.toString()) }
    }
    if (request.query.progress !== true) {
      for (const cid of cids) {
        await pins.add(cid, { recursive, signal, ...nameOpt })
      }
      return { Pins: cids.map(cid => cid.toString()) }
    }
    // Kubo's progress stream: `{"Progress": blocks}` lines while the DAG is fetched, then the result
    streamHeaders(reply, 'ndjson')
    return reply.send(ndjson((async function * () {
      let blocks = 0
      let lastSent = 0
      let pending: { Progress: number, Bytes: number } | undefined
      let wake: (() => void) | undefined
      const adds = (async () => {
        for (const cid of cids) {
          const base = blocks
          await pins.add(cid, {
            recursive,
            signal,
            ...nameOpt,
            onProgress: (n, bytes) => {
              blocks = base + n
              pending = { Progress: blocks, Bytes: bytes }
              wake?.()
            }
          })
        }
      })()
      let done = false
      let failure: unknown
      adds.then(() => { done = true; wake?.() }, (err: unknown) => { failure = err; done = true; wake?.() })
      while (!done) {
        await new Promise<void>(resolve => { wake = resolve })
        wake = undefined
        // at most ~10 lines a second however many blocks arrive
        if (pending != null && (done || Date.now() - lastSent >= 100)) {
          yield pending
          pending = undefined
          lastSent = Date.now()
        }
      }
      if (failure != null) {
        const mapped = toKuboError(failure)
        yield { ...mapped.body, Type: 'error' }
        return
      }
      if (pending != null) yield pending
      yield { Pins: cids.map(cid => cid.toString()) }
    })()))
  })

  rpc<{ arg?: string[], type?: PinListType, name?: string, stream?: boolean, names?: boolean, quiet?: boolean }>(app, '/ls', {
    querystring: query({ arg: q.args, type: { type: 'string', enum: PIN_LIST_TYPES }, name: q.str, stream: q.bool, names: q.bool, quiet: q.bool })
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const cids = await resolveArgs(blockstore, args(request.query), { signal })
    const listed = pins.ls({
      type: request.query.type ?? 'all',
      signal,
      ...(cids.length > 0 ? { cids } : {}),
      ...(request.query.name == null || request.query.name === '' ? {} : { name: request.query.name })
    })
    const toLine = (pin: { cid: { toString(): string }, type: string, name?: string }): { Cid: string, Type: string, Name?: string } => ({
      Cid: pin.cid.toString(),
      Type: pin.type,
      ...(pin.name == null ? {} : { Name: pin.name })
    })
    if (request.query.stream === true) {
      const source = await primed(listed)
      streamHeaders(reply, 'ndjson')
      return reply.send(ndjson((async function * () { for await (const pin of source) yield toLine(pin) })()))
    }
    const keys: Record<string, { Type: string, Name?: string }> = {}
    for await (const pin of listed) {
      keys[pin.cid.toString()] = { Type: pin.type, ...(pin.name == null ? {} : { Name: pin.name }) }
    }
    return reply.type('application/json; charset=utf-8').send({ Keys: keys })
  })

  rpc<{ arg?: string[], recursive?: boolean }>(app, '/rm', {
    querystring: query({ arg: q.args, recursive: q.bool }),
    response: pinsResponse
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const cids = await resolveArgs(blockstore, args(request.query, { min: 1, name: 'ipfs-path' }), { signal })
    // a few at a time, so the releases of replicated pins reach each holder in batches, not one stream per pin
    let next = 0
    let failed = false
    const worker = async (): Promise<void> => {
      while (next < cids.length && !failed) {
        const cid = cids[next++] as CID
        try {
          // a replicated pin also releases its remote replicas
          if (await replication?.status(cid) != null) await replication?.remove(cid, { signal })
          else await pins.rm(cid, { recursive: request.query.recursive ?? true, signal })
        } catch (err) {
          // as one by one: the first failure stops the rest
          failed = true
          throw err
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(RM_CONCURRENCY, cids.length) }, worker))
    return { Pins: cids.map(cid => cid.toString()) }
  })

  rpc<{ arg?: string[], verbose?: boolean, quiet?: boolean, repair?: boolean }>(app, '/verify', {
    querystring: query({ arg: q.args, verbose: q.bool, quiet: q.bool, repair: q.bool })
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const cids = await resolveArgs(blockstore, args(request.query), { signal })
    const verbose = request.query.verbose === true
    const scope = { signal, ...(cids.length > 0 ? { cids } : {}) }
    const badNodes = (bad: PinVerifyResult['bad']): Array<{ Cid: string, Err: string }> => bad.map(b => ({ Cid: b.cid.toString(), Err: b.error }))
    let lines: AsyncGenerator<{ Cid: string, Ok: boolean, Repaired?: number, BadNodes: Array<{ Cid: string, Err: string }> }>
    if (request.query.repair === true) {
      if (replication?.repair == null) throw new ReplicationUnavailableError('repair needs a pool: set pool.members')
      const repaired = replication.repair(scope)
      lines = (async function * () {
        for await (const result of repaired) {
          if (result.ok && result.repaired === 0 && !verbose) continue
          yield { Cid: result.cid.toString(), Ok: result.ok, Repaired: result.repaired, BadNodes: badNodes(result.bad) }
        }
      })()
    } else {
      const results = pins.verify(scope)
      // like Kubo, only broken pins are reported unless verbose
      lines = (async function * () {
        for await (const result of results) {
          if (result.ok && !verbose) continue
          yield { Cid: result.cid.toString(), Ok: result.ok, BadNodes: badNodes(result.bad) }
        }
      })()
    }
    const source = await primed(lines)
    streamHeaders(reply, 'ndjson')
    return reply.send(ndjson(source))
  })

  rpc<{ arg?: string[], unpin?: boolean }>(app, '/update', {
    querystring: query({ arg: q.args, unpin: q.bool }),
    response: pinsResponse
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const list = args(request.query, { min: 2, max: 2, name: 'from-path, to-path' })
    const [fromArg, toArg] = list as [string, string]
    const from = await resolveArg(blockstore, fromArg, { signal })
    const to = await resolveArg(blockstore, toArg, { signal })
    // like Kubo, updating a pin to itself only checks that it is pinned
    if (from.toString() === to.toString()) {
      if (await pins.get(from) == null) throw new NotPinnedError(`${from.toString()} is not pinned`)
    } else {
      await pins.update(from, to, { unpin: request.query.unpin ?? true, signal })
    }
    return { Pins: [from.toString(), to.toString()] }
  })
}
