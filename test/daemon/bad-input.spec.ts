import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasStackTrace, startDaemon, stopAll, tempDir } from '../helpers/daemon.ts'
import type { CliResult, Daemon } from '../helpers/daemon.ts'
import { CONFORMANCE_FIXTURES } from '../helpers/fixtures.ts'

const FIXTURES = CONFORMANCE_FIXTURES
/** Two single-block files in a subfolder: 4 blocks, so a flipped byte in the last one leaves 3 good ones before it. */
const SMALL_CAR = join(FIXTURES, 'trustless_gateway_car/subdir-with-two-single-block-files.car')

interface State {
  pins: string[]
  numObjects: number
  repoSize: number
}

let d: Daemon
let dir: string
let root: string
let baseline: State

async function state (): Promise<State> {
  const ls = await d.json<{ pins: Array<{ cid: string, type: string }> }>(['pin', 'ls'])
  const stat = await d.json<{ NumObjects: number, RepoSize: number }>(['repo', 'stat'])
  return { pins: ls.pins.map((p) => `${p.cid} ${p.type}`).sort(), numObjects: stat.NumObjects, repoSize: stat.RepoSize }
}

/**
 * A refused CAR import keeps the good blocks it read before the bad one (as Kubo does), unpinned:
 * no pin changes, and the next GC takes the repo back to where it was.
 */
async function expectNothingLasting (): Promise<void> {
  expect((await state()).pins).toEqual(baseline.pins)
  await d.json(['repo', 'gc'])
  expect(await state()).toEqual(baseline)
}

/** Exit 1, one `Error: …` line on stderr that contains every `names`, nothing on stdout, no stack. */
function expectCleanError (res: CliResult, ...names: string[]): void {
  const all = `${res.stdout}\n${res.stderr}`
  expect(res.code, all).toBe(1)
  const lines = res.stderr.trim().split('\n')
  expect(lines, res.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^Error: \S/)
  for (const name of names) expect(lines[0]).toContain(name)
  expect(hasStackTrace(all)).toBe(false)
  expect(res.stdout).toBe('')
}

describe('bad input through the real CLI against a real daemon', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    d = await startDaemon()
    dir = await tempDir()
    const tree = join(dir, 'tree')
    await mkdir(join(tree, 'sub'), { recursive: true })
    await writeFile(join(tree, 'sub', 'a.txt'), 'hello from a\n')
    await writeFile(join(tree, 'b.txt'), 'hello from b\n')
    root = (await d.json<{ root: string }>(['add', '-r', tree])).root
    // `add -r` leaves an unreachable 4-byte empty-folder block; start from a swept repo
    await d.json(['repo', 'gc'])
    baseline = await state()
    expect(baseline.pins).toContain(`${root} recursive`)
  }, 60_000)

  afterAll(async () => {
    await stopAll()
  })

  it.each([
    ['cat', ['cat']],
    ['pin add', ['pin', 'add']],
    ['get', ['get', '-o', '/nonexistent-out']],
    ['pin rm', ['pin', 'rm']]
  ])('%s of a malformed CID exits 1 with one line naming it', async (_name, cmd) => {
    for (const bad of ['bafyNOTAREALCID', 'Qm1234']) {
      expectCleanError(await d.cli([...cmd, bad]), bad)
    }
    expect(await state()).toEqual(baseline)
  })

  it('add of a path that does not exist names the path', async () => {
    const missing = join(dir, 'nope', 'missing.txt')
    expectCleanError(await d.cli(['add', missing]), missing)
    expect(await state()).toEqual(baseline)
  })

  it('cat of a path missing inside a stored folder names the missing segment', async () => {
    expect((await d.cli(['cat', `${root}/sub/a.txt`])).stdout).toBe('hello from a\n')
    const res = await d.cli(['cat', `${root}/missing/path`])
    expectCleanError(res, 'missing')
    expect(await state()).toEqual(baseline)
  })

  it('dag import of a CAR with a wrong block is refused, naming the block; nothing is left after gc', async () => {
    const car = await readFile(SMALL_CAR)
    const bad = Buffer.from(car)
    const last = bad.length - 1
    bad[last] = (bad[last] ?? 0) ^ 0xff
    const file = join(dir, 'wrong-block.car')
    await writeFile(file, bad)
    const res = await d.cli(['dag', 'import', file])
    expectCleanError(res)
    expect(res.stderr).toMatch(/bafk|bafy|Qm/)
    expect(res.stderr).toMatch(/hash|match|verif/i)
    await expectNothingLasting()
  })

  it('dag import of a truncated CAR is refused; nothing is left after gc', async () => {
    const car = await readFile(SMALL_CAR)
    const file = join(dir, 'truncated.car')
    await writeFile(file, car.subarray(0, Math.floor(car.length * 0.6)))
    const res = await d.cli(['dag', 'import', file])
    expectCleanError(res)
    expect(res.stderr).toMatch(/truncat|incomplete|ended/i)
    await expectNothingLasting()
  })

  it('config set refuses an out-of-range port and an unknown key, naming the key, leaving the file as it was', async () => {
    const cfgFile = join(d.repo, 'config.json')
    const before = await readFile(cfgFile, 'utf8')
    expectCleanError(await d.cli(['config', 'set', 'api.port', '99999']), 'api.port')
    expectCleanError(await d.cli(['config', 'set', 'api.nosuchkey', '1']), 'api.nosuchkey')
    expectCleanError(await d.cli(['config', 'set', 'nosection.key', '1']), 'nosection')
    expect(await readFile(cfgFile, 'utf8')).toBe(before)
    expect(await state()).toEqual(baseline)
  })

  // last: it restarts the daemon with a small body limit
  it('an upload over api.maxBodyBytes is refused; nothing pinned and repo stat unchanged after gc', async () => {
    expect((await d.stop()).code).toBe(0)
    const set = await d.cli(['config', 'set', 'api.maxBodyBytes', String(64 * 1024)])
    expect(set.code, set.stderr).toBe(0)
    d = await startDaemon({ repo: d.repo })

    const big = join(dir, 'big.bin')
    await writeFile(big, Buffer.alloc(1024 * 1024, 7))
    // --no-local: a file on this machine is otherwise read by the daemon itself, with no body at all
    const res = await d.cli(['add', '--no-local', big])
    expectCleanError(res)
    expect(res.stderr).toMatch(/too large|limit|maxBodyBytes|exceed/i)
    expect((await state()).pins).toEqual(baseline.pins)
    await d.json(['repo', 'gc'])
    expect(await state()).toEqual(baseline)
    // a body under the limit still goes through
    const small = await d.json<{ root: string }>(['add', '--pin=false', '-'], { stdin: 'fits' })
    expect(small.root).toMatch(/^bafk/)
  })
})
