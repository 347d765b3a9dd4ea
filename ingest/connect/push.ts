/**
 * Pyroscope's Push API (push.v1.PusherService/Push) in Kiln's terms: each
 * raw profile of a PushRequest becomes one ingest push, the same as a pprof
 * POSTed to /api/v1/profiles. The `service_name` label names the service;
 * `__name__` names the profile type (process_cpu, memory, ...); other labels
 * starting with `__` describe the push and are dropped; the rest are series
 * labels.
 */

import type { PushRequest } from './gen/push/v1/push_pb.js';
import { HttpError, checkLabel, checkService, type Limits } from '../limits.js';
import { isProfileName } from '../pyroscope.js';

/** Profiles one PushRequest may carry: each is a task for a worker, and a request's work stays bounded. */
export const MAX_PUSH_PROFILES = 1_000;

/** The label Pyroscope files a profile's service under. */
export const SERVICE_LABEL = 'service_name';

export interface PushItem {
  service: string;
  series: Record<string, string>;
  /** The `__name__` label (Pyroscope's profile name, e.g. process_cpu, memory), when given. */
  profileName?: string;
  /** The pprof, gzipped or not (the worker inflates it). */
  body: Uint8Array;
  /**
   * An idempotency key: the sample's ID (a UUID the SDK gives each profile)
   * with the series labels, so a retried PushRequest stores each profile once.
   * Undefined without an ID: the key is then a hash of the push (worker.ts).
   */
  keyHeader?: string;
}

export function pushItems(req: PushRequest, limits: Limits): PushItem[] {
  const out: PushItem[] = [];
  let profiles = 0;
  for (const s of req.series) profiles += s.samples.length;
  if (profiles > MAX_PUSH_PROFILES) {
    throw new HttpError(400, 'too many profiles', `${profiles} profiles in one PushRequest, more than ${MAX_PUSH_PROFILES}; split it`);
  }
  req.series.forEach((s, i) => {
    const where = `series ${i}`;
    let service: string | undefined;
    let profileName: string | undefined;
    const series: Record<string, string> = {};
    let count = 0;
    const seen = new Set<string>();
    for (const { name, value } of s.labels) {
      if (seen.has(name)) throw new HttpError(400, 'bad label', `${where}: label ${JSON.stringify(name.slice(0, 100))} is given twice`);
      seen.add(name);
      if (name === SERVICE_LABEL) service = value;
      else if (name === '__name__') profileName = value;
      else if (!name.startsWith('__')) {
        checkLabel(name, value, limits, `${where} label`);
        series[name] = value;
        if (++count > limits.maxSeriesLabels) throw new HttpError(400, 'too many labels', `${where}: more than ${limits.maxSeriesLabels} labels, the limit`);
      }
    }
    if (service === undefined) throw new HttpError(400, 'missing service', `${where} has no ${SERVICE_LABEL} label; Kiln files profiles by service`);
    checkService(service, SERVICE_LABEL);
    if (profileName !== undefined && !isProfileName(profileName)) {
      throw new HttpError(400, 'bad name', `${where}: __name__ ${JSON.stringify(profileName.slice(0, 100))} is not a profile name (letters, digits, _ . -, at most 100)`);
    }
    const labelsKey = Object.entries(series)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('\0');
    s.samples.forEach((sample, j) => {
      if (sample.rawProfile.length === 0) throw new HttpError(400, 'empty profile', `${where} sample ${j} has no raw_profile`);
      if (sample.ID.length > 256) throw new HttpError(400, 'bad ID', `${where} sample ${j}: ID is ${sample.ID.length} characters, at most 256`);
      out.push({
        service: service!,
        series,
        ...(profileName !== undefined ? { profileName } : {}),
        body: sample.rawProfile,
        ...(sample.ID !== '' ? { keyHeader: `pyroscope-push\0${sample.ID}\0${profileName ?? ''}\0${labelsKey}` } : {}),
      });
    });
  });
  return out;
}
