/**
 * Kiln's HTTP JSON API: what each endpoint takes and returns. The server
 * (ingest/server.ts) is typed against these, and the web UI imports them, so
 * a change here is a change to the contract on both sides.
 *
 * Conventions:
 * - Times in responses are Unix milliseconds.
 * - Time parameters take Unix time (seconds, milliseconds, microseconds or
 *   nanoseconds, told apart by magnitude), RFC 3339, or now / now-1h / now-7d
 *   (units ms s m h d w M y). The default range is the last hour.
 * - Label filters: repeat `label=NAME=VALUE` (or `label=NAME!=VALUE`). Several
 *   values for one name match any of them; different names must all match.
 *   A Pyroscope selector `query=service{name="value",...}` works too.
 *   Filters apply to the merged label set: the query-string labels a profile
 *   was pushed with (host, region, ...) plus its pprof sample labels (pid, tid,
 *   thread_name, python_version).
 * - Every range query takes type=, a profile type ID in Pyroscope's form
 *   (name:sample_type:sample_unit:period_type:period_unit; GET /api/v1/types
 *   lists them), by default process_cpu:cpu:nanoseconds:cpu:nanoseconds.
 *   Types are stored apart: a heap profile never shows in a CPU flame graph.
 * - Values are as stored: sample counts for CPU and wall time (each worth
 *   `scale` nanoseconds, the sampling period), bytes or counts otherwise;
 *   every response says its `unit` and `scale` (value x scale is in unit).
 * - Every error is {error, detail?} with a 4xx/5xx status.
 */

import type { ProfileType, ValueKind } from '../profile/profile-type.js';

export type { ProfileType, ValueKind };

/** Every error response. */
export interface ApiError {
  error: string;
  detail?: string;
}

/** Query parameters, as the URL carries them (all strings). */
export interface RangeQuery {
  service: string;
  /** Profile type ID; default CPU. Not an ID: 400. */
  type?: string;
  from?: string;
  to?: string;
  /** NAME=VALUE or NAME!=VALUE; repeat for several. */
  label?: string | string[];
  /** Pyroscope selector, e.g. api{host="web-1"}; its name must equal service when both are given. */
  query?: string;
}

export type Granularity = 'function' | 'line';

export interface FlamegraphQuery extends RangeQuery {
  /** Largest tree to return; smaller nodes are merged into "[other]" nodes. Default 8192; from 2 (root and one "[other]") to 1,048,576. */
  maxNodes?: string;
  /**
   * function (default): one node per function under a parent, carrying the
   * function's file and first line. line: one node per (function, line being
   * executed).
   */
  granularity?: Granularity;
}

export interface DiffQuery extends FlamegraphQuery {
  /**
   * baseFrom/baseTo and comparisonFrom/comparisonTo default to from/to.
   * baseLabel / comparisonLabel filters apply to their side on top of the
   * shared label (and query) filters.
   */
  baseFrom?: string;
  baseTo?: string;
  baseLabel?: string | string[];
  comparisonFrom?: string;
  comparisonTo?: string;
  comparisonLabel?: string | string[];
}

export type TopSort = 'self' | 'total' | 'name';

export interface TopQuery extends RangeQuery {
  sort?: TopSort;
  /** asc or desc; default desc for numbers, asc for name. */
  order?: 'asc' | 'desc';
  /** Default 100, at most 10,000. */
  limit?: string;
  granularity?: Granularity;
}

export interface TimelineQuery extends RangeQuery {
  /** Bucket width in whole seconds; by default a round width giving at most about 200 buckets. */
  step?: string;
}

export type PprofQuery = RangeQuery;

export interface ServicesQuery {
  from?: string;
  to?: string;
}

export type LabelsQuery = RangeQuery;

/** GET /api/v1/types: service optional (all services); label filters need a service. */
export type TypesQuery = Partial<Pick<RangeQuery, 'service' | 'from' | 'to' | 'label' | 'query'>>;

