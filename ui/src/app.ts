/**
 * The page's state flow. One state object (page.ts) whose view is read from
 * and written to the query string; a change of view goes to the URL first,
 * then to the page: data is loaded again when what it depends on changed
 * (dataKey), everything else (search, zoom, table) redraws locally.
 */

import type { ServiceInfo } from '../../ingest/api.js';
import { Controls } from './controls.js';
import type { Elements } from './dom.js';
import { FlameView, type FlameData } from './flame.js';
import { Loader, busiest } from './loader.js';
import { drawMessage, emptyReason, emptySideMessage, failureMessage, hideMessage, isAbort, noDataMessage, noServicesMessage, type Empty, type Message } from './messages.js';
import { pageState, type PageState } from './page.js';
import { baseSide } from './query.js';
import { highlightOf } from './search.js';
import { measureOf } from './format.js';
import { serviceTypes, typeFor } from './types.js';
import { dataKey, parseState, serializeState, type ViewState } from './state.js';
import { drawBreadcrumb, drawLegend, drawSearchStatus, drawSummary } from './summary.js';
import { absolute, resolve } from './time.js';
import { TimelineView } from './timeline.js';
import { TopTable } from './top.js';

export class App {
  readonly page: PageState;
  private readonly flame: FlameView;
  private readonly timeline: TimelineView;
  private readonly top: TopTable;
  private readonly controls: Controls;
  private readonly loader: Loader;

  constructor(private readonly el: Elements) {
    this.page = pageState(parseState(location.search));
    this.loader = new Loader(this.page);
    this.controls = new Controls(el, this);
    this.flame = new FlameView(el.flame, { onZoom: (zoom) => this.update({ zoom }, 'push') });
    this.timeline = new TimelineView(el.timeline, el.timelineCaption, (from, to) => this.update({ from: absolute(from), to: absolute(to) }, 'push'));
    this.top = new TopTable(el.tablePane, {
      onSort: (sort, order) => this.update({ sort, order }, 'replace'),
      onFilter: (filter) => this.update({ filter }, 'replace'),
      onPick: (focus) => this.update({ focus, search: focus ? '' : this.page.view.search }, 'push'),
    });
  }

  start(): void {
    window.addEventListener('popstate', () => {
      this.page.view = parseState(location.search);
      void this.render();
    });
    let resizeTimer = 0;
    window.addEventListener('resize', () => {
      window.clearTimeout(resizeTimer);
      resizeTimer = window.setTimeout(() => {
        this.flame.resize();
        this.timeline.resize();
      }, 100);
    });
    void this.render(true);
  }

  /** Applies a change: URL first (push for navigations, replace for typing), then the page. */
  update(patch: Partial<ViewState>, history: 'push' | 'replace'): void {
    if (patch.focus) this.controls.dropPendingSearch();
    this.page.view = { ...this.page.view, ...patch };
    this.writeUrl(history);
    void this.render();
  }

  private writeUrl(history: 'push' | 'replace'): void {
    const url = `${location.pathname}${serializeState(this.page.view)}${location.hash}`;
    if (url === `${location.pathname}${location.search}${location.hash}`) return;
    if (history === 'push') window.history.pushState(null, '', url);
    else window.history.replaceState(null, '', url);
  }

  private async render(force = false): Promise<void> {
    this.controls.draw();
    if (force || dataKey(this.page.view) !== this.page.loadedKey) await this.load();
    else this.drawView();
  }

