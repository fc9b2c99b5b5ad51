import { NotSupportedError } from '../errors.ts'
import { rpc } from './rpc.ts'
import type { RouteOptions } from '../server.ts'
import type { FastifyInstance } from 'fastify'

const statResponse = {
  200: {
    type: 'object',
    properties: {
      Strategy: { type: 'string' },
      Interval: { type: 'integer' },
      Total: { type: 'integer' },
      LastRun: { type: 'integer' },
      NextRun: { type: 'integer' },
      Announced: { type: 'integer' },
      Failed: { type: 'integer' },
      Retrying: { type: 'integer' },
      Recent: { type: 'array', items: { type: 'object', properties: { Cid: { type: 'string' }, At: { type: 'integer' } } } },
      // Kubo's `stats/provide` fields
      TotalProvides: { type: 'integer' },
      LastReprovideBatchSize: { type: 'integer' }
    }
  }
} as const

/** `provide/stat` (pinbox) and `stats/provide` (Kubo's name): what was announced and when. */
export async function provideRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const handler = async (): Promise<unknown> => {
    const provider = options.components.provider
    if (provider == null) throw new NotSupportedError('providing is off (provide.enabled is false, or no DHT is enabled)')
    const s = await provider.stat()
    return {
      Strategy: s.strategy,
      Interval: s.intervalMs,
      Total: s.total,
      ...(s.lastRun == null ? {} : { LastRun: s.lastRun }),
      ...(s.nextRun == null ? {} : { NextRun: s.nextRun }),
      Announced: s.announced,
      Failed: s.failed,
      Retrying: s.retrying,
      Recent: s.recent.map(r => ({ Cid: r.cid, At: r.at })),
      TotalProvides: s.announced,
      LastReprovideBatchSize: s.total
    }
  }
  rpc(app, '/provide/stat', { response: statResponse }, handler)
  rpc(app, '/stats/provide', { response: statResponse }, handler)
}
