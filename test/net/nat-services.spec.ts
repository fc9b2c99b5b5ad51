import { afterAll, describe, expect, it } from 'vitest'
import { startDaemon, stopAll } from '../helpers/daemon.ts'

/**
 * What a real daemon serves for NAT traversal, per its config, as `pinbox id` reports it: the
 * circuit relay v2 client (always), AutoNAT and DCUtR (on by default, `swarm.autonat`), the relay
 * server only with `swarm.relay.server`. Loopback cannot show NAT behaviour itself; this pins the
 * wiring down, so a service dropped from the node fails here.
 */
describe('NAT traversal services of a running daemon', () => {
  afterAll(stopAll)

  async function protocols (config: Record<string, unknown>): Promise<string[]> {
    const d = await startDaemon({ config })
    const id = await d.json<{ protocols?: string[], Protocols?: string[] }>(['id'])
    await d.stop()
    return id.protocols ?? id.Protocols ?? []
  }

  it('by default: relay client, AutoNAT and DCUtR, no relay server', async () => {
    const served = await protocols({})
    expect(served).toContain('/libp2p/circuit/relay/0.2.0/stop')
    expect(served).toContain('/libp2p/autonat/1.0.0')
    expect(served).toContain('/libp2p/dcutr')
    expect(served).not.toContain('/libp2p/circuit/relay/0.2.0/hop')
  })

  it('swarm.autonat false drops AutoNAT and DCUtR; swarm.relay.server adds the hop protocol', async () => {
    const served = await protocols({ 'swarm.autonat': false, 'swarm.relay': { server: true } })
    expect(served).toContain('/libp2p/circuit/relay/0.2.0/stop')
    expect(served).not.toContain('/libp2p/autonat/1.0.0')
    expect(served).not.toContain('/libp2p/dcutr')
    expect(served).toContain('/libp2p/circuit/relay/0.2.0/hop')
  })
})
