/** The elements of index.html the page script drives, looked up once (a missing one is a build error, said at load). */

function find<T extends HTMLElement = HTMLElement>(sel: string): T {
  const el = document.querySelector<T>(sel);
  if (!el) throw new Error(`page is missing ${sel}`);
  return el;
}

export function pageElements() {
  return {
    service: find<HTMLSelectElement>('#service'),
    type: find<HTMLSelectElement>('#type'),
    typeField: find('#type-field'),
    presets: find('#presets'),
    rangeText: find('#range-text'),
    modes: find('#modes'),
    download: find<HTMLAnchorElement>('#download'),
    downloadBase: find<HTMLAnchorElement>('#download-base'),
    copyLink: find<HTMLButtonElement>('#copy-link'),
    linkBox: find('#link-box'),
    link: find<HTMLInputElement>('#link'),
    linkStatus: find('#link-status'),
    linkClose: find<HTMLButtonElement>('#link-close'),
    customRange: find<HTMLFormElement>('#custom-range'),
    labels: find('#labels'),
    diffPanel: find('#diff-panel'),
    baseRange: find<HTMLSelectElement>('#base-range'),
    baseRangeText: find('#base-range-text'),
    baseCustom: find<HTMLFormElement>('#base-custom'),
    baseLabels: find('#base-labels'),
    comparisonRangeText: find('#comparison-range-text'),
    comparisonLabels: find('#comparison-labels'),
    timeline: find('#timeline'),
    timelineCaption: find('#timeline-caption'),
    message: find('#message'),
    content: find('#content'),
    breadcrumb: find('#breadcrumb'),
    search: find<HTMLInputElement>('#search'),
    regex: find<HTMLInputElement>('#regex'),
    granularity: find<HTMLSelectElement>('#granularity'),
    summary: find('#summary'),
    searchStatus: find('#search-status'),
    legend: find('#legend'),
    flame: find('#flame'),
    tablePane: find('#table-pane'),
    tableTitle: find('#table-title'),
    loading: find('#loading'),
    timelinePane: find('.timeline-pane'),
    filters: find('.filters'),
  };
}

export type Elements = ReturnType<typeof pageElements>;
