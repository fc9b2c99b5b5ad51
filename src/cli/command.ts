import { InvalidArgumentError as InvalidOptionArgumentError } from 'commander'
import type { Command } from 'commander'
import { createContext } from './context.ts'
import type { CliIO, Context, GlobalOptions } from './context.ts'
import { printOutput } from './printer.ts'
import type { Output } from './printer.ts'

/** State of one `main()` run, shared by the commands it registers. */
export interface Runtime {
  io: CliIO
  exitCode: number
}

export type Handler = (ctx: Context, cmd: Command) => Promise<Output<any> | undefined | void>

/**
 * Wraps a command body: builds the context from the root's global flags, runs the body and hands
 * its result to the printer. Errors propagate to `main()`, which prints the one-line message.
 */
export function action (rt: Runtime, handler: Handler): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command
    const ctx = createContext(cmd.optsWithGlobals<GlobalOptions>(), rt.io)
    const out = await handler(ctx, cmd)
    if (out != null) rt.exitCode = printOutput(rt.io, ctx.json, out)
  }
}

/** Commander's own parser for `--flag=true|false` style booleans (Kubo's `--pin=false`). */
export function parseBool (value: string): boolean {
  const v = value.trim().toLowerCase()
  if (['true', '1', 'yes', 'on'].includes(v)) return true
  if (['false', '0', 'no', 'off'].includes(v)) return false
  throw new InvalidOptionArgumentError(`expected true or false, got "${value}"`)
}

export function parseNonNegativeInt (value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new InvalidOptionArgumentError(`expected a non-negative integer, got "${value}"`)
  return n
}
