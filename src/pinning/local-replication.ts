import { NotReplicatedError, ReplicationUnavailableError } from './errors.ts'
import type { ReplicatedPin, ReplicateOptions, ReplicationManager } from './replication-types.ts'
import type { Pin, PinManager } from './types.ts'
import type { AbortOptions } from 'abort-error'
import type { CID } from 'multiformats/cid'

export interface LocalReplicationInit {
  /** This node's peer id, reported as the holder of the only replica. */
  peerId?: string
}

/**
 * The replication manager of a lone box without a pool: every replicated pin is a local
 * recursive pin and its only replica is the local copy. Asking for more than one replica is
 * refused rather than reported as pending forever. The pin manager is the only state, so it
 * survives restarts with the pins, and a recursive pin made over the RPC API shows up here too.
 */
export function localReplication (pins: Pick<PinManager, 'add' | 'get' | 'rm' | 'ls'>, init: LocalReplicationInit = {}): ReplicationManager {
  const peer = init.peerId ?? 'self'

  function toReplicated (pin: Pin): ReplicatedPin {
    return {
      cid: pin.cid,
      ...(pin.name == null ? {} : { name: pin.name }),
      ...(pin.metadata == null ? {} : { meta: pin.metadata }),
      replicas: 1,
      created: pin.created,
      status: [{ peer, state: 'pinned', since: pin.created }]
    }
  }

  function checkReplicas (replicas: number | undefined): void {
    if (replicas != null && replicas > 1) {
      throw new ReplicationUnavailableError(`${replicas} replicas wanted, but this node has no pool to replicate to`)
    }
  }

  async function held (cid: CID): Promise<Pin | undefined> {
    const pin = await pins.get(cid)
    // a direct pin keeps one block, not the DAG: it is no replica of the content
    return pin?.type === 'recursive' ? pin : undefined
  }

  async function mustHold (cid: CID): Promise<Pin> {
    const pin = await held(cid)
    if (pin == null) throw new NotReplicatedError(`${cid.toString()} is not replicated`)
    return pin
  }

  async function pinRecursively (cid: CID, options: Partial<ReplicateOptions>): Promise<ReplicatedPin> {
    const pin = await pins.add(cid, {
      recursive: true,
      ...(options.name == null ? {} : { name: options.name }),
      ...(options.meta == null ? {} : { metadata: options.meta }),
      ...(options.signal == null ? {} : { signal: options.signal })
    })
    return toReplicated(pin)
  }

  return {
    async start () {},
    async stop () {},

    async replicate (cid: CID, options: ReplicateOptions): Promise<ReplicatedPin> {
      checkReplicas(options.replicas)
      return await pinRecursively(cid, options)
    },

    async update (cid: CID, options: Partial<ReplicateOptions>): Promise<ReplicatedPin> {
      checkReplicas(options.replicas)
      await mustHold(cid)
      // relabelling an existing recursive pin fetches nothing
      return await pinRecursively(cid, options)
    },

    async status (cid: CID): Promise<ReplicatedPin | undefined> {
      const pin = await held(cid)
      return pin == null ? undefined : toReplicated(pin)
    },

    async * list (options: AbortOptions = {}): AsyncGenerator<ReplicatedPin> {
      for await (const listed of pins.ls({ type: 'recursive', ...(options.signal == null ? {} : { signal: options.signal }) })) {
        const pin = await held(listed.cid)
        // removed between the listing and the lookup
        if (pin != null) yield toReplicated(pin)
      }
    },

    async remove (cid: CID, options: AbortOptions = {}): Promise<void> {
      await mustHold(cid)
      await pins.rm(cid, { recursive: true, ...(options.signal == null ? {} : { signal: options.signal }) })
    },

    async settled (cid: CID): Promise<ReplicatedPin> {
      // the local pin is made before replicate() resolves: there is nothing left to wait for
      return toReplicated(await mustHold(cid))
    }
  }
}
