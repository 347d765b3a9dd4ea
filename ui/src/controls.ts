/**
 * The controls above and beside the graph: service picker, time presets and
 * the custom range, label filters, modes, the diff base, search, granularity,
 * downloads and Copy link. Each turns a user's action into a change of the
 * view state (host.update); draw() shows the view state on them.
 */

import { api } from './api.js';
import type { Elements } from './dom.js';
import { LabelEditor } from './labels.js';
import type { PageState } from './page.js';
import { baseSide, comparisonSide, pprofQueries } from './query.js';
import { baseChoice, basePatch, modePatch, pinned, presetOf, presetPatch, servicePatch, type BaseChoice } from './ranges.js';
import { serializeState, type ViewState } from './state.js';
import { serviceTypes, typeChoices, typeFor } from './types.js';
import { absolute, formatRange, fromLocalInput, resolve, span, toLocalInput } from './time.js';

export interface ControlsHost {
  readonly page: PageState;
  /** Applies a change of the view: a history entry (push) or, while typing, in place (replace). */
  update(patch: Partial<ViewState>, history: 'push' | 'replace'): void;
}

/** Typing in the search box is applied when it pauses this long. */
const SEARCH_PAUSE_MS = 150;

function setRangeInputs(form: HTMLFormElement, r: { from: number; to: number }): void {
  const from = form.elements.namedItem('from') as HTMLInputElement;
  const to = form.elements.namedItem('to') as HTMLInputElement;
  if (document.activeElement !== from) from.value = toLocalInput(r.from);
  if (document.activeElement !== to) to.value = toLocalInput(r.to);
}

function readRangeInputs(form: HTMLFormElement): { from: number; to: number } | undefined {
  const from = fromLocalInput((form.elements.namedItem('from') as HTMLInputElement).value);
  const to = fromLocalInput((form.elements.namedItem('to') as HTMLInputElement).value);
  if (from === undefined || to === undefined || !(from < to)) return undefined;
  return { from, to };
}

export class Controls {
  /** Search-box typing not applied yet. */
  private searchTimer = 0;
  private readonly labels: LabelEditor;
  private readonly baseLabels: LabelEditor;
  private readonly comparisonLabels: LabelEditor;

