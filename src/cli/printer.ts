import { CommanderError } from 'commander'
import type { CliIO } from './context.ts'

/**
 * What a command returns: typed data, and how to say it in text. The printer chooses between
 * text and `--json`, so commands never write their results themselves.
 */
export interface Output<T = unknown> {
  data: T
  text(data: T): string | string[]
  /** Non-zero when the command ran but found a problem to report (e.g. broken pins). */
  exitCode?: number
}

export function output<T> (data: T, text: (data: T) => string | string[], exitCode?: number): Output<T> {
  const out: Output<T> = { data, text }
  if (exitCode != null) out.exitCode = exitCode
  return out
}

export const EXIT_OK = 0
export const EXIT_ERROR = 1
/** Bad usage (unknown flag, missing argument), as most Unix tools do. */
export const EXIT_USAGE = 2

export function toJson (data: unknown, pretty = false): string {
  return JSON.stringify(data, (_key, value: unknown) => typeof value === 'bigint' ? value.toString() : value, pretty ? 2 : undefined)
}

export function printOutput (io: Pick<CliIO, 'stdout'>, json: boolean, out: Output<any>): number {
  if (json) {
    io.stdout.write(toJson(out.data) + '\n')
  } else {
    const text = out.text(out.data)
    const lines = Array.isArray(text) ? text : text === '' ? [] : [text]
    if (lines.length > 0) io.stdout.write(lines.join('\n') + '\n')
  }
  return out.exitCode ?? EXIT_OK
}

/** One line a user can act on; the stack only with `--debug`. */
export function errorLine (err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const firstLine = message.split('\n').find((l) => l.trim() !== '') ?? 'unknown error'
  return `Error: ${firstLine.replace(/^error:\s*/i, '')}`
}

export function exitCodeFor (err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE
  return EXIT_ERROR
}

export function printError (io: Pick<CliIO, 'stderr'>, err: unknown, debug: boolean): number {
  io.stderr.write(errorLine(err) + '\n')
  if (debug) {
    // The whole cause chain: the socket error under "fetch failed" is the useful part.
    let current: unknown = err
    for (let depth = 0; current != null && depth < 5; depth++) {
      const e = current as { stack?: string, code?: unknown, cause?: unknown }
      const code = typeof e.code === 'string' ? ` [${e.code}]` : ''
      io.stderr.write(`${depth === 0 ? '' : 'cause: '}${e.stack ?? String(current)}${code}\n`)
      current = e.cause
    }
  }
  return exitCodeFor(err)
}

/** `1536` → `1.5 KiB`, for text output next to the exact byte count. */
export function formatBytes (n: number | bigint): string {
  let value = Number(n)
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`
}
