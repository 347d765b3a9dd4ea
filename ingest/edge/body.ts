/**
 * Request bodies, bounded before any work: the Content-Length (when given)
 * and the bytes as they arrive are held to the limit, so an oversized body is
 * refused with 413 without being read whole. Inflating happens in the ingest
 * workers, under their own cap.
 */

import busboy from 'busboy';
import type { Request } from 'express';
import { HttpError } from '../limits.js';
import { CONFIG_MAX_BYTES } from '../profile-types.js';

/** A request's body, at most `max` bytes; empty is refused unless allowed (an empty protobuf message is a valid Connect request). */
export async function readBody(req: Request, max: number, opts: { allowEmpty?: boolean } = {}): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    req.resume();
    throw new HttpError(413, 'body too large', `${declared} bytes, more than the ${max}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  await new Promise<void>((resolve, reject) => {
    const onData = (c: Buffer): void => {
      n += c.length;
      if (n > max) {
        req.off('data', onData);
        req.resume();
        reject(new HttpError(413, 'body too large', `more than the ${max}-byte limit`));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.once('end', () => resolve());
    req.once('error', (e) => reject(new HttpError(400, 'bad request', `reading the body: ${e.message}`)));
  });
  if (n === 0 && !opts.allowEmpty) throw new HttpError(400, 'empty body', 'the request has no profile in its body');
  return Buffer.concat(chunks, n);
}

export function contentEncodingOf(req: Request): 'gzip' | 'identity' {
  const v = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (v === '' || v === 'identity') return 'identity';
  if (v === 'gzip' || v === 'x-gzip') return 'gzip';
  throw new HttpError(415, 'unsupported content encoding', `Content-Encoding ${JSON.stringify(v.slice(0, 50))}; use gzip or none`);
}

export function isMultipart(req: Request): boolean {
  return (req.headers['content-type'] ?? '').trimStart().toLowerCase().startsWith('multipart/form-data');
}

/** What a multipart push carries: its profile, and pyroscope-go's sample_type_config when there is one. */
export interface MultipartPush {
  profile: Buffer;
  sampleTypeConfig?: string;
}

/**
 * The parts of a multipart/form-data body (pyroscope-go's shape): the part
 * named "profile" (else the first file), and "sample_type_config". A
 * "prev_profile" (older clients' cumulative profiles) is not used: Kiln
 * stores what a profile holds, and today's clients send deltas. busboy reads
 * the body in one linear pass.
 */
export function multipartProfile(req: Request, body: Buffer, max: number): Promise<MultipartPush> {
  return new Promise<MultipartPush>((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: req.headers,
        limits: { fields: 32, files: 8, parts: 40, headerPairs: 16, fieldSize: 64 * 1024, fileSize: max },
      });
    } catch (e) {
      reject(new HttpError(400, 'malformed multipart body', e instanceof Error ? e.message : String(e)));
      return;
    }
    let chosen: Buffer | undefined;
    let first: Buffer | undefined;
    let config: string | undefined;
    let failed = false;
    const fail = (e: HttpError): void => {
      if (failed) return;
      failed = true;
      reject(e);
    };
    bb.on('file', (name, stream) => {
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      stream.on('limit', () => fail(new HttpError(413, 'body too large', `a part is larger than ${max} bytes`)));
      stream.on('end', () => {
        const data = Buffer.concat(parts);
        if (name === 'sample_type_config') {
          if (data.length > CONFIG_MAX_BYTES) fail(new HttpError(413, 'body too large', `sample_type_config is larger than ${CONFIG_MAX_BYTES} bytes`));
          config ??= data.toString('utf8');
          return;
        }
        if (name === 'prev_profile') return;
        if (name === 'profile') chosen ??= data;
        first ??= data;
      });
    });
    // A form field of that name (not a file) carries the same JSON.
    bb.on('field', (name, value) => {
      if (name === 'sample_type_config') config ??= value;
    });
    bb.on('partsLimit', () => fail(new HttpError(400, 'malformed multipart body', 'too many parts')));
    bb.on('filesLimit', () => fail(new HttpError(400, 'malformed multipart body', 'too many files')));
    bb.on('fieldsLimit', () => fail(new HttpError(400, 'malformed multipart body', 'too many fields')));
    bb.on('error', (e: unknown) => fail(new HttpError(400, 'malformed multipart body', e instanceof Error ? e.message : String(e))));
    bb.on('close', () => {
      if (failed) return;
      const data = chosen ?? first;
      if (!data || data.length === 0) fail(new HttpError(400, 'malformed multipart body', 'no "profile" part'));
      else resolve({ profile: data, ...(config !== undefined ? { sampleTypeConfig: config } : {}) });
    });
    bb.end(body);
  });
}
