/**
 * The top-functions table beside the graph: self and total per function,
 * sortable and filterable; in diff mode both sides' shares and the change,
 * sorted by the change. Clicking a row highlights that function in the graph.
 */

import type { TopEntry, TopResponse } from '../../ingest/api.js';
import { diffColor, originColor, originOf } from './colors.js';
import { CPU_SAMPLES, count, percent, pp, value, type Measure } from './format.js';
import type { Focus, SortKey } from './state.js';

export interface DiffRow {
  name: string;
  file: string;
  line: number;
  baseSelfShare: number;
  baseTotalShare: number;
  compSelfShare: number;
  compTotalShare: number;
  dself: number;
  dtotal: number;
}

export type TableData =
  | { kind: 'single'; total: number; count: number; rows: TopEntry[] }
  | { kind: 'diff'; baseTotal: number; compTotal: number; rows: DiffRow[] };

/** Joins the two sides' top lists by function (name and file). */
export function diffRows(base: TopResponse, comp: TopResponse): DiffRow[] {
  const key = (e: TopEntry): string => `${e.name}\0${e.file}`;
  const rows = new Map<string, DiffRow>();
  const row = (e: TopEntry): DiffRow => {
    let r = rows.get(key(e));
    if (!r) {
      r = { name: e.name, file: e.file, line: e.line, baseSelfShare: 0, baseTotalShare: 0, compSelfShare: 0, compTotalShare: 0, dself: 0, dtotal: 0 };
      rows.set(key(e), r);
    }
    return r;
  };
  for (const e of base.functions) Object.assign(row(e), { baseSelfShare: e.selfShare, baseTotalShare: e.totalShare });
  for (const e of comp.functions) Object.assign(row(e), { compSelfShare: e.selfShare, compTotalShare: e.totalShare });
  for (const r of rows.values()) {
    r.dself = r.compSelfShare - r.baseSelfShare;
    r.dtotal = r.compTotalShare - r.baseTotalShare;
  }
  return [...rows.values()];
}

interface Column<R> {
  key: SortKey;
  label: string;
  /** Header tooltip, in the words of what the values measure. */
  title(m: Measure): string;
  value(r: R): number;
  text(r: R): string;
}

const SINGLE: Column<TopEntry>[] = [
  { key: 'self', label: 'Self', title: (m) => `${m.noun} with the function on top of the stack`, value: (r) => r.self, text: (r) => percent(r.selfShare) },
  { key: 'total', label: 'Total', title: (m) => `${m.noun} with the function anywhere on the stack`, value: (r) => r.total, text: (r) => percent(r.totalShare) },
];

const DIFF: Column<DiffRow>[] = [
  { key: 'base', label: 'Base', title: () => 'total share in the base', value: (r) => r.baseTotalShare, text: (r) => percent(r.baseTotalShare) },
  { key: 'comparison', label: 'Comp.', title: () => 'total share in the comparison', value: (r) => r.compTotalShare, text: (r) => percent(r.compTotalShare) },
  { key: 'dself', label: 'Δ self', title: () => 'change in self share, percentage points', value: (r) => r.dself, text: (r) => pp(r.dself) },
  { key: 'dtotal', label: 'Δ total', title: () => 'change in total share, percentage points', value: (r) => r.dtotal, text: (r) => pp(r.dtotal) },
];

/** Rows drawn at most: past a few hundred the table is for the filter box, not for scrolling. */
const MAX_ROWS = 300;

export interface TopEvents {
  onSort(key: SortKey, order: 'asc' | 'desc'): void;
  onFilter(text: string): void;
  onPick(f: Focus | undefined): void;
}

export function defaultSort(kind: 'single' | 'diff'): SortKey {
  return kind === 'single' ? 'self' : 'dself';
}

export class TopTable {
  private data: TableData | undefined;
  private sort: SortKey = 'self';
  private order: 'asc' | 'desc' = 'desc';
  private filter = '';
  private focus: Focus | undefined;
  private measure: Measure = CPU_SAMPLES;
  private readonly table: HTMLTableElement;
  private readonly note: HTMLElement;
  private readonly input: HTMLInputElement;

  constructor(
    el: HTMLElement,
    private readonly events: TopEvents,
  ) {
    this.input = el.querySelector<HTMLInputElement>('input[name="filter"]')!;
    this.table = el.querySelector('table')!;
    this.note = el.querySelector('.table-note')!;
    let timer = 0;
    this.input.addEventListener('input', () => {
      window.clearTimeout(timer);
      this.filter = this.input.value;
      this.draw();
      // The URL follows once typing pauses.
      timer = window.setTimeout(() => this.events.onFilter(this.input.value), 250);
    });
  }

