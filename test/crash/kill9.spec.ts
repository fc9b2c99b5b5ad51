import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openRepo } from '../../src/store/repo.ts'
import { PINBOX_BIN, startDaemon, stopAll, tempDir } from '../helpers/daemon.ts'
import type { Daemon, Exit } from '../helpers/daemon.ts'

const MiB = 1024 * 1024

interface Running {
  exited: Promise<Exit>
  done(): boolean
  stdout(): string
}

/** A CLI command left running so the daemon can be killed under it. */
function background (d: Daemon, args: string[]): Running {
  const child = spawn(process.execPath, [PINBOX_BIN, '--repo', d.repo, '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8') })
  child.stderr.resume()
  let finished = false
  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => { finished = true; resolve({ code, signal }) })
  })
  return { exited, done: () => finished, stdout: () => out }
}

async function waitFor (what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 60_000, everyMs = 25): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** Files and (with `sizes`) bytes of complete blocks (`<shard>/<KEY>.data`) in the repo's flat-file store. */
async function blocksOnDisk (repo: string, sizes = false): Promise<{ count: number, bytes: number }> {
  const root = join(repo, 'blocks')
  let count = 0
  let bytes = 0
  for (const shard of await readdir(root, { withFileTypes: true })) {
    if (!shard.isDirectory()) continue
    let names: string[]
    try {
      names = await readdir(join(root, shard.name))
    } catch {
      continue
    }
    for (const name of names) {
      if (!name.endsWith('.data')) continue
      count++
      if (sizes) bytes += await stat(join(root, shard.name, name)).then((s) => s.size, () => 0)
    }
  }
  return { count, bytes }
}

async function writeRandomFile (path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w')
  try {
    for (let written = 0; written < bytes; written += MiB) {
      await fh.write(randomBytes(Math.min(MiB, bytes - written)))
    }
  } finally {
    await fh.close()
  }
}

/** Adds small distinct files (concurrently, as several clients would); each `add` returned, so each pin is acknowledged. */
async function acknowledgedPins (d: Daemon, n: number, tag: string): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const res = await d.json<{ root: string }>(['add', '-'], { stdin: `${tag} ${i} ${randomBytes(8).toString('hex')}`.repeat(50 + i * 5000) })
    return res.root
  }))
}

interface VerifyOutput { ok: boolean, pins: Array<{ cid: string, ok: boolean, bad: unknown[] }> }

/**
 * After a crash: the repo answers, every pin verifies, and the recursive pins are exactly the
 * acknowledged ones, plus at most `unacked` (an operation the kill interrupted) if it made it.
 */
async function expectIntact (d: Daemon, acked: string[], unacked?: string): Promise<void> {
  const verify = await d.cli(['--json', 'pin', 'verify'])
  const v = JSON.parse(verify.stdout) as VerifyOutput
  expect(v.pins.filter((p) => !p.ok), verify.stdout).toEqual([])
  expect(verify.code).toBe(0)
  const verified = new Set(v.pins.map((p) => p.cid))
  for (const cid of acked) expect(verified.has(cid), `acknowledged pin ${cid} verified`).toBe(true)

  const ls = await d.json<{ pins: Array<{ cid: string }> }>(['pin', 'ls', '--type', 'recursive'])
  const listed = ls.pins.map((p) => p.cid).filter((cid) => cid !== unacked).sort()
  expect(listed).toEqual([...acked].sort())
}

