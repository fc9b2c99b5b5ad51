/**
 * Storage-node benchmarks (issue 2), each figure against this machine's own limit in the same
 * run: durable add vs `dd conv=fsync`, get/cat vs `cat` of a plain file, daemon memory and
 * start-up, GC on a 1M-block repo during an add, and the flat-file vs LevelDB blockstore choice.
 * Writes the `## Storage node core` section of bench/results.md (other sections are left as they
 * are). Run: `npm run bench [-- --only add,get,compare,startup,gc,replication] [--quick] [--gc-runs N] [--keep]`;
 * `replication` runs bench/replication.ts (issue 3), which writes its own `## Replication` section.
 * `--quick` is a smoke size that only checks the script; it prints and does not write results.md.
 */
import { spawn } from 'node:child_process'
import { createReadStream, existsSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { durableImport, STORE_LABELS } from './core/blockstores.ts'
import type { StoreKind } from './core/blockstores.ts'
import { buildPinned, buildUnpinned, fixtureStateFile, markUnpinnedGone, randomFile } from './core/fixture.ts'
import { cpuCeilingMBps, cpuMs, cpuPerGB, createProcs, freePort, ROOT, rssKiB, sampleCpu, sampleRss } from './core/proc.ts'
import type { Procs } from './core/proc.ts'
import { writeResultsSection } from './core/results.ts'

const PARTS = ['add', 'get', 'compare', 'startup', 'gc', 'replication'] as const
type Part = typeof PARTS[number]

const { values: flags } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'gc-runs': { type: 'string', default: '1' },
    keep: { type: 'boolean', default: false },
    // a partial re-run (say `--only startup` after a start-up fix) writes its own section
    // instead of replacing the full run's table
    section: { type: 'string' }
  }
})
const only = new Set((flags.only ?? PARTS.join(',')).split(',').map(s => s.trim()).filter(Boolean))
for (const p of only) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`unknown part ${p}; parts: ${PARTS.join(', ')}`)
const quick = flags.quick === true
const gcRuns = Math.max(1, Number(flags['gc-runs']))

const MIB = 1024 * 1024
const RUNS = 3
const SIZE = quick
  ? { addMiB: 64, gcAddMiB: 16, dags: 200, blocksPerDag: 50, unpinned: 10_000, idleMs: 5_000 }
  : { addMiB: 1024, gcAddMiB: 256, dags: 10_000, blocksPerDag: 50, unpinned: 500_000, idleMs: 60_000 }
