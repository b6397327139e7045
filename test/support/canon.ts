/**
 * Analysis data compared in full (test/incremental.test.ts, test/shapes.test.ts):
 * every MStr spelled out character by character, bigints as text, maps as
 * entry lists, objects by sorted keys (an XML element's parent left out).
 */
import assert from 'node:assert/strict';
import { MStr } from '../../server/src/engine/text/source';

/** A value with every MStr spelled out character by character (text, and each character's source span). */
export function canon(x: unknown, path = new Set<object>()): unknown {
  if (typeof x === 'bigint') return `${x}n`;
  if (x === null || typeof x !== 'object') return x;
  if (x instanceof MStr) {
    const chars: [number, number][] = [];
    for (let i = 0; i < x.length; i++) {
      const s = x.span(i, i + 1);
      chars.push([s.start, s.end]);
    }
    return { text: x.text, chars, empty: x.length ? undefined : x.span() };
  }
  assert.ok(!path.has(x), 'a cycle');
  path.add(x);
  let out: unknown;
  if (Array.isArray(x)) out = x.map((v) => canon(v, path));
  else if (x instanceof Map) out = [...x].map(([k, v]) => [k, canon(v, path)]);
  else {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(x).sort()) if (k !== 'parent') o[k] = canon((x as Record<string, unknown>)[k], path);
    out = o;
  }
  path.delete(x);
  return out;
}

