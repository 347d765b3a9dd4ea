/**
 * The flame graph: d3-flame-graph drawing Kiln's tree top-down (root on top,
 * so the start of the call tree is on screen without scrolling), with Kiln's
 * own colours, tooltip, literal-or-pattern search and zoom by frame path.
 */

import flamegraph, { type FlameGraph, type FlameGraphNode, type FlameTooltip } from 'd3-flame-graph';
import { select } from 'd3-selection';
// For selection.interrupt(); d3-flame-graph loads d3-transition anyway.
import 'd3-transition';
import type { DiffNode, DiffResponse, FlameNode, FlamegraphResponse } from '../../ingest/api.js';
import { HIGHLIGHT, diffColor, originColor, originOf } from './colors.js';
import { CPU_SAMPLES, count, percent, pp, value, type Measure } from './format.js';

export type FlameData = { kind: 'single'; resp: FlamegraphResponse } | { kind: 'diff'; resp: DiffResponse };

type Datum = FlameNode | DiffNode;
type Node = FlameGraphNode<Datum>;

/** Which frames to highlight; built by search.ts from the search box or the table. */
export type Matcher = (name: string, file: string | undefined) => boolean;

export interface SearchSummary {
  /** Frames highlighted. */
  frames: number;
  /** Value under the highlighted frames (nested matches counted once): the comparison side in a diff. */
  value: number;
  /** That value's share of the total. */
  share: number;
  /** Diff only: the same on the base side. */
  baseValue?: number;
  baseShare?: number;
}

export interface FlameViewEvents {
  /** The user zoomed (clicked a frame); the path is the frame names below root. */
  onZoom(path: string[]): void;
}

const CELL = 20;

function isDiff(d: Datum): d is DiffNode {
  return 'delta' in d;
}

/**
 * The zoomed frame as names from the root down. A name shared by siblings
 * (granularity=line, or one function name in two files) gets ":LINE", so the
 * URL still names one frame.
 */
export function pathOf(d: Node): string[] {
  const out: string[] = [];
  for (let n: Node | null = d; n && n.parent; n = n.parent) {
    const name = n.data.name;
    const twins = n.parent.children?.filter((c) => c.data.name === name).length ?? 1;
    out.push(twins > 1 && n.data.line ? `${name}:${n.data.line}` : name);
  }
  return out.reverse();
}

/** The child a path segment names: by name, else by "name:line". */
function childFor(node: Node, segment: string): Node | undefined {
  const kids = node.children ?? [];
  const byName = kids.find((c) => c.data.name === segment);
  if (byName) return byName;
  const m = /^(.*):(\d+)$/s.exec(segment);
  return m ? kids.find((c) => c.data.name === m[1] && c.data.line === Number(m[2])) : undefined;
}

export class FlameView {
  private chart: FlameGraph<Datum> | undefined;
  private data: FlameData | undefined;
  private measure: Measure = CPU_SAMPLES;
  private root: Node | undefined;
  private maxChange = 0;
  /** True while the page itself zooms (restoring a URL), so onZoom only reports the user's clicks. */
  private restoring = false;
  /** What the chart shows now, to skip redraws that would change nothing. */
  private zoomed: string[] = [];
  private highlighted = false;
  private readonly tip: HTMLDivElement;

  constructor(
    private readonly el: HTMLElement,
    private readonly events: FlameViewEvents,
  ) {
    this.tip = document.createElement('div');
    this.tip.className = 'tooltip';
    this.tip.setAttribute('role', 'tooltip');
    this.tip.hidden = true;
    document.body.appendChild(this.tip);
  }

