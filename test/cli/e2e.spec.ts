import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../helpers/daemon.ts'

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'pinbox.js')

interface Result { code: number, stdout: Buffer, stderr: string }

/** Runs `bin/pinbox.js` as a user would, with Node 24 (the one running the tests). */
async function pinbox (args: string[], stdin?: Buffer | string): Promise<Result> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => out.push(c))
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdin.end(stdin)
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)))
  return { code, stdout: Buffer.concat(out), stderr }
}

describe('pinbox CLI against a real daemon', () => {
  let dir: string
  let repo: string
  let daemon: ChildProcess | undefined
  let daemonOut = ''
  const cli = (args: string[], stdin?: Buffer | string): Promise<Result> => pinbox(['--repo', repo, ...args], stdin)

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinbox-cli-e2e-'))
    repo = join(dir, 'repo')
    expect((await cli(['init'])).code).toBe(0)
    for (const [key, value] of [
      ['api.port', String(await freePort())],
      ['gateway.port', String(await freePort())],
      ['swarm.listen', '["/ip4/127.0.0.1/tcp/0"]'],
      ['swarm.mdns', 'false']
    ] as const) {
      expect((await cli(['config', 'set', key, value])).code).toBe(0)
    }
    daemon = spawn(process.execPath, [BIN, '--repo', repo, 'daemon'], { stdio: ['ignore', 'pipe', 'pipe'] })
    daemon.stderr?.on('data', (c: Buffer) => { daemonOut += c.toString() })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`daemon did not start: ${daemonOut}`)), 30_000)
      daemon?.stdout?.on('data', (c: Buffer) => {
        daemonOut += c.toString()
        if (daemonOut.includes('daemon is ready')) { clearTimeout(timer); resolve() }
      })
      daemon?.on('exit', (code) => { clearTimeout(timer); reject(new Error(`daemon exited ${code}: ${daemonOut}`)) })
    })
  })

  afterAll(async () => {
    if (daemon?.exitCode == null && daemon != null) {
      const exited = new Promise((resolve) => daemon?.on('exit', resolve))
      daemon.kill('SIGINT')
      await exited
    }
    await rm(dir, { recursive: true, force: true })
  })

  it('prints the peer id and API address at start', () => {
    expect(daemonOut).toMatch(/peer id: 12D3KooW/)
    expect(daemonOut).toMatch(/API: +http:\/\/127\.0\.0\.1:\d+/)
  })

  it('adds a folder, lists, cats and gets it back', async () => {
    const src = join(dir, 'photos')
    await mkdir(join(src, 'sub'), { recursive: true })
    await writeFile(join(src, 'a.txt'), 'alpha\n')
    await writeFile(join(src, 'sub', 'b.bin'), Buffer.alloc(3 * 1024 * 1024, 7))

    const add = await cli(['--json', 'add', '-r', src, '--name', 'photos'])
    expect(add.stderr).toBe('')
    expect(add.code).toBe(0)
    const added = JSON.parse(add.stdout.toString()) as { root: string, entries: Array<{ name: string, cid: string }> }
    expect(added.entries.map((e) => e.name)).toEqual(expect.arrayContaining(['photos', 'photos/a.txt', 'photos/sub/b.bin']))
    const root = added.root

    const quiet = await cli(['add', '-q', '-r', src, '--no-pin'])
    expect(quiet.stdout.toString()).toBe(`${root}\n`)

    const ls = await cli(['ls', root])
    expect(ls.stdout.toString()).toMatch(/ \d+ a\.txt\n/)
    expect(ls.stdout.toString()).toMatch(/ sub\/\n/)

    const cat = await cli(['cat', `/ipfs/${root}/a.txt`])
    expect(cat.stdout.toString()).toBe('alpha\n')

    const out = join(dir, 'restored')
    const get = await cli(['get', root, '-o', out])
    expect(get.code).toBe(0)
    expect(await readFile(join(out, 'a.txt'), 'utf8')).toBe('alpha\n')
    expect((await readFile(join(out, 'sub', 'b.bin'))).equals(Buffer.alloc(3 * 1024 * 1024, 7))).toBe(true)

    const pins = await cli(['--json', 'pin', 'ls', '--type', 'recursive'])
    expect(JSON.parse(pins.stdout.toString()).pins).toEqual([{ cid: root, type: 'recursive', name: 'photos' }])
    const verify = await cli(['pin', 'verify'])
    expect(verify.code).toBe(0)
  })

  it('adds stdin, unpins and collects garbage', async () => {
    const add = await cli(['add', '-q', '--cid-version', '1'], 'from stdin\n')
    expect(add.code).toBe(0)
    const cid = add.stdout.toString().trim()
    expect(cid).toMatch(/^bafk/)
    expect((await cli(['cat', cid])).stdout.toString()).toBe('from stdin\n')
    expect((await cli(['pin', 'rm', cid])).stdout.toString()).toBe(`unpinned ${cid}\n`)
    const gc = await cli(['--json', 'repo', 'gc'])
    expect(gc.code).toBe(0)
    expect(JSON.parse(gc.stdout.toString()).removed).toBeGreaterThanOrEqual(1)
    const cat = await cli(['cat', cid, '--timeout', '2s'])
    expect(cat.code).not.toBe(0)
    expect(cat.stderr).toMatch(/^Error: /)
    const stat = await cli(['--json', 'repo', 'stat'])
    expect(JSON.parse(stat.stdout.toString()).NumObjects).toBeGreaterThan(0)
  })

  it('exports a DAG as CAR and imports it back, pinning the root', async () => {
    const add = await cli(['add', '-q'], 'car me\n')
    const cid = add.stdout.toString().trim()
    const car = await cli(['dag', 'export', cid])
    expect(car.code).toBe(0)
    expect(car.stdout.length).toBeGreaterThan(40)
    expect((await cli(['pin', 'rm', cid])).code).toBe(0)
    expect((await cli(['repo', 'gc'])).code).toBe(0)
    const file = join(dir, 'x.car')
    await writeFile(file, car.stdout)
    const imp = await cli(['--json', 'dag', 'import', file])
    expect(imp.code).toBe(0)
    expect(JSON.parse(imp.stdout.toString())).toMatchObject({ roots: [{ cid, pinned: true }], blocks: 1 })
    expect((await cli(['cat', cid])).stdout.toString()).toBe('car me\n')
  })

  it('reports the daemon unreachable after it stops', async () => {
    const exited = new Promise<number | null>((resolve) => daemon?.on('exit', resolve))
    daemon?.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(daemonOut).toContain('daemon stopped')
    const res = await cli(['pin', 'ls'])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/^Error: pinbox daemon is not running \(no API at http:\/\/127\.0\.0\.1:\d+\); start it with `pinbox daemon`\n$/)
  })
})
