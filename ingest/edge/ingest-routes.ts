/**
 * The two ingest endpoints. The event loop only checks the request's
 * parameters and reads its body (both bounded); inflating, decoding and
 * rows happen in a worker (workers.ts), storing in the committer (commit.ts).
 */

import express, { type Request, type Response } from 'express';
import type { IngestResponse } from '../api.js';
import type { Committer } from '../commit.js';
import { HttpError, checkLabel, checkService, type Limits } from '../limits.js';
import { parseAppName } from '../pyroscope.js';
import { parseSampleTypeConfig } from '../profile-types.js';
import { iso, parseTime } from '../time.js';
import type { Task } from '../worker.js';
import type { WorkerPool } from '../workers.js';
import type { Auth } from './auth.js';
import { contentEncodingOf, isMultipart, multipartProfile, readBody } from './body.js';
import { one, queryOf } from './params.js';
import { NATIVE_CONTENT_TYPE } from '../../profile/native.js';

/** The latest time a DateTime column holds (2106-02-07); pushes past it are refused, not wrapped. */
const MAX_STORABLE_MS = 0xffffffff * 1000;

const PYROSCOPE_PARAMS = ['name', 'from', 'until', 'format', 'sampleRate', 'spyName', 'units', 'aggregationType'];

export interface IngestDeps {
  limits: Limits;
  auth: Auth;
  pool: WorkerPool;
  committer: Committer;
}

export function ingestRoutes(deps: IngestDeps): express.Router {
  const { limits, auth } = deps;
  const r = express.Router();

  r.post('/api/v1/profiles', auth.write, async (req, res) => {
    const query = queryOf(req);
    const service = checkService(one(query, 'service'));
    const series: Record<string, string> = {};
    for (const [k, v] of Object.entries(query)) {
      if (k === 'service' || k === 'time') continue;
      if (Array.isArray(v)) throw new HttpError(400, 'bad label', `label ${k.slice(0, 100)} is given ${v.length} times`);
      checkLabel(k, v, limits, 'query label');
      series[k] = v;
    }
    if (Object.keys(series).length > limits.maxSeriesLabels) {
      throw new HttpError(400, 'too many labels', `${Object.keys(series).length} labels, limit ${limits.maxSeriesLabels}`);
    }
    const timeText = one(query, 'time');
    const timeMs = storableTime(parseTime(timeText, Date.now(), 'time'), 'time');
    const native = (req.headers['content-type'] ?? '').trimStart().toLowerCase().startsWith(NATIVE_CONTENT_TYPE);
    const task = {
      contentEncoding: contentEncodingOf(req),
      format: native ? ('native' as const) : ('pprof' as const),
      input: { service, series, timeMs, source: native ? 'native' : 'pprof' },
      keyHeader: keyHeaderOf(req),
      timeText,
    };
    const body = await readBody(req, limits.maxBodyBytes);
    await push(deps, res, { ...task, body });
  });

  r.post('/ingest', auth.write, async (req, res) => {
    const query = queryOf(req);
    const unknown = Object.keys(query).filter((k) => !PYROSCOPE_PARAMS.includes(k));
    if (unknown.length > 0) {
      throw new HttpError(400, 'unknown parameter', `${JSON.stringify(unknown[0]!.slice(0, 50))} is not taken here; parameters: ${PYROSCOPE_PARAMS.join(', ')}`);
    }
    const { service, labels, name } = parseAppName(one(query, 'name'), limits);
    checkService(service, 'application name');
    const now = Date.now();
    const fromText = one(query, 'from');
    const from = storableTime(parseTime(fromText, now, 'from'), 'from');
    const until = storableTime(parseTime(one(query, 'until'), now, 'until'), 'until');
    if (from !== undefined && until !== undefined && until < from) {
      throw new HttpError(400, 'bad time range', 'until is before from');
    }
    const fmt = one(query, 'format');
    let format: Task['format'];
    if (fmt === 'pprof' || fmt === 'folded') format = fmt;
    else if (fmt === undefined || fmt === '') format = 'auto';
    else throw new HttpError(400, 'unknown format', `format ${JSON.stringify(fmt.slice(0, 50))} is not supported; use pprof or folded`);
    const spyName = one(query, 'spyName');
    if (spyName !== undefined && !isSpyName(spyName)) throw new HttpError(400, 'bad spyName', 'at most 100 letters, digits, _ . -');
    const rateText = one(query, 'sampleRate');
    let periodNs: number | undefined;
    if (rateText !== undefined) {
      const rate = /^\d{1,7}(\.\d{1,9})?$/.test(rateText) ? Number(rateText) : NaN;
      if (!(rate > 0 && rate <= 1e6)) throw new HttpError(400, 'bad sampleRate', `${JSON.stringify(rateText.slice(0, 50))} is not a rate in Hz (above 0, at most 1000000)`);
      periodNs = 1e9 / rate;
    }
    const task = {
      contentEncoding: contentEncodingOf(req),
      format,
      input: {
        service,
        series: labels,
        timeMs: from,
        source: `pyroscope-${format === 'auto' ? 'auto' : format}${spyName ? `/${spyName}` : ''}`,
        // The SDK's rate is a fallback: a pprof's own period wins (Node's SDK sends 17 Hz for a 10 ms wall profile).
        ...(periodNs !== undefined ? { periodNs } : {}),
        ...(name !== undefined ? { name } : {}),
        ...(from !== undefined && until !== undefined ? { durationNs: (until - from) * 1e6 } : {}),
      },
      keyHeader: keyHeaderOf(req),
      timeText: fromText,
    };
    let body = await readBody(req, limits.maxBodyBytes);
    if (isMultipart(req)) {
      const parts = await multipartProfile(req, body, limits.maxBodyBytes);
      body = parts.profile;
      if (parts.sampleTypeConfig !== undefined) {
        const sampleTypeConfig = parseSampleTypeConfig(parts.sampleTypeConfig);
        await push(deps, res, { ...task, input: { ...task.input, sampleTypeConfig }, body });
        return;
      }
    }
    await push(deps, res, { ...task, body });
  });

  return r;
}

async function push(deps: IngestDeps, res: Response, task: Omit<Task, 'id'>): Promise<void> {
  const built = await deps.pool.run(task, task.input.service);
  const outcome = await deps.committer.submit(built);
  const body: IngestResponse = outcome === 'duplicate' ? { ...built.response, duplicate: true } : built.response;
  res.json(body);
}

function keyHeaderOf(req: Request): string | undefined {
  const v = req.headers['idempotency-key'];
  if (v === undefined) return undefined;
  const k = Array.isArray(v) ? v.join(',') : v;
  if (k.length === 0 || k.length > 256) throw new HttpError(400, 'bad idempotency key', 'Idempotency-Key is 1 to 256 characters');
  return k;
}

function isSpyName(s: string): boolean {
  if (s.length > 100) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 46 || c === 45;
    if (!ok) return false;
  }
  return true;
}

/** A push's time must fit the store's DateTime (1970 to 2106): refused, never wrapped or clamped. */
function storableTime(ms: number | undefined, what: string): number | undefined {
  if (ms === undefined) return undefined;
  if (!(ms >= 0 && ms <= MAX_STORABLE_MS)) {
    throw new HttpError(400, `bad ${what}`, `${what} ${iso(ms)} is outside 1970-2106, the range profiles are stored in`);
  }
  return ms;
}
