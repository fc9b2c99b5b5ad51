import { Command, CommanderError } from 'commander'
import type { CliIO } from './context.ts'
import type { Runtime } from './command.ts'
import { example } from './help.ts'
import { EXIT_OK, exitCodeFor, printError } from './printer.ts'
import { registerAdd } from './commands/add.ts'
import { registerBlock } from './commands/block.ts'
import { registerCat } from './commands/cat.ts'
import { registerConfig } from './commands/config.ts'
import { registerDaemon } from './commands/daemon.ts'
import { registerDag } from './commands/dag.ts'
import { registerGet } from './commands/get.ts'
import { registerId } from './commands/id.ts'
import { registerInit } from './commands/init.ts'
import { registerLs } from './commands/ls.ts'
import { registerPin } from './commands/pin.ts'
import { registerProvide } from './commands/provide.ts'
import { registerRepo } from './commands/repo.ts'
import { registerSwarm } from './commands/swarm.ts'
import { registerVersion } from './commands/version.ts'
import { registerWallet } from './commands/wallet.ts'
import { registerPool } from './commands/pool.ts'
import { registerDeal } from './commands/deal.ts'
import { registerRewards } from './commands/rewards.ts'
import { registerChain } from './commands/chain.ts'

/** The whole command tree, fresh for every run (commander keeps parse state on its objects). */
export function buildProgram (rt: Runtime): Command {
  const program = new Command('pinbox')
    .description('pinbox: a storage node for home server boxes (content-addressed blobs, pins, an IPFS-compatible API)')
    .option('--repo <dir>', 'repo folder (default: $PINBOX_HOME or ~/.pinbox)')
    .option('--api <url>', 'daemon API address (default: from the repo config, else http://127.0.0.1:5101)')
    .option('--json', 'print results as JSON')
    .option('--timeout <duration>', 'give up after this long (e.g. 30s, 2m)')
    .option('--debug', 'show stack traces on errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => { rt.io.stdout.write(s) },
      writeErr: (s) => { rt.io.stderr.write(s) },
      // Commander says "error: …"; every pinbox error line starts "Error: …".
      outputError: (s, write) => { write(s.replace(/^error: /, 'Error: ')) }
    })
  example(program, 'pinbox init', 'pinbox daemon', 'pinbox add -r ./photos', 'pinbox --json pin ls')

  registerInit(program, rt)
  registerConfig(program, rt)
  registerDaemon(program, rt)
  registerAdd(program, rt)
  registerCat(program, rt)
  registerGet(program, rt)
  registerLs(program, rt)
  registerPin(program, rt)
  registerRepo(program, rt)
  registerDag(program, rt)
  registerBlock(program, rt)
  registerId(program, rt)
  registerVersion(program, rt)
  registerSwarm(program, rt)
  registerProvide(program, rt)
  registerWallet(program, rt)
  registerPool(program, rt)
  registerDeal(program, rt)
  registerRewards(program, rt)
  registerChain(program, rt)

  // Every subcommand inherits the root's output settings and error handling.
  const inherit = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      sub.copyInheritedSettings(cmd)
      inherit(sub)
    }
  }
  inherit(program)
  return program
}

function defaultIO (): CliIO {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }
}

/**
 * Runs the CLI and resolves to the process exit code; never throws. `argv` is Node's
 * (`[node, script, ...args]`).
 */
/**
 * Kubo-style flags such as `--pin=false` are options with an optional boolean argument; written
 * bare (`--raw-leaves FILE`) commander would take the next word as their value. Spelling the bare
 * form `--raw-leaves=true` keeps the word where the user put it.
 */
function withExplicitBooleans (program: Command, argv: string[]): string[] {
  const names = new Set<string>()
  const walk = (cmd: Command): void => {
    for (const opt of cmd.options) {
      if (opt.optional && opt.flags.includes('[bool]') && opt.long != null) names.add(opt.long)
    }
    cmd.commands.forEach(walk)
  }
  walk(program)
  return argv.map((arg, i) => i >= 2 && names.has(arg) ? `${arg}=true` : arg)
}

export async function main (argv: string[], io: Partial<CliIO> = {}): Promise<number> {
  const rt: Runtime = { io: { ...defaultIO(), ...io }, exitCode: EXIT_OK }
  const debug = argv.includes('--debug')
  try {
    const program = buildProgram(rt)
    await program.parseAsync(withExplicitBooleans(program, argv), { from: 'node' })
    return rt.exitCode
  } catch (err) {
    // Commander has already printed its own message (or the help it was asked for).
    if (err instanceof CommanderError) return exitCodeFor(err)
    // A reader that closed the pipe early (`pinbox cat CID | head`) is not a failure.
    if ((err as { code?: unknown }).code === 'EPIPE') return EXIT_OK
    try {
      return printError(rt.io, err, debug)
    } catch {
      return 1
    }
  }
}
