import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openRepo } from '../../src/store/repo.ts'
import { HEAP_GROWING_PERCENT, MARKING_SOFT_TRIGGER, SEMI_SPACE_MB } from '../../src/cli/daemon-runtime.ts'
import { configureRepo, hasStackTrace, initTestRepo, runPinbox, startDaemon, stopAll, tempDir } from '../helpers/daemon.ts'

async function exists (path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}

/** Resolves to how long the process took to exit after this call. */
async function timeExit (exited: Promise<unknown>): Promise<number> {
  const start = Date.now()
  await exited
  return Date.now() - start
}

describe('daemon lifecycle', { timeout: 60_000 }, () => {
  afterEach(async () => {
    await stopAll()
  })

  it.each(['SIGINT', 'SIGTERM'] as const)('%s stops the daemon within 5 s with code 0 and every store closed', async (signal) => {
    const d = await startDaemon()
    const added = await d.json<{ root: string }>(['add', '-'], { stdin: `kept across a ${signal} restart` })
    expect(await exists(join(d.repo, 'api'))).toBe(true)

    d.kill(signal)
    const ms = await timeExit(d.exited)
    const exit = await d.exited
    expect(exit, d.output()).toEqual({ code: 0, signal: null })
    expect(ms).toBeLessThan(5000)
    expect(d.output()).toContain(`received ${signal}`)
    expect(d.output()).toContain('daemon stopped')
    // the API address file goes with the daemon, so the CLI does not talk to a dead port
    expect(await exists(join(d.repo, 'api'))).toBe(false)

    // every store closed: the repo opens in-process at once (LevelDB lock free, blockstore clean)
    const repo = await openRepo(d.repo)
    await repo.close()

    const again = await startDaemon({ repo: d.repo })
    const pins = await again.json<{ pins: Array<{ cid: string }> }>(['pin', 'ls', '--type', 'recursive'])
    expect(pins.pins.map((p) => p.cid)).toEqual([added.root])
    expect(await again.json(['pin', 'verify'])).toMatchObject({ ok: true })
  })

  it('runs as one process with its memory settings (re-executed in place: same pid, semi-space cap, 2 malloc arenas)', async () => {
    const d = await startDaemon()
    const cmdline = (await readFile(`/proc/${d.pid}/cmdline`, 'utf8')).split('\0')
    const environ = (await readFile(`/proc/${d.pid}/environ`, 'utf8')).split('\0')
    expect(cmdline).toContain(`--max-semi-space-size=${SEMI_SPACE_MB}`)
    expect(cmdline).toContain(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`)
    expect(cmdline).toContain(`--incremental-marking-soft-trigger=${MARKING_SOFT_TRIGGER}`)
    expect(environ).toContain('MALLOC_ARENA_MAX=2')
    // the pid the test spawned is the daemon itself: signals and exit codes need no forwarding
    expect(await d.json(['id'])).toMatchObject({ ID: expect.any(String) })
    d.kill('SIGTERM')
    expect(await d.exited).toEqual({ code: 0, signal: null })
  })

  it('refuses a second daemon on the same repo with one line about the lock', async () => {
    const first = await startDaemon()
    const second = await runPinbox(['--repo', first.repo, 'daemon'], { timeoutMs: 20_000 })
    expect(second.code).not.toBe(0)
    expect(second.signal).toBeNull()
    const lines = second.stderr.trim().split('\n')
    expect(lines, second.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(/^Error: .*in use by another pinbox process.*lock/)
    expect(lines[0]).toContain(first.repo)
    expect(hasStackTrace(second.stderr + second.stdout)).toBe(false)
    // the first one is untouched and still serves
    expect(await first.json(['repo', 'stat'])).toMatchObject({ RepoPath: first.repo })
    expect(await exists(join(first.repo, 'api'))).toBe(true)
  })

  it('restarts at once after kill -9 (the OS released the lock)', async () => {
    const d = await startDaemon()
    const added = await d.json<{ root: string }>(['add', '-'], { stdin: 'survives kill -9' })
    d.kill('SIGKILL')
    expect(await d.exited).toEqual({ code: null, signal: 'SIGKILL' })

    const start = Date.now()
    const again = await startDaemon({ repo: d.repo })
    expect(Date.now() - start).toBeLessThan(10_000)
    expect(again.output()).not.toMatch(/lock/i)
    const pins = await again.json<{ pins: Array<{ cid: string }> }>(['pin', 'ls'])
    expect(pins.pins.map((p) => p.cid)).toContain(added.root)
    expect(await again.json(['pin', 'verify', added.root])).toMatchObject({ ok: true })
  })

  it('exits non-zero naming a repo path that does not exist, and creates nothing there', async () => {
    const dir = await tempDir()
    const mount = join(dir, 'mnt', 'disk1')
    const repo = join(mount, 'pinbox')
    const res = await runPinbox(['--repo', repo, 'daemon'], { timeoutMs: 20_000 })
    expect(res.code).toBe(1)
    const lines = res.stderr.trim().split('\n')
    expect(lines, res.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(/^Error: /)
    expect(lines[0]).toContain(repo)
    expect(hasStackTrace(res.stderr)).toBe(false)
    expect(await readdir(dir)).toEqual([])
  })

  it('exits non-zero on an empty folder that is not a repo (an unmounted mount point), writing nothing', async () => {
    const repo = join(await tempDir(), 'pinbox')
    await mkdir(repo)
    const res = await runPinbox(['--repo', repo, 'daemon'], { timeoutMs: 20_000 })
    expect(res.code).toBe(1)
    expect(res.stderr.trim().split('\n')).toHaveLength(1)
    expect(res.stderr).toContain(repo)
    expect(await readdir(repo)).toEqual([])
  })

  // `npm start` runs `pinbox daemon --init-if-missing` with PINBOX_HOME set, e.g. to a Docker
  // volume: a folder that exists and is empty. Tests must listen on loopback only, and a fresh
  // repo's defaults bind 0.0.0.0 with mDNS, so the box's provisioning step is played here by a
  // config.json (loopback ports) written into the folder first; init keeps an existing config.
  it('npm start\'s path: daemon --init-if-missing on an empty PINBOX_HOME initialises and starts', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'))
    expect(pkg.scripts.start).toBe('node bin/pinbox.js daemon --init-if-missing')

    const home = join(await tempDir(), 'data')
    const seeded = await initTestRepo()
    const config = await readFile(join(seeded, 'config.json'), 'utf8')
    await mkdir(home)
    await writeFile(join(home, 'config.json'), config)

    // no --repo: the path comes from PINBOX_HOME, as under npm start
    const d = await startDaemon({ repo: home, noRepoFlag: true, args: ['--init-if-missing'], env: { PINBOX_HOME: home } })
    for (const f of ['version', 'identity.key', 'api.token', 'blocks', 'datastore']) {
      expect(await exists(join(home, f)), f).toBe(true)
    }
    expect(d.apiUrl).toContain(`:${JSON.parse(config).api.port as number}/`)
    const added = await d.json<{ root: string }>(['add', '-'], { stdin: 'first file on a new box' })
    expect(await d.json(['pin', 'verify', added.root])).toMatchObject({ ok: true })
  })

  // The daemon writes `<repo>/api` so the CLI finds it even on port 0, as Kubo's $IPFS_PATH/api.
  it('with api.port 0 the CLI finds the daemon through <repo>/api', async () => {
    const d = await startDaemon({ config: { 'api.port': 0 } })
    const written = (await readFile(join(d.repo, 'api'), 'utf8')).trim()
    expect(d.apiUrl).toBe(`${written}/api/v0`)
    const res = await d.cli(['--json', 'repo', 'stat'])
    expect(res.stderr).toBe('')
    expect(JSON.parse(res.stdout)).toMatchObject({ RepoPath: d.repo })
  })

  it('refuses to start on a config.json with an unknown key, naming the key', async () => {
    const repo = await initTestRepo()
    const cfgFile = join(repo, 'config.json')
    const cfg = JSON.parse(await readFile(cfgFile, 'utf8'))
    cfg.storage.maxx = '10GB'
    await writeFile(cfgFile, JSON.stringify(cfg))
    const res = await runPinbox(['--repo', repo, 'daemon'], { timeoutMs: 20_000 })
    expect(res.code).toBe(1)
    expect(res.stderr.trim().split('\n')).toHaveLength(1)
    expect(res.stderr).toContain('storage.maxx')
    expect(hasStackTrace(res.stderr)).toBe(false)
    expect(await exists(join(repo, 'api'))).toBe(false)

    // and the repo is not left locked: fixing the file lets it start
    delete cfg.storage.maxx
    await writeFile(cfgFile, JSON.stringify(cfg))
    await configureRepo(repo)
    const d = await startDaemon({ repo })
    expect(d.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+/)
  })
})