const BLOCK_SIZE = 1024
const TMP = join(ROOT, 'bench', 'tmp', quick ? 'core-quick' : 'core')
const RESULTS = join(ROOT, 'bench', 'results.md')
const HEADING = `## ${flags.section ?? 'Storage node core'}`

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2] as number : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2
}
const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000)
const f0 = (x: number): string => Number.isFinite(x) ? x.toFixed(0) : '–'
const f2 = (x: number): string => Number.isFinite(x) ? x.toFixed(2) : '–'
const mib = (kib: number): string => (kib / 1024).toFixed(0)
const passFail = (ok: boolean): string => ok ? '**pass**' : '**FAIL**'
const log = (line: string): void => { console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`) }
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

interface Row { what: string, value: string, baseline: string, ratio: string, goal: string, verdict: string }
const rows: Row[] = []
const notes: string[] = []
const row = (r: Row): void => {
  rows.push(r)
  log(`${r.what}: ${r.value} (baseline ${r.baseline}, ratio ${r.ratio}, goal ${r.goal}) ${r.verdict}`)
}


async function ensureRepo (procs: Procs, repo: string): Promise<void> {
  if (existsSync(join(repo, 'config.json'))) return
  await procs.cliOk(repo, ['init'])
  // a fixed port, so `pinbox id` finds the daemon from the config alone (as a user's CLI does)
  await procs.cliOk(repo, ['config', 'set', 'api.port', String(await freePort())])
  await procs.cliOk(repo, ['config', 'set', 'swarm.listen', '["/ip4/127.0.0.1/tcp/0"]'])
}

async function unpinAndGc (procs: Procs, repo: string, cid: string): Promise<void> {
  await procs.cliOk(repo, ['pin', 'rm', cid])
  await procs.cliOk(repo, ['repo', 'gc', '--quiet'])
}

async function dd (procs: Procs, src: string, MiB: number, mode: 'buffered' | 'direct' = 'buffered'): Promise<number> {
  const out = join(TMP, 'dd.out')
  const r = await procs.run('dd', [`if=${src}`, `of=${out}`, 'bs=1M', `count=${MiB}`, 'conv=fsync', ...(mode === 'direct' ? ['oflag=direct'] : [])])
  if (r.code !== 0) throw new Error(`dd failed: ${r.stderr}`)
  await rm(out, { force: true })
  return r.ms
}

// ---------------------------------------------------------------- add (durable) + peak RSS
interface AddRuns { ms: number[], peaks: number[], daemonCpu: number[], cliCpu: number[] }

async function benchAdd (procs: Procs, repo: string, src: string): Promise<void> {
  const bytes = SIZE.addMiB * MIB
  const d = await procs.daemon(repo)
  // `local`: the CLI hands the daemon its open file (src/api/local-file.ts); `upload`: the bytes go as multipart over HTTP
  const runs: Record<'local' | 'upload', AddRuns> = {
    local: { ms: [], peaks: [], daemonCpu: [], cliCpu: [] },
    upload: { ms: [], peaks: [], daemonCpu: [], cliCpu: [] }
  }
  const ddMs: number[] = []
  const ddDirectMs: number[] = []
  const addOnce = async (kind: 'local' | 'upload'): Promise<string> => {
    const sampler = sampleRss(d.pid)
    const cpu0 = cpuMs(d.pid)
    const cli = sampleCpu()
    const args = ['add', '-q', '--no-progress', ...(kind === 'upload' ? ['--no-local'] : []), src]
    const r = await procs.cliOk(repo, args, { onSpawn: cli.onSpawn }).finally(() => { runs[kind].cliCpu.push(cli.stop()) })
    runs[kind].daemonCpu.push(cpuMs(d.pid) - cpu0)
    runs[kind].peaks.push(sampler.stop().peakRssKiB)
    runs[kind].ms.push(r.ms)
    const cid = r.stdout.trim()
    await unpinAndGc(procs, repo, cid)
    return cid
  }
  try {
    for (let i = 0; i < RUNS; i++) {
      const cid = await addOnce('local')
      await addOnce('upload')
      ddMs.push(await dd(procs, src, SIZE.addMiB))
      ddDirectMs.push(await dd(procs, src, SIZE.addMiB, 'direct'))
      log(`add run ${i + 1}: pinbox add ${f0(mbps(bytes, runs.local.ms[i] as number))} MB/s (${cid}), --no-local ${f0(mbps(bytes, runs.upload.ms[i] as number))} MB/s; ` +
        `peak RSS ${mib(runs.local.peaks[i] as number)} / ${mib(runs.upload.peaks[i] as number)} MiB; dd conv=fsync ${f0(mbps(bytes, ddMs[i] as number))} MB/s, dd oflag=direct ${f0(mbps(bytes, ddDirectMs[i] as number))} MB/s`)
    }
  } finally {
    const hwm = rssKiB(d.pid).hwm
    notes.push(`Daemon VmHWM (lifetime peak, start-up + ${RUNS * 2} adds + their GCs): ${mib(hwm)} MiB.`)
    await d.stop()
  }
  const base = mbps(bytes, median(ddMs))
  const local = mbps(bytes, median(runs.local.ms))
  const upload = mbps(bytes, median(runs.upload.ms))
  row({ what: `\`pinbox add\` ${SIZE.addMiB} MiB random file, durable (CLI start to exit; the daemon reads the CLI's open file)`, value: `${f0(local)} MB/s`, baseline: `dd bs=1M conv=fsync: ${f0(base)} MB/s`, ratio: f2(local / base), goal: '>= 0.6', verdict: passFail(local / base >= 0.6) })
  row({ what: `\`pinbox add --no-local\` the same file, its bytes uploaded over HTTP (as a remote client or another user sends them)`, value: `${f0(upload)} MB/s`, baseline: `dd bs=1M conv=fsync: ${f0(base)} MB/s`, ratio: f2(upload / base), goal: '>= 0.6', verdict: passFail(upload / base >= 0.6) })
  notes.push(`dd runs: conv=fsync ${ddMs.map(ms => f0(mbps(bytes, ms))).join(', ')} MB/s; oflag=direct conv=fsync (the disk without the page cache) ${ddDirectMs.map(ms => f0(mbps(bytes, ms))).join(', ')} MB/s. ` +
    `Adds: local ${runs.local.ms.map(ms => f0(mbps(bytes, ms))).join(', ')} MB/s; upload ${runs.upload.ms.map(ms => f0(mbps(bytes, ms))).join(', ')} MB/s.`)
  // what the add costs the two shared cores, and the speed that CPU alone allows
  for (const kind of ['local', 'upload'] as const) {
    const daemonPerGB = cpuPerGB(median(runs[kind].daemonCpu), bytes)
    const cliPerGB = cpuPerGB(median(runs[kind].cliCpu), bytes)
    const ceiling = cpuCeilingMBps(daemonPerGB + cliPerGB)
    notes.push(`Add CPU per GB, ${kind === 'local' ? 'local hand-over' : '--no-local upload'} (user + system, all threads, median): daemon ${f2(daemonPerGB)} s, CLI ${f2(cliPerGB)} s (read every 50 ms while it ran). ` +
      `With ${cpus().length} cores that CPU alone caps the add at ${f0(ceiling)} MB/s, ${f2(ceiling / base)} of this run's dd.`)
  }
  const peak = Math.max(...runs.local.peaks, ...runs.upload.peaks)
  row({ what: 'daemon peak RSS during the adds (VmRSS sampled every 50 ms, max of runs, both kinds)', value: `${mib(peak)} MiB`, baseline: '–', ratio: '–', goal: '<= 256 MB (244 MiB)', verdict: passFail(peak <= 256e6 / 1024) })
}

