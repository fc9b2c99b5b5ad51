/**
 * Keeps the daemon from loading Node's bundled undici (fetch, WebSocket) that it never uses.
 *
 * Since Node 22.5 `node:http` has three lazy getters, `WebSocket`, `CloseEvent` and
 * `MessageEvent`, each of which loads undici. `require('node:http')` leaves them alone, but the
 * first ESM `import ... from 'node:http'` (the WebSockets transport of libp2p has one) builds the
 * module's ESM namespace by reading every export, so undici is loaded at start-up: measured here,
 * +2.1 MB of script source and +3.2 MB of V8 heap in an idle process, about 5 of the idle daemon's
 * ~117 MiB. Nothing in the daemon or its dependencies reads these three from `node:http`, and the
 * globals of the same names (which the rewards client's fetch uses) stay as they are.
 *
 * Removing the properties, rather than redefining them, is the only way that works: the ESM
 * namespace reads every own key Node listed when the module was first required, and a getter is
 * a getter whoever calls it.
 */
import { createRequire } from 'node:module'

export const UNDICI_GETTERS = ['WebSocket', 'CloseEvent', 'MessageEvent'] as const

/**
 * Deletes the undici getters of `node:http`, once and before anything imports it as ESM.
 * Returns the names it removed (empty when this Node has none or they were already read).
 */
export function dropHttpUndiciGetters (): string[] {
  const http = createRequire(import.meta.url)('node:http') as Record<string, unknown>
  const removed: string[] = []
  for (const name of UNDICI_GETTERS) {
    const descriptor = Object.getOwnPropertyDescriptor(http, name)
    // a plain value means undici is already loaded: nothing left to save
    if (descriptor?.get == null || descriptor.configurable !== true) continue
    delete http[name]
    removed.push(name)
  }
  return removed
}
