/**
 * Quick fixes: the fixes the rules attach to their diagnostics, for the
 * diagnostics that touch a span of the document (an editor's selection or
 * cursor). Each fix is one action; a diagnostic with a single fix makes it
 * the preferred one.
 */
import type { Diagnostic, TextEdit } from '../diagnostics';
import { Span } from '../text/source';
import { EditorAnalysis } from './analysis';

export interface QuickFix {
  title: string;
  /** The diagnostic it fixes. */
  diagnostic: Diagnostic;
  edits: TextEdit[];
  preferred: boolean;
}

export function quickFixes(a: EditorAnalysis, at: Span): QuickFix[] {
  const out: QuickFix[] = [];
  for (const d of a.doc?.diagnostics ?? []) {
    if (!d.fixes?.length) continue;
    if (d.span.end < at.start || d.span.start > at.end) continue;
    for (const f of d.fixes) out.push({ title: f.title, diagnostic: d, edits: f.edits, preferred: d.fixes.length === 1 });
  }
  return out;
}

/** The text with a fix's edits applied (edits do not overlap; applied from the end). */
export function applyEdits(text: string, edits: TextEdit[]): string {
  let out = text;
  for (const e of [...edits].sort((x, y) => y.span.start - x.span.start)) out = out.slice(0, e.span.start) + e.newText + out.slice(e.span.end);
  return out;
}
