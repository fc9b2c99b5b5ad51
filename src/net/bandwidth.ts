import type { ConnectionProtector, MessageStream } from '@libp2p/interface'

/*
 * libp2p has no rate limiter, and a stream-level one would miss the bytes of muxer frames,
 * noise and identify. This one sits where libp2p lets code see every raw connection before
 * encryption: the `connectionProtector` hook (meant for private-network keys). It throttles
 * the connection object the transport built, in place, through the two calls every
 * AbstractMessageStream funnels its bytes through: `sendData` (outbound) and `onData` (inbound).
 * Outbound: no bytes leave while the bucket is in debt; the stream is told to wait for 'drain'.
 * Inbound: the connection is paused (the socket stops reading, so TCP flow control slows the
 * sender) for as long as the bucket is in debt.
 */

export interface BandwidthLimits {
  /** Bytes per second, 0 for unlimited. */
  up: number
  down: number
}

export interface TokenBucket {
  /** Takes `bytes` (the balance may go negative) and returns the ms until it is positive again. */
  take(bytes: number): number
  /** Ms until the balance is positive again, 0 when it is. */
  wait(): number
  /** Whole bytes that may go now (0 while in debt). */
  available(): number
}

/** One second's worth of burst; shared by every connection, so the cap is for the whole node. */
export function createTokenBucket (bytesPerSecond: number, now: () => number = () => performance.now()): TokenBucket {
  const capacity = bytesPerSecond
  let tokens = capacity
  let last = now()
  const refill = (): void => {
    const t = now()
    tokens = Math.min(capacity, tokens + (t - last) * bytesPerSecond / 1000)
    last = t
  }
  const wait = (): number => tokens >= 0 ? 0 : Math.ceil(-tokens * 1000 / bytesPerSecond)
  return {
    take (bytes) {
      refill()
      tokens -= bytes
      return wait()
    },
    wait () {
      refill()
      return wait()
    },
    available () {
      refill()
      return Math.max(0, Math.floor(tokens))
    }
  }
}

/** The parts of libp2p's AbstractMessageStream the throttle reaches into. */
interface Chunk {
  byteLength: number
  sublist(start?: number, end?: number): Chunk
}

interface ThrottledConnection {
  sendData(data: Chunk): { sentBytes: number, canSendMore: boolean }
  onData(data: { byteLength: number }): void
  pause(): void
  resume(): void
  readStatus?: string
  status?: string
  safeDispatchEvent?(type: string): void
  dispatchEvent(event: Event): boolean
}

function isThrottleable (conn: unknown): conn is ThrottledConnection {
  const c = conn as Partial<ThrottledConnection> | null
  return typeof c?.sendData === 'function' && typeof c.onData === 'function' &&
    typeof c.pause === 'function' && typeof c.resume === 'function'
}

function throttle (conn: ThrottledConnection, up: TokenBucket | undefined, down: TokenBucket | undefined): void {
  const open = (): boolean => conn.status == null || conn.status === 'open'
  if (up != null) {
    const sendData = conn.sendData.bind(conn)
    let drainTimer: ReturnType<typeof setTimeout> | undefined
    // the base class keeps unsent bytes and sends them when 'drain' fires
    const drainLater = (): void => {
      drainTimer ??= setTimeout(() => {
        drainTimer = undefined
        if (open()) conn.dispatchEvent(new Event('drain'))
      }, Math.max(1, up.wait()))
    }
    conn.sendData = (data) => {
      const allowed = up.available()
      if (allowed === 0) {
        drainLater()
        return { sentBytes: 0, canSendMore: false }
      }
      // a write may hold megabytes: send only what the bucket allows now
      const part = allowed >= data.byteLength ? data : data.sublist(0, allowed)
      const result = sendData(part)
      up.take(result.sentBytes)
      if (part !== data) {
        drainLater()
        return { sentBytes: result.sentBytes, canSendMore: false }
      }
      return result
    }
  }
  if (down != null) {
    const onData = conn.onData.bind(conn)
    let resumeTimer: ReturnType<typeof setTimeout> | undefined
    conn.onData = (data) => {
      onData(data)
      const wait = down.take(data.byteLength)
      if (wait > 0 && resumeTimer == null && conn.readStatus === 'readable') {
        conn.pause()
        const resume = (): void => {
          const more = down.wait()
          if (more > 0) {
            resumeTimer = setTimeout(resume, more)
            return
          }
          resumeTimer = undefined
          if (conn.readStatus === 'paused') conn.resume()
        }
        resumeTimer = setTimeout(resume, wait)
      }
    }
  }
}

/**
 * A `connectionProtector` for libp2p's options that caps the node's total upload and download
 * rates; returns undefined when both are unlimited, so libp2p's path stays untouched.
 */
export function bandwidthLimiter (limits: BandwidthLimits): (() => ConnectionProtector) | undefined {
  if (limits.up <= 0 && limits.down <= 0) return undefined
  const up = limits.up > 0 ? createTokenBucket(limits.up) : undefined
  const down = limits.down > 0 ? createTokenBucket(limits.down) : undefined
  return () => ({
    async protect (connection: MessageStream): Promise<MessageStream> {
      if (isThrottleable(connection)) throttle(connection, up, down)
      return connection
    }
  })
}
