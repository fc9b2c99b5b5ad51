import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/server.ts'
import { createStack } from '../helpers/stack.ts'
import type { Stack } from '../helpers/stack.ts'
import type { FastifyInstance } from 'fastify'

const TOKEN = 'test-token-0123456789'
const auth = { authorization: `Bearer ${TOKEN}` }

describe('api server: auth, methods, errors, CORS', () => {
  let stack: Stack
  let app: FastifyInstance
  let corsApp: FastifyInstance

  beforeAll(async () => {
    stack = await createStack()
    app = buildServer(stack.components, { token: TOKEN })
    corsApp = buildServer(stack.components, { token: TOKEN, corsOrigins: ['http://dashboard.example'] })
  })

  afterAll(async () => {
    await app?.close()
    await corsApp?.close()
    await stack?.close()
  })

  it('answers version without a token', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v0/version' })
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.Version).toMatch(/^\d+\.\d+\.\d+/)
    expect(body.System).toContain('/')
  })

  it('refuses calls without a token, with a wrong token or a wrong scheme (401, Kubo error shape)', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }]) {
      const res = await app.inject({ method: 'POST', url: '/api/v0/id', headers })
      expect(res.statusCode).toBe(401)
      expect(res.json()).toEqual({ Message: expect.any(String), Code: 1, Type: 'error', code: 'ERR_UNAUTHORIZED' })
    }
    const ok = await app.inject({ method: 'POST', url: '/api/v0/id', headers: auth })
    expect(ok.statusCode).toBe(200)
    expect(ok.json().ID).toBe(stack.components.network.peerId())
  })

  it('answers GET and other non-POST methods with 405, also on the open route', async () => {
    for (const [method, url] of [['GET', '/api/v0/id'], ['GET', '/api/v0/version'], ['PUT', '/api/v0/pin/ls'], ['DELETE', '/api/v0/cat?arg=x']] as const) {
      const res = await app.inject({ method, url, headers: auth })
      expect(res.statusCode, `${method} ${url}`).toBe(405)
      expect(res.json().Type).toBe('error')
    }
  })

  it('answers unknown commands with 404', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v0/no/such/command', headers: auth })
    expect(res.statusCode).toBe(404)
    expect(res.json().Type).toBe('error')
  })

  it('maps a malformed CID to 400 with a clear message', async () => {
    for (const url of ['/api/v0/cat?arg=not-a-cid', '/api/v0/pin/add?arg=Qmnope', '/api/v0/block/stat?arg=/ipfs/zzz', '/api/v0/ls?arg=']) {
      const res = await app.inject({ method: 'POST', url, headers: auth })
      expect(res.statusCode, url).toBe(400)
      const body = res.json()
      expect(body.Code).toBe(1)
      expect(body.Message.length).toBeGreaterThan(5)
    }
    const res = await app.inject({ method: 'POST', url: '/api/v0/cat?arg=not-a-cid', headers: auth })
    expect(res.json().Message).toMatch(/Invalid CID "not-a-cid"/)
  })

  it('requires the argument', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v0/cat', headers: auth })
    expect(res.statusCode).toBe(400)
    expect(res.json().Message).toMatch(/argument "ipfs-path" is required/)
  })

  it('rejects bad option values via the query schema (400)', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v0/pin/ls?type=sideways', headers: auth })
    expect(res.statusCode).toBe(400)
    expect(res.json().Type).toBe('error')
  })

  it('maps a missing block to 404 and an unpinned CID to 404', async () => {
    const missing = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    const stat = await app.inject({ method: 'POST', url: `/api/v0/block/stat?arg=${missing}`, headers: auth })
    expect(stat.statusCode).toBe(404)
    expect(stat.json().Code).toBe(3)
    const rm = await app.inject({ method: 'POST', url: `/api/v0/pin/rm?arg=${missing}`, headers: auth })
    expect(rm.statusCode).toBe(404)
    const cat = await app.inject({ method: 'POST', url: `/api/v0/cat?arg=${missing}`, headers: auth })
    expect(cat.statusCode).toBe(404)
  })

  it('refuses JSON bodies over 1 MiB with 413', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v0/id',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 10) })
    })
    expect(res.statusCode).toBe(413)
    expect(res.json().Type).toBe('error')
  })

  it('sends no CORS headers by default', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v0/version', headers: { origin: 'http://dashboard.example' } })
    expect(res.headers['access-control-allow-origin']).toBeUndefined()
    const preflight = await app.inject({ method: 'OPTIONS', url: '/api/v0/id', headers: { origin: 'http://dashboard.example', 'access-control-request-method': 'POST' } })
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('sends CORS headers for configured origins only', async () => {
    const preflight = await corsApp.inject({
      method: 'OPTIONS',
      url: '/api/v0/id',
      headers: { origin: 'http://dashboard.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' }
    })
    expect(preflight.statusCode).toBe(204)
    expect(preflight.headers['access-control-allow-origin']).toBe('http://dashboard.example')
    expect(String(preflight.headers['access-control-allow-headers'])).toMatch(/authorization/i)

    const res = await corsApp.inject({ method: 'POST', url: '/api/v0/id', headers: { ...auth, origin: 'http://dashboard.example' } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBe('http://dashboard.example')

    const other = await corsApp.inject({ method: 'POST', url: '/api/v0/id', headers: { ...auth, origin: 'http://evil.example' } })
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
    // CORS does not replace the token
    const noToken = await corsApp.inject({ method: 'POST', url: '/api/v0/id', headers: { origin: 'http://dashboard.example' } })
    expect(noToken.statusCode).toBe(401)
  })

  it('hides internal errors behind a generic 500', async () => {
    const broken = buildServer({
      ...stack.components,
      network: { ...stack.components.network, peerId: () => { throw new TypeError('secret internals at /home/x/.pinbox') } }
    }, { token: TOKEN })
    try {
      const res = await broken.inject({ method: 'POST', url: '/api/v0/id', headers: auth })
      expect(res.statusCode).toBe(500)
      expect(res.json()).toEqual({ Message: 'internal error', Code: 0, Type: 'error' })
      expect(res.body).not.toContain('secret')
    } finally {
      await broken.close()
    }
  })

  it('refuses an empty token at build time', () => {
    expect(() => buildServer(stack.components, { token: '' })).toThrow()
  })
})