// ---------------------------------------------------------------- get / cat (warm)
/** Reads a plain file to nowhere with Node's fs, 1 MiB at a time: the read side of a get. */
async function readPlain (path: string): Promise<number> {
  const started = performance.now()
  for await (const _chunk of createReadStream(path, { highWaterMark: MIB })) { /* discard */ }
  return performance.now() - started
}

async function benchGet (procs: Procs, repo: string, src: string): Promise<void> {
  const bytes = SIZE.addMiB * MIB
  const d = await procs.daemon(repo)
  const out = join(TMP, 'get.out')
  const plain: number[] = []
  const plainCat: number[] = []
  const plainCp: number[] = []
  const cat: number[] = []
  const get: number[] = []
  try {
    const cid = (await procs.cliOk(repo, ['add', '-q', '--no-progress', src])).stdout.trim()
    // warm-up: the source file and the block files in the page cache
    await readPlain(src)
    await procs.cliOk(repo, ['cat', cid], { stdout: 'devnull' })
    for (let i = 0; i < RUNS; i++) {
      plain.push(await readPlain(src))
      plainCat.push((await procs.run('cat', [src], { stdout: 'devnull' })).ms)
      cat.push((await procs.cliOk(repo, ['cat', cid], { stdout: 'devnull' })).ms)
      await rm(out, { force: true })
      plainCp.push((await procs.run('cp', [src, out])).ms)
      await rm(out, { force: true })
      get.push((await procs.cliOk(repo, ['get', cid, '-o', out])).ms)
      if (i === 0 && (await procs.run('cmp', [src, out])).code !== 0) throw new Error('pinbox get wrote different bytes')
      await rm(out, { force: true })
      log(`get run ${i + 1}: node fs read ${f0(mbps(bytes, plain[i] as number))} MB/s, cat plain ${f0(mbps(bytes, plainCat[i] as number))} MB/s, ` +
        `pinbox cat ${f0(mbps(bytes, cat[i] as number))} MB/s, cp plain ${f0(mbps(bytes, plainCp[i] as number))} MB/s, pinbox get ${f0(mbps(bytes, get[i] as number))} MB/s`)
    }
    await unpinAndGc(procs, repo, cid)
  } finally {
    await d.stop()
  }
  const base = mbps(bytes, median(plain))
  const cp = mbps(bytes, median(plainCp))
  const catV = mbps(bytes, median(cat))
  const getV = mbps(bytes, median(get))
  row({ what: `\`pinbox cat CID > /dev/null\` ${SIZE.addMiB} MiB, warm cache (CLI start to exit)`, value: `${f0(catV)} MB/s`, baseline: `plain file read with node fs, 1 MiB reads: ${f0(base)} MB/s`, ratio: f2(catV / base), goal: '>= 400 MB/s', verdict: passFail(catV >= 400) })
  row({ what: `\`pinbox get CID -o file\` ${SIZE.addMiB} MiB, warm cache (CLI start to exit)`, value: `${f0(getV)} MB/s`, baseline: `cp plainfile file: ${f0(cp)} MB/s`, ratio: f2(getV / cp), goal: '>= 400 MB/s', verdict: passFail(getV >= 400) })
  notes.push(`\`cat plainfile > /dev/null\` ran at ${f0(mbps(bytes, median(plainCat)))} MB/s (coreutils does not copy into /dev/null the way a reader must, so it is not used as the baseline).`)
}

