import { localReplication } from '../../pinning/local-replication.ts'
import { PinboxError } from '../../errors.ts'
import { UnauthorizedError, statusOf } from '../errors.ts'
import { InvalidPinRequestError, PSA_STATUS_BY_CODE, PinRequestNotFoundError } from './errors.ts'
import { createPinningService } from './service.ts'
import { PSA_STATUSES } from './status.ts'
import type { PinningService, PinningServiceInit, PsaDb, PsaListQuery, PsaPin, TextMatch } from './service.ts'
import type { PsaStatus } from './status.ts'
import type { ApiComponents } from '../types.ts'
import type { FastifyInstance, FastifyReply } from 'fastify'

export const PINNING_SERVICE_PREFIX = '/pins'

export interface PinningServiceRouteOptions extends PinningServiceInit {
  components: ApiComponents & { psaDb: PsaDb }
  /** The API's constant-time bearer token check, given the `Authorization` header. */
  authorized(header: string | undefined): boolean
}

/** The spec's `Failure` body. */
export interface Failure {
  error: { reason: string, details?: string }
}

/** Pin metadata, request info: string to string. */
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const

const pinSchema = {
  type: 'object',
  required: ['cid'],
  properties: {
    cid: { type: 'string', minLength: 1, maxLength: 512 },
    name: { type: ['string', 'null'], maxLength: 255 },
    origins: { type: ['array', 'null'], items: { type: 'string', maxLength: 1024 }, maxItems: 20, uniqueItems: true },
    meta: { type: ['object', 'null'], additionalProperties: { type: 'string', maxLength: 4096 }, maxProperties: 1000 }
  }
} as const

const pinStatusSchema = {
  type: 'object',
  required: ['requestid', 'status', 'created', 'pin', 'delegates'],
  properties: {
    requestid: { type: 'string' },
    status: { type: 'string', enum: PSA_STATUSES },
    created: { type: 'string' },
    pin: {
      type: 'object',
      required: ['cid'],
      properties: { cid: { type: 'string' }, name: { type: 'string' }, origins: { type: 'array', items: { type: 'string' } }, meta: stringMap }
    },
    delegates: { type: 'array', items: { type: 'string' } },
    info: stringMap
  }
} as const

const failureSchema = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['reason'], properties: { reason: { type: 'string' }, details: { type: 'string' } } } }
} as const

const failures = { '4xx': failureSchema, '5xx': failureSchema } as const
const requestidParams = { type: 'object', required: ['requestid'], properties: { requestid: { type: 'string', maxLength: 128 } } } as const

/** Pin bodies are small; a megabyte of metadata is someone testing the limits. */
const BODY_LIMIT = 256 * 1024

/** The spec's reasons for its statuses; other 4XX/5XX use the error code without `ERR_`. */
const REASON_BY_STATUS: Readonly<Record<number, string>> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  404: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  500: 'INTERNAL_SERVER_ERROR',
  503: 'SERVICE_UNAVAILABLE',
  507: 'INSUFFICIENT_STORAGE'
}

