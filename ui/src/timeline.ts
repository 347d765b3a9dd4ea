/**
 * The profile's value over time for the selected range; dragging across it selects a
 * narrower range. Drawn with d3 (scales, axis, area, brush).
 */

import { axisBottom, axisLeft } from 'd3-axis';
import { brushX, type D3BrushEvent } from 'd3-brush';
import { scaleLinear, scaleTime } from 'd3-scale';
import { select } from 'd3-selection';
import { area, curveStepAfter } from 'd3-shape';
import type { TimelinePoint, TimelineResponse } from '../../ingest/api.js';
import { CPU_SAMPLES, amount, value, type Measure } from './format.js';
import { span } from './time.js';

const HEIGHT = 84;
// The right margin leaves room for the last tick's label.
const MARGIN = { top: 8, right: 24, bottom: 20, left: 48 };

export class TimelineView {
  private resp: TimelineResponse | undefined;
  private extra: { from: number; to: number; label: string } | undefined;
  private measure: Measure = CPU_SAMPLES;

  constructor(
    private readonly el: HTMLElement,
    private readonly caption: HTMLElement,
    private readonly onSelect: (from: number, to: number) => void,
  ) {}

  /** Values in `measure`; `extra` marks another range on the chart: the diff base when it overlaps this one. */
  render(resp: TimelineResponse | undefined, measure: Measure, extra?: { from: number; to: number; label: string }): void {
    this.resp = resp;
    this.measure = measure;
    this.extra = extra;
    this.draw();
  }

  resize(): void {
    this.draw();
  }

  private draw(): void {
    const resp = this.resp;
    this.el.replaceChildren();
    if (!resp) {
      this.caption.textContent = '';
      return;
    }
    const width = Math.max(300, this.el.clientWidth);
    const h = HEIGHT - MARGIN.top - MARGIN.bottom;
    const measure = this.measure;
    // The axis in the measure's own amounts (time, bytes), so its ticks are round ones: 2 s, not 200 samples of 10.1 ms.
    const maxV = Math.max(1, ...resp.points.map((p) => p.value)) * measure.scale;
    const y = scaleLinear().domain([0, maxV]).nice().range([h, 0]);
    // Counts are whole: no 0.5 ticks on a nearly empty chart.
    const yTicks = y.ticks(3).filter((v) => measure.unit !== 'count' || Number.isInteger(v));
    const yLabels = yTicks.map((v) => amount(v, measure.unit));
    // Room for the longest value label ("39.1 KiB", "1.25 min") at the axis font's ~6.5 px a character.
    const left = Math.max(MARGIN.left, 14 + Math.ceil(6.5 * Math.max(0, ...yLabels.map((l) => l.length))));
    const w = width - left - MARGIN.right;
    // Points are bucket starts; close the last bucket so the step area reaches its end.
    const points: TimelinePoint[] = [...resp.points];
    const last = points[points.length - 1];
    if (last) points.push({ t: last.t + resp.step, value: last.value });
    const x = scaleTime().domain([resp.from, resp.to]).range([0, w]);

    const svg = select(this.el)
      .append('svg')
      .attr('width', width)
      .attr('height', HEIGHT)
      .attr('role', 'img')
      .attr('aria-label', `${this.measure.noun} over time, ${value(resp.total, this.measure)} in all; drag to select a range`);
    svg
      .append('defs')
      .append('clipPath')
      .attr('id', 'timeline-clip')
      .append('rect')
      .attr('width', w)
      .attr('height', h);
    const g = svg.append('g').attr('transform', `translate(${left},${MARGIN.top})`);
    if (this.extra) {
      const x0 = Math.max(0, x(this.extra.from));
      const x1 = Math.min(w, x(this.extra.to));
      // Only when it really overlaps: a base that ends where this range starts is not drawn as a sliver.
      if (x1 - x0 >= 2) {
        g.append('rect').attr('class', 'extra-range').attr('x', x0).attr('width', x1 - x0).attr('height', h);
        g.append('text').attr('class', 'extra-label').attr('x', x0 + 4).attr('y', 12).text(this.extra.label);
      }
    }
    const shape = area<TimelinePoint>()
      .x((p) => x(p.t))
      .y0(h)
      .y1((p) => y(p.value * measure.scale))
      .curve(curveStepAfter);
    g.append('path').attr('class', 'area').attr('clip-path', 'url(#timeline-clip)').attr('d', shape(points) ?? '');
    g.append('g')
      .attr('class', 'axis')
      .attr('transform', `translate(0,${h})`)
      .call(
        axisBottom(x)
          .ticks(Math.max(2, Math.floor(w / 110)))
          .tickFormat((v) => tick(v instanceof Date ? v : new Date(Number(v))))
          .tickSizeOuter(0),
      );
    g.append('g')
      .attr('class', 'axis')
      .call(
        axisLeft(y)
          .tickValues(yTicks)
          .tickFormat((_, i) => yLabels[i] ?? ''),
      );

    const brush = brushX<unknown>()
      .extent([
        [0, 0],
        [w, h],
      ])
      .on('end', (event: D3BrushEvent<unknown>) => {
        const sel = event.selection as [number, number] | null;
        if (!sel || !event.sourceEvent) return;
        const [a, b] = sel;
        brushG.call(brush.move, null);
        // A click (or a few pixels) is not a selection.
        if (b - a < 3) return;
        this.onSelect(x.invert(a).getTime(), x.invert(b).getTime());
      });
    const brushG = g.append('g').attr('class', 'brush').call(brush);
    this.caption.textContent = `${value(resp.total, this.measure)} · ${span(resp.step)} buckets · drag across the chart to zoom in on a time range`;
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/** 24-hour ticks; a day's first tick names the day. */
function tick(d: Date): string {
  if (d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0) return `${MONTHS[d.getMonth()]} ${d.getDate()}`;
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  return d.getSeconds() ? `${hm}:${two(d.getSeconds())}` : hm;
}
