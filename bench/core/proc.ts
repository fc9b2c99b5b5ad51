/**
 * Process helpers for the storage-node benchmarks: timed child processes, a real daemon spawned
 * the way the CLI does it, and an RSS sampler over /proc. Every child is tracked so that a
 * failed or interrupted run never leaves a daemon behind.
 */
import { spawn } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'

export const ROOT = join(import.meta.dirname, '..', '..')
export const BIN = join(ROOT, 'bin', 'pinbox.js')

export interface Ran {
  code: number | null
  ms: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** 'devnull' sends stdout to /dev/null through a real fd, as a shell redirect would. */
  stdout?: 'pipe' | 'devnull'
  /** Called with the pid right after spawn (to sample its memory). */
  onSpawn?(pid: number): void
}

export interface Procs {
  /** Runs a command to its exit; `ms` is from the spawn call to the exit. */
  run(cmd: string, args: string[], options?: RunOptions): Promise<Ran>
  /** `pinbox <args>` on Node 24 (process.execPath), as a user would run it. */
  cli(repo: string, args: string[], options?: RunOptions): Promise<Ran>
  /** Like cli() but throws with the stderr when the exit code is not 0. */
  cliOk(repo: string, args: string[], options?: RunOptions): Promise<Ran>
  daemon(repo: string): Promise<Daemon>
  /** Kills every child still running (SIGKILL after 10 s). */
  killAll(): Promise<void>
}

export interface Daemon {
  readonly pid: number
  /** ms from spawn until it printed "daemon is ready". */
  readonly readyMs: number
  readonly startedAt: number
  stop(): Promise<void>
}

export function rssKiB (pid: number): { rss: number, hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rss: field('VmRSS'), hwm: field('VmHWM') }
}

/** CPU time (user + system, all threads) a process has used so far, in ms; NaN once it is gone. */
export function cpuMs (pid: number): number {
  try {
    // the command name (field 2) may hold spaces: count fields after its closing parenthesis
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS
  } catch {
    return NaN
  }
}

/**
 * The CPU a short-lived process uses, read every `everyMs` while it runs (/proc forgets it at
 * exit, so the last ≤ everyMs are missed): pass `onSpawn` to the run, read `ms` after it.
 */
export function sampleCpu (everyMs = 50): { onSpawn(pid: number): void, stop(): number } {
  let pid: number | undefined
  let last = 0
  const timer = setInterval(() => {
    const ms = pid == null ? NaN : cpuMs(pid)
    if (!Number.isNaN(ms)) last = ms
  }, everyMs)
  return {
    onSpawn (p) { pid = p },
    stop () {
      clearInterval(timer)
      return last
    }
  }
}

/** CPU seconds per GB (10^9 bytes) moved. */
export function cpuPerGB (cpuMs: number, bytes: number): number {
  return cpuMs / 1000 / (bytes / 1e9)
}

/** The MB/s that `secondsPerGB` of CPU allows on all of this machine's cores, before any other wait. */
export function cpuCeilingMBps (secondsPerGB: number): number {
  return 1000 * cpus().length / secondsPerGB
}

/** USER_HZ: Linux reports /proc times in 1/100 s on every architecture Node runs on here. */
const CLOCK_TICKS = 100

/** Samples VmRSS every `everyMs`; stop() returns the largest sample and the kernel's VmHWM. */
export function sampleRss (pid: number, everyMs = 50): { stop(): { peakRssKiB: number, hwmKiB: number, samples: number } } {
  let peak = 0
  let hwm = 0
  let samples = 0
  const take = (): void => {
    try {
      const r = rssKiB(pid)
      peak = Math.max(peak, r.rss)
      hwm = Math.max(hwm, r.hwm)
      samples++
    } catch {
      // the process has exited
    }
  }
  take()
  const timer = setInterval(take, everyMs)
  return {
    stop () {
      take()
      clearInterval(timer)
      return { peakRssKiB: peak, hwmKiB: hwm, samples }
    }
  }
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address == null || typeof address === 'string') reject(new Error('no port'))
        else resolve(address.port)
      })
    })
  })
}

function waitExit (child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode != null || child.signalCode != null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => { resolve(false) }, ms)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

export function createProcs (): Procs {
  const children = new Set<ChildProcess>()

  const track = (child: ChildProcess): void => {
    children.add(child)
    child.once('exit', () => { children.delete(child) })
  }

  async function run (cmd: string, args: string[], options: RunOptions = {}): Promise<Ran> {
    const devnull = options.stdout === 'devnull' ? openSync('/dev/null', 'w') : undefined
    try {
      const started = performance.now()
      const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', devnull ?? 'pipe', 'pipe'] })
      track(child)
      if (child.pid != null) options.onSpawn?.(child.pid)
      let stdout = ''
      let stderr = ''
      child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
      child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', reject)
        child.once('close', (c) => { resolve(c) })
      })
      return { code, ms: performance.now() - started, stdout, stderr }
    } finally {
      if (devnull != null) closeSync(devnull)
    }
  }

  async function cli (repo: string, args: string[], options: RunOptions = {}): Promise<Ran> {
    return await run(process.execPath, [BIN, '--repo', repo, ...args], options)
  }

  async function cliOk (repo: string, args: string[], options: RunOptions = {}): Promise<Ran> {
    const r = await cli(repo, args, options)
    if (r.code !== 0) throw new Error(`pinbox ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
    return r
  }

  async function daemon (repo: string): Promise<Daemon> {
    const startedAt = performance.now()
    const child = spawn(process.execPath, [BIN, '--repo', repo, 'daemon'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    track(child)
    let log = ''
    const readyMs = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`daemon not ready after 120 s:\n${log}`)) }, 120_000)
      const onData = (d: string): void => {
        log += d
        if (log.includes('daemon is ready')) {
          clearTimeout(timer)
          resolve(performance.now() - startedAt)
        }
      }
      child.stdout?.setEncoding('utf8').on('data', onData)
      child.stderr?.setEncoding('utf8').on('data', onData)
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`daemon exited ${code} before it was ready:\n${log}`))
      })
    })
    const pid = child.pid
    if (pid == null) throw new Error('daemon has no pid')
    return {
      pid,
      readyMs,
      startedAt,
      async stop () {
        if (child.exitCode != null || child.signalCode != null) return
        child.kill('SIGINT')
        if (!(await waitExit(child, 30_000))) {
          child.kill('SIGKILL')
          await waitExit(child, 10_000)
        }
      }
    }
  }

  async function killAll (): Promise<void> {
    const live = [...children]
    for (const child of live) child.kill('SIGINT')
    await Promise.all(live.map(async (child) => {
      if (!(await waitExit(child, 10_000))) {
        child.kill('SIGKILL')
        await waitExit(child, 5_000)
      }
    }))
  }

  return { run, cli, cliOk, daemon, killAll }
}