// ---------------------------------------------------------------- start-up + idle RSS
async function benchStartup (procs: Procs, repo: string): Promise<void> {
  const toId: number[] = []
  const ready: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now()
    const daemon = procs.daemon(repo)
    daemon.catch(() => {})
    let answered = false
    let tries = 0
    while (!answered) {
      if (performance.now() - started > 60_000) throw new Error('pinbox id did not answer within 60 s')
      answered = (await procs.cli(repo, ['id'])).code === 0
      tries++
    }
    toId.push(performance.now() - started)
    const d = await daemon
    ready.push(d.readyMs)
    await d.stop()
    log(`start-up run ${i + 1}: \`pinbox id\` answered after ${f0(toId[i] as number)} ms (${tries} tries), daemon ready after ${f0(d.readyMs)} ms`)
  }
  const t = median(toId)
  row({ what: 'daemon spawn until a `pinbox id` (spawned in a loop) succeeds', value: `${f0(t)} ms`, baseline: `daemon's own "ready": ${f0(median(ready))} ms`, ratio: '–', goal: '<= 1500 ms', verdict: passFail(t <= 1500) })

  // a median of RUNS daemons, one after another: one daemon's idle RSS varies by a few MB from run to run (malloc, GC timing)
  const idle: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const d = await procs.daemon(repo)
    try {
      await sleep(Math.max(0, SIZE.idleMs - (performance.now() - d.startedAt)))
      idle.push(rssKiB(d.pid).rss)
    } finally {
      await d.stop()
    }
    log(`idle run ${i + 1}: VmRSS ${((idle[i] as number) / 1024).toFixed(1)} MiB`)
  }
  const rss = median(idle)
  row({ what: `daemon idle VmRSS ${SIZE.idleMs / 1000} s after start (median of ${RUNS} daemons)`, value: `${(rss / 1024).toFixed(1)} MiB`, baseline: '–', ratio: '–', goal: '<= 120 MB (114.4 MiB)', verdict: passFail(rss <= 120e6 / 1024) })
  notes.push(`Idle VmRSS per daemon, 60 s after its start: ${idle.map(kib => `${(kib / 1024).toFixed(1)}`).join(', ')} MiB (${idle.map(kib => `${f0(kib * 1024 / 1e6)}`).join(', ')} MB).`)
}

// ---------------------------------------------------------------- blockstore choice (in-process)
async function benchCompare (procs: Procs, src: string): Promise<void> {
  const bytes = SIZE.addMiB * MIB
  const kinds: StoreKind[] = ['flat', 'level-final-sync', 'level-sync-each']
  const ms: Record<StoreKind, number[]> = { flat: [], 'level-final-sync': [], 'level-sync-each': [] }
  const ddMs: number[] = []
  let root: string | undefined
  for (let i = 0; i < RUNS; i++) {
    ddMs.push(await dd(procs, src, SIZE.addMiB))
    for (const kind of kinds) {
      const dir = join(TMP, `compare-${kind}`)
      await rm(dir, { recursive: true, force: true })
      const r = await durableImport(kind, src, dir)
      root ??= r.cid.toString()
      if (r.cid.toString() !== root) throw new Error(`${kind} gave root ${r.cid}, expected ${root}`)
      ms[kind].push(r.ms)
      await rm(dir, { recursive: true, force: true })
    }
    log(`compare run ${i + 1}: dd ${f0(mbps(bytes, ddMs[i] as number))} MB/s, ` + kinds.map(k => `${k} ${f0(mbps(bytes, ms[k][i] as number))} MB/s`).join(', '))
  }
  const base = mbps(bytes, median(ddMs))
  const speed = (k: StoreKind): number => mbps(bytes, median(ms[k]))
  for (const kind of kinds) {
    row({ what: `in-process durable import ${SIZE.addMiB} MiB: ${STORE_LABELS[kind]}`, value: `${f0(speed(kind))} MB/s`, baseline: `dd conv=fsync: ${f0(base)} MB/s`, ratio: f2(speed(kind) / base), goal: '>= 0.6 (choice)', verdict: passFail(speed(kind) / base >= 0.6) })
  }
  const best = kinds.reduce((a, b) => speed(a) >= speed(b) ? a : b)
  const runnerUp = kinds.filter(k => k !== best).reduce((a, b) => speed(a) >= speed(b) ? a : b)
  notes.push(`Blockstore choice: **${best}** won, ${f2(speed(best) / speed(runnerUp))}x the next (${runnerUp}); root ${root} in every store.`)
}

