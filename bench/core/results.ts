import { readFile, writeFile } from 'node:fs/promises'

/**
 * Replace the section that starts with `heading` (a `## ` line) in the results file, or append
 * it: each bench script owns its own sections and leaves the others as they are.
 */
export async function writeResultsSection (file: string, heading: string, text: string): Promise<void> {
  let current: string
  try {
    current = await readFile(file, 'utf8')
  } catch {
    current = '# Benchmarks\n'
  }
  const start = current.indexOf(`\n${heading}\n`)
  let next: string
  if (start === -1) {
    next = current.trimEnd() + '\n\n' + text
  } else {
    const after = current.indexOf('\n## ', start + 1)
    next = current.slice(0, start + 1) + text + (after === -1 ? '' : '\n' + current.slice(after + 1))
  }
  await writeFile(file, next.trimEnd() + '\n')
}
