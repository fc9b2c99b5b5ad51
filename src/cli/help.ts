import type { Command } from 'commander'

// Examples live beside the command objects (not in a module-level list) so every program built
// by `buildProgram()` has its own and a test can read them back.
const examples = new WeakMap<Command, string[]>()

/** Adds a usage example to a command: shown under "Examples:" in `--help`, readable by tests. */
export function example (cmd: Command, ...lines: string[]): Command {
  let list = examples.get(cmd)
  if (list == null) {
    list = []
    examples.set(cmd, list)
    const own = list
    cmd.addHelpText('after', () => `\nExamples:\n${own.map((l) => `  $ ${l}`).join('\n')}\n`)
  }
  list.push(...lines)
  return cmd
}

export function examplesOf (cmd: Command): readonly string[] {
  return examples.get(cmd) ?? []
}
