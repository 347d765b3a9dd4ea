/**
 * 64-bit FNV-1a, written out by hand so ingest needs no native module and every
 * Kiln process (and any other writer) derives the same ids for the same frames,
 * stacks and label sets. The same hash Coroot uses for its stack table.
 *
 * JavaScript numbers carry 53 bits, so the state is four 16-bit limbs; BigInt
 * arithmetic per byte would be an order of magnitude slower on the ingest path.
 */

const encoder = new TextEncoder();

/** A 64-bit id as the two 32-bit halves it hashes from, plus its decimal text (what ClickHouse reads and returns). */
export interface Id64 {
  lo: number;
  hi: number;
  dec: string;
}

export class Fnv64 {
  // Offset basis 0xcbf29ce484222325, least significant limb first.
  h0 = 0x2325;
  h1 = 0x8422;
  h2 = 0x9ce4;
  h3 = 0xcbf2;

  byte(b: number): this {
    this.h0 ^= b & 0xff;
    // h *= 0x100000001b3 (= 0x1b3 + 2^40) modulo 2^64, limb by limb.
    const t0 = this.h0 * 0x1b3;
    let t1 = this.h1 * 0x1b3;
    let t2 = this.h2 * 0x1b3 + (this.h0 << 8);
    let t3 = this.h3 * 0x1b3 + (this.h1 << 8);
    t1 += t0 >>> 16;
    t2 += t1 >>> 16;
    t3 += t2 >>> 16;
    this.h0 = t0 & 0xffff;
    this.h1 = t1 & 0xffff;
    this.h2 = t2 & 0xffff;
    this.h3 = t3 & 0xffff;
    return this;
  }

  bytes(u8: Uint8Array, start = 0, end = u8.length): this {
    let h0 = this.h0;
    let h1 = this.h1;
    let h2 = this.h2;
    let h3 = this.h3;
    for (let i = start; i < end; i++) {
      h0 ^= u8[i]!;
      const t0 = h0 * 0x1b3;
      let t1 = h1 * 0x1b3;
      let t2 = h2 * 0x1b3 + (h0 << 8);
      let t3 = h3 * 0x1b3 + (h1 << 8);
      t1 += t0 >>> 16;
      t2 += t1 >>> 16;
      t3 += t2 >>> 16;
      h0 = t0 & 0xffff;
      h1 = t1 & 0xffff;
      h2 = t2 & 0xffff;
      h3 = t3 & 0xffff;
    }
    this.h0 = h0;
    this.h1 = h1;
    this.h2 = h2;
    this.h3 = h3;
    return this;
  }

  /** UTF-8 bytes of s followed by a NUL, so ("ab","c") and ("a","bc") differ. */
  string(s: string): this {
    this.bytes(encoder.encode(s));
    return this.byte(0);
  }

  /**
   * Little-endian 32-bit unsigned: the same four byte() steps, unrolled on
   * locals. Stack hashing runs this twice per frame of every sample.
   */
  u32(n: number): this {
    let h0 = this.h0;
    let h1 = this.h1;
    let h2 = this.h2;
    let h3 = this.h3;
    for (let shift = 0; shift < 32; shift += 8) {
      h0 ^= (n >>> shift) & 0xff;
      const t0 = h0 * 0x1b3;
      let t1 = h1 * 0x1b3;
      let t2 = h2 * 0x1b3 + (h0 << 8);
      let t3 = h3 * 0x1b3 + (h1 << 8);
      t1 += t0 >>> 16;
      t2 += t1 >>> 16;
      t3 += t2 >>> 16;
      h0 = t0 & 0xffff;
      h1 = t1 & 0xffff;
      h2 = t2 & 0xffff;
      h3 = t3 & 0xffff;
    }
    this.h0 = h0;
    this.h1 = h1;
    this.h2 = h2;
    this.h3 = h3;
    return this;
  }

  /** A 64-bit id's eight little-endian bytes, unrolled on locals: stack hashing runs this once per frame. */
  u64(lo: number, hi: number): this {
    let h0 = this.h0;
    let h1 = this.h1;
    let h2 = this.h2;
    let h3 = this.h3;
    for (let k = 0; k < 8; k++) {
      h0 ^= ((k < 4 ? lo : hi) >>> ((k & 3) << 3)) & 0xff;
      const t0 = h0 * 0x1b3;
      let t1 = h1 * 0x1b3;
      let t2 = h2 * 0x1b3 + (h0 << 8);
      let t3 = h3 * 0x1b3 + (h1 << 8);
      t1 += t0 >>> 16;
      t2 += t1 >>> 16;
      t3 += t2 >>> 16;
      h0 = t0 & 0xffff;
      h1 = t1 & 0xffff;
      h2 = t2 & 0xffff;
      h3 = t3 & 0xffff;
    }
    this.h0 = h0;
    this.h1 = h1;
    this.h2 = h2;
    this.h3 = h3;
    return this;
  }

  id(x: { lo: number; hi: number }): this {
    return this.u32(x.lo).u32(x.hi);
  }

  /** Back to the offset basis, for reuse on a hot path without allocating. */
  reset(): this {
    this.h0 = 0x2325;
    this.h1 = 0x8422;
    this.h2 = 0x9ce4;
    this.h3 = 0xcbf2;
    return this;
  }

  /** Continues from another hash's state: a cached prefix (a function's fields, before a location's line). */
  from(other: Fnv64): this {
    this.h0 = other.h0;
    this.h1 = other.h1;
    this.h2 = other.h2;
    this.h3 = other.h3;
    return this;
  }

  get lo(): number {
    return ((this.h1 << 16) | this.h0) >>> 0;
  }

  get hi(): number {
    return ((this.h3 << 16) | this.h2) >>> 0;
  }

  digest(): Id64 {
    const lo = this.lo;
    const hi = this.hi;
    return { lo, hi, dec: dec64(hi, lo) };
  }
}

/**
 * Decimal text of hi * 2^32 + lo without BigInt: 2^32 = 4294 * 10^6 + 967296,
 * so the value is (hi * 4294 + carry) * 10^6 + (hi * 967296 + lo) mod 10^6,
 * every intermediate below 2^53.
 */
export function dec64(hi: number, lo: number): string {
  if (hi === 0) return String(lo);
  const low = hi * 967296 + lo;
  const rem = low % 1e6;
  const high = hi * 4294 + (low - rem) / 1e6;
  const r = String(rem);
  return String(high) + '000000'.slice(r.length) + r;
}

export function fnv1a64(s: string | Uint8Array): Id64 {
  const h = new Fnv64();
  h.bytes(typeof s === 'string' ? encoder.encode(s) : s);
  return h.digest();
}

/** Parses ClickHouse's decimal UInt64 text back into an Id64. */
export function idFromDec(dec: string): Id64 {
  const v = BigInt.asUintN(64, BigInt(dec));
  return { lo: Number(v & 0xffffffffn), hi: Number(v >> 32n), dec: v.toString() };
}
