import { args, requestSignal } from '../args.ts'
import { NotSupportedError } from '../errors.ts'
import { q, query, rpc } from './rpc.ts'
import type { Swarm } from '../../net/swarm.ts'
import type { RouteOptions } from '../server.ts'
import type { FastifyInstance } from 'fastify'

const peersResponse = {
  200: {
    type: 'object',
    properties: {
      Peers: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            Addr: { type: 'string' },
            Peer: { type: 'string' },
            Direction: { type: 'integer' },
            Streams: { type: 'array', items: { type: 'object', properties: { Protocol: { type: 'string' } } } }
          }
        }
      }
    }
  }
} as const

const stringsResponse = {
  200: { type: 'object', properties: { Strings: { type: 'array', items: { type: 'string' } } } }
} as const

const addrsResponse = {
  200: {
    type: 'object',
    properties: {
      Addrs: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } }
    }
  }
} as const

/** libp2p's Direction enum as Kubo serialises it. */
const DIRECTIONS: Readonly<Record<string, number>> = { inbound: 1, outbound: 2 }

/** Kubo's `swarm peers|connect|disconnect|addrs[/listen|/local]`. */
export async function swarmRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const { network } = options.components
  const swarm = (): Swarm => {
    const s = options.components.swarm
    if (s == null) throw new NotSupportedError('this node runs without libp2p')
    return s
  }

  rpc<{ direction?: boolean }>(app, '/peers', {
    querystring: query({ verbose: q.bool, latency: q.bool, streams: q.bool, direction: q.bool, identify: q.bool }),
    response: peersResponse
  }, async (request) => {
    const list = options.components.swarm?.peers() ?? network.peers()
    return {
      Peers: list.map(p => ({
        Addr: p.addr,
        Peer: p.peer,
        ...(request.query.direction === true && p.direction != null && DIRECTIONS[p.direction] != null ? { Direction: DIRECTIONS[p.direction] } : {})
      }))
    }
  })

  rpc<{ arg?: string[] }>(app, '/connect', {
    querystring: query({ arg: q.args }),
    response: stringsResponse
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const strings: string[] = []
    for (const addr of args(request.query, { min: 1, name: 'address' })) {
      const peer = await swarm().connect(addr, { signal })
      strings.push(`connect ${peer} success`)
    }
    return { Strings: strings }
  })

  rpc<{ arg?: string[] }>(app, '/disconnect', {
    querystring: query({ arg: q.args }),
    response: stringsResponse
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const strings: string[] = []
    for (const target of args(request.query, { min: 1, name: 'address' })) {
      const peer = await swarm().disconnect(target, { signal })
      strings.push(`disconnect ${peer} success`)
    }
    return { Strings: strings }
  })

  rpc(app, '/addrs', { response: addrsResponse }, async (request, reply) => {
    return { Addrs: await swarm().known({ signal: requestSignal(request, reply) }) }
  })

  rpc(app, '/addrs/listen', { response: stringsResponse }, async () => ({ Strings: swarm().addrs().listen }))

  rpc<{ id?: boolean }>(app, '/addrs/local', {
    querystring: query({ id: q.bool }),
    response: stringsResponse
  }, async (request) => {
    const announced = swarm().addrs().announced
    // Kubo leaves the /p2p/ suffix off unless asked for it
    return { Strings: request.query.id === true ? announced : announced.map(a => a.replace(/\/p2p\/[^/]+$/, '')) }
  })
}
