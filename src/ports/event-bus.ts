/**
 * One change of a user's journal, as it travels between API nodes: `userId` is the user whose
 * journal grew (the routing key is `user.<userId>.change`), `payload` is the contract's change
 * message (API.md, Sync: `{type: "change", cursor, userId, fileId, folderId, action, ...}`),
 * JSON-serialisable.
 */
export interface ChangeEvent {
  userId: string
  payload: Readonly<Record<string, unknown>>
}

/** Where a bus delivers what other nodes published. */
export interface EventBusListener {
  /** A change of a user this node follows, published by another node. */
  change(event: ChangeEvent): void
  /**
   * Deliveries may have been lost (the broker connection dropped and is back, or the bus
   * could not keep up): every follower must catch up from the journal.
   */
  resync(): void
}

/**
 * Carries change events between API nodes. Events are hints: the journal, written in the same
 * transaction as each change, is the record, and a client that missed a hint loses nothing
 * because it reads the journal from its cursor. So a bus never fails a request: while it
 * cannot deliver it says so through `ping` (for /readyz), keeps trying on its own, and calls
 * `resync` once it can deliver again.
 *
 * Implemented in process (one node) and on RabbitMQ (many nodes).
 */
export interface EventBus {
  /**
   * Sends events to every OTHER node that follows their users; the publishing node delivers to
   * its own clients itself. Call after the transaction that wrote them commits, never before.
   * Never rejects: while the broker is unreachable, events wait in a bounded buffer (the
   * oldest dropped first, then a `resync` is due everywhere) and are sent once it is back.
   * Resolves when the broker has taken them (or they were buffered).
   */
  publish(events: readonly ChangeEvent[]): Promise<void>
  /** Sets the one listener of this node (the sync hub). */
  listen(listener: EventBusListener): void
  /**
   * Starts delivering this user's events to the listener. Resolves once deliveries flow (the
   * broker binding is in place), so that a client that reads the journal after this resolves
   * cannot miss a change between its read and the first event. While the broker is down it
   * resolves at once; the binding is made on reconnect, followed by `resync`. Idempotent.
   */
  follow(userId: string): Promise<void>
  /** Stops delivering this user's events. Idempotent. */
  unfollow(userId: string): Promise<void>
  /** Resolves while the bus can deliver; rejects with the reason otherwise (for /readyz). */
  ping(): Promise<void>
  /** Stops delivering and releases the connection. Idempotent. */
  close(): Promise<void>
}
