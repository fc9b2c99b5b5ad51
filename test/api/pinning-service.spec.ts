import { randomBytes } from 'node:crypto'
import { Configuration, RemotePinningServiceClient, Status, TextMatchingStrategy } from '@ipfs-shipyard/pinning-service-client'
import * as dagPb from '@ipld/dag-pb'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deriveStatus } from '../../src/api/pinning-service/status.ts'
import { buildServer } from '../../src/api/server.ts'
import { createReplicationManager } from '../../src/pinning/pool/replication.ts'
import { createStack } from '../helpers/stack.ts'
import type { ReplicaStatus, ReplicatedPin, ReplicationManager } from '../../src/pinning/replication-types.ts'
import type { Stack } from '../helpers/stack.ts'
import type { PinStatus } from '@ipfs-shipyard/pinning-service-client'
import type { FastifyInstance } from 'fastify'

const TOKEN = 'psa-test-token'

async function failureOf (promise: Promise<unknown>): Promise<{ status: number, reason: string, details?: string }> {
  try {
    await promise
  } catch (err) {
    // the generated client throws the fetch Response itself
    const response = err as Response
    const body = await response.json() as { error: { reason: string, details?: string } }
    return { status: response.status, ...body.error }
  }
  throw new Error('expected the call to fail')
}

