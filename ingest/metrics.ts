/**
 * `kiln serve`'s /metrics (Prometheus text): what ingest stored, refused and
 * retried, how full its queues are, and the CPU of the event loop and of
 * each ingest worker, so an operator sees every loss and where the time goes.
 */

import type { Committer } from './commit.js';
import type { HttpError } from './limits.js';
import { threadCpuMs } from './worker.js';
import type { WorkerPool } from './workers.js';

export class IngestMetrics {
  private readonly refusals = new Map<string, number>();

  constructor(
    private readonly committer: Committer,
    private readonly pool: WorkerPool,
  ) {}

  /** Counts an error answer, by endpoint kind and error. */
  refused(e: HttpError, path: string): void {
    const endpoint = path === '/ingest' || path === '/api/v1/profiles' ? 'ingest' : 'query';
    const key = `${endpoint}\0${e.status}\0${e.error}`;
    this.refusals.set(key, (this.refusals.get(key) ?? 0) + 1);
  }

  async render(): Promise<string> {
    const s = this.committer.stats;
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, values: [string, number][]): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of values) lines.push(`${name}${labels} ${v}`);
    };
    metric('kiln_ingest_profiles_total', 'counter', 'Pushes acknowledged, by outcome (logged to be stored, or a duplicate of a stored or pending key)', [
      ['{outcome="acknowledged"}', s.profilesAcknowledged],
      ['{outcome="duplicate"}', s.duplicates],
    ]);
    metric('kiln_ingest_profiles_stored_total', 'counter', 'Acknowledged profiles stored in the tables', [['', s.profilesStored]]);
    metric(
      'kiln_requests_refused_total',
      'counter',
      'Requests answered with an error, by endpoint kind, status and error',
      [...this.refusals].map(([k, v]) => {
        const [endpoint, status, error] = k.split('\0');
        return [`{endpoint="${endpoint}",status="${status}",error="${esc(error!)}"}`, v];
      }),
    );
    metric(
      'kiln_ingest_store_rejected_total',
      'counter',
      "Acknowledged profiles the store refused (not stored; their rows are kept in the ingest log's rejected/ directory)",
      [['', s.rejectedByStore]],
    );
    metric('kiln_ingest_malformed_total', 'counter', 'Pushes whose rows did not check out (answered 500, nothing logged)', [['', s.malformed]]);
    metric('kiln_ingest_backlog_refusals_total', 'counter', 'Pushes answered 503 (with Retry-After) because the log held too many rows not yet stored', [['', s.backlogRefusals]]);
    metric('kiln_ingest_unknown_stacks_total', 'counter', "Native pushes refused (409) for counting a stack neither defined in them nor stored: the sender sends its definitions again", [['', s.unknownStacks]]);
    metric('kiln_ingest_stack_lookups_total', 'counter', 'Lookups of stacks that native pushes counted without defining them and no worker knew', [['', s.stackLookups]]);
    metric('kiln_ingest_key_lookups_total', 'counter', 'Rounds of idempotency-key lookups (each covers the pushes that arrived meanwhile)', [['', s.lookups]]);
    metric('kiln_ingest_key_lookup_seconds_total', 'counter', 'Time spent in idempotency-key (and stack) lookups', [['', s.lookupMs / 1000]]);
    const log = this.committer.log;
    metric('kiln_ingest_log_groups_total', 'counter', 'Groups written to the ingest log (one write and one fdatasync each)', [['', log.stats.groups]]);
    metric('kiln_ingest_log_write_seconds_total', 'counter', 'Time spent writing groups to the ingest log (write and fdatasync)', [['', log.stats.writeMs / 1000]]);
    metric('kiln_ingest_log_records_total', 'counter', 'Pushes written to the ingest log', [['', log.stats.records]]);
    metric('kiln_ingest_log_bytes', 'gauge', 'Bytes in the ingest log not yet stored', [['', log.bytesOnDisk]]);
    metric('kiln_ingest_batches_total', 'counter', 'Batches stored', [['', s.batches]]);
    metric('kiln_ingest_batch_rows_total', 'counter', 'Rows in the batches stored', [['', s.batchRows]]);
    metric('kiln_ingest_batch_seconds_total', 'counter', 'Time spent storing batches', [['', s.insertMs / 1000]]);
    metric('kiln_ingest_replays_total', 'counter', 'Batches stored again after the store failed, or left in the log by an earlier run', [['', s.replays]]);
    metric('kiln_ingest_pending_rows', 'gauge', 'Rows being looked up, or acknowledged and not yet stored', [['', this.committer.pendingRows]]);
    metric('kiln_query_ingest_waits_total', 'counter', 'Queries that waited for acknowledged pushes to be stored, by outcome', [
      ['{outcome="caught_up"}', s.queryWaits - s.queryWaitTimeouts],
      ['{outcome="timed_out"}', s.queryWaitTimeouts],
    ]);
    metric('kiln_ingest_worker_queue', 'gauge', 'Pushes being decoded or waiting for a worker', [['', this.pool.queued]]);
    const cpu = await this.pool.cpuMs();
    metric(
      'kiln_thread_cpu_seconds_total',
      'counter',
      'CPU time of the event loop and of each ingest worker thread',
      [['{thread="main"}', threadCpuMs() / 1000], ...cpu.map((ms, i): [string, number] => [`{thread="ingest-${i}"}`, ms / 1000])],
    );
    return lines.join('\n') + '\n';
  }
}

function esc(s: string): string {
  return s.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}
