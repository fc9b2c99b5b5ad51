import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'

/** The real `pinbox` entry point, run with the test's own Node (24 under vitest). */
export const PINBOX_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/pinbox.js')

const READY_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 8_000

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  env?: Record<string, string | undefined>
  stdin?: string | Uint8Array
  /** Kill the CLI after this long (default 60 s): a hung command fails the test instead of the run. */
  timeoutMs?: number
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Daemon {
  repo: string
  apiUrl: string
  token: string
  pid: number
  proc: ChildProcess
  /** Everything the daemon wrote so far (stdout and stderr interleaved). */
  output(): string
  /** Resolves when the process has exited. */
  exited: Promise<Exit>
  /** `pinbox --repo <repo> ...args` as a separate process. */
  cli(args: string[], options?: CliOptions): Promise<CliResult>
  /** `pinbox --repo <repo> --json ...args`, stdout parsed; rejects with the CLI's output on a non-zero exit. */
  json<T = any>(args: string[], options?: CliOptions): Promise<T>
  kill(signal?: NodeJS.Signals): void
  /** SIGTERM, then SIGKILL if it has not exited in time; resolves with how it exited. */
  stop(): Promise<Exit>
}

export interface StartDaemonOptions {
  /** An existing repo; by default a fresh one is created in a temp folder (removed by stopAll). */
  repo?: string
  env?: Record<string, string | undefined>
  /** Extra arguments after `daemon`. */
  args?: string[]
  /** Config keys to set (dotted) on a repo this helper creates. */
  config?: Record<string, unknown>
  /** Pass no `--repo` (the daemon finds the repo through PINBOX_HOME in `env`, as `npm start` does). */
  noRepoFlag?: boolean
}

const running = new Set<Daemon>()
const tempDirs = new Set<string>()

/** A temp folder removed by stopAll(). */
export async function tempDir (prefix = 'pinbox-daemon-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

/** A port free on 127.0.0.1 right now (the kernel does not hand it out again soon). */
export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address != null ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

function baseEnv (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  // vitest's worker settings must not leak into the child; PINBOX_HOME only when a test asks for it.
  delete env.PINBOX_HOME
  delete env.NODE_OPTIONS
  for (const [k, v] of Object.entries(extra)) {
    if (v == null) delete env[k]
    else env[k] = v
  }
  return env
}

/** Runs `pinbox ...args` (any args, no implicit --repo) and collects its output. */
export async function runPinbox (args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [PINBOX_BIN, ...args], { env: baseEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (c: Buffer) => out.push(c))
  child.stderr.on('data', (c: Buffer) => err.push(c))
  child.stdin.on('error', () => {})
  child.stdin.end(options.stdin == null ? undefined : Buffer.from(options.stdin))
  const timer = setTimeout(() => { child.kill('SIGKILL') }, options.timeoutMs ?? 60_000)
  const exit = await new Promise<Exit>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => { resolve({ code, signal }) })
  })
  clearTimeout(timer)
  return { ...exit, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
}

/**
 * Creates a repo with `pinbox init` and points it at loopback only: a free API port, a libp2p
 * listener on 127.0.0.1 port 0, no mDNS (tests must not talk to the LAN).
 */
export async function initTestRepo (repo?: string, config: Record<string, unknown> = {}): Promise<string> {
  const path = repo ?? join(await tempDir(), 'repo')
  const res = await runPinbox(['--repo', path, 'init'])
  if (res.code !== 0) throw new Error(`pinbox init failed (${res.code}): ${res.stderr}`)
  await configureRepo(path, config)
  return path
}

/** Sets the loopback-only defaults of the tests plus `config` (dotted keys) in the repo's config.json. */
export async function configureRepo (path: string, config: Record<string, unknown> = {}): Promise<void> {
  // Raw JSON, not the in-process config schema: the daemon under test validates the file itself.
  const file = join(path, 'config.json')
  const cfg = JSON.parse(await readFile(file, 'utf8')) as Record<string, Record<string, unknown>>
  const settings: Record<string, unknown> = {
    'api.host': '127.0.0.1',
    'api.port': await freePort(),
    'swarm.listen': ['/ip4/127.0.0.1/tcp/0'],
    'swarm.mdns': false,
    ...config
  }
  for (const [key, value] of Object.entries(settings)) {
    const [section, leaf] = key.split('.') as [string, string]
    cfg[section] = { ...cfg[section], [leaf]: value }
  }
  await writeFile(file + '.tmp', JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 })
  await rename(file + '.tmp', file)
}

