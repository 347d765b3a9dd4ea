/**
 * The profile type picker's logic: which types a service has (from
 * /api/v1/services), which one to show, and what the picker offers.
 */

import type { ServiceInfo } from '../../ingest/api.js';
import { CPU_TYPE_ID } from '../../profile/profile-type.js';
import { typeLabel } from './format.js';

/** The types the service list says a service has (none when it is not listed). */
export function serviceTypes(services: readonly ServiceInfo[] | undefined, service: string): string[] {
  return services?.find((s) => s.name === service)?.types ?? [];
}

/** The type to show for a service: the current one if it has it, else CPU, else its first; CPU when nothing is known. */
export function typeFor(types: readonly string[], current: string): string {
  if (types.length === 0 || types.includes(current)) return current;
  return types.includes(CPU_TYPE_ID) ? CPU_TYPE_ID : types[0]!;
}

export interface TypeChoice {
  id: string;
  label: string;
}

/**
 * What the picker offers: the service's types, CPU first, and the current
 * one even when the list does not have it (a link to a type with no data in
 * range); undefined when there is nothing to choose (one type, the one shown).
 */
export function typeChoices(types: readonly string[], current: string): TypeChoice[] | undefined {
  const ids = [...new Set([...types, current])];
  if (ids.length < 2) return undefined;
  ids.sort((a, b) => (a === CPU_TYPE_ID ? -1 : b === CPU_TYPE_ID ? 1 : typeLabel(a).localeCompare(typeLabel(b)) || a.localeCompare(b)));
  return ids.map((id) => ({ id, label: typeLabel(id) }));
}