  private async load(): Promise<void> {
    const { page, el, loader } = this;
    const signal = loader.start();
    const s = page.view;
    page.loadedKey = dataKey(s);
    page.graph = undefined;
    page.table = undefined;
    el.loading.hidden = false;
    // The graph is what the page waits for: ask for it first, without waiting for the service list.
    const graphReq = s.service ? loader.graph(s, signal) : undefined;
    graphReq?.catch(() => {});
    const servicesReq = loader.services(signal);
    servicesReq.catch(() => {});

    if (!graphReq) {
      let list: ServiceInfo[];
      try {
        list = await servicesReq;
      } catch (e) {
        return this.fail(e, signal);
      }
      if (signal.aborted) return;
      this.controls.drawServices();
      const pick = busiest(list);
      if (!pick) return this.showEmpty('no-services');
      page.view = { ...page.view, service: pick.name };
      this.writeUrl('replace');
      return this.render(true);
    }
    void servicesReq.then(
      () => !signal.aborted && this.controls.drawServices(),
      () => {},
    );

    let data: FlameData;
    try {
      data = await graphReq;
    } catch (e) {
      return this.fail(e, signal);
    }
    if (signal.aborted) return;
    page.measure = measureOf(data.resp);
    // Only now the rest: the store runs few statements at once, and these would have delayed the graph.
    loader.secondary(s, signal, {
      timeline: (t) => {
        const v = page.view;
        // The diff base, marked on the timeline when it has its own range.
        const extra = v.mode === 'diff' && (v.baseFrom || v.baseTo) ? { ...resolve(baseSide(v), Date.now()), label: 'base' } : undefined;
        this.timeline.render(t, page.measure, extra);
      },
      labels: (l) => {
        page.labels = l;
        this.controls.drawLabels();
      },
      table: (t) => {
        page.table = t;
        this.drawTable();
      },
    });
    el.loading.hidden = true;
    const empty = emptyReason(data);
    if (empty) {
      // No samples may mean no services at all; the list tells which empty state to show.
      await servicesReq.catch(() => {});
      if (signal.aborted) return;
      // A service without the type asked for (a Node service has wall and heap, no CPU): show one it has.
      const type = typeFor(serviceTypes(page.services, s.service), s.type);
      if (type !== s.type) {
        page.view = { ...page.view, type };
        this.writeUrl('replace');
        return this.render(true);
      }
      return this.showEmpty(page.services?.length === 0 ? 'no-services' : empty, data);
    }
    this.showContent();
    page.graph = data;
    performance.mark('kiln:graph-data');
    this.flame.render(data, page.measure);
    this.drawView();
    performance.mark('kiln:graph-drawn');
    markRendered();
  }

  /** Everything that does not need the server: table, summary, legend, zoom, highlight. */
  private drawView(): void {
    const { page, el } = this;
    this.drawTable();
    const g = page.graph;
    if (!g) return;
    drawSummary(el.summary, g, page.view.service, page.measure);
    drawLegend(el.legend, g.kind, page.measure);
    const zoomed = this.flame.zoomTo(page.view.zoom);
    if (zoomed.length !== page.view.zoom.length) {
      // The URL named a frame this range does not have: keep the part that exists.
      page.view = { ...page.view, zoom: zoomed };
      this.writeUrl('replace');
    }
    drawBreadcrumb(el.breadcrumb, zoomed, (zoom) => this.update({ zoom }, 'push'));
    drawSearchStatus(el, this.flame, highlightOf(page.view), page.measure, () => this.update({ search: '', focus: undefined }, 'push'));
  }

  private drawTable(): void {
    const v = this.page.view;
    this.el.tableTitle.textContent = v.mode === 'diff' ? 'Change by function' : 'Top functions';
    this.top.set(this.page.table, { sort: v.sort, order: v.order, filter: v.filter, focus: v.focus }, this.page.measure);
  }

  // ---------------------------------------------------------------- messages instead of the graph

  private say(m: Message): void {
    drawMessage(this.el.message, m, (a) => {
      if (a.run !== 'retry') return this.update(a.run, 'push');
      this.page.services = undefined;
      void this.render(true);
    });
  }

  private showContent(): void {
    hideMessage(this.el.message);
    this.el.content.hidden = false;
    this.el.timelinePane.hidden = false;
    this.el.filters.hidden = false;
  }

  private hideContent(keepTimeline: boolean): void {
    this.flame.destroy();
    this.page.graph = undefined;
    this.el.content.hidden = true;
    this.el.timelinePane.hidden = !keepTimeline;
    this.el.filters.hidden = !keepTimeline;
    this.el.loading.hidden = true;
  }

  private showEmpty(kind: Empty, data?: FlameData): void {
    if (kind === 'no-services') {
      this.hideContent(false);
      this.timeline.render(undefined, this.page.measure);
      this.say(noServicesMessage(new URL('.', document.baseURI).toString().replace(/\/$/, '')));
      return;
    }
    this.hideContent(true);
    const now = Date.now();
    this.say(kind === 'no-data' ? noDataMessage(this.page.view, this.page.services, now) : emptySideMessage(kind, data, this.page.view, now));
  }

  private fail(e: unknown, signal: AbortSignal): void {
    if (isAbort(e, signal)) return;
    this.hideContent(false);
    this.say(failureMessage(e, new URL('api/v1/', document.baseURI).toString()));
  }
}

/** For the page-load figure: marked once the first graph is on screen (two frames after it is in the DOM). */
function markRendered(): void {
  if (performance.getEntriesByName('kiln:flame-rendered').length > 0) return;
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      performance.mark('kiln:flame-rendered');
      document.documentElement.dataset.flameRendered = String(Math.round(performance.now()));
    }),
  );
}
