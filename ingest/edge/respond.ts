/** Response bodies: gzipped when the client takes gzip and the body is worth it (on the libuv pool, off the event loop). */

import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Request, Response } from 'express';

const gzipAsync = promisify(gzip);

export async function sendBytes(req: Request, res: Response, contentType: string, body: Buffer): Promise<void> {
  res.setHeader('Content-Type', contentType);
  res.setHeader('Vary', 'Accept-Encoding');
  const accepts = /\bgzip\b/i.test(String(req.headers['accept-encoding'] ?? '').slice(0, 200));
  if (accepts && body.length > 1024) {
    res.setHeader('Content-Encoding', 'gzip');
    res.end(await gzipAsync(body, { level: 4 }));
  } else res.end(body);
}
