/**
 * What one request may ask of the service, and the error type every handler
 * throws. The defaults follow Grafana Pyroscope's (pkg/validation/limits.go):
 * a fleet's agents already stay inside them, and they keep one bad or hostile
 * client from taking the process or the store down.
 */

export interface Limits {
  /** Request body as received (after any Content-Encoding), bytes. */
  maxBodyBytes: number;
  /** A profile after inflating gzip, bytes. */
  maxProfileBytes: number;
  /** pprof Sample messages (folded lines) in one profile. */
  maxSamples: number;
  /** Frames per stack; deeper stacks keep their root side and end in "[truncated]". */
  maxStackDepth: number;
  /**
   * Frames in all the stacks of one profile, after the depth cut. A few bytes
   * of pprof can name a location with thousands of inline frames on every
   * sample; this keeps the work a profile can ask for linear in its size.
   */
  maxProfileFrames: number;
  /** Labels from the query string (series labels, e.g. host, region). */
  maxSeriesLabels: number;
  /** Labels on one pprof sample (pid, tid, thread_name, ...). */
  maxSampleLabels: number;
  maxLabelNameLength: number;
  maxLabelValueLength: number;
  /** Function and file names are cut to this many characters. */
  maxSymbolLength: number;
  /** Label filters in one query. */
  maxFilters: number;
  /** Flame-graph nodes when a query does not say. */
  defaultMaxNodes: number;
  /** The most a query may ask for. */
  maxMaxNodes: number;
  /** Longest query range, ms. */
  maxQueryRangeMs: number;
  /** Label values listed per name by /api/v1/labels. */
  maxLabelValues: number;
  /** Rows waiting for the next insert before ingest answers 503. */
  maxPendingRows: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 4 * 1024 * 1024 + 64 * 1024,
  maxProfileBytes: 4 * 1024 * 1024,
  maxSamples: 16_000,
  maxStackDepth: 1_000,
  maxProfileFrames: 4_000_000,
  maxSeriesLabels: 30,
  maxSampleLabels: 100,
  maxLabelNameLength: 1_024,
  maxLabelValueLength: 2_048,
  maxSymbolLength: 65_535,
  maxFilters: 30,
  defaultMaxNodes: 8_192,
  maxMaxNodes: 1 << 20,
  maxQueryRangeMs: 32 * 86_400_000,
  maxLabelValues: 1_000,
  maxPendingRows: 2_000_000,
};

/** An error that becomes an HTTP status and a JSON {error, detail} body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly detail?: string,
  ) {
    super(detail ? `${error}: ${detail}` : error);
    this.name = 'HttpError';
  }
}

/** Label names: Prometheus' alphabet plus dots, as Pyroscope allows. */
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;

export function checkLabel(name: string, value: string, limits: Limits, where: string): void {
  if (name.length > limits.maxLabelNameLength) {
    throw new HttpError(400, 'label name too long', `${where}: ${name.length} characters, limit ${limits.maxLabelNameLength}`);
  }
  if (!LABEL_NAME.test(name)) {
    throw new HttpError(400, 'bad label name', `${where}: ${JSON.stringify(name.slice(0, 100))} must match ${LABEL_NAME.source}`);
  }
  if (value.length > limits.maxLabelValueLength) {
    throw new HttpError(
      400,
      'label value too long',
      `${where}: label ${name} has ${value.length} characters, limit ${limits.maxLabelValueLength}`,
    );
  }
}

/** Service names end up in URLs, file names and SQL parameters; keep them printable and short. */
export function checkService(service: string | undefined, what = 'service'): string {
  if (service === undefined || service.trim() === '') throw new HttpError(400, `missing ${what}`, `the ${what} parameter is required`);
  if (service.length > 256) throw new HttpError(400, `bad ${what}`, `${service.length} characters, limit 256`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(service)) throw new HttpError(400, `bad ${what}`, 'control characters are not allowed');
  return service;
}
