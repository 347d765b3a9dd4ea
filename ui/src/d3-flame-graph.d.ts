/**
 * The part of d3-flame-graph 5 this UI uses; the package ships no types.
 * Read off dist/d3-flamegraph.es.js.
 */
declare module 'd3-flame-graph' {
  import type { HierarchyRectangularNode } from 'd3-hierarchy';
  import type { Selection } from 'd3-selection';

  /** Flags the library writes onto the input data while zooming. */
  export interface FlameDatumFlags {
    /** An ancestor of the zoomed frame (drawn full width, faded). */
    fade?: boolean;
    /** Outside the zoomed frame's subtree (width 0). */
    hide?: boolean;
  }

  /** d3's hierarchy node as the library hands it to callbacks. */
  export interface FlameGraphNode<D> extends HierarchyRectangularNode<D & FlameDatumFlags> {
    /** Pre-order index, stable for one dataset. */
    id: number;
    /** Set by search(). */
    highlight?: boolean;
    /** Root only: the total before zooming. */
    originalValue?: number;
  }

  /** chart.tooltip(): called once with the svg selection, then show/hide on hover. */
  export interface FlameTooltip<D> {
    (svg: Selection<SVGSVGElement, FlameGraphNode<D>, null, undefined>): void;
    show(event: MouseEvent, d: FlameGraphNode<D>): FlameTooltip<D>;
    hide(): FlameTooltip<D>;
    destroy?(): void;
  }

  export interface FlameGraph<D> {
    (selection: Selection<HTMLElement, D, null, undefined>): void;
    width(): number;
    width(w: number): FlameGraph<D>;
    /** Fixed svg height; without it the library sizes the svg to the tree plus three rows. */
    height(h: number): FlameGraph<D>;
    cellHeight(h: number): FlameGraph<D>;
    minHeight(h: number): FlameGraph<D>;
    minFrameSize(px: number): FlameGraph<D>;
    transitionDuration(ms: number): FlameGraph<D>;
    /** false keeps the input order; a comparator sorts siblings. */
    sort(s: boolean | ((a: FlameGraphNode<D>, b: FlameGraphNode<D>) => number)): FlameGraph<D>;
    inverted(v: boolean): FlameGraph<D>;
    /** false (the default): value is the total of a frame, children included. */
    selfValue(v: boolean): FlameGraph<D>;
    tooltip(t: FlameTooltip<D>): FlameGraph<D>;
    /** Text of each frame's <title> when no tooltip is set. */
    setLabelHandler(f: (d: FlameGraphNode<D>) => string): FlameGraph<D>;
    /** The library calls f(d, itsOwnColour) for every frame. */
    setColorMapper(f: (d: FlameGraphNode<D>, original: string) => string): FlameGraph<D>;
    /** Replaces the default matcher, which builds new RegExp(term) and so throws on "foo(". */
    setSearchMatch(f: (d: FlameGraphNode<D>, term: string, ignoreCase?: boolean) => boolean): FlameGraph<D>;
    setSearchHandler(f: (results: FlameGraphNode<D>[], sum: number, total: number) => void): FlameGraph<D>;
    setDetailsHandler(f: (text: string | null) => void): FlameGraph<D>;
    search(term: string): void;
    clear(): void;
    zoomTo(d: FlameGraphNode<D>): void;
    resetZoom(): void;
    /** Called after every zoom, including zoomTo and resetZoom. */
    onClick(f: (d: FlameGraphNode<D>) => void): FlameGraph<D>;
    update(data?: D): FlameGraph<D>;
    destroy(): FlameGraph<D>;
  }

  export default function flamegraph<D>(): FlameGraph<D>;
}
