/**
 * The lines around the graph: the summary (total, service, range, filters,
 * pruning), the colour legend, the breadcrumb of the zoomed frame, and the
 * search status (what the search or the picked function highlights, and its
 * share). The texts are built by pure functions; the draw functions put them
 * on the page.
 */

import { DIFF_NEUTRAL, ORIGINS, diffColor, legendColor } from './colors.js';
import type { FlameData, FlameView, SearchSummary } from './flame.js';
import { amountOf, count, percent, value, type Measure } from './format.js';
import type { Highlight } from './search.js';
import { formatRange } from './time.js';

export interface SummaryPart {
  /** total (the headline figure) or muted. */
  cls: 'total' | 'muted';
  text: string;
}

export function summaryParts(g: FlameData, service: string, m: Measure): SummaryPart[] {
  const out: SummaryPart[] = [];
  if (g.kind === 'single') {
    const r = g.resp;
    out.push({ cls: 'total', text: value(r.total, m) });
    out.push({ cls: 'muted', text: `${service}, ${formatRange(r)}` });
    if (r.filters.length) out.push({ cls: 'muted', text: r.filters.map((f) => `${f.name}${f.op === '=' ? '=' : '≠'}${f.values.join('|')}`).join(', ') });
    if (r.fullNodes > r.nodes) out.push({ cls: 'muted', text: `${count(r.nodes)} of ${count(r.fullNodes)} frames (the smallest merged into [other])` });
  } else {
    const r = g.resp;
    out.push({ cls: 'total', text: `base ${amountOf(r.base.total, m)} → comparison ${value(r.comparison.total, m)}` });
    out.push({ cls: 'muted', text: 'widths: comparison plus the base scaled to it; colour: change in share' });
    if (r.fullNodes > r.nodes) out.push({ cls: 'muted', text: `${count(r.nodes)} of ${count(r.fullNodes)} frames` });
  }
  return out;
}

/** The search status sentence for what `label` highlighted. */
export function matchText(label: string, s: SearchSummary, m: Measure): string {
  if (s.frames === 0) return `${label}: no frame matches.`;
  const frames = `${count(s.frames)} frame${s.frames === 1 ? '' : 's'}`;
  if (s.baseShare !== undefined) return `${label}: ${frames}, base ${percent(s.baseShare)} → comparison ${percent(s.share)} of ${m.noun}`;
  return `${label}: ${frames}, ${percent(s.share)} of ${m.noun} (${amountOf(s.value, m)})`;
}

export function drawSummary(el: HTMLElement, g: FlameData, service: string, m: Measure): void {
  // The totals as numbers too, for scripts and tests: the text is for people.
  if (g.kind === 'single') {
    el.dataset.total = String(g.resp.total);
    delete el.dataset.baseTotal;
  } else {
    el.dataset.total = String(g.resp.comparison.total);
    el.dataset.baseTotal = String(g.resp.base.total);
  }
  el.replaceChildren(
    ...summaryParts(g, service, m).map((p) => {
      const s = document.createElement('span');
      s.className = p.cls;
      s.textContent = p.text;
      return s;
    }),
  );
}

export function drawLegend(el: HTMLElement, kind: 'single' | 'diff', m: Measure): void {
  el.replaceChildren();
  const item = (color: string, label: string, title: string): void => {
    const s = document.createElement('span');
    s.className = 'legend-item';
    s.title = title;
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = color;
    s.append(sw, label);
    el.append(s);
  };
  if (kind === 'single') for (const o of ORIGINS) item(legendColor(o.origin), o.label, o.title);
  else {
    item(diffColor(1, 1), 'grew', `share of ${m.noun} grew (comparison minus base)`);
    item(DIFF_NEUTRAL, 'unchanged', 'changed by less than 0.1 percentage point');
    item(diffColor(-1, 1), 'shrank', `share of ${m.noun} shrank`);
  }
}

/** "all › a › b" with the zoomed frame last; `zoom` is called with the path of a crumb clicked. */
export function drawBreadcrumb(el: HTMLElement, path: string[], zoom: (path: string[]) => void): void {
  el.replaceChildren();
  const crumb = (label: string, target: string[], current: boolean): void => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'crumb';
    b.textContent = label;
    b.title = label;
    if (current) b.setAttribute('aria-current', 'true');
    else b.addEventListener('click', () => zoom(target));
    el.append(b);
  };
  crumb('all', [], path.length === 0);
  path.forEach((name, i) => {
    const sep = document.createElement('span');
    sep.className = 'sep';
    sep.textContent = '›';
    el.append(sep);
    crumb(name, path.slice(0, i + 1), i === path.length - 1);
  });
  if (path.length) {
    const reset = document.createElement('button');
    reset.type = 'button';
    reset.className = 'reset';
    reset.id = 'reset-zoom';
    reset.textContent = 'Reset zoom';
    reset.addEventListener('click', () => zoom([]));
    el.append(reset);
  } else {
    const hint = document.createElement('span');
    hint.className = 'hint';
    hint.textContent = 'click a frame to zoom';
    el.append(hint);
  }
}

/** Highlights `h` in the graph and says what matched; `clear` is the status's "clear" link. */
export function drawSearchStatus(
  el: { searchStatus: HTMLElement; search: HTMLInputElement },
  flame: FlameView,
  h: Highlight,
  m: Measure,
  clear: () => void,
): void {
  const status = el.searchStatus;
  status.replaceChildren();
  status.removeAttribute('role');
  el.search.removeAttribute('aria-invalid');
  if (h.error) {
    el.search.setAttribute('aria-invalid', 'true');
    status.setAttribute('role', 'alert');
    status.className = 'search-status error';
    status.textContent = `Search: ${h.error}. Fix the pattern, or untick “regex” to search for the text as typed.`;
    flame.highlight(undefined);
    return;
  }
  status.className = 'search-status';
  const s = flame.highlight(h.matcher);
  if (!s) return;
  const span = document.createElement('span');
  span.className = 'match';
  span.dataset.share = String(s.share);
  span.textContent = matchText(h.label, s, m);
  const link = document.createElement('button');
  link.type = 'button';
  link.className = 'link';
  link.textContent = 'clear';
  link.addEventListener('click', clear);
  status.append(span, link);
}
