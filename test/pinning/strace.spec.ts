import { execFile } from 'node:child_process'
import { access, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { multihashKey } from '../../src/store/blockstore.ts'

const STRACE = '/usr/bin/strace'
const hasStrace = await access(STRACE).then(() => true, () => false)

describe('pin durability seen by the kernel', () => {
  it.skipIf(!hasStrace)('fsyncs every block file, then writes and fdatasyncs the pin record, before add() resolves', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pinbox-pin-strace-'))
    try {
      const trace = join(dir, 'trace.txt')
      const child = join(import.meta.dirname, 'strace-child.ts')
      await promisify(execFile)(STRACE, ['-f', '-y', '-s', '1024', '-e', 'trace=fsync,fdatasync,write', '-o', trace, process.execPath, child, dir], { timeout: 50_000 })

      const lines = (await readFile(trace, 'utf8')).split('\n').filter(l => !l.includes('eventfd'))
      const start = lines.findIndex(l => l.includes('MARK add-start'))
      const done = lines.findIndex(l => l.includes('MARK add-done'))
      expect(start).toBeGreaterThanOrEqual(0)
      expect(done).toBeGreaterThan(start)
      const blocks = (/MARK add-start ([^"]+)/.exec(lines[start] as string)?.[1] ?? '').replace(/\\n$/, '').split(',')
      expect(blocks).toHaveLength(6)
      const during = lines.slice(start, done)

      const record = during.findIndex(l => /write\(\d+<[^>]*datastore\/\d+\.log>.*pins!/.test(l))
      expect(record).toBeGreaterThan(0)
      for (const cid of blocks) {
        // the blocks were written before add() began, unsynced: add() must fsync each one first
        const fsync = during.findIndex(l => l.includes(`fsync(`) && l.includes(`${multihashKey(CID.parse(cid))}.data>`))
        expect(fsync, `fsync of ${cid}`).toBeGreaterThan(0)
        expect(fsync).toBeLessThan(record)
      }
      const logFile = /<([^>]*\.log)>/.exec(during[record] as string)?.[1]
      const flushed = during.findIndex((l, i) => i > record && /f(data)?sync\(/.test(l) && l.includes(`<${logFile}>`))
      expect(flushed, 'LevelDB log synced before add() resolved').toBeGreaterThan(record)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
