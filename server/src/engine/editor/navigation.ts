/**
 * Go to definition, references and rename of ids (QEMU ids, topology
 * fabric/backend/CXL ids, templates), over the symbol index of an analysis.
 * Spans of the analyzed text out.
 */
import { IdOccurrence, occurrenceAt, occurrencesOf } from '../symbols';
import type { TextEdit } from '../diagnostics';
import { Span } from '../text/source';
import { EditorAnalysis } from './analysis';

/** What a new id must look like (QEMU's id_wellformed, as the topology schema checks it). */
export const ID_RE = /^[A-Za-z][A-Za-z0-9_.-]*$/;

function occurrence(a: EditorAnalysis, off: number): { o: IdOccurrence; all: IdOccurrence[] } | undefined {
  const s = a.symbols();
  if (!s) return undefined;
  const o = occurrenceAt(s, off);
  return o ? { o, all: occurrencesOf(s, o.name, o.ns) } : undefined;
}

/** Where the id at off is defined (undefined: no id there, or not defined in the document). */
export function definition(a: EditorAnalysis, off: number): Span[] | undefined {
  const r = occurrence(a, off);
  const defs = r?.all.filter((x) => x.def).map((x) => x.span);
  return defs?.length ? defs : undefined;
}

export function references(a: EditorAnalysis, off: number, includeDeclaration: boolean): Span[] | undefined {
  const r = occurrence(a, off);
  return r?.all.filter((x) => includeDeclaration || !x.def).map((x) => x.span);
}

/** The id at off and its span, if it can be renamed (it is defined in the document). */
export function prepareRename(a: EditorAnalysis, off: number): { span: Span; placeholder: string } | undefined {
  const r = occurrence(a, off);
  if (!r || !r.all.some((x) => x.def)) return undefined;
  return { span: r.o.span, placeholder: r.o.name };
}

/** Edits renaming the id at off everywhere; an error message for a bad name or an id defined elsewhere; undefined when no id is there. */
export function rename(a: EditorAnalysis, off: number, newName: string): { edits: TextEdit[] } | { error: string } | undefined {
  const r = occurrence(a, off);
  if (!r) return undefined;
  if (!ID_RE.test(newName)) return { error: `'${newName}' is not a valid id: it starts with a letter and holds letters, digits, _ . -` };
  if (!r.all.some((x) => x.def)) return { error: `'${r.o.name}' is not defined in this document` };
  return { edits: r.all.map((x) => ({ span: x.span, newText: newName })) };
}