  /** Shows `data` (values in `measure`) sorted, filtered and picked as `view` says. */
  set(data: TableData | undefined, view: { sort?: SortKey; order?: 'asc' | 'desc'; filter: string; focus?: Focus }, measure: Measure): void {
    this.data = data;
    this.measure = measure;
    const kind = data?.kind ?? 'single';
    const keys = ['name', ...(kind === 'single' ? SINGLE : DIFF).map((c) => c.key)];
    this.sort = view.sort && keys.includes(view.sort) ? view.sort : defaultSort(kind);
    this.order = view.order ?? (this.sort === 'name' ? 'asc' : 'desc');
    this.filter = view.filter;
    if (this.input.value !== view.filter) this.input.value = view.filter;
    this.focus = view.focus;
    this.draw();
  }

  private draw(): void {
    const data = this.data;
    this.table.replaceChildren();
    if (!data) {
      this.note.textContent = '';
      return;
    }
    if (data.kind === 'single') this.drawRows(data.rows, SINGLE, (r) => originColor(originOf(r.name, r.file), r.name), (r) => [r.self, r.total]);
    else {
      const max = data.rows.reduce((m, r) => Math.max(m, Math.abs(r.dtotal)), 0);
      this.drawRows(data.rows, DIFF, (r) => diffColor(r.dtotal, max));
    }
  }

  private drawRows<R extends { name: string; file: string; line: number }>(
    rows: R[],
    cols: Column<R>[],
    swatch: (r: R) => string,
    values?: (r: R) => number[],
  ): void {
    const needle = this.filter.toLowerCase();
    const shown = needle ? rows.filter((r) => r.name.toLowerCase().includes(needle) || r.file.toLowerCase().includes(needle)) : rows;
    const col = cols.find((c) => c.key === this.sort);
    const dir = this.order === 'asc' ? 1 : -1;
    const sorted = [...shown].sort((a, b) => {
      const d = col ? col.value(a) - col.value(b) : a.name.localeCompare(b.name);
      return d !== 0 ? d * dir : a.name.localeCompare(b.name);
    });

    const head = this.table.createTHead().insertRow();
    const th = (key: SortKey, label: string, title: string, numeric: boolean): void => {
      const cell = document.createElement('th');
      cell.scope = 'col';
      if (numeric) cell.className = 'num';
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.title = `${title}; click to sort`;
      b.dataset.sort = key;
      const active = key === this.sort;
      cell.setAttribute('aria-sort', active ? (this.order === 'asc' ? 'ascending' : 'descending') : 'none');
      if (active) b.append(this.order === 'asc' ? ' ▲' : ' ▼');
      b.addEventListener('click', () => {
        const order = active ? (this.order === 'asc' ? 'desc' : 'asc') : key === 'name' ? 'asc' : 'desc';
        this.events.onSort(key, order);
      });
      cell.append(b);
      head.append(cell);
    };
    th('name', 'Function', 'function name and file', false);
    for (const c of cols) th(c.key, c.label, c.title(this.measure), true);

    const body = this.table.createTBody();
    for (const r of sorted.slice(0, MAX_ROWS)) {
      const tr = body.insertRow();
      tr.tabIndex = 0;
      tr.dataset.name = r.name;
      const picked = this.focus !== undefined && this.focus.name === r.name && (this.focus.file === '' || this.focus.file === r.file);
      if (picked) tr.classList.add('picked');
      tr.setAttribute('aria-selected', String(picked));
      const nameCell = tr.insertCell();
      nameCell.className = 'fn';
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = swatch(r);
      const name = document.createElement('span');
      name.className = 'fn-name';
      name.textContent = r.name;
      const file = document.createElement('span');
      file.className = 'fn-file';
      file.textContent = r.file ? `${shortFile(r.file)}${r.line ? `:${r.line}` : ''}` : '';
      nameCell.title = r.file ? `${r.name}\n${r.file}${r.line ? `:${r.line}` : ''}` : r.name;
      nameCell.append(sw, name, file);
      const extra = values?.(r);
      cols.forEach((c, i) => {
        const td = tr.insertCell();
        td.className = 'num';
        td.textContent = c.text(r);
        const v = extra?.[i];
        if (v !== undefined) td.title = value(v, this.measure);
        if (c.key === 'dself' || c.key === 'dtotal') td.classList.add(c.value(r) > 0.0005 ? 'grew' : c.value(r) < -0.0005 ? 'shrank' : 'same');
      });
      const pick = (): void => this.events.onPick(picked ? undefined : { name: r.name, file: r.file });
      tr.addEventListener('click', pick);
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          pick();
        }
      });
    }
    const total = rows.length;
    this.note.textContent =
      sorted.length === 0
        ? needle
          ? `No function matches “${this.filter}”.`
          : 'No functions.'
        : `${sorted.length > MAX_ROWS ? `First ${MAX_ROWS} of ` : ''}${count(sorted.length)}${needle ? ` of ${count(total)}` : ''} function${total === 1 ? '' : 's'}. Click one to highlight it in the graph.`;
  }
}

/** The last three path parts: enough to tell files apart without a 120-character column. */
function shortFile(file: string): string {
  const parts = file.split(/[\\/]/);
  return parts.length > 3 ? `…/${parts.slice(-3).join('/')}` : file;
}
