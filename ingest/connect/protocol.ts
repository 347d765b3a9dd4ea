/**
 * The Connect protocol's unary calls, as far as Pyroscope's clients and
 * Grafana use them: POST /<package.Service>/<Method>, the message as binary
 * protobuf (application/proto) or protobuf JSON (application/json), the body
 * optionally gzipped (Content-Encoding), the answer in the same codec, and
 * errors as Connect's JSON {code, message} with the HTTP status the code maps
 * to. Nothing here knows ingest or storage: connect-routes.ts puts the
 * handlers on it.
 */

import { fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue, type MessageShape } from '@bufbuild/protobuf';
import type { Request, Response } from 'express';
import { HttpError } from '../limits.js';
import { sendBytes } from '../edge/respond.js';
import { gunzipCapped, InflateError } from '../gzip.js';

/** Connect's error codes, with the HTTP status each is sent with. */
export const CODE_STATUS = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
} as const;

export type Code = keyof typeof CODE_STATUS;

export class ConnectError extends Error {
  constructor(
    readonly code: Code,
    message: string,
    /** Seconds to wait before retrying (a Retry-After header), for `unavailable`. */
    readonly retryAfterS?: number,
    /** A status other than the code's, where the protocol asks for one (415 for an unknown codec). */
    readonly httpStatus?: number,
  ) {
    super(message);
    this.name = 'ConnectError';
  }

  get status(): number {
    return this.httpStatus ?? CODE_STATUS[this.code];
  }
}

/** Kiln's request errors in Connect's terms: the code for the status, the message from error and detail. */
const CODE_OF_STATUS: Record<number, Code> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  409: 'aborted',
  413: 'resource_exhausted',
  415: 'unimplemented',
  429: 'resource_exhausted',
  503: 'unavailable',
};

export function fromHttpError(e: HttpError): ConnectError {
  const code = CODE_OF_STATUS[e.status] ?? (e.status >= 400 && e.status < 500 ? 'invalid_argument' : 'internal');
  return new ConnectError(code, e.message, e.retryAfterS);
}

/** Connect's code back to the (status, error) Kiln counts refusals by. */
export function asHttpError(e: ConnectError): HttpError {
  return new HttpError(e.status, e.code, e.message, e.retryAfterS);
}

export type Codec = 'proto' | 'json';

const PROTO_TYPES = ['application/proto', 'application/protobuf', 'application/x-protobuf'];

/** The codec a request's Content-Type names; 415 (as the protocol asks) for any other. */
export function codecOf(req: Request): Codec {
  const raw = String(req.headers['content-type'] ?? '').slice(0, 200);
  const semi = raw.indexOf(';');
  const type = (semi >= 0 ? raw.slice(0, semi) : raw).trim().toLowerCase();
  if (PROTO_TYPES.includes(type)) return 'proto';
  if (type === 'application/json') return 'json';
  throw new ConnectError(
    'unimplemented',
    `Content-Type ${JSON.stringify(type)} is not served here; use application/proto or application/json`,
    undefined,
    415,
  );
}

/** Content-Encoding of a unary body (Connect-Content-Encoding is taken too: some clients send it as they would on a stream). */
export function encodingOf(req: Request): 'gzip' | 'identity' {
  const pick = (h: string | string[] | undefined): string => String(h ?? '').trim().toLowerCase().slice(0, 50);
  const outer = pick(req.headers['content-encoding']);
  const connect = pick(req.headers['connect-content-encoding']);
  const names = [outer, connect].filter((v) => v !== '' && v !== 'identity');
  if (names.length === 0) return 'identity';
  if (names.length === 2) throw new ConnectError('invalid_argument', 'Content-Encoding and Connect-Content-Encoding both compress the body; send one');
  const v = names[0]!;
  if (v === 'gzip' || v === 'x-gzip') return 'gzip';
  throw new ConnectError('unimplemented', `compression ${JSON.stringify(v)} is not supported; use gzip or none`);
}

/** The version header is optional (pyroscope-io omits it); when sent it must be the one version there is. */
export function checkProtocolVersion(req: Request): void {
  const v = req.headers['connect-protocol-version'];
  if (v !== undefined && String(v).trim() !== '1') {
    throw new ConnectError('invalid_argument', `Connect-Protocol-Version ${JSON.stringify(String(v).slice(0, 20))} is not supported; use 1`);
  }
}

/** Inflates a gzipped body on the libuv pool (off the event loop), held to `max` bytes. */
export async function inflateBody(body: Buffer, encoding: 'gzip' | 'identity', max: number): Promise<Buffer> {
  if (encoding === 'identity') return body;
  try {
    return await gunzipCapped(body, max);
  } catch (e) {
    if (!(e instanceof InflateError)) throw e;
    throw new ConnectError(e.kind === 'too_large' ? 'resource_exhausted' : 'invalid_argument', e.message);
  }
}

/**
 * Decodes a message in the request's codec. protobuf-es reads in one linear
 * pass; unknown fields are skipped, not kept. Any failure (including the
 * RangeError of absurdly nested unknown groups) is invalid_argument.
 */
export function decode<D extends DescMessage>(schema: D, codec: Codec, bytes: Uint8Array): MessageShape<D> {
  try {
    if (codec === 'proto') return fromBinary(schema, bytes, { readUnknownFields: false });
    const json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as JsonValue;
    return fromJson(schema, json, { ignoreUnknownFields: true });
  } catch (e) {
    throw new ConnectError('invalid_argument', `cannot read ${schema.typeName} (${codec}): ${e instanceof Error ? e.message.slice(0, 300) : String(e)}`);
  }
}

/** Sends a message in the request's codec, gzipped when the client takes gzip and it is worth it. */
export async function sendMessage<D extends DescMessage>(req: Request, res: Response, schema: D, codec: Codec, msg: MessageShape<D>): Promise<void> {
  const body = codec === 'proto' ? Buffer.from(toBinary(schema, msg)) : Buffer.from(JSON.stringify(toJson(schema, msg)));
  res.status(200);
  await sendBytes(req, res, codec === 'proto' ? 'application/proto' : 'application/json', body);
}

/** Connect's error body: JSON whatever the request's codec. */
export function sendConnectError(res: Response, e: ConnectError): void {
  if (e.retryAfterS !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(e.retryAfterS))));
  if (e.httpStatus === 415) res.setHeader('Accept-Post', 'application/proto, application/json');
  res.status(e.status);
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ code: e.code, message: e.message }));
}