// ---------------------------------------------------------------- GC on 1M blocks during an add
async function benchGc (procs: Procs): Promise<void> {
  const repo = join(TMP, 'gc-repo')
  const src = join(TMP, `gc-src-${SIZE.gcAddMiB}m.bin`)
  const stateFile = fixtureStateFile(TMP)
  const bytes = SIZE.gcAddMiB * MIB
  const spec = { dags: SIZE.dags, blocksPerDag: SIZE.blocksPerDag, unpinned: SIZE.unpinned, blockSize: BLOCK_SIZE }
  await randomFile(src, bytes, log)
  await ensureRepo(procs, repo)
  const pinned = await buildPinned(repo, stateFile, spec, log)
  notes.push(`GC fixture: ${SIZE.dags} DAGs x ${SIZE.blocksPerDag} blocks (dag-pb root + ${SIZE.blocksPerDag - 1} raw leaves of ${BLOCK_SIZE} B) pinned recursively, written in-process through the repo's blockstore and pin manager while the daemon was stopped: ${f0(pinned.pinnedMs / 1000)} s (summed over resumed builds).`)

  // baseline: the same add with no GC, before the loose blocks exist (the cleanup GC would take them)
  const baseMs: number[] = []
  let d = await procs.daemon(repo)
  try {
    for (let i = 0; i < RUNS; i++) {
      const r = await procs.cliOk(repo, ['add', '-q', '--no-progress', src])
      baseMs.push(r.ms)
      await unpinAndGc(procs, repo, r.stdout.trim())
      log(`gc baseline run ${i + 1}: add ${SIZE.gcAddMiB} MiB alone ${f0(mbps(bytes, r.ms))} MB/s`)
    }
  } finally {
    await d.stop()
  }
  await markUnpinnedGone(stateFile)

  const gcMs: number[] = []
  const gcWall: number[] = []
  const addMs: number[] = []
  const removed: number[] = []
  let verified = true
  for (let i = 0; i < gcRuns; i++) {
    const state = await buildUnpinned(repo, stateFile, spec, log)
    notes.push(`GC run ${i + 1}: ${SIZE.unpinned} unpinned ${BLOCK_SIZE} B raw blocks written the same way in ${f0(state.unpinnedMs / 1000)} s.`)
    d = await procs.daemon(repo)
    try {
      const gcP = procs.cliOk(repo, ['--json', 'repo', 'gc'])
      const addP = procs.cliOk(repo, ['add', '-q', '--no-progress', src])
      const [g, a] = await Promise.all([gcP, addP])
      const gcResult = JSON.parse(g.stdout) as { removed: number, durationMs?: number, markMs?: number }
      await markUnpinnedGone(stateFile)
      const cid = a.stdout.trim()
      const v = await procs.cli(repo, ['--json', 'pin', 'verify', cid])
      const ok = v.code === 0 && (JSON.parse(v.stdout) as { ok: boolean }).ok
      verified &&= ok
      gcMs.push(gcResult.durationMs ?? g.ms)
      gcWall.push(g.ms)
      addMs.push(a.ms)
      removed.push(gcResult.removed)
      log(`gc run ${i + 1}: repo gc ${f0(gcResult.durationMs ?? NaN)} ms in the daemon, mark ${f0(gcResult.markMs ?? NaN)} ms (${f0(g.ms)} ms CLI), removed ${gcResult.removed}; concurrent add ${f0(mbps(bytes, a.ms))} MB/s; pin verify ${ok ? 'ok' : 'FAILED'}`)
      await unpinAndGc(procs, repo, cid)
    } finally {
      await d.stop()
    }
  }
  const gcT = median(gcMs)
  row({ what: `\`repo gc\` on ${SIZE.dags * SIZE.blocksPerDag + SIZE.unpinned} blocks (${SIZE.unpinned} unpinned) during a ${SIZE.gcAddMiB} MiB add (daemon's durationMs; CLI wall ${f0(median(gcWall) / 1000)} s)`, value: `${f2(gcT / 1000)} s`, baseline: '–', ratio: '–', goal: '<= 60 s', verdict: passFail(gcT <= 60_000) })
  const slow = median(addMs) / median(baseMs)
  row({ what: `${SIZE.gcAddMiB} MiB \`pinbox add\` during that GC vs alone`, value: `${f0(mbps(bytes, median(addMs)))} MB/s; pin verify ${verified ? 'ok' : 'FAILED'}`, baseline: `alone: ${f0(mbps(bytes, median(baseMs)))} MB/s`, ratio: `${f2(slow)}x slower`, goal: '<= 2x, intact', verdict: passFail(slow <= 2 && verified) })
  notes.push(`GC removed ${removed.join(', ')} blocks (expected ${SIZE.unpinned} each); GC runs: ${gcRuns} (baseline adds: ${RUNS}).`)
}

