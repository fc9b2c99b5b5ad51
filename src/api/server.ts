import { createHash, timingSafeEqual } from 'node:crypto'
import cors from '@fastify/cors'
import multipart from '@fastify/multipart'
import Fastify from 'fastify'
import { MethodNotAllowedError, RouteNotFoundError, UnauthorizedError, toKuboError } from './errors.ts'
import { blockRoutes } from './routes/block.ts'
import { contentRoutes } from './routes/content.ts'
import { dagRoutes } from './routes/dag.ts'
import { nodeRoutes } from './routes/node.ts'
import { PINNING_SERVICE_PREFIX, pinningServiceRoutes } from './pinning-service/routes.ts'
import { pinRoutes } from './routes/pin.ts'
import { repoRoutes } from './routes/repo.ts'
import { rewardsRoutes } from './routes/rewards.ts'
import { provideRoutes } from './routes/provide.ts'
import { swarmRoutes } from './routes/swarm.ts'
import type { ApiComponents, ApiInit } from './types.ts'
import type { FastifyInstance } from 'fastify'

export type { ApiComponents, ApiInit, ApiGc, ApiNetwork } from './types.ts'

export const API_PREFIX = '/api/v0'

/** JSON and other small bodies; uploads go through multipart with their own cap. */
const SMALL_BODY_LIMIT = 1024 * 1024
const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024 * 1024

/** Calls open to anyone who can reach the socket: harmless and needed to probe the daemon. */
const OPEN_ROUTES = new Set([`${API_PREFIX}/version`])

/** Options shared by route plugins. */
export interface RouteOptions {
  components: ApiComponents
  maxBodyBytes: number
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * Builds the RPC API (Kubo-compatible `/api/v0` subset) without listening, so tests can
 * `inject()` and the daemon decides where to `listen()`.
 */
export function buildServer (components: ApiComponents, init: ApiInit): FastifyInstance {
  if (init.token.length === 0) {
    throw new TypeError('the API needs a non-empty token')
  }
  const maxBodyBytes = init.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  // compare digests: equal length, so the comparison time says nothing about the token
  const tokenDigest = digest(init.token)
  const authorized = (header: string | undefined): boolean => {
    const match = /^Bearer\s+(.+)$/i.exec(header ?? '')
    return match?.[1] != null && timingSafeEqual(digest(match[1].trim()), tokenDigest)
  }

  const app = Fastify({
    bodyLimit: SMALL_BODY_LIMIT,
    ...(init.logger == null ? { logger: false } : { loggerInstance: init.logger }),
    // Kubo's clients send repeated `arg` and expect them as a list
    routerOptions: { ignoreTrailingSlash: true }
  }) as unknown as FastifyInstance

  if (init.corsOrigins != null && init.corsOrigins.length > 0) {
    void app.register(cors, {
      origin: init.corsOrigins,
      methods: ['POST'],
      allowedHeaders: ['Authorization', 'Content-Type'],
      exposedHeaders: ['X-Stream-Output', 'X-Chunked-Output', 'X-Content-Length']
    })
  }

  void app.register(multipart, {
    throwFileSizeLimit: true,
    limits: {
      fileSize: maxBodyBytes,
      // a directory upload is one part per entry
      parts: Infinity,
      files: Infinity,
      fields: 1000,
      fieldSize: SMALL_BODY_LIMIT
    }
  })

  app.addHook('onRequest', async (request) => {
    if (request.is404) return
    // CORS preflights carry no credentials; @fastify/cors answers them
    if (request.method === 'OPTIONS') return
    // the Pinning Service API is REST (GET/POST/DELETE) with its own auth hook and error bodies
    if (request.routeOptions.url?.startsWith(PINNING_SERVICE_PREFIX) === true) return
    if (request.method !== 'POST') throw new MethodNotAllowedError()
    const path = request.url.split('?')[0] ?? ''
    if (OPEN_ROUTES.has(path.replace(/\/+$/, ''))) return
    if (!authorized(request.headers.authorization)) throw new UnauthorizedError()
  })

  app.setErrorHandler((err, request, reply) => {
    const mapped = toKuboError(err)
    if (!mapped.expected) {
      request.log.error({ err }, 'request failed')
    }
    if (mapped.status === 401) {
      void reply.header('www-authenticate', 'Bearer')
    }
    if (mapped.status === 413) {
      // the rest of an oversized upload is not worth reading
      void reply.header('connection', 'close')
    }
    void reply.code(mapped.status).type('application/json; charset=utf-8').send(mapped.body)
  })

  app.setNotFoundHandler((_request, reply) => {
    const mapped = toKuboError(new RouteNotFoundError())
    void reply.code(mapped.status).send(mapped.body)
  })

  const options: RouteOptions = { components, maxBodyBytes }
  void app.register(async (api) => {
    await api.register(contentRoutes, options)
    await api.register(pinRoutes, { ...options, prefix: '/pin' })
    await api.register(blockRoutes, { ...options, prefix: '/block' })
    await api.register(dagRoutes, { ...options, prefix: '/dag' })
    await api.register(repoRoutes, { ...options, prefix: '/repo' })
    await api.register(nodeRoutes, options)
    await api.register(swarmRoutes, { ...options, prefix: '/swarm' })
    await api.register(provideRoutes, options)
    await api.register(rewardsRoutes, options)
  }, { prefix: API_PREFIX })

  const { psaDb } = components
  if (psaDb != null) {
    void app.register(pinningServiceRoutes, { components: { ...components, psaDb }, authorized, prefix: PINNING_SERVICE_PREFIX })
  }

  return app
}
