/** Errors to HTTP: every failure is a status and a JSON {error, detail}. */

import type { NextFunction, Request, Response } from 'express';
import type { ApiError } from '../api.js';
import { HttpError } from '../limits.js';
import { StorageError } from '../store.js';

export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof StorageError) {
    return err.kind === 'unavailable'
      ? new HttpError(503, 'storage unavailable', err.message)
      : new HttpError(500, 'storage error', err.message);
  }
  // express's own errors (a malformed URL, ...) carry status and type.
  const e = err as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (status >= 400 && status < 500) return new HttpError(status, 'bad request', message);
  return new HttpError(500, 'internal error', message);
}

export function sendError(res: Response, e: HttpError): void {
  const body: ApiError = e.detail ? { error: e.error, detail: e.detail } : { error: e.error };
  res.status(e.status).json(body);
}

export function errorHandler(log: (m: string) => void, count: (e: HttpError, req: Request) => void) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(err);
    const e = toHttpError(err);
    count(e, req);
    if (e.status >= 500) log(`kiln: ${e.status} ${req.method} ${req.path}: ${e.message}`);
    sendError(res, e);
  };
}

/** Every path nobody serves: JSON, not express's HTML page. */
export function notFound(req: Request, res: Response): void {
  sendError(res, new HttpError(404, 'not found', `no endpoint ${req.method} ${req.path.slice(0, 200)}`));
}
