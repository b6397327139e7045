/**
 * Analysis data compared in full (test/incremental.test.ts, test/shapes.test.ts):
 * every MStr spelled out character by character, bigints as text, maps as
 * entry lists, objects by sorted keys (an XML element's parent left out).
 */
import assert from 'node:assert/strict';
import { MStr } from '../../server/src/engine/text/source';
import type { AnalyzedDocument } from '../../server/src/engine/index';
import { collectSymbols } from '../../server/src/engine/symbols';
import { EditorAnalysis } from '../../server/src/engine/editor/analysis';
import type { XmlDocument, XmlElement, XmlText } from '../../server/src/engine/syntax/xml';

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


/**
 * What the editor reads of two analyses of one text is the same: id
 * occurrences, definitions, and the drivers using each backend of `expected`'s
 * nodes. Returns how many of each it compared.
 */
export function sameEditorView(actual: AnalyzedDocument, expected: AnalyzedDocument, text: string, what: string): { occurrences: number; definitions: number; backends: number } {
  const counts = { occurrences: 0, definitions: 0, backends: 0 };
  for (const defsOnly of [true, false]) {
    const a = collectSymbols(actual, text, { definitionsOnly: defsOnly }).occurrences;
    assert.deepStrictEqual(a, collectSymbols(expected, text, { definitionsOnly: defsOnly }).occurrences, `${what}: ${defsOnly ? 'definitions' : 'occurrences'}`);
    counts[defsOnly ? 'definitions' : 'occurrences'] = a.length;
  }
  const [ca, ce] = [actual, expected].map((d) => new EditorAnalysis(text, 'topology', d).completionData());
  const backends = [...new Set(expected.nodes.flatMap((n) => [...n.backends.keys()]))];
  for (const id of backends) assert.deepStrictEqual(ca.backendUsers(id), ce.backendUsers(id), `${what}: users of ${id}`);
  counts.backends = backends.length;
  return counts;
}

/** Every field of XmlElement but parent and children (the compiler checks the list is complete). */
const ELEMENT_FIELDS = Object.keys({
  kind: 1,
  name: 1,
  prefix: 1,
  local: 1,
  ns: 1,
  nameSpan: 1,
  attrs: 1,
  span: 1,
  startTagSpan: 1,
  endTagSpan: 1,
  selfClosing: 1,
  nsDecls: 1,
} satisfies Record<Exclude<keyof XmlElement, 'parent' | 'children' | 'note'>, 1>) as (keyof XmlElement)[];

/** An element by its interface (a moved element is a class with accessors: its own keys are not its fields). */
function canonTree(el: XmlElement | XmlText): unknown {
  if (el.kind === 'text') return { text: canon(el.value), span: el.span };
  const fields: Record<string, unknown> = {};
  for (const k of ELEMENT_FIELDS) fields[k] = el[k];
  return { ...(canon(fields) as object), children: el.children.map(canonTree) };
}

export function canonDoc(d: XmlDocument): unknown {
  return {
    tops: d.tops.map(canonTree),
    problems: d.problems,
    undeclared: d.undeclaredPrefixes.map((u) => ({ prefix: u.prefix, span: u.span, element: u.element.span })),
  };
}