/** Spawns `pinbox --repo <repo> daemon` and resolves once it prints "daemon is ready". */
export async function startDaemon (options: StartDaemonOptions = {}): Promise<Daemon> {
  const repo = options.repo ?? await initTestRepo(undefined, options.config)
  const env = baseEnv(options.env)
  const repoFlag = options.noRepoFlag === true ? [] : ['--repo', repo]
  const proc = spawn(process.execPath, [PINBOX_BIN, ...repoFlag, 'daemon', ...(options.args ?? [])], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  proc.stdout?.on('data', (c: Buffer) => { log += c.toString('utf8') })
  proc.stderr?.on('data', (c: Buffer) => { log += c.toString('utf8') })
  const exited = new Promise<Exit>((resolve) => {
    proc.on('exit', (code, signal) => { resolve({ code, signal }) })
  })

  const cli = async (args: string[], o: CliOptions = {}): Promise<CliResult> => runPinbox(['--repo', repo, ...args], { ...o, env: { ...options.env, ...o.env } })
  const daemon: Daemon = {
    repo,
    apiUrl: '',
    token: '',
    pid: proc.pid ?? -1,
    proc,
    output: () => log,
    exited,
    cli,
    async json (args, o) {
      const res = await cli(['--json', ...args], o)
      if (res.code !== 0) throw new Error(`pinbox ${args.join(' ')} exited ${res.code}: ${res.stderr}${res.stdout}`)
      return JSON.parse(res.stdout)
    },
    kill (signal = 'SIGTERM') {
      if (proc.exitCode == null && proc.signalCode == null) proc.kill(signal)
    },
    async stop () {
      daemon.kill('SIGTERM')
      const timer = setTimeout(() => { daemon.kill('SIGKILL') }, STOP_TIMEOUT_MS)
      const exit = await exited
      clearTimeout(timer)
      running.delete(daemon)
      return exit
    }
  }
  running.add(daemon)

  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => { cleanup(); resolve(false) }, READY_TIMEOUT_MS)
    const check = (): void => {
      if (log.includes('daemon is ready')) { cleanup(); resolve(true) }
    }
    const onExit = (): void => { cleanup(); resolve(false) }
    const cleanup = (): void => {
      clearTimeout(timer)
      proc.stdout?.off('data', check)
      proc.off('exit', onExit)
    }
    proc.stdout?.on('data', check)
    proc.on('exit', onExit)
    check()
  })
  if (!ready) {
    const exit = proc.exitCode != null || proc.signalCode != null ? `exited (${proc.exitCode ?? proc.signalCode})` : 'not ready within 20 s'
    await daemon.stop()
    throw new Error(`pinbox daemon on ${repo} ${exit}; its output:\n${log}`)
  }
  const api = /API:\s+(\S+)/.exec(log)?.[1]
  daemon.apiUrl = api ?? (await readFile(join(repo, 'api'), 'utf8')).trim()
  daemon.token = (await readFile(join(repo, 'api.token'), 'utf8')).trim()
  return daemon
}

/** For afterEach: stops every daemon still running (SIGKILL if it hangs) and removes the helper's temp folders. */
export async function stopAll (): Promise<void> {
  await Promise.all([...running].map(async (d) => d.stop()))
  await Promise.all([...tempDirs].map(async (dir) => {
    tempDirs.delete(dir)
    await rm(dir, { recursive: true, force: true })
  }))
}

/** True when the text holds a JS stack frame (`    at foo (file:…)`): users should never see one. */
export function hasStackTrace (text: string): boolean {
  return /^\s+at .+(\(|:\d+:\d+)/m.test(text)
}
