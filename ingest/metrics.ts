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
    metric('kiln_ingest_profiles_total', 'counter', 'Pushes acknowledged, by outcome (stored, or a duplicate of a stored key)', [
      ['{outcome="stored"}', s.profilesStored],
      ['{outcome="duplicate"}', s.duplicates],
    ]);
    metric(
      'kiln_requests_refused_total',
      'counter',
      'Requests answered with an error, by endpoint kind, status and error',
      [...this.refusals].map(([k, v]) => {
        const [endpoint, status, error] = k.split('\0');
        return [`{endpoint="${endpoint}",status="${status}",error="${esc(error!)}"}`, v];
      }),
    );
    metric('kiln_ingest_store_rejected_total', 'counter', 'Profiles the store refused (answered 500, stored not at all)', [['', s.rejectedByStore]]);
    metric('kiln_ingest_backlog_refusals_total', 'counter', 'Pushes answered 503 because too many rows waited for the store', [['', s.backlogRefusals]]);
    metric('kiln_ingest_batches_total', 'counter', 'Batches written', [['', s.batches]]);
    metric('kiln_ingest_batch_rows_total', 'counter', 'Rows in the batches written', [['', s.batchRows]]);
    metric('kiln_ingest_batch_seconds_total', 'counter', 'Time spent writing batches', [['', s.insertMs / 1000]]);
    metric('kiln_ingest_replays_total', 'counter', 'Batches completed again from the ingest log after a failure or a restart', [['', s.replays]]);
    metric('kiln_ingest_pending_rows', 'gauge', 'Rows waiting for, or being written to, the store', [['', this.committer.pendingRows]]);
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
