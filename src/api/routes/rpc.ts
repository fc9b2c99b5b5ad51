import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify'

/**
 * Registers an RPC command. Kubo's API is POST-only; other methods are routed too so that the
 * server's method check answers 405 rather than 404.
 */
export function rpc<Query> (
  app: FastifyInstance,
  url: string,
  schema: FastifySchema,
  handler: (request: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply) => Promise<unknown>
): void {
  app.route<{ Querystring: Query }>({
    method: ['POST', 'GET', 'PUT', 'DELETE', 'PATCH'],
    url,
    schema,
    handler
  })
}

/** Query-string schema pieces. Unknown options are allowed: clients send extras like `stream-channels`. */
export const q = {
  args: { type: 'array', items: { type: 'string' } },
  bool: { type: 'boolean' },
  str: { type: 'string' },
  int: { type: 'integer', minimum: 0 }
} as const

export function query (properties: Record<string, unknown>): FastifySchema['querystring'] {
  return { type: 'object', properties }
}
