/**
 * Compiles contracts/**.sol with the solc npm package (standard JSON, optimizer 200 runs,
 * evmVersion cancun: the same hardfork the tests run anvil with) and writes
 * artifacts/<ContractName>.json with { abi, bytecode, deployedBytecode }.
 *
 * Run: `npm run build:contracts` (node contracts/build.ts).
 */
import { createRequire } from 'node:module'
import { mkdir, readdir, readFile, rename, writeFile, stat } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export const EVM_VERSION = 'cancun'

const here = dirname(fileURLToPath(import.meta.url))
export const ROOT = resolve(here, '..')
export const CONTRACTS_DIR = join(ROOT, 'contracts')
export const ARTIFACTS_DIR = join(ROOT, 'artifacts')
export const STAMP = '.build-stamp'

export interface Artifact {
  contractName: string
  sourceName: string
  abi: unknown[]
  bytecode: string
  deployedBytecode: string
}

export interface BuildResult {
  artifacts: Artifact[]
  warnings: string[]
}

async function listSources (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...await listSources(path))
    else if (entry.name.endsWith('.sol')) out.push(path)
  }
  return out.sort()
}

/** Newest modification time among the sources, used to decide whether artifacts are stale. */
export async function sourcesMtime (): Promise<number> {
  let newest = 0
  for (const file of await listSources(CONTRACTS_DIR)) {
    newest = Math.max(newest, (await stat(file)).mtimeMs)
  }
  newest = Math.max(newest, (await stat(fileURLToPath(import.meta.url))).mtimeMs)
  return newest
}

function findImport (path: string): { contents: string } | { error: string } {
  // imports like "@openzeppelin/contracts/..." resolve from node_modules
  const candidates = [join(ROOT, 'node_modules', path), join(ROOT, path)]
  for (const candidate of candidates) {
    if (existsSync(candidate)) return { contents: readFileSync(candidate, 'utf8') }
  }
  return { error: `import not found: ${path}` }
}

/** Compiles every contract and writes its artifact; throws with the compiler's messages on error. */
export async function buildContracts (opts: { outDir?: string } = {}): Promise<BuildResult> {
  const require = createRequire(import.meta.url)
  const solc = require('solc') as { compile: (input: string, callbacks: { import: typeof findImport }) => string }
  const outDir = opts.outDir ?? ARTIFACTS_DIR
  const sources: Record<string, { content: string }> = {}
  for (const file of await listSources(CONTRACTS_DIR)) {
    sources[relative(ROOT, file).split('\\').join('/')] = { content: await readFile(file, 'utf8') }
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } }
    }
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport })) as {
    errors?: Array<{ severity: string, formattedMessage: string }>
    contracts?: Record<string, Record<string, { abi: unknown[], evm: { bytecode: { object: string }, deployedBytecode: { object: string } } }>>
  }
  const errors = (output.errors ?? []).filter(e => e.severity === 'error')
  if (errors.length > 0) {
    throw new Error(`solc failed:\n${errors.map(e => e.formattedMessage).join('\n')}`)
  }
  const warnings = (output.errors ?? []).filter(e => e.severity !== 'error').map(e => e.formattedMessage)
  await mkdir(outDir, { recursive: true })
  const artifacts: Artifact[] = []
  for (const [sourceName, contracts] of Object.entries(output.contracts ?? {})) {
    if (!sourceName.startsWith('contracts/')) continue
    for (const [contractName, c] of Object.entries(contracts)) {
      const artifact: Artifact = {
        contractName,
        sourceName,
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`
      }
      artifacts.push(artifact)
      // write-then-rename: parallel test workers may build at once and must never read half a file
      const target = join(outDir, `${contractName}.json`)
      const tmp = `${target}.${process.pid}.tmp`
      await writeFile(tmp, JSON.stringify(artifact, null, 2) + '\n')
      await rename(tmp, target)
    }
  }
  // written last: readers take artifacts/ as complete only when this stamp is newer than the sources
  const stamp = join(outDir, STAMP)
  await writeFile(`${stamp}.${process.pid}.tmp`, new Date().toISOString() + '\n')
  await rename(`${stamp}.${process.pid}.tmp`, stamp)
  return { artifacts, warnings }
}

if (process.argv[1] != null && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { artifacts, warnings } = await buildContracts()
    for (const w of warnings) console.warn(w)
    console.log(`wrote ${artifacts.map(a => a.contractName).join(', ')} to ${relative(process.cwd(), ARTIFACTS_DIR) || '.'}`)
  } catch (err) {
    console.error((err as Error).message)
    process.exitCode = 1
  }
}
