/**
 * Stack ids this process knows the store has (or has in its log), shared by
 * the event loop, which adds them, and the ingest workers, which read them.
 *
 * Kiln's native form (profile/native.ts) sends a stack's definition once a
 * day and its id alone after that, so ingest must tell a sender when an id
 * it is sent is one it does not know (the store was replaced or lost its
 * dictionaries, or another replica got the definition): the push is then
 * refused with 409 and the sender sends the definitions again. A worker
 * knows the stacks it wrote itself today; this set adds the ones any push
 * logged today defined, and the ones a lookup found in kiln_stacks, so a
 * push handled by another worker than the one that saw the definition
 * needs no lookup.
 *
 * One writer (the event loop), so no locks: an entry's key is written
 * before its day, which readers check first. When three quarters full it
 * starts over: that only costs lookups.
 */

export class KnownStacks {
  private readonly keysLo: Int32Array;
  private readonly keysHi: Int32Array;
  private readonly days: Int32Array;
  /** [0]: entries, [1]: clears (so readers notice a reset). */
  private readonly meta: Int32Array;

  constructor(
    readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(KnownStacks.bytesFor(1 << 20)),
  ) {
    const capacity = (buffer.byteLength - 8) / 12;
    this.meta = new Int32Array(buffer, 0, 2);
    this.keysLo = new Int32Array(buffer, 8, capacity);
    this.keysHi = new Int32Array(buffer, 8 + 4 * capacity, capacity);
    this.days = new Int32Array(buffer, 8 + 8 * capacity, capacity);
  }

  static bytesFor(capacity: number): number {
    return 8 + 12 * capacity;
  }

  private slot(lo: number, hi: number): number {
    const mask = this.days.length - 1;
    let i = (Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> 0) & mask;
    while (Atomics.load(this.days, i) !== 0 && (this.keysLo[i] !== (lo | 0) || this.keysHi[i] !== (hi | 0))) i = (i + 1) & mask;
    return i;
  }

  /** Whether the stack is known on `day` (days since the epoch, UTC). */
  has(lo: number, hi: number, day: number): boolean {
    return Atomics.load(this.days, this.slot(lo, hi)) === day;
  }

  /** The event loop only. */
  add(lo: number, hi: number, day: number): void {
    let i = this.slot(lo, hi);
    if (Atomics.load(this.days, i) === 0) {
      if (this.meta[0]! >= (this.days.length * 3) / 4) {
        this.clear();
        i = this.slot(lo, hi);
      }
      Atomics.add(this.meta, 0, 1);
    }
    this.keysLo[i] = lo;
    this.keysHi[i] = hi;
    Atomics.store(this.days, i, day);
  }

  /** Forgets everything (the store refused dictionary rows that were counted here). */
  clear(): void {
    this.days.fill(0);
    Atomics.store(this.meta, 0, 0);
    Atomics.add(this.meta, 1, 1);
  }

  /** Adds [lo, hi, lo, hi, ...]. */
  addAll(ids: Uint32Array, day: number): void {
    for (let i = 0; i + 1 < ids.length; i += 2) this.add(ids[i]!, ids[i + 1]!, day);
  }
}
