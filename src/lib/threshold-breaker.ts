import CircuitBreaker from 'opossum'

export type BreakerState = 'closed' | 'open' | 'half_open'

export interface ThresholdBreakerOptions {
  name: string
  failureThreshold: number // consecutive failures that open the circuit
  successThreshold: number // consecutive half-open successes that close it
  resetTimeoutMs: number // open → half-open
  isFailure?: (err: unknown) => boolean
}

/**
 * opossum opens on an error percentage and closes on the first half-open success (its maintainers declined a
 * success threshold). This keeps opossum's state machine, timer and fast rejection, and adds two counts around it:
 * N consecutive failures open it; in half-open, opossum's single probe and then only as many trials as successes
 * are still needed run at once; `successThreshold` consecutive successes close it and one failure reopens it.
 * Everything else gets EOPENBREAKER.
 */
export class ThresholdBreaker {
  private readonly breaker: CircuitBreaker<[() => Promise<unknown>], unknown>
  private phase: BreakerState = 'closed'
  private consecutiveFailures = 0
  private trialSuccesses = 0
  private trialsInFlight = 0
  private openedAt = 0
  private readonly listeners: Array<(state: BreakerState) => void> = []
  // Errors `isFailure` excused: opossum reports them as 'success', which must not count as one either.
  private readonly excused = new WeakSet<object>()

  constructor (private readonly opts: ThresholdBreakerOptions) {
    this.breaker = new CircuitBreaker((action: () => Promise<unknown>) => action(), {
      name: opts.name,
      timeout: false, // undici's own timeouts bound each call; they abort the request, opossum's would not
      resetTimeout: opts.resetTimeoutMs,
      errorThresholdPercentage: 100, // never opens by percentage (a rate cannot exceed 100): the count below decides
      volumeThreshold: Number.MAX_SAFE_INTEGER,
      errorFilter: (err: unknown) => {
        if ((opts.isFailure ?? (() => true))(err)) return false
        if (typeof err === 'object' && err !== null) this.excused.add(err)
        return true
      },
      // Nothing reads opossum's rolling statistics (the counts above decide): no latency list kept per call and
      // sorted, no snapshot timer.
      rollingPercentilesEnabled: false,
      enableSnapshots: false
    })
    this.breaker.on('open', () => {
      this.openedAt = Date.now()
      this.transition('open')
    })
    this.breaker.on('halfOpen', () => {
      this.trialSuccesses = 0
      this.transition('half_open')
    })
    this.breaker.on('success', (result: unknown) => {
      if (typeof result === 'object' && result !== null && this.excused.has(result)) return
      this.onSuccess()
    })
    this.breaker.on('failure', () => this.onFailure())
  }

  get state (): BreakerState { return this.phase }

  /** Milliseconds until the next trial is allowed (0 unless open). */
  get retryInMs (): number {
    return this.phase === 'open' ? Math.max(0, this.openedAt + this.opts.resetTimeoutMs - Date.now()) : 0
  }

  onTransition (listener: (state: BreakerState) => void): void { this.listeners.push(listener) }

  async fire<T> (action: () => Promise<T>): Promise<T> {
    // opossum has closed after its single probe, but we are still counting trial successes: let through only as
    // many trials as successes are still needed, so half-open never sends more than successThreshold calls.
    const trial = this.phase === 'half_open' && this.breaker.closed
    if (trial) {
      if (this.trialsInFlight >= this.opts.successThreshold - this.trialSuccesses) throw rejection()
      this.trialsInFlight++
    }
    try {
      return await this.breaker.fire(action) as T
    } finally {
      if (trial) this.trialsInFlight--
    }
  }

  shutdown (): void { this.breaker.shutdown() }

  private onSuccess (): void {
    this.consecutiveFailures = 0
    if (this.phase !== 'half_open') return
    if (++this.trialSuccesses >= this.opts.successThreshold) this.transition('closed')
  }

  private onFailure (): void {
    if (this.phase === 'half_open') {
      // opossum reopens by itself when its probe fails; a failed later trial must reopen it here.
      if (this.breaker.closed) this.breaker.open()
      return
    }
    if (this.phase === 'closed' && ++this.consecutiveFailures >= this.opts.failureThreshold) {
      this.consecutiveFailures = 0
      this.breaker.open()
    }
  }

  private transition (state: BreakerState): void {
    if (this.phase === state) return
    this.phase = state
    for (const listener of this.listeners) listener(state)
  }
}

function rejection (): Error {
  return Object.assign(new Error('Breaker is half-open and its trial slots are taken'), { code: 'EOPENBREAKER' })
}
