/**
 * What the page says instead of a graph: no services yet, no samples in the
 * range, one side of a diff empty, the API unreachable or failing. Each
 * message is built as data (sentences, commands to copy, and actions that are
 * changes to the view state or a retry) by pure functions, then drawn by
 * drawMessage.
 */

import type { ServiceInfo } from '../../ingest/api.js';
import { ApiFailure } from './api.js';
import type { FlameData } from './flame.js';
import { basePatch } from './ranges.js';
import type { ViewState } from './state.js';
import { absolute, formatRange, formatTime, resolve } from './time.js';

export type Empty = 'no-services' | 'no-data' | 'no-base' | 'no-comparison';

/** Sentences, and commands to copy as { code }. */
export type Block = string | { code: string };

export interface Action {
  label: string;
  /** A change to the view (a history entry), or asking again with the service list reloaded. */
  run: Partial<ViewState> | 'retry';
}

export interface Message {
  /** data-kind on #message: no-services, no-data, no-base, no-comparison, unreachable, error. */
  kind: string;
  blocks: Block[];
  actions: Action[];
}

/** Why a graph has nothing to draw, if it has not. */
export function emptyReason(d: FlameData): Empty | undefined {
  if (d.kind === 'single') return d.resp.total === 0 ? 'no-data' : undefined;
  const { base, comparison } = d.resp;
  if (base.total === 0 && comparison.total === 0) return 'no-data';
  if (comparison.total === 0) return 'no-comparison';
  if (base.total === 0) return 'no-base';
  return undefined;
}

/** `origin`: where this Kiln is, for the commands to copy. */
export function noServicesMessage(origin: string): Message {
  return {
    kind: 'no-services',
    blocks: [
      'No profiles yet: Kiln has no service with data in the last 30 days. To send some, start the agent on the hosts that run your Python services:',
      { code: `kiln agent --server ${origin}` },
      'or push a profile you recorded with kiln record:',
      { code: `curl --data-binary @profile.pb.gz '${origin}/api/v1/profiles?service=NAME'` },
      'Then press Refresh.',
    ],
    actions: [{ label: 'Refresh', run: 'retry' }],
  };
}

/** No samples in the range: say where the service's data is, and offer ranges that have it. */
export function noDataMessage(s: ViewState, services: ServiceInfo[] | undefined, now: number): Message {
  const filtered = s.labels.length > 0 || (s.mode === 'diff' && (s.baseLabels.length > 0 || s.comparisonLabels.length > 0));
  const info = services?.find((x) => x.name === s.service);
  const actions: Action[] = [];
  let text = `No samples for ${s.service} between ${formatRange(resolve(s, now))}${filtered ? ' with these label filters' : ''}. `;
  if (!info) text += 'This service has no profiles in the last 30 days; pick another service above.';
  else {
    text += `Pick a wider range (24 h or 7 d)${filtered ? ' or remove the label filters' : ''}; its latest profile is from ${formatTime(info.lastSeen)}.`;
    actions.push({
      label: 'Show the hour around the latest profile',
      run: { from: absolute(info.lastSeen - 45 * 60_000), to: absolute(info.lastSeen + 15 * 60_000), zoom: [] },
    });
    if (s.from !== 'now-7d' || s.to !== 'now') actions.push({ label: 'Last 7 days', run: { from: 'now-7d', to: 'now' } });
  }
  if (filtered) actions.push({ label: 'Remove label filters', run: { labels: [], baseLabels: [], comparisonLabels: [] } });
  return { kind: 'no-data', blocks: [text], actions };
}

/** One side of a diff is empty: say which, and offer a base that has data. */
export function emptySideMessage(kind: 'no-base' | 'no-comparison', d: FlameData | undefined, s: ViewState, now: number): Message {
  const diff = d?.kind === 'diff' ? d.resp : undefined;
  const side = kind === 'no-base' ? 'base' : 'comparison';
  const range = diff ? formatRange(kind === 'no-base' ? diff.base : diff.comparison) : '';
  return {
    kind,
    blocks: [
      `The ${side} (${range}) has no samples, so there is nothing to compare. ` +
        (kind === 'no-base' ? 'Choose another base range or label set above.' : 'Choose a comparison range that has data, or change its labels.'),
    ],
    actions: kind === 'no-base' ? [{ label: 'Use the previous period as base', run: basePatch('prev', s, now) }] : [],
  };
}

/** A failed load: unreachable, refused, or broken; `apiBase` is the API's URL as the page sees it. */
export function failureMessage(e: unknown, apiBase: string): Message {
  const retry: Action[] = [{ label: 'Retry', run: 'retry' }];
  if (e instanceof ApiFailure && e.kind === 'unreachable') {
    return {
      kind: 'unreachable',
      blocks: [`Cannot reach the Kiln API at ${apiBase} (${e.message}). Check that kiln serve is running and that this browser can reach it, then press Retry.`],
      actions: retry,
    };
  }
  if (e instanceof ApiFailure) {
    const hint =
      e.status === 400
        ? 'Check the time range and the label filters.'
        : e.status === 401
          ? 'This Kiln needs a read token: open the UI through a proxy that adds it, or start kiln serve without --read-token.'
          : e.status === 503
            ? 'The store is not answering; kiln serve reconnects on the next request, so press Retry in a moment.'
            : 'This is a server error: the kiln serve log has the details. Press Retry to ask again.';
    return {
      kind: 'error',
      blocks: [`The query failed: ${e.status ? `${e.status} ` : ''}${e.message}${e.detail ? ` (${e.detail})` : ''}. ${hint}`],
      actions: retry,
    };
  }
  return {
    kind: 'error',
    blocks: [`Something went wrong drawing this view: ${e instanceof Error ? e.message : String(e)}. Press Retry, or reload the page.`],
    actions: retry,
  };
}

/** Was the load cancelled (a newer one started), rather than failed? */
export function isAbort(e: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (e instanceof DOMException && e.name === 'AbortError');
}

/** Draws `m` into the message box; buttons call `act` with their action. */
export function drawMessage(box: HTMLElement, m: Message, act: (a: Action) => void): void {
  box.replaceChildren();
  box.dataset.kind = m.kind;
  for (const part of m.blocks) {
    const b = typeof part === 'string' ? document.createElement('p') : document.createElement('code');
    b.textContent = typeof part === 'string' ? part : part.code;
    box.append(b);
  }
  if (m.actions.length) {
    const row = document.createElement('div');
    row.className = 'actions';
    for (const a of m.actions) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = a.label;
      b.addEventListener('click', () => act(a));
      row.append(b);
    }
    box.append(row);
  }
  box.hidden = false;
}

export function hideMessage(box: HTMLElement): void {
  box.hidden = true;
  delete box.dataset.kind;
}
