/**
 * The whole view lives in the query string, so a copied link reproduces it:
 * what is queried (service, profile type, range, labels, diff sides, granularity) and how it
 * is looked at (search, zoomed frame, highlighted function, table sort and
 * filter). Defaults are left out to keep links short.
 */

import type { Granularity } from '../../ingest/api.js';
import { DEFAULT_RANGE } from './time.js';
import { CPU_TYPE_ID, parseProfileType } from '../../profile/profile-type.js';

export type Mode = 'single' | 'diff';

/** Table sort keys: the first three exist in both modes, the last three only in diff mode. */
export type SortKey = 'name' | 'self' | 'total' | 'base' | 'comparison' | 'dself' | 'dtotal';
export const SORT_KEYS: readonly SortKey[] = ['name', 'self', 'total', 'base', 'comparison', 'dself', 'dtotal'];

export interface Focus {
  name: string;
  file: string;
}

export interface ViewState {
  service: string;
  /** Profile type ID (profile/profile-type.ts); CPU by default. */
  type: string;
  from: string;
  to: string;
  /** NAME=VALUE or NAME!=VALUE, as the API takes them. */
  labels: string[];
  granularity: Granularity;
  mode: Mode;
  /** Diff sides: absent times mean "the main range"; labels add to the shared ones. */
  baseFrom?: string;
  baseTo?: string;
  baseLabels: string[];
  comparisonFrom?: string;
  comparisonTo?: string;
  comparisonLabels: string[];
  search: string;
  regex: boolean;
  /** Names of the zoomed frame's path, root's children first. */
  zoom: string[];
  /** A function picked in the table, highlighted in the graph. */
  focus?: Focus;
  sort?: SortKey;
  order?: 'asc' | 'desc';
  filter: string;
}

export function defaultState(): ViewState {
  return {
    service: '',
    type: CPU_TYPE_ID,
    from: DEFAULT_RANGE.from,
    to: DEFAULT_RANGE.to,
    labels: [],
    granularity: 'function',
    mode: 'single',
    baseLabels: [],
    comparisonLabels: [],
    search: '',
    regex: false,
    zoom: [],
    filter: '',
  };
}

/**
 * Frame paths joined with ";" (as folded stacks are), with "\" escaping ";"
 * and itself inside names: Python qualnames never hold ";", but a synthetic
 * or foreign frame might.
 */
export function encodePath(names: string[]): string {
  return names.map((n) => n.replace(/[\\;]/g, (c) => `\\${c}`)).join(';');
}

export function decodePath(s: string): string[] {
  if (s === '') return [];
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) cur += s[++i]!;
    else if (c === ';') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

const LABEL = /^[^=!]+!?=.*$/s;

export function parseState(search: string): ViewState {
  const q = new URLSearchParams(search);
  const s = defaultState();
  const str = (k: string): string | undefined => {
    const v = q.get(k);
    return v === null ? undefined : v;
  };
  s.service = str('service') ?? '';
  const type = str('type');
  if (type && parseProfileType(type)) s.type = type;
  s.from = str('from') || s.from;
  s.to = str('to') || s.to;
  s.labels = q.getAll('label').filter((l) => LABEL.test(l));
  s.granularity = str('granularity') === 'line' ? 'line' : 'function';
  s.mode = str('mode') === 'diff' ? 'diff' : 'single';
  s.baseFrom = str('baseFrom') || undefined;
  s.baseTo = str('baseTo') || undefined;
  s.baseLabels = q.getAll('baseLabel').filter((l) => LABEL.test(l));
  s.comparisonFrom = str('comparisonFrom') || undefined;
  s.comparisonTo = str('comparisonTo') || undefined;
  s.comparisonLabels = q.getAll('comparisonLabel').filter((l) => LABEL.test(l));
  s.search = str('search') ?? '';
  s.regex = str('regex') === '1';
  s.zoom = decodePath(str('zoom') ?? '');
  const fn = str('fn');
  if (fn) s.focus = { name: fn, file: str('fnFile') ?? '' };
  const sort = str('sort');
  if (sort && (SORT_KEYS as readonly string[]).includes(sort)) s.sort = sort as SortKey;
  const order = str('order');
  if (order === 'asc' || order === 'desc') s.order = order;
  s.filter = str('filter') ?? '';
  return s;
}

export function serializeState(s: ViewState): string {
  const q = new URLSearchParams();
  const d = defaultState();
  if (s.service) q.set('service', s.service);
  if (s.type !== d.type) q.set('type', s.type);
  if (s.from !== d.from || s.to !== d.to) {
    q.set('from', s.from);
    q.set('to', s.to);
  }
  for (const l of s.labels) q.append('label', l);
  if (s.granularity !== 'function') q.set('granularity', s.granularity);
  if (s.mode === 'diff') {
    q.set('mode', 'diff');
    if (s.baseFrom) q.set('baseFrom', s.baseFrom);
    if (s.baseTo) q.set('baseTo', s.baseTo);
    for (const l of s.baseLabels) q.append('baseLabel', l);
    if (s.comparisonFrom) q.set('comparisonFrom', s.comparisonFrom);
    if (s.comparisonTo) q.set('comparisonTo', s.comparisonTo);
    for (const l of s.comparisonLabels) q.append('comparisonLabel', l);
  }
  if (s.search) q.set('search', s.search);
  if (s.regex) q.set('regex', '1');
  if (s.zoom.length) q.set('zoom', encodePath(s.zoom));
  if (s.focus) {
    q.set('fn', s.focus.name);
    if (s.focus.file) q.set('fnFile', s.focus.file);
  }
  if (s.sort) q.set('sort', s.sort);
  if (s.order) q.set('order', s.order);
  if (s.filter) q.set('filter', s.filter);
  const text = q.toString();
  return text ? `?${text}` : '';
}

/**
 * What the data depends on: when only the view changes (search, zoom, table
 * sort), the page redraws without asking the server again.
 */
export function dataKey(s: ViewState): string {
  return JSON.stringify([
    s.service,
    s.type,
    s.from,
    s.to,
    s.labels,
    s.granularity,
    s.mode,
    s.mode === 'diff' ? [s.baseFrom, s.baseTo, s.baseLabels, s.comparisonFrom, s.comparisonTo, s.comparisonLabels] : null,
  ]);
}

export function labelText(l: string): { name: string; op: '=' | '!='; value: string } {
  const m = /^([^=!]+)(!=|=)(.*)$/s.exec(l);
  if (!m) return { name: l, op: '=', value: '' };
  return { name: m[1]!, op: m[2] as '=' | '!=', value: m[3]! };
}
