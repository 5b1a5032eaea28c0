export type BreakerState = 'closed' | 'open' | 'half_open'

export interface ThresholdBreakerOptions {
  name: string
  failureThreshold: number // consecutive failures that open the circuit
  successThreshold: number // consecutive half-open successes that close it
  resetTimeoutMs: number // open → half-open
  isFailure?: (err: unknown) => boolean // false: the error is passed on and counts neither way (e.g. a request never sent)
}

/** Thrown without calling the upstream while the circuit is open or its half-open trial slots are taken. */
export class BreakerOpenError extends Error {
  readonly code = 'EOPENBREAKER'
  constructor (readonly upstream: string) {
    super(`Breaker of ${upstream} is open`)
  }
}

/**
 * A small owned state machine rather than opossum: the contract is counts (N consecutive failures open it, M
 * consecutive half-open successes close it), which opossum's rolling error percentage and close-on-first-success
 * could only express bent (volumeThreshold MAX_SAFE_INTEGER, manual open()), at the cost of its stats per call.
 *
 * closed: calls run; `failureThreshold` failures in a row open it (a success resets the count).
 * open: calls are rejected at once; after `resetTimeoutMs` a timer moves it to half-open.
 * half_open: a single probe runs first; after it, only as many trials as successes are still needed run at once;
 * `successThreshold` successes close it, one failure reopens it; everything else is rejected.
 */
export class ThresholdBreaker {
  private phase: BreakerState = 'closed'
  private consecutiveFailures = 0
  private trialSuccesses = 0
  private trialsInFlight = 0
  private halfOpenEpoch = 0 // a trial's outcome only counts in the half-open period it started in
  private openedAt = 0
  private timer: NodeJS.Timeout | undefined
  private readonly isFailure: (err: unknown) => boolean
  private readonly listeners: Array<(state: BreakerState) => void> = []

  constructor (private readonly opts: ThresholdBreakerOptions) {
    this.isFailure = opts.isFailure ?? (() => true)
  }

  get state (): BreakerState { return this.phase }

  /** Milliseconds until the next trial is allowed (0 unless open). */
  get retryInMs (): number {
    return this.phase === 'open' ? Math.max(0, this.openedAt + this.opts.resetTimeoutMs - Date.now()) : 0
  }

  onTransition (listener: (state: BreakerState) => void): void { this.listeners.push(listener) }

  async fire<T> (action: () => Promise<T>): Promise<T> {
    if (this.phase === 'closed') return this.closedCall(action)
    if (this.phase === 'open') throw new BreakerOpenError(this.opts.name)
    const slots = this.trialSuccesses === 0 ? 1 : this.opts.successThreshold - this.trialSuccesses
    if (this.trialsInFlight >= slots) throw new BreakerOpenError(this.opts.name)
    return this.trialCall(action)
  }

  shutdown (): void { clearTimeout(this.timer) }

  private async closedCall<T> (action: () => Promise<T>): Promise<T> {
    try {
      const value = await action()
      if (this.phase === 'closed') this.consecutiveFailures = 0
      return value
    } catch (err) {
      if (this.phase === 'closed') {
        if (this.isFailure(err) && ++this.consecutiveFailures >= this.opts.failureThreshold) this.open()
      }
      throw err
    }
  }

  private async trialCall<T> (action: () => Promise<T>): Promise<T> {
    const epoch = this.halfOpenEpoch
    this.trialsInFlight++
    let outcome: 'success' | 'failure' | 'neutral' = 'failure'
    try {
      const value = await action()
      outcome = 'success'
      return value
    } catch (err) {
      outcome = this.isFailure(err) ? 'failure' : 'neutral'
      throw err
    } finally {
      if (epoch === this.halfOpenEpoch && this.phase === 'half_open') {
        this.trialsInFlight--
        if (outcome === 'failure') this.open()
        else if (outcome === 'success' && ++this.trialSuccesses >= this.opts.successThreshold) this.transition('closed')
      }
    }
  }

  private open (): void {
    this.consecutiveFailures = 0
    this.openedAt = Date.now()
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.halfOpen(), this.opts.resetTimeoutMs).unref()
    this.transition('open')
  }

  private halfOpen (): void {
    this.halfOpenEpoch++
    this.trialSuccesses = 0
    this.trialsInFlight = 0
    this.transition('half_open')
  }

  private transition (state: BreakerState): void {
    if (this.phase === state) return
    this.phase = state
    for (const listener of this.listeners) listener(state)
  }
}
