import type { ReplicatedPin } from '../../pinning/replication-types.ts'

export type PsaStatus = 'queued' | 'pinning' | 'pinned' | 'failed'

export const PSA_STATUSES: readonly PsaStatus[] = ['queued', 'pinning', 'pinned', 'failed']

export interface RequestState {
  /** Replicas this request asked for, the local copy included. */
  wanted: number
  /** Why pinning failed for this request, as recorded when replicate() or update() threw. */
  failure?: string
  /** A replicate/update call for the CID is running right now. */
  busy: boolean
}

export interface DerivedStatus {
  status: PsaStatus
  details?: string
  pinned: number
}

/**
 * The spec's status of one pin request, from the replica states of its CID:
 *
 * - `failed`: replicate/update threw for this request, or the local copy failed, or too many
 *   replicas failed for the rest (pinned + still pending) to reach `wanted`, or the replicated
 *   pin vanished (unpinned outside the pinning service) with no work left to bring it back.
 * - `queued`: no work has started: no replicated pin yet and nothing running, or the local copy
 *   is queued.
 * - `pinning`: the local copy is being fetched, or it is held and remote replicas are pending
 *   (replicas the manager has not listed yet count as pending).
 * - `pinned`: the local copy is pinned and at least `wanted` replicas are pinned.
 */
export function deriveStatus (state: RequestState, replicated: ReplicatedPin | undefined): DerivedStatus {
  if (state.failure != null) return { status: 'failed', details: state.failure, pinned: countPinned(replicated) }
  if (replicated == null) {
    if (state.busy) return { status: 'pinning', details: 'fetching the DAG for the local copy', pinned: 0 }
    return { status: 'failed', details: 'the content is no longer pinned on this node', pinned: 0 }
  }
  const pinned = countPinned(replicated)
  const local = replicated.status[0]
  if (local == null || local.state === 'queued') return { status: 'queued', details: 'waiting to fetch the local copy', pinned }
  if (local.state === 'failed') return { status: 'failed', details: local.reason ?? 'the local copy failed', pinned }
  if (local.state === 'pinning') return { status: 'pinning', details: 'fetching the DAG for the local copy', pinned }
  if (pinned >= state.wanted) return { status: 'pinned', pinned }
  const failed = replicated.status.filter(r => r.state === 'failed').length
  // the manager may list fewer replicas than wanted while it looks for members
  const pending = Math.max(state.wanted, replicated.status.length) - pinned - failed
  if (pinned + pending < state.wanted) {
    const reasons = replicated.status.filter(r => r.state === 'failed' && r.reason != null).map(r => r.reason)
    return { status: 'failed', details: `only ${pinned} of ${state.wanted} replicas could be placed${reasons.length > 0 ? `: ${reasons.join('; ')}` : ''}`, pinned }
  }
  return { status: 'pinning', details: `${pinned} of ${state.wanted} replicas pinned`, pinned }
}

function countPinned (replicated: ReplicatedPin | undefined): number {
  return replicated?.status.filter(r => r.state === 'pinned').length ?? 0
}
