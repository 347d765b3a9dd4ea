/**
 * Tokens, compared in constant time (over SHA-256 digests, so lengths do not
 * leak either). A token comes as `Authorization: Bearer <token>` or, for
 * Pyroscope's SDKs and Grafana's basic-auth setting, as HTTP Basic with the
 * token as the password (the user name is not checked: Grafana Cloud puts a
 * tenant id there) or, with an empty password, as the user name.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { ApiError } from '../api.js';
import type { Tokens } from '../config.js';

export interface Auth {
  /** Middleware for writes: a write token when any exists. */
  write: (req: Request, res: Response, next: NextFunction) => void;
  /** Middleware for reads: open unless a read token exists; write tokens also read. */
  read: (req: Request, res: Response, next: NextFunction) => void;
  /** Whether the caller may write (or read), for edges that answer refusals in their own shape. */
  allows(req: Request, what: 'write' | 'read'): boolean;
  /** Whether the caller holds a token (of either kind); false when none are configured. */
  holdsToken(req: Request): boolean;
}

/** The token an Authorization header carries, if it is Bearer or Basic and well formed. */
export function tokenOf(header: string | undefined): string | undefined {
  const h = header ?? '';
  // Split by hand: no regex over request text.
  if (h.length > 4096) return undefined;
  const scheme = h.slice(0, 6).toLowerCase();
  if (scheme === 'bearer' && h[6] === ' ') {
    const token = h.slice(7).trim();
    return token === '' || token.includes(' ') ? undefined : token;
  }
  if (scheme === 'basic ') {
    const text = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon < 0) return undefined;
    const token = text.slice(colon + 1) || text.slice(0, colon);
    return token === '' ? undefined : token;
  }
  return undefined;
}

export function authFor(tokens: Tokens): Auth {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  const write = tokens.write.map(digest);
  const read = [...tokens.read, ...tokens.write].map(digest);
  const matches = (req: Request, allowed: Buffer[]): boolean => {
    const token = tokenOf(req.headers.authorization);
    if (token === undefined) return false;
    const d = digest(token);
    let ok = false;
    for (const a of allowed) ok = timingSafeEqual(a, d) || ok;
    return ok;
  };
  const readOpen = tokens.read.length === 0;
  const allows = (req: Request, what: 'write' | 'read'): boolean => {
    if (what === 'read' && readOpen) return true;
    const allowed = what === 'write' ? write : read;
    return allowed.length === 0 || matches(req, allowed);
  };
  const guard = (what: 'write' | 'read') => (req: Request, res: Response, next: NextFunction) => {
    if (allows(req, what)) return next();
    res.setHeader('WWW-Authenticate', 'Bearer');
    const body: ApiError = { error: 'unauthorized', detail: `${what}s need Authorization: Bearer <token>` };
    res.status(401).json(body);
  };
  return {
    write: guard('write'),
    read: guard('read'),
    allows,
    holdsToken: (req) => read.length > 0 && matches(req, read),
  };
}