/** Maps any error to the spec's `Failure` body and a status; internals of unexpected errors stay hidden. */
export function toFailure (err: unknown): { status: number, body: Failure, expected: boolean } {
  const code = (err as { code?: unknown } | null)?.code
  const mapped = (typeof code === 'string' ? PSA_STATUS_BY_CODE[code] : undefined) ?? statusOf(err)
  if (mapped == null || (mapped >= 500 && !(err instanceof PinboxError))) {
    return { status: mapped ?? 500, body: { error: { reason: 'INTERNAL_SERVER_ERROR', details: 'internal error' } }, expected: false }
  }
  const reason = REASON_BY_STATUS[mapped] ??
    (typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? code.replace(/^(FST_)?(ERR_)?/, '') : (mapped >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST'))
  const details = err instanceof Error && err.message !== '' ? err.message : String(mapped)
  return { status: mapped, body: { error: { reason, details } }, expected: true }
}

function splitList (values: string[] | undefined): string[] | undefined {
  if (values == null) return undefined
  const out = values.flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
  return out.length === 0 ? undefined : out
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

function parseTime (name: string, value: string | undefined): number | undefined {
  if (value == null) return undefined
  const ms = RFC3339.test(value) ? Date.parse(value) : NaN
  if (Number.isNaN(ms)) throw new InvalidPinRequestError(`${name} must be an RFC 3339 date-time`)
  return ms
}

/**
 * `meta` per the spec is a JSON object in one parameter (`?meta={"app":"x"}`); the generated JS
 * client sends OpenAPI's deepObject style instead (`?meta[app]=x`), so both are read.
 */
function parseMeta (query: Record<string, unknown>): Record<string, string> | undefined {
  let meta: Record<string, string> | undefined
  const json = query.meta
  if (typeof json === 'string' && json !== '') {
    let parsed: unknown
    try {
      parsed = JSON.parse(json)
    } catch (err) {
      throw new InvalidPinRequestError('meta must be a JSON object of strings', { cause: err })
    }
    if (parsed == null || typeof parsed !== 'object' || Array.isArray(parsed) || !Object.values(parsed).every(v => typeof v === 'string')) {
      throw new InvalidPinRequestError('meta must be a JSON object of strings')
    }
    meta = { ...(parsed as Record<string, string>) }
  }
  for (const [key, value] of Object.entries(query)) {
    const deep = /^meta\[(.+)\]$/.exec(key)
    if (deep?.[1] == null) continue
    if (typeof value !== 'string') throw new InvalidPinRequestError(`${key} must be given once`)
    meta = { ...meta, [deep[1]]: value }
  }
  return meta
}

function toPin (body: { cid: string, name?: string | null, origins?: string[] | null, meta?: Record<string, string> | null }): PsaPin {
  return {
    cid: body.cid,
    ...(body.name == null ? {} : { name: body.name }),
    ...(body.origins == null ? {} : { origins: body.origins }),
    ...(body.meta == null ? {} : { meta: body.meta })
  }
}

interface ListQuerystring {
  cid?: string[]
  name?: string
  match?: TextMatch
  status?: string[]
  before?: string
  after?: string
  limit?: number
  meta?: string
}

/**
 * The IPFS Pinning Service API (ipfs/pinning-services-api-spec) at `/pins`, REST with GET, POST
 * and DELETE, answering errors as the spec's `Failure`. Register with `prefix: '/pins'`.
 */
export async function pinningServiceRoutes (app: FastifyInstance, options: PinningServiceRouteOptions): Promise<void> {
  const { components, authorized } = options
  const service: PinningService = createPinningService({
    db: components.psaDb,
    replication: components.replication ?? localReplication(components.pins, { peerId: components.network.peerId() }),
    network: components.network,
    pins: components.pins,
    ...(components.dialOrigin == null ? {} : { dial: components.dialOrigin })
  }, options)

  app.addHook('onReady', async () => { await service.start() })
  app.addHook('onClose', async () => { await service.stop() })

  app.addHook('onRequest', async (request) => {
    if (!authorized(request.headers.authorization)) throw new UnauthorizedError('access token is missing or invalid')
  })

  app.setErrorHandler((err, request, reply) => {
    const failure = toFailure(err)
    if (!failure.expected) request.log.error({ err }, 'pinning service request failed')
    if (failure.status === 401) void reply.header('www-authenticate', 'Bearer')
    void reply.code(failure.status).type('application/json; charset=utf-8').send(failure.body)
  })

  app.setNotFoundHandler(async (request, reply) => {
    const failure = toFailure(new PinRequestNotFoundError(`no such route: ${request.method} ${request.url.split('?')[0] ?? ''}`))
    return await reply.code(failure.status).send(failure.body)
  })

  const send202 = (reply: FastifyReply): FastifyReply => reply.code(202)

  app.get<{ Querystring: ListQuerystring }>('/', {
    schema: {
      querystring: {
        type: 'object',
        properties: {
          cid: { type: 'array', items: { type: 'string' } },
          name: { type: 'string', maxLength: 255 },
          match: { type: 'string', enum: ['exact', 'iexact', 'partial', 'ipartial'] },
          status: { type: 'array', items: { type: 'string' } },
          before: { type: 'string' },
          after: { type: 'string' },
          limit: { type: 'integer', minimum: 1, maximum: 1000 },
          meta: { type: 'string' }
        }
      },
      response: {
        200: {
          type: 'object',
          required: ['count', 'results'],
          properties: { count: { type: 'integer' }, results: { type: 'array', items: pinStatusSchema } }
        },
        ...failures
      }
    }
  }, async (request) => {
    const q = request.query
    const status = splitList(q.status)
    for (const s of status ?? []) {
      if (!(PSA_STATUSES as readonly string[]).includes(s)) throw new InvalidPinRequestError(`unknown status ${s}: expected ${PSA_STATUSES.join(', ')}`)
    }
    const query: PsaListQuery = {}
    const cid = splitList(q.cid)
    if (cid != null) query.cid = cid
    if (q.name != null) query.name = q.name
    if (q.match != null) query.match = q.match
    if (status != null) query.status = status as PsaStatus[]
    const before = parseTime('before', q.before)
    if (before != null) query.before = before
    const after = parseTime('after', q.after)
    if (after != null) query.after = after
    if (q.limit != null) query.limit = q.limit
    const meta = parseMeta(request.query as Record<string, unknown>)
    if (meta != null) query.meta = meta
    return await service.list(query)
  })

  app.post<{ Body: PsaPin }>('/', {
    bodyLimit: BODY_LIMIT,
    schema: { body: pinSchema, response: { 202: pinStatusSchema, ...failures } }
  }, async (request, reply) => {
    const status = await service.add(toPin(request.body))
    return send202(reply).send(status)
  })

  app.get<{ Params: { requestid: string } }>('/:requestid', {
    schema: { params: requestidParams, response: { 200: pinStatusSchema, ...failures } }
  }, async (request) => await service.get(request.params.requestid))

  app.post<{ Params: { requestid: string }, Body: PsaPin }>('/:requestid', {
    bodyLimit: BODY_LIMIT,
    schema: { params: requestidParams, body: pinSchema, response: { 202: pinStatusSchema, ...failures } }
  }, async (request, reply) => {
    const status = await service.replace(request.params.requestid, toPin(request.body))
    return send202(reply).send(status)
  })

  app.delete<{ Params: { requestid: string } }>('/:requestid', {
    schema: { params: requestidParams, response: { ...failures } }
  }, async (request, reply) => {
    await service.remove(request.params.requestid)
    return send202(reply).send()
  })
}