// ---------------------------------------------------------------- replication (issue 3)
/** bench/replication.ts writes its own `## Replication` section; it runs as its own process. */
async function benchReplication (): Promise<void> {
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'replication.ts'), ...(quick ? ['--quick'] : []), ...(flags.keep === true ? ['--keep'] : [])], { cwd: ROOT, stdio: 'inherit' })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  })
  if (code !== 0) throw new Error(`bench/replication.ts exited ${code}`)
}

// ---------------------------------------------------------------- report
async function machine (procs: Procs): Promise<string> {
  const df = (await procs.run('df', ['-T', TMP])).stdout.trim().split('\n').at(-1)?.split(/\s+/) ?? []
  const model = cpus()[0]?.model ?? 'unknown cpu'
  return `${model}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM; bench folder on ${df[0]} (${df[1]}, ${(Number(df[4]) / 2 ** 20).toFixed(0)} GiB free); Node ${process.version}`
}

async function main (): Promise<void> {
  const procs = createProcs()
  const onSignal = (): void => {
    log('interrupted: stopping children')
    void procs.killAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const began = new Date()
  const load0 = loadavg().map(x => x.toFixed(2)).join(' ')
  try {
    await mkdir(TMP, { recursive: true })
    const src = join(TMP, `src-${SIZE.addMiB}m.bin`)
    const repo = join(TMP, 'repo')
    if (only.has('add') || only.has('get') || only.has('compare')) await randomFile(src, SIZE.addMiB * MIB, log)
    if (only.has('add') || only.has('get') || only.has('startup')) await ensureRepo(procs, repo)
    const order: Array<[Part, () => Promise<void>]> = [
      ['add', () => benchAdd(procs, repo, src)],
      ['get', () => benchGet(procs, repo, src)],
      ['compare', () => benchCompare(procs, src)],
      ['startup', () => benchStartup(procs, repo)],
      ['gc', () => benchGc(procs)],
      ['replication', () => benchReplication()]
    ]
    for (const [part, fn] of order) {
      if (!only.has(part)) continue
      log(`--- ${part}`)
      await fn()
    }
    const lines = [
      HEADING,
      '',
      `Generated by \`npm run bench${flags.only != null ? ` -- --only ${flags.only}` : ''}\` (bench/run.ts), ${began.toISOString()} to ${new Date().toISOString()}. ` +
        `Machine: ${await machine(procs)}. Load average at start ${load0}, at end ${loadavg().map(x => x.toFixed(2)).join(' ')} (other work shared the 2 cores).`,
      '',
      `Each figure is the median of ${RUNS} runs interleaved with its baseline in the same run (GC: see notes). MB = 10^6 bytes. ` +
        'Caches warm: nothing is dropped; the random source files were just written or read and sit in the page cache, so adds and dd read them from memory and both pay the same fsync to disk. ' +
        'Adds are timed from the CLI spawn to its exit; the daemon acknowledges an add only after the blocks and the pin record are fsync\'d.',
      '',
      '| what | value | baseline (same run) | ratio | goal | result |',
      '| --- | ---: | --- | ---: | --- | --- |',
      ...rows.map(r => `| ${r.what} | ${r.value} | ${r.baseline} | ${r.ratio} | ${r.goal} | ${r.verdict} |`),
      '',
      ...notes.map(n => `- ${n}`),
      ''
    ]
    const text = lines.join('\n')
    if (rows.length === 0) {
      // only the replication part ran: it wrote its own section
    } else if (quick) {
      console.log('\n' + text)
    } else {
      await writeResultsSection(RESULTS, HEADING, text)
      log(`wrote ${HEADING} in ${RESULTS}`)
    }
    if (!flags.keep) await rm(TMP, { recursive: true, force: true })
  } finally {
    await procs.killAll()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

await main()
