// Run under strace by strace.spec.ts: writes a DAG, then pins it between two markers on stdout.
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { Level } from 'level'
import { createPinManager } from '../../src/pinning/pin-manager.ts'
import { createBlockstore } from '../../src/store/blockstore.ts'
import { createLeases } from '../../src/store/leases.ts'
import { makeDag } from './utils.ts'

const dir = process.argv[2] as string
const blockstore = createBlockstore({ path: join(dir, 'blocks') })
await blockstore.open()
const db = new Level<string, any>(join(dir, 'datastore'))
await db.open()
const pins = createPinManager({ db, blockstore, leases: createLeases() })
await pins.start()
const dag = await makeDag(blockstore, 'strace', 5)
writeSync(1, `MARK add-start ${dag.blocks.join(',')}\n`)
await pins.add(dag.root, { name: 'traced' })
writeSync(1, 'MARK add-done\n')
await pins.stop()
await db.close()
await blockstore.close()