describe('kill -9 of the daemon', { timeout: 120_000 }, () => {
  afterEach(async () => {
    await stopAll()
  })

  it('in the middle of a 256 MiB add: acknowledged pins survive and the add succeeds when re-run', async () => {
    const dir = await tempDir()
    const big = join(dir, 'big.bin')
    const size = 256 * MiB
    const d = await startDaemon()
    const [acked] = await Promise.all([acknowledgedPins(d, 4, 'before the big add'), writeRandomFile(big, size)])

    const add = background(d, ['add', '--name', 'big', big])
    // kill once well over a third of the file is in the blockstore, long before the add finishes
    await waitFor('100 MiB of blocks on disk', async () => (await blocksOnDisk(d.repo, true)).bytes > 100 * MiB)
    const atKill = await blocksOnDisk(d.repo, true)
    d.kill('SIGKILL')
    expect(await d.exited).toMatchObject({ signal: 'SIGKILL' })
    const cli = await add.exited
    expect(cli.code, 'the interrupted add never reported success').not.toBe(0)
    expect(atKill.bytes).toBeLessThan(size)

    const again = await startDaemon({ repo: d.repo })
    await expectIntact(again, acked)

    const redo = await again.json<{ root: string }>(['add', '--name', 'big', big])
    const v = await again.json<VerifyOutput>(['pin', 'verify', redo.root])
    expect(v.pins).toEqual([{ cid: redo.root, ok: true, bad: [] }])
    await expectIntact(again, [...acked, redo.root])
    // what the killed add left behind is unpinned garbage; a sweep keeps every pin whole
    await again.json(['repo', 'gc'])
    await expectIntact(again, [...acked, redo.root])
    const catted = await again.cli(['cat', acked[0] ?? ''])
    expect(catted.stdout).toContain('before the big add 0')
  })

  it('in the middle of a pin add of an imported, unpinned DAG', async () => {
    const dir = await tempDir()
    const d = await startDaemon()
    const acked = await acknowledgedPins(d, 3, 'before the pin add')

    // two DAGs of ~5k blocks each, stored but not pinned
    const dags = await Promise.all(['a', 'b'].map(async (name) => {
      const file = join(dir, name)
      await writeRandomFile(file, 10 * MiB)
      return (await d.json<{ root: string }>(['add', '--pin=false', '--chunker', 'size-2048', file])).root
    }))
    const [first, second] = dags as [string, string]

    // measure one pin add, then kill halfway through the same work on the other DAG. Both go
    // straight to the API: with a CLI process in between, half the time was its start-up and
    // the kill could land before the request even reached the daemon.
    const pinAdd = async (cid: string): Promise<Response> => await fetch(`${d.apiUrl}/pin/add?arg=${cid}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${d.token}` }
    })
    const t0 = Date.now()
    expect((await pinAdd(first)).status).toBe(200)
    const took = Date.now() - t0
    acked.push(first)

    let answered = false
    const pin = pinAdd(second).then(async (res) => { answered = res.status === 200 && (await res.text()).length > 0 }, () => {})
    await new Promise((resolve) => setTimeout(resolve, took / 2))
    const finishedBeforeKill = answered
    d.kill('SIGKILL')
    await d.exited
    await pin
    if (finishedBeforeKill) acked.push(second)

    const again = await startDaemon({ repo: d.repo })
    await expectIntact(again, acked, finishedBeforeKill ? undefined : second)
    // an interrupted pin add is simply done again
    await again.json(['pin', 'add', second])
    await expectIntact(again, [...acked.filter((c) => c !== second), second])
    // the measurement only means something if the pin add took long enough to be cut in half
    expect(took, 'pin add long enough to be interrupted').toBeGreaterThan(100)
    expect(finishedBeforeKill, 'the kill came before the pin add answered').toBe(false)
  })

  it('in the middle of a repo gc sweeping ~20k unreferenced blocks', async () => {
    const dir = await tempDir()
    const d = await startDaemon()
    const acked = await acknowledgedPins(d, 3, 'before the gc')
    const pinnedBlocks = (await blocksOnDisk(d.repo)).count

    // ~20k unpinned raw leaves
    const file = join(dir, 'garbage')
    await writeRandomFile(file, 20_000 * 256)
    await d.json(['add', '--pin=false', '--chunker', 'size-256', file])
    const before = (await blocksOnDisk(d.repo)).count
    expect(before).toBeGreaterThan(pinnedBlocks + 20_000)

    const gc = background(d, ['repo', 'gc'])
    await waitFor('the sweep to start removing blocks', async () => (await blocksOnDisk(d.repo)).count < before - 1000, 60_000, 10)
    d.kill('SIGKILL')
    await d.exited
    await gc.exited
    const left = (await blocksOnDisk(d.repo)).count
    expect(gc.done()).toBe(true)
    expect(left, 'killed in the middle of the sweep').toBeGreaterThan(pinnedBlocks + 1000)

    // the repo opens in-process too (no half-written record blocks it), then the daemon restarts
    const repo = await openRepo(d.repo)
    await repo.close()
    const again = await startDaemon({ repo: d.repo })
    await expectIntact(again, acked)
    await again.json(['repo', 'gc'])
    await expectIntact(again, acked)
    const stat = await again.json<{ NumObjects: number }>(['repo', 'stat'])
    expect(stat.NumObjects).toBe(pinnedBlocks)
    expect((await blocksOnDisk(d.repo)).count).toBe(pinnedBlocks)
  })
})
