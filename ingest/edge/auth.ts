/** Bearer tokens, compared in constant time (over SHA-256 digests, so lengths do not leak either). */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { ApiError } from '../api.js';
import type { Tokens } from '../config.js';

export interface Auth {
  /** Middleware for writes: a write token when any exists. */
  write: (req: Request, res: Response, next: NextFunction) => void;
  /** Middleware for reads: open unless a read token exists; write tokens also read. */
  read: (req: Request, res: Response, next: NextFunction) => void;
  /** Whether the caller holds a token (of either kind); false when none are configured. */
  holdsToken(req: Request): boolean;
}

export function authFor(tokens: Tokens): Auth {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  const write = tokens.write.map(digest);
  const read = [...tokens.read, ...tokens.write].map(digest);
  const matches = (req: Request, allowed: Buffer[]): boolean => {
    const h = req.headers.authorization ?? '';
    // Split by hand: no regex over request text.
    if (h.length > 4096 || h.slice(0, 7).toLowerCase() !== 'bearer ') return false;
    const token = h.slice(7).trim();
    if (token === '' || token.includes(' ')) return false;
    const d = digest(token);
    let ok = false;
    for (const a of allowed) ok = timingSafeEqual(a, d) || ok;
    return ok;
  };
  const guard = (allowed: Buffer[], what: string) => (req: Request, res: Response, next: NextFunction) => {
    if (allowed.length === 0 || matches(req, allowed)) return next();
    res.setHeader('WWW-Authenticate', 'Bearer');
    const body: ApiError = { error: 'unauthorized', detail: `${what} need Authorization: Bearer <token>` };
    res.status(401).json(body);
  };
  return {
    write: guard(write, 'writes'),
    read: tokens.read.length === 0 ? (_req, _res, next) => next() : guard(read, 'reads'),
    holdsToken: (req) => read.length > 0 && matches(req, read),
  };
}