  /** Draws `data`, whose values are in `measure` (for the tooltip). */
  render(data: FlameData, measure: Measure): void {
    this.destroy();
    this.data = data;
    this.measure = measure;
    this.maxChange = 0;
    if (data.kind === 'diff') {
      const walk = (n: DiffNode): void => {
        this.maxChange = Math.max(this.maxChange, Math.abs(n.comparisonShare - n.baseShare));
        n.children.forEach(walk);
      };
      walk(data.resp.root);
    }
    // d3-flame-graph leaves three empty rows under the deepest frame when it sizes the svg itself.
    let depth = 0;
    const deepest = (n: Datum, d: number): void => {
      depth = Math.max(depth, d);
      for (const c of n.children) deepest(c, d + 1);
    };
    deepest(data.resp.root, 0);
    const chart = flamegraph<Datum>()
      .width(Math.max(200, this.el.clientWidth))
      .height((depth + 1) * CELL + 2)
      .cellHeight(CELL)
      .inverted(true)
      // Alphabetical siblings, as classic flame graphs: the same function sits in the same place across ranges and in diffs.
      .sort(true)
      // Frames under 3 px (0.2 % of a 1,400 px graph) show no label and can hardly be clicked; leaving
      // them out halves the DOM of a big tree, and zooming in brings them back.
      .minFrameSize(3)
      // The first draw is immediate (it is what page-load time waits for); zooms animate.
      .transitionDuration(0)
      .tooltip(this.tooltip())
      .setColorMapper((d) => this.color(d))
      .setSearchMatch(() => false)
      .setDetailsHandler(() => {})
      .onClick((d) => {
        const path = pathOf(d);
        this.zoomed = path;
        if (!this.restoring) this.events.onZoom(path);
      });
    this.chart = chart;
    // The API calls the root "root"; the page calls it what it is, as the breadcrumb does.
    const root: Datum = { ...data.resp.root, name: 'all' };
    select<HTMLElement, Datum>(this.el).datum(root).call(chart);
    this.root = select<HTMLElement, Node>(this.el).datum();
    this.settle(chart.width());
    chart.transitionDuration(300);
  }

  /**
   * d3-flame-graph grows new frames from zero width and sets their labels in
   * transitions of d3's default 250 ms, whatever transitionDuration says. A
   * first draw should appear finished (and the page-load figure should not
   * stop the clock on half-grown frames), so stop those transitions and put
   * the final width and label in place at once.
   */
  private settle(width: number): void {
    const frames = select(this.el).selectAll<SVGGElement, Node>('g.frame');
    frames
      .select<SVGRectElement>('rect')
      .interrupt()
      .attr('width', (d) => (d.x1 - d.x0) * width);
    frames
      .select<HTMLDivElement>('foreignObject div')
      .interrupt()
      .text((d) => d.data.name);
  }

  /** Zooms to the frame at `path`, or as deep along it as the tree goes; returns the path zoomed to. */
  zoomTo(path: string[]): string[] {
    if (!this.chart || !this.root) return [];
    let node = this.root;
    const found: string[] = [];
    for (const name of path) {
      const next = childFor(node, name);
      if (!next) break;
      node = next;
      found.push(name);
    }
    // Every zoom redraws all frames: skip the ones that change nothing (a fresh chart is unzoomed).
    if (found.join('\0') === this.zoomed.join('\0')) return found;
    this.restoring = true;
    try {
      if (found.length === 0) this.chart.resetZoom();
      else this.chart.zoomTo(node);
    } finally {
      this.restoring = false;
    }
    this.zoomed = found;
    return found;
  }

  /** Highlights the frames `m` accepts (none when m is undefined) and sums their share. */
  highlight(m: Matcher | undefined): SearchSummary | undefined {
    const chart = this.chart;
    const data = this.data;
    if (!chart || !data) return undefined;
    if (!m) {
      // clear() redraws every frame; a fresh chart has nothing to clear.
      if (this.highlighted) chart.clear();
      this.highlighted = false;
      return undefined;
    }
    this.highlighted = true;
    let summary: SearchSummary = { frames: 0, value: 0, share: 0 };
    chart.setSearchMatch((d) => m(d.data.name, d.data.file));
    chart.setSearchHandler((results) => {
      // Sum only outermost matches: a match inside another is already in its total.
      let sum = 0;
      let base = 0;
      for (const r of results) {
        let nested = false;
        for (let p = r.parent; p; p = p.parent) if (p.highlight) nested = true;
        if (nested) continue;
        const d = r.data;
        if (isDiff(d)) {
          sum += d.comparison;
          base += d.base;
        } else sum += d.value;
      }
      if (data.kind === 'diff') {
        const r = data.resp.root;
        summary = {
          frames: results.length,
          value: sum,
          share: r.comparison > 0 ? sum / r.comparison : 0,
          baseValue: base,
          baseShare: r.base > 0 ? base / r.base : 0,
        };
      } else {
        summary = { frames: results.length, value: sum, share: data.resp.total > 0 ? sum / data.resp.total : 0 };
      }
    });
    // The term is not read: the matcher above already holds the (escaped or compiled) search.
    chart.search('match');
    return summary;
  }