async function until (check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/**
 * Once over the lone box's `localReplication` (what `/pins` uses without a pool), once over the
 * pool's replication manager with this node as its only member.
 */
describe.each(['local', 'pool'] as const)('IPFS Pinning Service API (/pins) with @ipfs-shipyard/pinning-service-client (%s replication)', (kind) => {
  let stack: Stack
  let app: FastifyInstance
  let url: string
  let client: RemotePinningServiceClient
  let replication: ReplicationManager | undefined

  /** A raw block in the store: pinnable at once. */
  async function block (): Promise<CID> {
    const bytes = randomBytes(64)
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    await stack.repo.blockstore.put(cid, bytes)
    return cid
  }

  async function start (): Promise<void> {
    app = buildServer({
      ...stack.components,
      psaDb: stack.repo.db.sublevel('psa'),
      ...(replication == null ? {} : { replication })
    }, { token: TOKEN })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    url = address
    client = new RemotePinningServiceClient(new Configuration({ endpointUrl: url, accessToken: TOKEN }))
  }

  beforeAll(async () => {
    stack = await createStack()
    if (kind === 'pool') {
      const self = stack.components.network.peerId()
      replication = createReplicationManager({
        // with no other member there is never anyone to dial
        libp2p: { dialProtocol: async () => { throw new Error('no pool member to dial') } },
        pins: stack.pins,
        blockstore: stack.repo.blockstore,
        leases: stack.repo.leases,
        db: stack.repo.db.sublevel('replication'),
        peerId: peerIdFromString(self),
        members: () => [self]
      })
      await replication.start()
    }
    await start()
  })

  afterAll(async () => {
    await app?.close()
    await replication?.stop()
    await stack?.close()
  })

  it('adds a pin: 202, pinned at once for local content, and the content is pinned locally', async () => {
    const cid = await block()
    const before = Date.now()
    const status = await client.pinsPost({ pin: { cid: cid.toString(), name: 'first', meta: { app: 'a1' } } })
    expect(status.status).toBe(Status.Pinned)
    expect(status.requestid).toMatch(/^[0-9a-f]{28}$/)
    expect(status.created.getTime()).toBeGreaterThanOrEqual(before - 1)
    expect(status.pin).toEqual({ cid: cid.toString(), name: 'first', meta: { app: 'a1' } })
    expect(status.delegates).toEqual(['/ip4/127.0.0.1/tcp/4101/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'])
    expect(status.info).toMatchObject({ replicas_wanted: '1', replicas_pinned: '1', dag_size: '64' })
    expect(JSON.parse(status.info?.replicas ?? '[]')).toMatchObject([{ peer: stack.components.network.peerId(), state: 'pinned' }])
    const local = await stack.pins.get(cid)
    expect(local).toMatchObject({ type: 'recursive', name: 'first', metadata: { app: 'a1' } })
    if (replication != null) expect((await replication.status(cid))?.replicas).toBe(1)

    const got = await client.pinsRequestidGet({ requestid: status.requestid })
    expect(got).toEqual(status)
  })

  it('gives each request for the same CID its own requestid and keeps the pin until the last goes', async () => {
    const cid = await block()
    const a = await client.pinsPost({ pin: { cid: cid.toString() } })
    // a CIDv0-style or other-codec CID of the same multihash names the same pin
    const b = await client.pinsPost({ pin: { cid: cid.toString() } })
    expect(a.requestid).not.toBe(b.requestid)
    expect(b.created.getTime()).toBeGreaterThan(a.created.getTime())
    await client.pinsRequestidDelete({ requestid: a.requestid })
    expect(await stack.pins.get(cid)).toBeDefined()
    expect((await client.pinsRequestidGet({ requestid: b.requestid })).status).toBe(Status.Pinned)
    await client.pinsRequestidDelete({ requestid: b.requestid })
    expect(await stack.pins.get(cid)).toBeUndefined()
  })

  it('reports failed for content it cannot fetch and for more replicas than a lone box can give', async () => {
    const missing = CID.createV1(raw.code, await sha256.digest(randomBytes(32)))
    const failed = await client.pinsPost({ pin: { cid: missing.toString(), name: 'missing' } })
    expect(failed.status).toBe(Status.Failed)
    expect(failed.info?.status_details).toMatch(/not in the local store|missing/i)
    expect(await stack.pins.get(missing)).toBeUndefined()

    const cid = await block()
    const tooMany = await client.pinsPost({ pin: { cid: cid.toString(), meta: { replicas: '3' } } })
    expect(tooMany.status).toBe(Status.Failed)
    expect(tooMany.info).toMatchObject({ replicas_wanted: '3', status_details: expect.stringMatching(/pool/) })

    const listed = await client.pinsGet({ status: [Status.Failed], cid: [missing.toString(), cid.toString()] })
    expect(listed.results.map(r => r.requestid).sort()).toEqual([failed.requestid, tooMany.requestid].sort())
    // failed requests are not listed by default
    const byDefault = await client.pinsGet({ cid: [missing.toString()] })
    expect(byDefault.count).toBe(0)
    await client.pinsRequestidDelete({ requestid: failed.requestid })
    await client.pinsRequestidDelete({ requestid: tooMany.requestid })
  })

  describe('listing', () => {
    const made: PinStatus[] = []
    const tag = `list-${Date.now()}`

    beforeAll(async () => {
      const names = ['Alpha.pdf', 'alpha.pdf', 'beta-ALPHA.txt', 'gamma', 'delta', 'epsilon', 'zeta']
      for (const [i, name] of names.entries()) {
        const cid = await block()
        made.push(await client.pinsPost({ pin: { cid: cid.toString(), name, meta: { set: tag, parity: i % 2 === 0 ? 'even' : 'odd' } } }))
      }
    })

    const ids = (results: PinStatus[]): string[] => results.map(r => r.requestid)
    const madeIds = (...indexes: number[]): string[] => indexes.map(i => made[i]?.requestid ?? '')

    it('newest first, filtered by meta (the client sends meta[key]=value)', async () => {
      const all = await client.pinsGet({ meta: { set: tag }, limit: 100 })
      expect(all.count).toBe(7)
      expect(ids(all.results)).toEqual(madeIds(6, 5, 4, 3, 2, 1, 0))
      const odd = await client.pinsGet({ meta: { set: tag, parity: 'odd' } })
      expect(ids(odd.results)).toEqual(madeIds(5, 3, 1))
    })

    it('also reads meta as the spec\'s JSON object', async () => {
      const res = await fetch(`${url}/pins?meta=${encodeURIComponent(JSON.stringify({ set: tag, parity: 'even' }))}`, { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(res.status).toBe(200)
      const body = await res.json() as { count: number, results: Array<{ requestid: string }> }
      expect(body.results.map(r => r.requestid)).toEqual(madeIds(6, 4, 2, 0))
      const bad = await fetch(`${url}/pins?meta=${encodeURIComponent('{"set":1}')}`, { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(bad.status).toBe(400)
      expect(await bad.json()).toMatchObject({ error: { reason: 'BAD_REQUEST' } })
    })

    it('by cid, one or several', async () => {
      const one = await client.pinsGet({ cid: [made[2]?.pin.cid ?? ''] })
      expect(ids(one.results)).toEqual(madeIds(2))
      const two = await client.pinsGet({ cid: [made[0]?.pin.cid ?? '', made[4]?.pin.cid ?? ''] })
      expect(ids(two.results)).toEqual(madeIds(4, 0))
      // a different CID of the same multihash (dag-pb codec) finds the same request
      const sameHash = CID.createV1(dagPb.code, CID.parse(made[3]?.pin.cid ?? '').multihash)
      expect(ids((await client.pinsGet({ cid: [sameHash.toString()] })).results)).toEqual(madeIds(3))
    })

    it('by name with each match strategy', async () => {
      const q = async (name: string, match?: TextMatchingStrategy): Promise<string[]> =>
        ids((await client.pinsGet({ name, meta: { set: tag }, ...(match == null ? {} : { match }) })).results)
      expect(await q('alpha.pdf')).toEqual(madeIds(1))
      expect(await q('alpha.pdf', TextMatchingStrategy.Exact)).toEqual(madeIds(1))
      expect(await q('ALPHA.PDF', TextMatchingStrategy.Iexact)).toEqual(madeIds(1, 0))
      expect(await q('lpha', TextMatchingStrategy.Partial)).toEqual(madeIds(1, 0))
      expect(await q('ALPHA', TextMatchingStrategy.Partial)).toEqual(madeIds(2))
      expect(await q('alpha', TextMatchingStrategy.Ipartial)).toEqual(madeIds(2, 1, 0))
      expect(await q('nothing', TextMatchingStrategy.Ipartial)).toEqual([])
    })

    it('by status', async () => {
      expect((await client.pinsGet({ meta: { set: tag }, status: [Status.Pinned], limit: 100 })).count).toBe(7)
      expect((await client.pinsGet({ meta: { set: tag }, status: [Status.Queued, Status.Pinning, Status.Failed] })).count).toBe(0)
      expect((await client.pinsGet({ meta: { set: tag }, status: [Status.Failed, Status.Pinned], limit: 100 })).count).toBe(7)
    })

    it('by before and after', async () => {
      const created = (i: number): Date => made[i]?.created ?? new Date(0)
      expect(ids((await client.pinsGet({ meta: { set: tag }, before: created(2) })).results)).toEqual(madeIds(1, 0))
      expect(ids((await client.pinsGet({ meta: { set: tag }, after: created(4) })).results)).toEqual(madeIds(6, 5))
      expect(ids((await client.pinsGet({ meta: { set: tag }, after: created(1), before: created(4) })).results)).toEqual(madeIds(3, 2))
    })

    it('limit, count and pagination with before = the oldest created of the last page', async () => {
      const first = await client.pinsGet({ meta: { set: tag }, limit: 3 })
      expect(first.count).toBe(7)
      expect(ids(first.results)).toEqual(madeIds(6, 5, 4))
      const seen: string[] = []
      let page = first
      while (page.results.length > 0) {
        seen.push(...ids(page.results))
        const oldest = page.results[page.results.length - 1]?.created
        page = await client.pinsGet({ meta: { set: tag }, limit: 3, ...(oldest == null ? {} : { before: oldest }) })
      }
      expect(seen).toEqual(madeIds(6, 5, 4, 3, 2, 1, 0))
      // the default limit is 10
      expect((await client.pinsGet({ limit: 1000 })).count).toBeGreaterThanOrEqual(7)
    })

    it('rejects bad filters with 400 BAD_REQUEST', async () => {
      for (const call of [
        client.pinsGet({ limit: 0 }),
        client.pinsGet({ limit: 1001 }),
        client.pinsGet({ cid: ['not-a-cid'] }),
        client.pinsGet({ cid: Array.from({ length: 11 }, () => made[0]?.pin.cid ?? '') }),
        client.pinsGet({ status: ['done' as Status] }),
        client.pinsGet({ match: 'fuzzy' as TextMatchingStrategy, name: 'x' })
      ]) {
        expect(await failureOf(call)).toMatchObject({ status: 400, reason: 'BAD_REQUEST' })
      }
      const res = await fetch(`${url}/pins?before=yesterday`, { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(res.status).toBe(400)
    })
  })

  it('replaces a pin: new requestid, old one gone, old content released once the new one holds', async () => {
    const oldCid = await block()
    const newCid = await block()
    const old = await client.pinsPost({ pin: { cid: oldCid.toString(), name: 'v1' } })
    const replaced = await client.pinsRequestidPost({ requestid: old.requestid, pin: { cid: newCid.toString(), name: 'v2' } })
    expect(replaced.requestid).not.toBe(old.requestid)
    expect(replaced.status).toBe(Status.Pinned)
    expect(replaced.pin).toMatchObject({ cid: newCid.toString(), name: 'v2' })
    expect(await failureOf(client.pinsRequestidGet({ requestid: old.requestid }))).toMatchObject({ status: 404, reason: 'NOT_FOUND' })
    expect(await stack.pins.get(newCid)).toBeDefined()
    await until(async () => await stack.pins.get(oldCid) == null)
    expect(await failureOf(client.pinsRequestidPost({ requestid: old.requestid, pin: { cid: newCid.toString() } }))).toMatchObject({ status: 404 })
  })

  it('deletes a pin: 202, then 404, and the content is unpinned', async () => {
    const cid = await block()
    const status = await client.pinsPost({ pin: { cid: cid.toString() } })
    const raw = await client.pinsRequestidDeleteRaw({ requestid: status.requestid })
    expect(raw.raw.status).toBe(202)
    expect(await stack.pins.get(cid)).toBeUndefined()
    expect(await failureOf(client.pinsRequestidGet({ requestid: status.requestid }))).toMatchObject({ status: 404, reason: 'NOT_FOUND' })
    expect(await failureOf(client.pinsRequestidDelete({ requestid: status.requestid }))).toMatchObject({ status: 404, reason: 'NOT_FOUND' })
  })

  it('answers 404 NOT_FOUND for unknown or malformed requestids', async () => {
    expect(await failureOf(client.pinsRequestidGet({ requestid: '0'.repeat(28) }))).toMatchObject({ status: 404, reason: 'NOT_FOUND' })
    expect(await failureOf(client.pinsRequestidGet({ requestid: 'nope' }))).toMatchObject({ status: 404, reason: 'NOT_FOUND' })
  })

  it('refuses a bad or missing token with 401 UNAUTHORIZED, and changes nothing', async () => {
    const cid = await block()
    const intruder = new RemotePinningServiceClient(new Configuration({ endpointUrl: url, accessToken: 'wrong' }))
    expect(await failureOf(intruder.pinsPost({ pin: { cid: cid.toString() } }))).toMatchObject({ status: 401, reason: 'UNAUTHORIZED' })
    expect(await failureOf(intruder.pinsGet())).toMatchObject({ status: 401, reason: 'UNAUTHORIZED' })
    const anonymous = new RemotePinningServiceClient(new Configuration({ endpointUrl: url }))
    expect(await failureOf(anonymous.pinsRequestidDelete({ requestid: '0'.repeat(28) }))).toMatchObject({ status: 401 })
    const res = await fetch(`${url}/pins`)
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toBe('Bearer')
    expect(await stack.pins.get(cid)).toBeUndefined()
  })

  it('refuses malformed pins with 400 BAD_REQUEST, and pins nothing', async () => {
    const before = (await client.pinsGet({ limit: 1000, status: [Status.Queued, Status.Pinning, Status.Pinned, Status.Failed] })).count
    expect(await failureOf(client.pinsPost({ pin: { cid: 'bafy-not-a-cid' } }))).toMatchObject({ status: 400, reason: 'BAD_REQUEST', details: expect.stringMatching(/CID/) })
    const cid = (await block()).toString()
    expect(await failureOf(client.pinsPost({ pin: { cid, origins: ['not a multiaddr'] } }))).toMatchObject({ status: 400, reason: 'BAD_REQUEST' })
    expect(await failureOf(client.pinsPost({ pin: { cid, name: 'x'.repeat(256) } }))).toMatchObject({ status: 400 })
    expect(await failureOf(client.pinsPost({ pin: { cid, meta: { replicas: 'many' } } }))).toMatchObject({ status: 400 })
    expect(await failureOf(client.pinsPost({ pin: { cid, meta: { big: 'x'.repeat(300 * 1024) } } }))).toMatchObject({ status: 413, reason: 'PAYLOAD_TOO_LARGE' })
    const after = (await client.pinsGet({ limit: 1000, status: [Status.Queued, Status.Pinning, Status.Pinned, Status.Failed] })).count
    expect(after).toBe(before)
    expect(await stack.pins.get(CID.parse(cid))).toBeUndefined()
  })

  it('accepts valid origins and keeps them on the request', async () => {
    const cid = await block()
    const origins = ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK']
    const status = await client.pinsPost({ pin: { cid: cid.toString(), origins } })
    expect(status.pin.origins).toEqual(origins)
    await client.pinsRequestidDelete({ requestid: status.requestid })
  })

  it('dials the origins a request names, best-effort: a failed dial does not fail the pin', async () => {
    const dialed: string[] = []
    const other = buildServer({
      ...stack.components,
      psaDb: stack.repo.db.sublevel('psa-dial'),
      ...(replication == null ? {} : { replication }),
      dialOrigin: async (addr) => { dialed.push(addr); throw new Error('unreachable') }
    }, { token: TOKEN })
    try {
      const cid = await block()
      const origins = ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK', '/dns4/example.org/tcp/4001/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK']
      const res = await other.inject({ method: 'POST', url: '/pins', headers: { authorization: `Bearer ${TOKEN}` }, payload: { cid: cid.toString(), origins } })
      expect(res.statusCode).toBe(202)
      expect(res.json()).toMatchObject({ status: 'pinned', pin: { origins } })
      expect(dialed.sort()).toEqual([...origins].sort())
    } finally {
      await other.close()
    }
  })

  it('leaves the RPC API\'s POST-only rule and Kubo error bodies in place', async () => {
    const get = await fetch(`${url}/api/v0/pin/ls`, { headers: { authorization: `Bearer ${TOKEN}` } })
    expect(get.status).toBe(405)
    const version = await fetch(`${url}/api/v0/version`, { method: 'POST' })
    expect(version.status).toBe(200)
  })

  it('gives parallel requests distinct, ordered created times that paginate without loss', async () => {
    const cids = await Promise.all(Array.from({ length: 20 }, async () => await block()))
    const tag = `parallel-${Date.now()}`
    const made = await Promise.all(cids.map(async cid => await client.pinsPost({ pin: { cid: cid.toString(), meta: { set: tag } } })))
    expect(made.every(s => s.status === Status.Pinned)).toBe(true)
    expect(new Set(made.map(s => s.created.getTime())).size).toBe(20)
    const seen: string[] = []
    let before: Date | undefined
    for (;;) {
      const page = await client.pinsGet({ meta: { set: tag }, limit: 7, ...(before == null ? {} : { before }) })
      if (page.results.length === 0) break
      seen.push(...page.results.map(r => r.requestid))
      before = page.results[page.results.length - 1]?.created
    }
    expect(seen).toEqual(made.map(s => s.requestid).sort().reverse())
  })

  it('keeps requests across a restart', async () => {
    const cid = await block()
    const status = await client.pinsPost({ pin: { cid: cid.toString(), name: 'durable' } })
    await app.close()
    await start()
    const got = await client.pinsRequestidGet({ requestid: status.requestid })
    expect(got).toMatchObject({ requestid: status.requestid, status: Status.Pinned, pin: { name: 'durable' } })
    expect(got.created.getTime()).toBe(status.created.getTime())
    const next = await client.pinsPost({ pin: { cid: cid.toString() } })
    expect(next.created.getTime()).toBeGreaterThan(status.created.getTime())
  })

  it('is off without psaDb', async () => {
    const bare = buildServer(stack.components, { token: TOKEN })
    try {
      const res = await bare.inject({ method: 'GET', url: '/pins', headers: { authorization: `Bearer ${TOKEN}` } })
      expect(res.statusCode).toBe(404)
    } finally {
      await bare.close()
    }
  })
})

describe('deriveStatus: the spec\'s status from replica states', () => {
  const cid = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
  const replicated = (...states: Array<ReplicaStatus['state'] | [ReplicaStatus['state'], string]>): ReplicatedPin => ({
    cid,
    replicas: states.length,
    created: 0,
    status: states.map((s, i) => (Array.isArray(s) ? { peer: `p${i}`, state: s[0], since: 0, reason: s[1] } : { peer: `p${i}`, state: s, since: 0 }))
  })

  it('pinned when the local copy and the wanted replicas are pinned', () => {
    expect(deriveStatus({ wanted: 1, busy: false }, replicated('pinned'))).toMatchObject({ status: 'pinned', pinned: 1 })
    expect(deriveStatus({ wanted: 3, busy: false }, replicated('pinned', 'pinned', 'pinned'))).toMatchObject({ status: 'pinned', pinned: 3 })
    // more replicas than this request asked for (another request wanted more)
    expect(deriveStatus({ wanted: 2, busy: false }, replicated('pinned', 'pinned', 'pinning'))).toMatchObject({ status: 'pinned' })
  })

  it('queued or pinning while the local copy or remote replicas are pending', () => {
    expect(deriveStatus({ wanted: 2, busy: false }, replicated('queued', 'queued')).status).toBe('queued')
    expect(deriveStatus({ wanted: 2, busy: true }, replicated('pinning', 'queued')).status).toBe('pinning')
    expect(deriveStatus({ wanted: 3, busy: false }, replicated('pinned', 'pinned', 'queued'))).toMatchObject({ status: 'pinning', details: '2 of 3 replicas pinned' })
    // replicas the manager has not listed yet count as pending
    expect(deriveStatus({ wanted: 3, busy: false }, replicated('pinned')).status).toBe('pinning')
    expect(deriveStatus({ wanted: 1, busy: true }, undefined).status).toBe('pinning')
  })

  it('failed when the local copy failed, too few replicas can be placed, the request failed or the pin vanished', () => {
    expect(deriveStatus({ wanted: 1, busy: false }, replicated(['failed', 'disk full']))).toMatchObject({ status: 'failed', details: 'disk full' })
    expect(deriveStatus({ wanted: 3, busy: false }, replicated('pinned', 'pinned', ['failed', 'refused: quota']))).toMatchObject({
      status: 'failed',
      details: 'only 2 of 3 replicas could be placed: refused: quota'
    })
    expect(deriveStatus({ wanted: 1, busy: false, failure: 'boom' }, undefined)).toMatchObject({ status: 'failed', details: 'boom' })
    expect(deriveStatus({ wanted: 1, busy: false }, undefined).status).toBe('failed')
  })
})
