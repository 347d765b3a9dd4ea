/**
 * Gunzip held to a cap on what it inflates to: a small body must not become a
 * large allocation. One rule for every edge (HTTP ingest in the workers, the
 * Connect routes on the libuv pool); each maps the failure to its protocol's
 * error.
 */
import { gunzip, gunzipSync } from 'node:zlib';
import { promisify } from 'node:util';

const gunzipAsync = promisify(gunzip);

export class InflateError extends Error {
  constructor(
    /** too_large: the output passed the cap; malformed: not a gzip stream */
    readonly kind: 'too_large' | 'malformed',
    message: string,
  ) {
    super(message);
  }
}

function failure(e: unknown, max: number): InflateError {
  const code = (e as NodeJS.ErrnoException).code;
  if (e instanceof RangeError || code === 'ERR_BUFFER_TOO_LARGE') {
    return new InflateError('too_large', `the gzipped body inflates to more than ${max} bytes, the limit`);
  }
  return new InflateError('malformed', `malformed gzip body: ${e instanceof Error ? e.message : String(e)}`);
}

/** On the calling thread (a worker's). */
export function gunzipCappedSync(b: Uint8Array, max: number): Uint8Array {
  try {
    return gunzipSync(b, { maxOutputLength: max });
  } catch (e) {
    throw failure(e, max);
  }
}

/** On the libuv pool, off the event loop. */
export async function gunzipCapped(b: Uint8Array, max: number): Promise<Buffer> {
  try {
    return await gunzipAsync(b, { maxOutputLength: max });
  } catch (e) {
    throw failure(e, max);
  }
}
