import { mapSpan, OffsetMap, Span } from './text/source';

export type Severity = 'error' | 'warning' | 'information' | 'hint';

export interface RelatedInfo {
  span: Span;
  message: string;
  /** Another document (cluster-wide findings); absent for the same document. */
  source?: string;
}

export interface TextEdit {
  span: Span;
  newText: string;
}

export interface Fix {
  title: string;
  edits: TextEdit[];
}

/** One finding, in document offsets. `code` is stable: scripts and editors key on it. */
export interface Diagnostic {
  code: string;
  severity: Severity;
  span: Span;
  message: string;
  related?: RelatedInfo[];
  fixes?: Fix[];
  /** Node of the cluster the finding is about, when there is more than one. */
  node?: string;
  /** Document the span is in; set on cluster-wide findings. */
  source?: string;
}

/**
 * A copy of d with its offsets mapped through m (engine/incremental.ts): its
 * span, its fixes' edits, and its related information in the same document
 * (no source, or this source).
 */
export function mapDiagnostic(d: Diagnostic, m: OffsetMap, source?: string): Diagnostic {
  const out: Diagnostic = { ...d, span: mapSpan(d.span, m) };
  if (d.related) out.related = d.related.map((r) => (r.source === undefined || r.source === source ? { ...r, span: mapSpan(r.span, m) } : r));
  if (d.fixes) out.fixes = d.fixes.map((f) => ({ ...f, edits: f.edits.map((e) => ({ ...e, span: mapSpan(e.span, m) })) }));
  return out;
}
