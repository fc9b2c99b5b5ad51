import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { buildUrl, createRpcClient, parseDuration, resolveApiUrl, resolveRepoPath } from '../../src/cli/context.ts'
import { encodeMultipart } from '../../src/cli/multipart.ts'
import { run } from './helpers.ts'
import { freePort } from '../helpers/daemon.ts'

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => void

setFlagsFromString('--expose-gc')
const forceGc = runInNewContext('gc') as () => void

describe('RPC client and context', () => {
  let server: Server
  let apiUrl: string
  let dir: string
  const seen: Array<{ method: string, url: URL, auth?: string }> = []
  const routes: Record<string, Route> = {
    '/api/v0/pin/add': (_req, res, url) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ Pins: url.searchParams.getAll('arg') }))
    },
    '/api/v0/pin/rm': (_req, res) => {
      res.statusCode = 500
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ Message: 'not pinned', Code: 0, Type: 'error' }))
    },
    '/api/v0/pin/ls': (_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.write('{"Cid":"bafyA","Type":"recursive","Name":"photos"}\n')
      setTimeout(() => res.end('{"Cid":"bafyB","Type":"direct"}\n'), 20)
    },
    '/api/v0/pin/verify': (_req, res) => {
      res.write(JSON.stringify({ Cid: 'bafyA', Ok: true, BadNodes: [] }) + '\n')
      res.write(JSON.stringify({ Cid: 'bafyB', Ok: false, BadNodes: [{ Cid: 'bafkBAD', Err: 'hash-mismatch' }] }) + '\n')
      res.end()
    },
    '/api/v0/repo/gc': (_req, res) => {
      res.write('{"Key":{"/":"bafyA"}}\n')
      res.end('{"Message":"disk on fire","Code":0,"Type":"error"}\n')
    },
    '/api/v0/id': (req, res) => {
      if (req.headers.authorization !== 'Bearer s3cret') {
        res.statusCode = 401
        res.end(JSON.stringify({ Message: 'missing or invalid API token', Code: 1, Type: 'error' }))
        return
      }
      res.end(JSON.stringify({ ID: '12D3KooWtest', Addresses: ['/ip4/127.0.0.1/tcp/4101'], AgentVersion: 'pinbox/0.1.0' }))
    },
    '/api/v0/add': (req, res) => {
      let bytes = 0
      req.on('data', (c: Buffer) => { bytes += c.length })
      req.on('end', () => res.end(JSON.stringify({ Name: '', Hash: 'bafkADDED', Size: String(bytes) }) + '\n'))
    },
    '/api/v0/slow': () => {},
    // after the whole upload arrived, and before the client has its reply: how many sent chunks live on
    '/api/v0/upload-kept': (req, res) => {
      req.resume()
      req.on('end', () => {
        setImmediate(() => {
          forceGc()
          res.end(JSON.stringify({ kept: sentChunks.filter(ref => ref.deref() != null).length }))
        })
      })
    }
  }
  const sentChunks: Array<WeakRef<Uint8Array>> = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinbox-cli-context-'))
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      seen.push({ method: req.method ?? '', url, ...(req.headers.authorization != null ? { auth: req.headers.authorization } : {}) })
      if (url.pathname !== '/api/v0/add') req.resume()
      const route = routes[url.pathname]
      if (route == null) {
        res.statusCode = 404
        res.end('404 page not found')
        return
      }
      route(req, res, url)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    apiUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await rm(dir, { recursive: true, force: true })
  })

  it('parses Go-style durations', () => {
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('30s')).toBe(30_000)
    expect(parseDuration('1m30s')).toBe(90_000)
    expect(parseDuration('2')).toBe(2000)
    for (const bad of ['', 'soon', '5x', '1m-3s', '0s']) expect(() => parseDuration(bad)).toThrow(/invalid duration/)
  })

  it('builds Kubo query strings with repeated args', () => {
    expect(buildUrl('http://127.0.0.1:5101', 'pin/add', { arg: ['a', 'b'], recursive: true, name: undefined, n: 3 }))
      .toBe('http://127.0.0.1:5101/api/v0/pin/add?arg=a&arg=b&recursive=true&n=3')
  })

  it('resolves the repo and API address from flags, env and config', async () => {
    expect(resolveRepoPath(undefined, { PINBOX_HOME: '/srv/pinbox' })).toBe('/srv/pinbox')
    expect(resolveRepoPath('/x/y', { PINBOX_HOME: '/srv/pinbox' })).toBe('/x/y')
    const repo = join(dir, 'cfg')
    await mkdir(repo)
    expect(await resolveApiUrl(undefined, repo)).toBe('http://127.0.0.1:5101')
    await writeFile(join(repo, 'config.json'), JSON.stringify({ api: { host: '0.0.0.0', port: 6123 } }))
    expect(await resolveApiUrl(undefined, repo)).toBe('http://127.0.0.1:6123')
    expect(await resolveApiUrl('localhost:7000', repo)).toBe('http://localhost:7000')
    // a running daemon's own record of where it listens wins over the config (port 0, say)
    await writeFile(join(repo, 'api'), 'http://127.0.0.1:40123\n')
    expect(await resolveApiUrl(undefined, repo)).toBe('http://127.0.0.1:40123')
    expect(await resolveApiUrl('localhost:7000', repo)).toBe('http://localhost:7000')
  })

  it('POSTs with the bearer token and parses JSON replies', async () => {
    const rpc = createRpcClient({ apiUrl, token: 'tok' })
    expect(await rpc.call('pin/add', { arg: ['bafyA', 'bafyB'] })).toEqual({ Pins: ['bafyA', 'bafyB'] })
    const last = seen[seen.length - 1]
    expect(last?.method).toBe('POST')
    expect(last?.auth).toBe('Bearer tok')
  })

  it('a streamed upload keeps no chunk it has sent (fetch must not tee the body)', async () => {
    const rpc = createRpcClient({ apiUrl, token: 'tok' })
    async function * content (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 32; i++) {
        const chunk = new Uint8Array(1024 * 1024).fill(i)
        sentChunks.push(new WeakRef(chunk))
        yield chunk
      }
    }
    const reply = await rpc.call<{ kept: number }>('upload-kept', undefined, { body: encodeMultipart([{ path: 'f', content: content() }]) })
    expect(sentChunks).toHaveLength(32)
    // a teed body holds all 32 until the reply; a streamed one only what is in flight
    expect(reply.kept).toBeLessThan(8)
  })

  it('turns a Kubo error body into an ApiError carrying its message', async () => {
    const rpc = createRpcClient({ apiUrl })
    await expect(rpc.call('pin/rm', { arg: 'bafyA' })).rejects.toMatchObject({ code: 'ERR_API', message: 'not pinned', status: 500 })
    await expect(rpc.call('nope')).rejects.toMatchObject({ code: 'ERR_API', message: '404 page not found', status: 404 })
  })

  it('streams NDJSON values and fails on an error value mid-stream', async () => {
    const rpc = createRpcClient({ apiUrl })
    const values = []
    for await (const v of rpc.ndjson('pin/ls')) values.push(v)
    expect(values).toEqual([{ Cid: 'bafyA', Type: 'recursive', Name: 'photos' }, { Cid: 'bafyB', Type: 'direct' }])
    const gc = rpc.ndjson('repo/gc')
    expect((await gc.next()).value).toEqual({ Key: { '/': 'bafyA' } })
    await expect(gc.next()).rejects.toMatchObject({ code: 'ERR_API', message: 'disk on fire' })
  })

  it('gives up with ERR_TIMEOUT after --timeout', async () => {
    const rpc = createRpcClient({ apiUrl, timeoutMs: 100 })
    const started = Date.now()
    await expect(rpc.call('slow')).rejects.toMatchObject({ code: 'ERR_TIMEOUT' })
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('commands read the token from <repo>/api.token and print text or JSON', async () => {
    const repo = join(dir, 'tok')
    await mkdir(repo)
    await writeFile(join(repo, 'api.token'), 's3cret\n')
    const text = await run(['--repo', repo, '--api', apiUrl, 'id'])
    expect(text).toMatchObject({ code: 0, stderr: '' })
    expect(text.stdout).toBe('peer id: 12D3KooWtest\nagent:   pinbox/0.1.0\naddresses:\n  /ip4/127.0.0.1/tcp/4101\n')
    const json = await run(['--repo', repo, '--api', apiUrl, '--json', 'id'])
    expect(JSON.parse(json.stdout).ID).toBe('12D3KooWtest')

    const noToken = await run(['--repo', join(dir, 'missing'), '--api', apiUrl, 'id'])
    expect(noToken.code).toBe(1)
    expect(noToken.stderr).toBe(`Error: missing or invalid API token (the API token is read from ${join(dir, 'missing', 'api.token')})\n`)
  })

  it('add maps its flags to Kubo query args (--pin=false, --no-pin, -w, -n, chunker)', async () => {
    const res = await run(['--api', apiUrl, 'add', '--pin=false', '--name', 'x', '-w', '-n', '--cid-version', '0', '--chunker', 'size-1024', '--raw-leaves', '-'], { stdin: 'data' })
    expect(res).toMatchObject({ code: 0, stdout: 'added bafkADDED bafkADDED\n', stderr: '' })
    const query = seen[seen.length - 1]?.url.searchParams
    expect(Object.fromEntries(query ?? [])).toEqual({
      'cid-version': '0', chunker: 'size-1024', 'raw-leaves': 'true', 'wrap-with-directory': 'true', 'only-hash': 'true', pin: 'false'
    })
    expect((await run(['--api', apiUrl, 'add', '--no-pin', '-q', '-'], { stdin: 'd' })).stdout).toBe('bafkADDED\n')
    expect(seen[seen.length - 1]?.url.searchParams.get('pin')).toBe('false')
    expect((await run(['--api', apiUrl, 'add', '--name', 'n', '-'], { stdin: 'd' })).code).toBe(0)
    expect(Object.fromEntries(seen[seen.length - 1]?.url.searchParams ?? [])).toEqual({ pin: 'true', 'pin-name': 'n' })
    // a bare boolean flag before the path must not swallow the path as its value
    expect((await run(['--api', apiUrl, 'add', '--raw-leaves', '--pin', '-'], { stdin: 'd' })).code).toBe(0)
    expect(Object.fromEntries(seen[seen.length - 1]?.url.searchParams ?? [])).toEqual({ pin: 'true', 'raw-leaves': 'true' })
    expect((await run(['--api', apiUrl, 'add', '--raw-leaves=false', '-'], { stdin: 'd' })).code).toBe(0)
    expect(seen[seen.length - 1]?.url.searchParams.get('raw-leaves')).toBe('false')

    const bad = await run(['--api', apiUrl, 'add', '--chunker', 'rabin', '-'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/^Error: invalid --chunker "rabin"/)
    const dirNoR = await run(['--api', apiUrl, 'add', dir])
    expect(dirNoR.stderr).toMatch(/is a directory; use -r/)
  })

  it('pin verify prints broken blocks and exits non-zero', async () => {
    const res = await run(['--api', apiUrl, 'pin', 'verify'])
    expect(res.code).toBe(1)
    expect(res.stdout).toBe('bafyA ok\nbafyB broken\n  bafkBAD: hash-mismatch\n1 of 2 pins broken\n')
    const json = await run(['--api', apiUrl, '--json', 'pin', 'verify'])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, pins: [{ cid: 'bafyA', ok: true }, { cid: 'bafyB', ok: false, bad: [{ cid: 'bafkBAD', error: 'hash-mismatch' }] }] })
  })

  it('says the daemon is not running, in one line, when nothing listens at the API address', async () => {
    const port = await freePort()
    const repo = join(dir, 'down')
    await mkdir(repo)
    await writeFile(join(repo, 'config.json'), JSON.stringify({ api: { host: '127.0.0.1', port } }))
    const res = await run(['--repo', repo, 'pin', 'ls'])
    expect(res.code).toBe(1)
    expect(res.stdout).toBe('')
    expect(res.stderr).toBe(`Error: pinbox daemon is not running (no API at http://127.0.0.1:${port}); start it with \`pinbox daemon\`\n`)

    const debug = await run(['--repo', repo, '--debug', 'cat', 'bafyA'])
    expect(debug.code).toBe(1)
    expect(debug.stderr.split('\n')[0]).toMatch(/^Error: pinbox daemon is not running/)
    expect(debug.stderr).toContain('ECONNREFUSED')
  })
})
