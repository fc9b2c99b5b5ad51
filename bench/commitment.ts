/**
 * Commitment build speed (issue 4): MB/s of buildCommitment over 1 GiB of random bytes, fed as
 * 1 MiB blocks like UnixFS leaves, against plain streaming sha256 of the same bytes in the same
 * run (median of 3 interleaved runs). Writes the `## Commitment build` section of
 * bench/results.md. Run: `npx node bench/commitment.ts [MiB]`.
 */
import { createHash, randomFillSync } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { buildCommitment } from '../src/rewards/commitment.ts'
import type { BuildCommitmentOptions, Commitment } from '../src/rewards/commitment.ts'

const MIB = 1024 * 1024
const totalMiB = Number(process.argv[2] ?? 1024)
const PIECE = 64 * MIB
const BLOCK = MIB
const RUNS = 3

const pieces: Uint8Array[] = []
for (let left = totalMiB * MIB; left > 0; left -= PIECE) {
  const piece = new Uint8Array(Math.min(PIECE, left))
  for (let o = 0; o < piece.length; o += 65536) randomFillSync(piece, o, Math.min(65536, piece.length - o))
  pieces.push(piece)
}
const total = totalMiB * MIB

function * blocks (): Generator<{ bytes: Uint8Array }> {
  for (const piece of pieces) {
    for (let o = 0; o < piece.length; o += BLOCK) yield { bytes: piece.subarray(o, o + BLOCK) }
  }
}

/** CPU time of the whole process (all threads), so a busy machine shows as wall >> CPU. */
function cpuMs (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

function plainSha256 (): { ms: number, cpu: number } {
  const start = performance.now()
  const cpu = cpuMs()
  const h = createHash('sha256')
  for (const { bytes } of blocks()) h.update(bytes)
  h.digest()
  return { ms: performance.now() - start, cpu: cpuMs() - cpu }
}

async function build (options: BuildCommitmentOptions): Promise<{ ms: number, cpu: number, commitment: Commitment }> {
  const start = performance.now()
  const cpu = cpuMs()
  const commitment = await buildCommitment(blocks(), options)
  return { ms: performance.now() - start, cpu: cpuMs() - cpu, commitment }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const mbps = (ms: number): number => total / 1e6 / (ms / 1000)

const variants: Array<{ name: string, options: BuildCommitmentOptions }> = [
  { name: `buildCommitment (default: ${Math.min(availableParallelism(), 4)} workers)`, options: {} },
  { name: 'buildCommitment (workers: 0, calling thread only)', options: { workers: 0 } }
]
const plainMs: number[] = []
const plainCpu: number[] = []
const buildMs: number[][] = variants.map(() => [])
const buildCpu: number[][] = variants.map(() => [])
let root: string | undefined
for (let run = 0; run < RUNS; run++) {
  const p = plainSha256()
  plainMs.push(p.ms)
  plainCpu.push(p.cpu)
  for (const [i, v] of variants.entries()) {
    const { ms, cpu, commitment } = await build(v.options)
    buildCpu[i]?.push(cpu)
    root ??= commitment.root
    if (commitment.root !== root) throw new Error(`${v.name} gave root ${commitment.root}, expected ${root}`)
    buildMs[i]?.push(ms)
  }
  console.log(`run ${run + 1}: sha256 ${mbps(plainMs[run] as number).toFixed(0)} MB/s, ` +
    variants.map((v, i) => `${v.name} ${mbps(buildMs[i]?.[run] as number).toFixed(0)} MB/s`).join(', '))
}

const plain = mbps(median(plainMs))
const rows = variants.map((v, i) => {
  const speed = mbps(median(buildMs[i] as number[]))
  return `| ${v.name} | ${speed.toFixed(0)} | ${(speed / plain).toFixed(2)} | ${mbps(median(buildCpu[i] as number[])).toFixed(0)} |`
})
const section = [
  '## Commitment build',
  '',
  `${totalMiB} MiB of random bytes in memory, fed as 1 MiB blocks; median of ${RUNS} interleaved runs; ` +
  `ratio = build MB/s / plain sha256 MB/s in the same run. Goal: ratio >= 0.3.`,
  '',
  '| what | MB/s | ratio to sha256 | MB per CPU-second (all threads) |',
  '| --- | ---: | ---: | ---: |',
  `| plain sha256 (one streaming createHash) | ${plain.toFixed(0)} | 1.00 | ${mbps(median(plainCpu)).toFixed(0)} |`,
  ...rows,
  '',
  `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, Node ${process.version}, ` +
  `load average at the end ${loadavg().map(l => l.toFixed(2)).join(' ')}; ${new Date().toISOString()}. ` +
  `Root ${root ?? '-'} (all variants agree).`,
  ''
].join('\n')
console.log('\n' + section)

const resultsUrl = new URL('./results.md', import.meta.url)
let existing = ''
try {
  existing = await readFile(resultsUrl, 'utf8')
} catch (err: any) {
  if (err.code !== 'ENOENT') throw err
}
// Replace only this script's section; the others belong to other benchmarks.
const pattern = /^## Commitment build\n[\s\S]*?(?=^## |(?![\s\S]))/m
const next = pattern.test(existing)
  ? existing.replace(pattern, section + '\n').replace(/\n+$/, '\n')
  : (existing === '' ? '# Benchmarks\n\n' : existing.replace(/\n*$/, '\n\n')) + section
await writeFile(resultsUrl, next)
