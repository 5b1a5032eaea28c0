import { createHash } from 'node:crypto'
import type { RedisClient } from '../../lib/redis-client.js'
import { keys } from '../../lib/keys.js'

export const TEST_USER_PREFIX = 'load_test_'
export const DEMO_USER = { username: 'demo', password: 'demo-password' }

// A fast digest, not scrypt: this is a stub, and load tests log in thousands of times a second.
const digest = (username: string, password: string) => createHash('sha256').update(`${username}\0${password}`).digest('hex')

export type LoginCheck = 'ok' | 'unknown' | 'wrong_password'

export interface UserDirectory {
  /** Checks a password; with signup on, a `load_test_` user is created on first login with the password it brings. */
  login (username: string, password: string): Promise<LoginCheck>
}

function decide (stored: string | null | undefined, username: string, password: string): LoginCheck {
  if (stored === null || stored === undefined) return 'unknown'
  return stored === digest(username, password) ? 'ok' : 'wrong_password'
}

export function createMemoryDirectory (signup: boolean): UserDirectory {
  const users = new Map<string, string>([[DEMO_USER.username, digest(DEMO_USER.username, DEMO_USER.password)]])
  return {
    async login (username, password) {
      if (signup && !users.has(username) && username.startsWith(TEST_USER_PREFIX)) users.set(username, digest(username, password))
      return decide(users.get(username), username, password)
    }
  }
}

export function createRedisDirectory (redis: RedisClient, signup: boolean): UserDirectory {
  let seeded: Promise<unknown> | undefined
  return {
    async login (username, password) {
      seeded ??= redis.set(keys.authUser(DEMO_USER.username), digest(DEMO_USER.username, DEMO_USER.password), 'NX')
      await seeded
      const key = keys.authUser(username)
      // SET NX: two first logins racing with different passwords cannot both create the user.
      if (signup && username.startsWith(TEST_USER_PREFIX)) await redis.set(key, digest(username, password), 'NX')
      return decide(await redis.get(key), username, password)
    }
  }
}