export interface ProfileTypeInfo extends ProfileType {
  /** The ID: name:sample_type:sample_unit:period_type:period_unit. */
  id: string;
  /** How its values print. */
  unit: ValueKind;
  /** Services that have it in the range. */
  services: string[];
}

/** GET /api/v1/types */
export interface TypesResponse {
  service?: string;
  from: number;
  to: number;
  /** Sorted by ID. */
  types: ProfileTypeInfo[];
}

/** A parsed label filter, echoed back in responses. */
export interface LabelFilter {
  name: string;
  op: '=' | '!=';
  /** Matches any of these (for '='), or none of them (for '!='). */
  values: string[];
}

export interface ServiceInfo {
  name: string;
  /** Profiles pushed (a push of several profile types counts once). */
  profiles: number;
  /** Samples of CPU time. */
  samples: number;
  firstSeen: number;
  lastSeen: number;
  /** Profile type IDs stored in the range, sorted. */
  types: string[];
}

/** GET /api/v1/services */
export interface ServicesResponse {
  from: number;
  to: number;
  services: ServiceInfo[];
}

export interface LabelInfo {
  name: string;
  /** Sorted; at most the server's limit (1000 by default). */
  values: string[];
  /** How many distinct values there are in all. */
  count: number;
  truncated: boolean;
}

/** GET /api/v1/labels */
export interface LabelsResponse {
  service: string;
  from: number;
  to: number;
  labels: LabelInfo[];
}

/**
 * One frame of d3-flame-graph's input. value is the total (self + children),
 * which is d3-flame-graph's default reading (selfValue(false)).
 */
export interface FlameNode {
  name: string;
  value: number;
  /** Samples with this frame on top. */
  self: number;
  /** Source file (co_filename); absent on synthetic frames. */
  file?: string;
  /** First line of the function (granularity=function) or the line executing (granularity=line). */
  line?: number;
  /** On "[other]" nodes: how many nodes were merged into it (maxNodes). */
  merged?: number;
  children: FlameNode[];
}

/** What a type's values are: the type, the unit they print in, and the factor to it. */
export interface ValueUnitOf {
  /** Profile type ID. */
  type: string;
  /** nanoseconds (CPU, wall, delays), bytes (memory) or count (objects, contentions, samples of an unknown period). */
  unit: ValueKind;
  /** A value times scale is an amount in unit: the sampling period in ns for CPU and wall time, 1 otherwise. */
  scale: number;
}

/** What every range query answers with: the service and the range, filters and type it resolved to. */
export interface RangeResult extends ValueUnitOf {
  service: string;
  /** Unix ms */
  from: number;
  to: number;
  filters: LabelFilter[];
}

/** GET /api/v1/flamegraph */
export interface FlamegraphResponse extends RangeResult {
  granularity: Granularity;
  /** Samples in the range (root.value). */
  total: number;
  /** Nodes in the returned tree, root included. */
  nodes: number;
  /** Nodes the full tree had; more than nodes when maxNodes merged some. */
  fullNodes: number;
  maxNodes: number;
  root: FlameNode;
}

/**
 * One frame of a differential flame graph, ready for d3-flame-graph's
 * differentialColorMapper (use it with computeDelta left off: delta is
 * already a total).
 *
 * Both sides are normalised to the comparison side's total, so a frame that
 * kept its share of the CPU shows no change even if the sample counts moved.
 */
export interface DiffNode {
  name: string;
  /** comparison + normalised base: frames that vanished stay visible (and blue). */
  value: number;
  /** comparison - normalised base; equal to value for a new frame (orange), -value for a vanished one. */
  delta: number;
  /** Raw base samples. */
  base: number;
  /** Raw comparison samples. */
  comparison: number;
  /** Share of each side's total, 0..1. */
  baseShare: number;
  comparisonShare: number;
  file?: string;
  line?: number;
  merged?: number;
  children: DiffNode[];
}

export interface DiffSide {
  from: number;
  to: number;
  filters: LabelFilter[];
  total: number;
}

