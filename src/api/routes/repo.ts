import { requestSignal, streamHeaders } from '../args.ts'
import { q, query, rpc } from './rpc.ts'
import type { RouteOptions } from '../server.ts'
import type { FastifyInstance } from 'fastify'

const statResponse = {
  200: {
    type: 'object',
    properties: {
      RepoSize: { type: 'integer' },
      StorageMax: { type: 'integer' },
      NumObjects: { type: 'integer' },
      RepoPath: { type: 'string' },
      Version: { type: 'string' }
    }
  }
} as const

export async function repoRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const { blockstore, gc, repo, autoGc } = options.components

  rpc<{ 'size-only'?: boolean }>(app, '/stat', {
    querystring: query({ 'size-only': q.bool, human: q.bool }),
    response: statResponse
  }, async (request) => {
    const { blocks, bytes } = blockstore.stat()
    if (request.query['size-only'] === true) {
      return { RepoSize: bytes, StorageMax: repo.maxBytes }
    }
    return {
      RepoSize: bytes,
      StorageMax: repo.maxBytes,
      NumObjects: blocks,
      RepoPath: repo.path,
      Version: `pinbox-repo@${repo.version ?? 1}`
    }
  })

  /**
   * The GC reports totals, not each removed CID, so the stream is one summary line; kubo-rpc-client
   * reads it as an entry with neither `cid` nor `err`.
   */
  rpc<{ quiet?: boolean }>(app, '/gc', {
    querystring: query({ quiet: q.bool, 'stream-errors': q.bool, silent: q.bool })
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const result = await gc.run({ signal })
    autoGc?.poke()
    streamHeaders(reply, 'ndjson')
    return reply.send(JSON.stringify({ Removed: result.removed, FreedBytes: result.freedBytes, DurationMs: result.durationMs, MarkMs: result.markMs }) + '\n')
  })
}
