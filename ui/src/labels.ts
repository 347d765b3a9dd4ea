/**
 * Label filters: chips for the filters in force, and a picker that offers the
 * label names and values the service actually has in the range (from
 * /api/v1/labels), with = or ≠.
 */

import type { LabelInfo } from '../../ingest/api.js';
import { labelText } from './state.js';

export class LabelEditor {
  private available: LabelInfo[] = [];
  private value: string[] = [];
  private readonly chips: HTMLElement;
  private readonly nameSel: HTMLSelectElement;
  private readonly opSel: HTMLSelectElement;
  private readonly valueSel: HTMLSelectElement;
  private readonly addBtn: HTMLButtonElement;

  constructor(
    el: HTMLElement,
    private readonly what: string,
    private readonly onChange: (labels: string[]) => void,
  ) {
    el.classList.add('labels');
    this.chips = document.createElement('span');
    this.chips.className = 'chips';
    const form = document.createElement('form');
    form.className = 'label-add';
    this.nameSel = document.createElement('select');
    this.nameSel.name = 'label-name';
    this.nameSel.setAttribute('aria-label', `${what}: label name`);
    this.opSel = document.createElement('select');
    this.opSel.name = 'label-op';
    this.opSel.setAttribute('aria-label', `${what}: match`);
    for (const [v, t] of [
      ['=', '='],
      ['!=', '≠'],
    ] as const) this.opSel.add(new Option(t, v));
    this.valueSel = document.createElement('select');
    this.valueSel.name = 'label-value';
    this.valueSel.setAttribute('aria-label', `${what}: label value`);
    this.addBtn = document.createElement('button');
    this.addBtn.type = 'submit';
    this.addBtn.textContent = 'Add';
    form.append(this.nameSel, this.opSel, this.valueSel, this.addBtn);
    el.append(this.chips, form);
    this.nameSel.addEventListener('change', () => this.fillValues());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const name = this.nameSel.value;
      const v = this.valueSel.value;
      if (!name || this.valueSel.selectedIndex < 0) return;
      const label = `${name}${this.opSel.value}${v}`;
      if (!this.value.includes(label)) this.onChange([...this.value, label]);
    });
  }

  set(value: string[], available?: LabelInfo[]): void {
    this.value = value;
    if (available) this.available = available;
    this.drawChips();
    this.fillNames();
  }

  private drawChips(): void {
    this.chips.replaceChildren();
    for (const l of this.value) {
      const { name, op, value } = labelText(l);
      const chip = document.createElement('span');
      chip.className = `chip${op === '!=' ? ' chip-not' : ''}`;
      chip.dataset.label = l;
      chip.textContent = `${name} ${op === '=' ? '=' : '≠'} ${value}`;
      const x = document.createElement('button');
      x.type = 'button';
      x.className = 'chip-remove';
      x.textContent = '×';
      x.title = `remove ${name} ${op} ${value}`;
      x.setAttribute('aria-label', x.title);
      x.addEventListener('click', () => this.onChange(this.value.filter((v) => v !== l)));
      chip.append(x);
      this.chips.append(chip);
    }
  }

  private fillNames(): void {
    const keep = this.nameSel.value;
    this.nameSel.replaceChildren(new Option(this.available.length ? `${this.what}: label…` : 'no labels in range', ''));
    for (const l of this.available) {
      this.nameSel.add(new Option(`${l.name} (${l.count})`, l.name));
    }
    if (this.available.some((l) => l.name === keep)) this.nameSel.value = keep;
    this.fillValues();
  }

  private fillValues(): void {
    const info = this.available.find((l) => l.name === this.nameSel.value);
    // Redraws happen while the user is picking (label values arrive after the graph): keep their choice.
    const keep = this.valueSel.value;
    this.valueSel.replaceChildren();
    for (const v of info?.values ?? []) this.valueSel.add(new Option(v === '' ? '(empty)' : v, v));
    if (info?.truncated) {
      const o = new Option(`… ${info.count - info.values.length} more not listed`, '');
      o.disabled = true;
      this.valueSel.add(o);
    }
    if (info?.values.includes(keep)) this.valueSel.value = keep;
    const ready = info !== undefined && info.values.length > 0;
    this.valueSel.disabled = !ready;
    this.opSel.disabled = !ready;
    this.addBtn.disabled = !ready;
  }
}