/** GET /api/v1/diff (both sides are of one type) */
export interface DiffResponse extends ValueUnitOf {
  service: string;
  granularity: Granularity;
  base: DiffSide;
  comparison: DiffSide;
  /** base is multiplied by this (comparison.total / base.total) before subtracting. */
  baseScale: number;
  nodes: number;
  fullNodes: number;
  maxNodes: number;
  root: DiffNode;
}

export interface TopEntry {
  name: string;
  file: string;
  /** First line of the function, or the line for granularity=line. */
  line: number;
  /** Samples with the function on top of the stack. */
  self: number;
  /** Samples with the function anywhere on the stack (recursion counted once). */
  total: number;
  selfShare: number;
  totalShare: number;
}

/** GET /api/v1/top */
export interface TopResponse extends RangeResult {
  granularity: Granularity;
  /** All samples in the range. */
  total: number;
  sort: TopSort;
  order: 'asc' | 'desc';
  /** Functions in all, before limit. */
  count: number;
  functions: TopEntry[];
}

export interface TimelinePoint {
  /** Bucket start, Unix ms. */
  t: number;
  value: number;
}

/** GET /api/v1/timeline */
export interface TimelineResponse extends RangeResult {
  /** Bucket width, ms. Buckets are aligned to the Unix epoch (the first starts at or before from) and include empty ones. */
  step: number;
  total: number;
  points: TimelinePoint[];
}

/**
 * GET /api/v1/pprof: the merged profile of the query as gzipped pprof
 * (Content-Type application/octet-stream). CPU and wall time: sample types
 * samples/count and the time in nanoseconds; other types: their own sample
 * type and unit. Samples keep their labels (pid, tid, thread_name, host...).
 * The JSON error shape applies when it fails.
 */
export type PprofResponse = Uint8Array;

/**
 * POST /api/v1/profiles?service=NAME&LABEL=VALUE...: body is pprof, gzipped
 * or not (Content-Encoding: gzip also works). Optional time= re-times the
 * profile (any time format above). Every other query parameter is a series
 * label.
 *
 * POST /ingest?name=APP{k=v,...}&from=&until=&format=pprof|folded&sampleRate=&spyName=
 * is Pyroscope's push API: body is pprof (raw, or multipart/form-data with a
 * "profile" part) or folded stacks ("a;b;c 12" per line, root first). A
 * ".cpu" or ".itimer" suffix on the application name is dropped.
 *
 * Both take an Idempotency-Key header (the Kiln agent sends one per queued
 * profile): a push whose key was stored already is acknowledged with
 * duplicate: true and not stored again.
 *
 * Both answer with what was stored.
 */
export interface IngestResponse {
  service: string;
  labels: Record<string, string>;
  /** Profile start the samples are filed under, Unix ms. */
  time: number;
  /** native: Kiln's own upload form (profile/native.ts, Content-Type application/vnd.kiln.stacks). */
  format: 'pprof' | 'folded' | 'native';
  /** The first profile type stored (a pprof of several sample types stores several: `types`). */
  type: string;
  /** Sum of the first type's values stored (sample counts for CPU and wall time). */
  samples: number;
  /** Rows written: distinct (stack, label set) pairs, over all types. */
  rows: number;
  /** Distinct stacks in the profile. */
  stacks: number;
  /** Stacks this process had not written today (others were skipped as already stored). */
  newStacks: number;
  /** Stacks deeper than the limit, cut at the root side and ending in "[truncated]". */
  truncatedStacks: number;
  /**
   * Present (true) when a profile with the same idempotency key was stored
   * already: this push was acknowledged and not stored again. The key is the
   * Idempotency-Key header, or for pushes without one a hash of service,
   * labels, time and body.
   */
  duplicate?: true;
  /** Every profile type stored: its values' sum, and its period (ns per sample count; 0 when its values are not counts). */
  types: { type: string; total: number; periodNs: number }[];
}

/** GET /healthz. `detail` (the store's error) only to callers holding a token. */
export interface HealthResponse {
  ok: boolean;
  mode: 'embedded' | 'server' | 'cluster';
  detail?: string;
}