  constructor(
    private readonly el: Elements,
    private readonly host: ControlsHost,
  ) {
    const update = (patch: Partial<ViewState>, history: 'push' | 'replace'): void => host.update(patch, history);
    const view = (): ViewState => host.page.view;
    this.labels = new LabelEditor(el.labels, 'filter', (l) => update({ labels: l }, 'push'));
    this.baseLabels = new LabelEditor(el.baseLabels, 'base', (l) => update({ baseLabels: l }, 'push'));
    this.comparisonLabels = new LabelEditor(el.comparisonLabels, 'comparison', (l) => update({ comparisonLabels: l }, 'push'));

    el.service.addEventListener('change', () => {
      const service = el.service.value;
      update({ ...servicePatch(service), type: typeFor(serviceTypes(host.page.services, service), view().type) }, 'push');
    });
    el.type.addEventListener('change', () => update({ type: el.type.value, zoom: [], focus: undefined }, 'push'));

    el.presets.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-preset]');
      if (!b) return;
      const preset = b.dataset.preset!;
      if (preset === 'custom') {
        host.page.customOpen = !host.page.customOpen;
        setRangeInputs(el.customRange, resolve(view(), Date.now()));
        this.draw();
        return;
      }
      host.page.customOpen = false;
      update(presetPatch(view(), preset, Date.now()), 'push');
    });
    el.customRange.addEventListener('submit', (e) => {
      e.preventDefault();
      const r = readRangeInputs(el.customRange);
      if (!r) return;
      host.page.customOpen = false;
      update({ from: absolute(r.from), to: absolute(r.to) }, 'push');
    });
    el.customRange.querySelector('[data-action="cancel"]')!.addEventListener('click', () => {
      host.page.customOpen = false;
      this.draw();
    });

    el.modes.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-mode]');
      if (!b) return;
      const mode = b.dataset.mode === 'diff' ? 'diff' : 'single';
      if (mode !== view().mode) update(modePatch(view(), mode, Date.now()), 'push');
    });

    el.baseRange.addEventListener('change', () => {
      const choice = el.baseRange.value as BaseChoice;
      if (choice === 'custom') el.baseCustom.hidden = false;
      else update(basePatch(choice, view(), Date.now()), 'push');
    });
    el.baseCustom.addEventListener('submit', (e) => {
      e.preventDefault();
      const r = readRangeInputs(el.baseCustom);
      if (r) update({ baseFrom: absolute(r.from), baseTo: absolute(r.to) }, 'push');
    });

    el.search.addEventListener('input', () => {
      window.clearTimeout(this.searchTimer);
      // Applied when typing pauses, and only if nothing else (a table pick, Back) set the search meanwhile.
      this.searchTimer = window.setTimeout(() => {
        if (el.search.value !== view().search) update({ search: el.search.value, focus: undefined }, 'replace');
      }, SEARCH_PAUSE_MS);
    });
    el.search.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        window.clearTimeout(this.searchTimer);
        update({ search: el.search.value, focus: undefined }, 'replace');
      } else if (e.key === 'Escape') {
        el.search.value = '';
        update({ search: '', focus: undefined }, 'replace');
      }
    });
    document.addEventListener('keydown', (e) => {
      const t = e.target as HTMLElement;
      if (e.key === '/' && !['INPUT', 'SELECT', 'TEXTAREA'].includes(t.tagName)) {
        e.preventDefault();
        el.search.focus();
      }
    });
    el.regex.addEventListener('change', () => update({ regex: el.regex.checked }, 'replace'));
    el.granularity.addEventListener('change', () => update({ granularity: el.granularity.value === 'line' ? 'line' : 'function', zoom: [] }, 'push'));

    el.copyLink.addEventListener('click', () => {
      const url = new URL(`${location.pathname}${serializeState(pinned(view(), Date.now()))}`, location.href).toString();
      el.link.value = url;
      el.linkBox.hidden = false;
      el.link.select();
      el.linkStatus.textContent = '';
      navigator.clipboard?.writeText(url).then(
        () => (el.linkStatus.textContent = 'copied to the clipboard'),
        () => (el.linkStatus.textContent = 'select and copy it (the browser did not allow clipboard access)'),
      );
    });
    el.linkClose.addEventListener('click', () => (el.linkBox.hidden = true));
    el.download.addEventListener('click', (e) => {
      if (el.download.getAttribute('aria-disabled') === 'true') e.preventDefault();
    });
  }

  /** A function picked in the table wins over search text still waiting to be applied. */
  dropPendingSearch(): void {
    window.clearTimeout(this.searchTimer);
    this.el.search.value = '';
  }

  /** Every control from the view state. */
  draw(): void {
    const { el } = this;
    const s = this.host.page.view;
    this.drawServices();
    const preset = presetOf(s);
    for (const b of el.presets.querySelectorAll<HTMLButtonElement>('button')) {
      const on = b.dataset.preset === preset || (b.dataset.preset === 'custom' && this.host.page.customOpen);
      b.setAttribute('aria-pressed', String(on));
    }
    const now = Date.now();
    const r = resolve(s, now);
    el.rangeText.textContent = `${formatRange(r)} (${span(r.to - r.from)})`;
    el.rangeText.title = `from=${s.from} to=${s.to}`;
    for (const b of el.modes.querySelectorAll<HTMLButtonElement>('button')) b.setAttribute('aria-pressed', String(b.dataset.mode === s.mode));
    el.customRange.hidden = !this.host.page.customOpen;

    // Downloads: the merged profile of what is on screen (the comparison side in a diff).
    if (s.service) {
      const q = pprofQueries(s);
      el.download.href = api.pprofUrl(q.shown);
      el.download.textContent = q.base ? 'Comparison pprof' : 'Download pprof';
      el.download.removeAttribute('aria-disabled');
      if (q.base) el.downloadBase.href = api.pprofUrl(q.base);
    } else el.download.setAttribute('aria-disabled', 'true');
    el.downloadBase.hidden = s.mode !== 'diff';

    el.diffPanel.hidden = s.mode !== 'diff';
    if (s.mode === 'diff') {
      const choice = baseChoice(s, now);
      el.baseRange.value = choice;
      const b = resolve(baseSide(s), now);
      el.baseRangeText.textContent = formatRange(b);
      el.baseCustom.hidden = choice !== 'custom';
      setRangeInputs(el.baseCustom, b);
      el.comparisonRangeText.textContent = formatRange(resolve(comparisonSide(s), now));
    }
    if (el.search.value !== s.search && document.activeElement !== el.search) el.search.value = s.search;
    el.regex.checked = s.regex;
    el.granularity.value = s.granularity;
    this.drawLabels();
  }

  /** The service picker: the listed services, and the one in the URL even when the list does not have it. */
  drawServices(): void {
    const { el } = this;
    const s = this.host.page.view;
    const names = (this.host.page.services ?? []).map((x) => x.name);
    if (s.service && !names.includes(s.service)) names.unshift(s.service);
    const current = [...el.service.options].map((o) => o.value).join('\0');
    if (current !== names.join('\0')) el.service.replaceChildren(...names.map((n) => new Option(n, n)));
    el.service.value = s.service;
    el.service.disabled = names.length === 0;
    this.drawTypes();
  }

  /** The type picker, shown when the service has more than one type (or the URL names one it does not list). */
  drawTypes(): void {
    const { el } = this;
    const s = this.host.page.view;
    const choices = s.service ? typeChoices(serviceTypes(this.host.page.services, s.service), s.type) : undefined;
    el.typeField.hidden = !choices;
    if (!choices) return;
    const current = [...el.type.options].map((o) => o.value).join('\0');
    if (current !== choices.map((c) => c.id).join('\0')) {
      el.type.replaceChildren(
        ...choices.map((c) => {
          const o = new Option(c.label, c.id);
          o.title = c.id;
          return o;
        }),
      );
    }
    el.type.value = s.type;
    el.type.title = s.type;
  }

  /** The label filter chips and pickers (values from page.labels). */
  drawLabels(): void {
    const { view, labels } = this.host.page;
    this.labels.set(view.labels, labels);
    this.baseLabels.set(view.baseLabels, labels);
    this.comparisonLabels.set(view.comparisonLabels, labels);
  }
}
