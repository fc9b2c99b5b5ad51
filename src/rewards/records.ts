/**
 * What the rewards service did, kept in the repo's LevelDB (sublevel `rewards`) for
 * `pinbox rewards status`: proofs, misses, claims, fault reports, and the deals this node
 * opened or accepted (the chain does not keep a deal's CID in storage, only in its event).
 */
import type { AbstractLevel } from 'abstract-level'

export type RewardsDb = AbstractLevel<any, string, any>

export type RewardsEventType = 'proof' | 'missed' | 'claim' | 'fault-reported' | 'deal-opened' | 'deal-accepted'

export interface RewardsEvent {
  type: RewardsEventType
  at: number
  epoch?: number
  dealId?: string
  /** Token amount in wei, as a decimal string. */
  amount?: string
  account?: string
  tx?: string
  error?: string
}

export interface DealRecord {
  id: string
  cid: string
  role: 'requester' | 'provider'
  root: string
  size: number
  segments: number
}

export interface RewardsRecords {
  add(event: Omit<RewardsEvent, 'at'>): Promise<void>
  events(options?: { limit?: number }): Promise<RewardsEvent[]>
  putDeal(deal: DealRecord): Promise<void>
  getDeal(id: string): Promise<DealRecord | undefined>
  deals(): Promise<DealRecord[]>
}

export function createRecords (db: RewardsDb): RewardsRecords {
  const events = db.sublevel<string, RewardsEvent>('events', { valueEncoding: 'json' })
  const deals = db.sublevel<string, DealRecord>('deals', { valueEncoding: 'json' })
  let seq = 0
  // fixed-width keys sort by time, then by order of writing within one millisecond
  const key = (at: number): string => `${at.toString().padStart(15, '0')}-${(seq++ % 1e6).toString().padStart(6, '0')}`
  const dealKey = (id: string): string => id.padStart(20, '0')

  return {
    async add (event) {
      const at = Date.now()
      await events.put(key(at), { ...event, at })
    },
    async events (options = {}) {
      const out: RewardsEvent[] = []
      for await (const value of events.values({ reverse: true, limit: options.limit ?? 100 })) out.push(value)
      return out.reverse()
    },
    async putDeal (deal) {
      await deals.put(dealKey(deal.id), deal)
    },
    async getDeal (id) {
      return await deals.get(dealKey(id))
    },
    async deals () {
      const out: DealRecord[] = []
      for await (const value of deals.values()) out.push(value)
      return out
    }
  }
}