  resize(): void {
    if (!this.chart || !this.data) return;
    const w = Math.max(200, this.el.clientWidth);
    if (w === this.chart.width()) return;
    this.chart.transitionDuration(0).width(w).update();
    this.chart.transitionDuration(300);
  }

  destroy(): void {
    this.chart?.destroy();
    this.chart = undefined;
    this.root = undefined;
    this.zoomed = [];
    this.highlighted = false;
    this.tip.hidden = true;
    this.el.replaceChildren();
  }

  private color(d: Node): string {
    if (d.highlight) return HIGHLIGHT;
    const x = d.data;
    if (!d.parent) return '#a1a1aa';
    if (isDiff(x)) return diffColor(x.comparisonShare - x.baseShare, this.maxChange);
    return originColor(originOf(x.name, x.file), x.name);
  }

  /** d3-flame-graph's tooltip protocol, filled with DOM nodes (frame names come from profiled code: never HTML). */
  private tooltip(): FlameTooltip<Datum> {
    const tip = this.tip;
    const view = this;
    const t = Object.assign(() => {}, {
      show(event: MouseEvent, d: Node) {
        tip.replaceChildren(...view.tooltipContent(d));
        tip.hidden = false;
        const pad = 12;
        const { offsetWidth: w, offsetHeight: h } = tip;
        let x = event.clientX + pad;
        let y = event.clientY + pad;
        if (x + w > window.innerWidth - 4) x = Math.max(4, event.clientX - w - pad);
        if (y + h > window.innerHeight - 4) y = Math.max(4, event.clientY - h - pad);
        tip.style.left = `${x}px`;
        tip.style.top = `${y}px`;
        return t;
      },
      hide() {
        tip.hidden = true;
        return t;
      },
    });
    return t;
  }

  private tooltipContent(d: Node): HTMLElement[] {
    const x = d.data;
    const m = this.measure;
    const line = (cls: string, ...parts: (string | HTMLElement)[]): HTMLElement => {
      const div = document.createElement('div');
      div.className = cls;
      div.append(...parts);
      return div;
    };
    const kv = (k: string, v: string): HTMLElement => {
      const b = document.createElement('span');
      b.className = 'k';
      b.textContent = k;
      return line('row', b, v);
    };
    const out = [line('name', d.parent ? x.name : 'all samples')];
    if (x.file) out.push(line('file', x.line ? `${x.file}:${x.line}` : x.file));
    else if (d.parent) out.push(line('file', 'no source file (Kiln synthetic frame)'));
    if (x.merged) out.push(line('note', `${count(x.merged)} smaller frames merged into one`));
    if (isDiff(x)) {
      out.push(kv('base', `${percent(x.baseShare)} · ${value(x.base, m)}`));
      out.push(kv('comparison', `${percent(x.comparisonShare)} · ${value(x.comparison, m)}`));
      const change = x.comparisonShare - x.baseShare;
      const word = Math.abs(change) < 0.001 ? 'unchanged' : change > 0 ? 'grew' : 'shrank';
      out.push(kv('change', `${pp(change)} (${word})`));
    } else if (this.data?.kind === 'single') {
      const total = this.data.resp.total;
      out.push(kv('total', `${percent(total > 0 ? x.value / total : 0)} · ${value(x.value, m)}`));
      out.push(kv('self', `${percent(total > 0 ? x.self / total : 0)} · ${value(x.self, m)}`));
    }
    return out;
  }
}
