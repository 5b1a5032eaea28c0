// The setup() the load TCs share: the stack is healthy, a fresh gateway is warmed up, their users are logged in.
import { loginUsers, newRunId } from './auth.js'
import { probeHealth } from './stack.js'
import { warmUp } from './traffic.js'

/**
 * Probes /health (throws with what it got), makes the run id, warms every route of the load traffic up and logs in
 * `userCount` users `load_test_<tag>_<runId>_<n>`. Returns `{ runId, users }` for the VUs' data.
 */
export function loadSetup (tag, userCount = 0) {
  probeHealth()
  const runId = newRunId()
  warmUp(runId)
  return { runId, users: loginUsers(runId, tag, userCount) }
}
