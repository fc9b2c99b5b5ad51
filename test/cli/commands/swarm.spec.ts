import { randomBytes } from 'node:crypto'
import { PassThrough, Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main } from '../../../src/cli/main.ts'
import { startNode, stopAll, until } from '../../net/helpers.ts'
import { run } from '../helpers.ts'
import type { TestNode } from '../../net/helpers.ts'

const nodes: TestNode[] = []
const dirs: string[] = []

function cli (node: TestNode, args: string[]): ReturnType<typeof run> {
  return run(['--repo', node.repo, '--api', node.apiUrl.replace(/\/api\/v0$/, ''), ...args])
}

describe('pinbox swarm, provide, id and pin add against real daemons', () => {
  let a: TestNode
  let b: TestNode

  beforeAll(async () => {
    a = await startNode(undefined, dirs)
    b = await startNode(cfg => { cfg.swarm.bootstrap = [a.addr] }, dirs)
    nodes.push(a, b)
  }, 30_000)
  afterAll(async () => { await stopAll(nodes, dirs) }, 30_000)

  it('swarm connect, peers, addrs and disconnect', async () => {
    const bad = await cli(b, ['swarm', 'connect', '/ip4/1.2.3.4/tcp/nope'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/^Error: .*invalid multiaddr "\/ip4\/1\.2\.3\.4\/tcp\/nope"/)

    const ok = await cli(b, ['swarm', 'connect', a.addr])
    expect(ok.stdout.trim()).toBe(`connect ${a.peerId} success`)
    const peers = await cli(b, ['swarm', 'peers'])
    expect(peers.stdout).toContain(`/p2p/${a.peerId}`)
    const addrs = await cli(b, ['--json', 'swarm', 'addrs'])
    const parsed = JSON.parse(addrs.stdout)
    expect(parsed.listen).toEqual([expect.stringMatching(/^\/ip4\/127\.0\.0\.1\/tcp\/[1-9]\d*$/)])
    expect(parsed.announced).toContain(b.addr)
    expect(Object.keys(parsed.peers)).toContain(a.peerId)

    const gone = await cli(b, ['swarm', 'disconnect', a.peerId])
    expect(gone.stdout.trim()).toBe(`disconnect ${a.peerId} success`)
    const notAgain = await cli(b, ['swarm', 'disconnect', a.peerId])
    expect(notAgain.code).toBe(1)
    expect(notAgain.stderr).toContain('not connected')
  }, 30_000)

  it('id shows the announced and the bound listen addresses', async () => {
    const id = await cli(a, ['id'])
    expect(id.stdout).toContain(`peer id: ${a.peerId}`)
    expect(id.stdout).toMatch(/listening on:\n {2}\/ip4\/127\.0\.0\.1\/tcp\/[1-9]\d*\n/)
    expect(id.stdout).toContain(`  ${a.addr}`)
  })

  it('pin add of remote content draws a progress bar on a TTY, and provide stat reports the announcement', async () => {
    // b was disconnected above: a's announcement of the add needs b back in its DHT first (one that
    // reached no one is only tried again after a new peer or minutes later: provider-retry.spec.ts)
    await cli(b, ['swarm', 'connect', a.addr])
    await until('b back in a\'s DHT', () => a.node.libp2p().getConnections().some(c => c.remotePeer.toString() === b.peerId) &&
      (a.node.libp2p().services.poolDHT as any).routingTable.size > 0)
    const form = new FormData()
    form.append('file', new Blob([randomBytes(100_000)]), 'x.bin')
    const added = await fetch(`${a.apiUrl}/add?chunker=size-4096&cid-version=1&raw-leaves=true`, { method: 'POST', headers: { authorization: `Bearer ${a.token}` }, body: form })
    const cid = JSON.parse((await added.text()).trim().split('\n').at(-1) as string).Hash as string

    const stdout = new PassThrough()
    const stderr = Object.assign(new PassThrough(), { isTTY: true })
    const out: Buffer[] = []
    const err: Buffer[] = []
    stdout.on('data', (c: Buffer) => out.push(c))
    stderr.on('data', (c: Buffer) => err.push(c))
    const code = await main(['node', 'pinbox', '--repo', b.repo, '--api', b.apiUrl.replace(/\/api\/v0$/, ''), 'pin', 'add', cid],
      { stdout, stderr, stdin: Readable.from([]), env: {} })
    expect(code).toBe(0)
    expect(Buffer.concat(out).toString()).toBe(`pinned ${cid} recursively\n`)
    expect(Buffer.concat(err).toString()).toMatch(/pinning \d+ blocks \| [\d.]+ (B|KiB)/)

    // the provider announces in the background right after the pin
    const end = Date.now() + 10_000
    while (Date.now() < end && !(JSON.parse((await cli(a, ['--json', 'provide', 'stat'])).stdout).Announced >= 1)) {
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const stat = await cli(a, ['provide', 'stat'])
    expect(stat.code).toBe(0)
    expect(stat.stdout).toMatch(/^strategy: {2}roots \(every 22h\)\nscheduled: \d+ CIDs\n/)
    const json = JSON.parse((await cli(a, ['--json', 'provide', 'stat'])).stdout)
    expect(json.Recent.map((r: { Cid: string }) => r.Cid)).toContain(cid)
  }, 30_000)
})
