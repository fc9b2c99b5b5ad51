import { args, requestSignal } from '../args.ts'
import { NotPinnedError } from '../../pinning/errors.ts'
import { resolveArg } from '../resolve.ts'
import { q, query, rpc } from './rpc.ts'
import type { ReplicatedPin } from '../../pinning/replication-types.ts'
import type { RouteOptions } from '../server.ts'
import type { FastifyInstance } from 'fastify'

const statusResponse = {
  200: {
    type: 'object',
    properties: {
      Cid: { type: 'string' },
      Name: { type: 'string' },
      Replicas: { type: 'integer' },
      Created: { type: 'integer' },
      Status: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            Peer: { type: 'string' },
            State: { type: 'string', enum: ['queued', 'pinning', 'pinned', 'failed'] },
            Since: { type: 'integer' },
            Reason: { type: 'string' },
            Receipt: { type: 'string' }
          }
        }
      }
    }
  }
} as const

export interface ReplicaStatusBody {
  Cid: string
  Name?: string
  Replicas: number
  Created: number
  Status: Array<{ Peer: string, State: string, Since: number, Reason?: string, Receipt?: string }>
}

export function replicaStatusBody (pin: ReplicatedPin): ReplicaStatusBody {
  return {
    Cid: pin.cid.toString(),
    ...(pin.name == null ? {} : { Name: pin.name }),
    Replicas: pin.replicas,
    Created: pin.created,
    Status: pin.status.map(s => ({
      Peer: s.peer,
      State: s.state,
      Since: s.since,
      ...(s.reason == null ? {} : { Reason: s.reason }),
      ...(s.receipt == null ? {} : { Receipt: s.receipt })
    }))
  }
}

/** `pin/status`: where each replica of a pin is (peer, state, since when), under the `/pin` prefix. */
export async function replicaRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const { components } = options
  const { pins, blockstore, replication } = components

  rpc<{ arg?: string[], wait?: boolean }>(app, '/status', {
    querystring: query({ arg: q.args, wait: q.bool }),
    response: statusResponse
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const [arg] = args(request.query, { min: 1, max: 1, name: 'ipfs-path' }) as [string]
    const cid = await resolveArg(blockstore, arg, { signal })
    let pin = await replication?.status(cid)
    if (pin != null && request.query.wait === true) pin = await replication?.settled(cid, { signal })
    if (pin == null) {
      // a pin made without --replicas is its own only replica
      const local = await pins.get(cid)
      if (local == null) throw new NotPinnedError(`${cid.toString()} is not pinned`)
      pin = {
        cid,
        replicas: 1,
        created: local.created,
        ...(local.name == null ? {} : { name: local.name }),
        status: [{ peer: components.network.peerId(), state: 'pinned', since: local.created }]
      }
    }
    return replicaStatusBody(pin)
  })
}
