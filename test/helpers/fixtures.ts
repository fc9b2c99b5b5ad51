import { fileURLToPath } from 'node:url'

/**
 * The gateway-conformance CARs live in the `shared/` folder beside the checkout (CI lays a copy
 * of it next to its fresh clone), never at a fixed absolute path.
 */
export const CONFORMANCE_FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/gateway-conformance', import.meta.url))
