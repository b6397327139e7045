/**
 * The outline (document symbols): cluster → fabrics, templates, nodes →
 * regions, devices, CXL windows; for command lines and domain XML, one node
 * each. Every selection lies inside its symbol's span, as editors require.
 */
import { OutlineKind, OutlineSymbol } from '../symbols';
import { Span } from '../text/source';
import { EditorAnalysis } from './analysis';

export interface OutlineItem {
  name: string;
  detail?: string;
  kind: OutlineKind;
  span: Span;
  selection: Span;
  children: OutlineItem[];
}

export function outline(a: EditorAnalysis): OutlineItem[] {
  const conv = (o: OutlineSymbol): OutlineItem => ({
    name: o.name || '?',
    detail: o.detail,
    kind: o.kind,
    span: o.span,
    selection: o.selection.start >= o.span.start && o.selection.end <= o.span.end ? o.selection : o.span,
    children: o.children.map(conv),
  });
  return a.symbols()?.outline.map(conv) ?? [];
}
