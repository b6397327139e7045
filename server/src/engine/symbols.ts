/**
 * Ids and the outline of an analyzed document, for editors: where each id is
 * defined and referenced (with exact source spans), and the document's
 * symbols (cluster → nodes → regions/devices). Pure: text and the engine's
 * analysis in, spans out; the LSP server converts them.
 *
 * Two id namespaces: `id` (QEMU ids: -object/-device ids, topology fabric,
 * backend and CXL component ids, which all become QEMU ids) and `template`
 * (topology templates).
 */
import type { AnalyzedDocument } from './index';
import { NodeModel, prop, Prop } from './model/model';
import { attr, childElements, parseXml, XmlElement } from './syntax/xml';
import { parseKeyvals } from './syntax/qemu-args';
import { Span } from './text/source';
import { human } from './text/sizes';
import { summaryOf } from './shapes';

export type IdNamespace = 'id' | 'template';

/** What a definition defines (drives completion: memdev= wants backends, bus= devices). */
export type IdKind = 'backend' | 'object' | 'device' | 'host-bridge' | 'port' | 'fabric' | 'template' | 'hostdev' | 'egm' | 'chardev';

export interface IdOccurrence {
  name: string;
  ns: IdNamespace;
  span: Span;
  /** A definition (id=, <fabric id>) rather than a reference. */
  def: boolean;
  /** For definitions: what is defined. */
  kind?: IdKind;
  /** For references: the key or attribute that refers (memdev, bus, targets, fabric, template, pci-dev, ...). */
  role?: string;
}

export type OutlineKind = 'cluster' | 'node' | 'fabric' | 'template' | 'region' | 'device' | 'object' | 'window';

export interface OutlineSymbol {
  name: string;
  detail?: string;
  kind: OutlineKind;
  /** Whole extent. */
  span: Span;
  /** The name's extent (inside span). */
  selection: Span;
  children: OutlineSymbol[];
}

export interface SymbolIndex {
  occurrences: IdOccurrence[];
  outline: OutlineSymbol[];
}

/** Property keys whose value is the id of another object or device, and what they may name (a topology fabric is a backend of every node that attaches it). */
export const REF_KEYS: Record<string, IdKind[]> = {
  memdev: ['backend', 'fabric'],
  'persistent-memdev': ['backend', 'fabric'],
  'volatile-memdev': ['backend', 'fabric'],
  lsa: ['backend', 'fabric'],
  'memory-backend': ['backend', 'fabric'],
  bus: ['device', 'host-bridge', 'port'],
  chardev: ['chardev'],
  'pci-dev': ['device', 'hostdev'],
};

const BRIDGE_DRIVERS = new Set(['pxb-cxl', 'pxb-pcie', 'pxb']);
const PORT_DRIVERS = new Set(['cxl-rp', 'cxl-upstream', 'cxl-downstream', 'pcie-root-port', 'pci-bridge', 'x3130-upstream', 'xio3130-downstream']);

function deviceKind(driver: string): IdKind {
  if (BRIDGE_DRIVERS.has(driver)) return 'host-bridge';
  if (PORT_DRIVERS.has(driver)) return 'port';
  return 'device';
}

function inside(s: Span, r: Span): boolean {
  return s.start >= r.start && s.end <= r.end;
}

/** The root element of the tree an analysis of a topology read text with, if it kept one (a node or a fabric leads to it). */
export function analysisRoot(doc: AnalyzedDocument, text: string): XmlElement | undefined {
  let el: XmlElement | undefined = doc.topology?.nodes[0]?.element ?? doc.topology?.fabrics[0]?.element;
  while (el?.parent) el = el.parent;
  // Only trust a tree that spans this very text.
  return el && el.span.end <= text.length && text.startsWith('<' + el.name, el.span.start) ? el : undefined;
}

/** The <cluster> element of an analyzed topology: the analysis's own tree when it has one (no second parse). */
function topologyRoot(doc: AnalyzedDocument, text: string): XmlElement | undefined {
  return analysisRoot(doc, text) ?? parseXml(text).root;
}

/**
 * Whether node i of a topology can have ids written in a <qemu> text: only
 * if its <node> or its template holds one (most nodes of a large cluster do
 * not, and reading their models costs more than anything else here).
 * (Every <qemu> is in a <node> or a <template> here: the caller checks.)
 */
function qemuHolders(doc: AnalyzedDocument, root: XmlElement | undefined, qemuTexts: Span[]): (i: number) => boolean {
  if (!qemuTexts.length) return () => false;
  const info = doc.topology?.nodes ?? [];
  const templates = new Map<string, XmlElement>();
  for (const c of root?.children ?? []) if (c.kind === 'element' && c.local === 'template') templates.set(attr(c, 'id')?.value.text ?? '', c);
  const holds = (s: Span) => {
    let lo = 0;
    let hi = qemuTexts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (qemuTexts[mid].start < s.start) lo = mid + 1;
      else hi = mid;
    }
    return lo < qemuTexts.length && qemuTexts[lo].end <= s.end;
  };
  return (i) => {
    const x = info[i];
    if (!x || x.name !== doc.nodes[i]?.name) return true;
    if (holds(x.element.span)) return true;
    const t = attr(x.element, 'template')?.value.text;
    const te = t !== undefined ? templates.get(t) : undefined;
    return te !== undefined && holds(te.span);
  };
}

/** Sorted, disjoint spans: does one of them hold s? (binary search) */
function insideAny(s: Span, sorted: Span[]): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = sorted[mid];
    if (r.end < s.start) lo = mid + 1;
    else if (r.start > s.start) hi = mid - 1;
    else return inside(s, r);
  }
  return false;
}

export interface CollectOptions {
  /** Only definitions, no references and no outline (what completion needs; cheaper). */
  definitionsOnly?: boolean;
}

export function collectSymbols(doc: AnalyzedDocument, text: string, opts: CollectOptions = {}): SymbolIndex {
  const occ: IdOccurrence[] = [];
  const seen = new Set<string>();
  const defsOnly = opts.definitionsOnly === true;
  /** Keep only occurrences whose span is the id as written (not generated text). */
  const add = (o: IdOccurrence, allowed?: Span[]) => {
    if (defsOnly && !o.def) return;
    if (!o.name || o.span.end <= o.span.start) return;
    if (text.slice(o.span.start, o.span.end) !== o.name) return;
    if (allowed && !insideAny(o.span, allowed)) return;
    const key = `${o.span.start}:${o.span.end}:${o.def}`;
    if (seen.has(key)) return;
    seen.add(key);
    occ.push(o);
  };
  const outline: OutlineSymbol[] = [];

  if (doc.kind === 'topology') {
    const root = topologyRoot(doc, text);
    const qemuTexts: Span[] = [];
    let strayQemu = false;
    if (root) {
      const walk = (el: XmlElement) => {
        topologyElement(el, add);
        if (el.local === 'qemu') {
          for (const c of el.children) if (c.kind === 'text') qemuTexts.push(c.span);
          if (el.parent?.local !== 'node' && el.parent?.local !== 'template') strayQemu = true;
        }
        for (const c of el.children) if (c.kind === 'element') walk(c);
      };
      walk(root);
    }
    qemuTexts.sort((a, b) => a.start - b.start);
    const mayHold = strayQemu ? () => true : qemuHolders(doc, root, qemuTexts);
    doc.nodes.forEach((n, i) => {
      if (mayHold(i)) for (const o of (defsOnly ? definitionsIn : occurrencesIn)(n)) add(o, qemuTexts);
    });
    if (root && !defsOnly) outline.push(topologyOutline(root, doc, text));
  } else {
    for (const n of doc.nodes) modelOccurrences(n, (o) => add(o), defsOnly);
    if (!defsOnly) for (const n of doc.nodes) outline.push(nodeOutline(n, text));
  }
  occ.sort((a, b) => a.span.start - b.span.start);
  return { occurrences: occ, outline };
}

/** The occurrence (definition or reference) whose span holds offset (end inclusive, for a cursor right after an id). */
export function occurrenceAt(index: SymbolIndex, offset: number): IdOccurrence | undefined {
  return index.occurrences.find((o) => o.span.start <= offset && offset < o.span.end) ?? index.occurrences.find((o) => o.span.end === offset);
}

export function occurrencesOf(index: SymbolIndex, name: string, ns: IdNamespace): IdOccurrence[] {
  return index.occurrences.filter((o) => o.name === name && o.ns === ns);
}

/** Ids defined in the document, optionally only of some kinds (deduplicated by name). */
export function definedIds(index: SymbolIndex, kinds?: IdKind[], ns: IdNamespace = 'id'): { name: string; kind: IdKind }[] {
  const out = new Map<string, IdKind>();
  for (const o of index.occurrences) {
    if (!o.def || o.ns !== ns || !o.kind) continue;
    if (kinds && !kinds.includes(o.kind)) continue;
    if (!out.has(o.name)) out.set(o.name, o.kind);
  }
  return [...out].map(([name, kind]) => ({ name, kind }));
}

function topologyElement(el: XmlElement, add: (o: IdOccurrence) => void) {
  const a = (n: string) => attr(el, n);
  const def = (n: string, kind: IdKind, ns: IdNamespace = 'id') => {
    const x = a(n);
    if (x) add({ name: x.value.text, ns, span: x.value.span(), def: true, kind });
  };
  const ref = (n: string, ns: IdNamespace = 'id') => {
    const x = a(n);
    if (x) add({ name: x.value.text, ns, span: x.value.span(), def: false, role: n });
  };
  switch (el.local) {
    case 'fabric':
      def('id', 'fabric');
      break;
    case 'attach':
      ref('fabric');
      break;
    case 'template':
      def('id', 'template', 'template');
      break;
    case 'node':
      ref('template', 'template');
      break;
    case 'backend':
      def('id', 'backend');
      break;
    case 'host-bridge':
      def('id', 'host-bridge');
      break;
    case 'root-port':
    case 'downstream':
    case 'switch':
      def('id', 'port');
      break;
    case 'type3':
      def('id', 'device');
      break;
    case 'hostdev':
      def('id', 'hostdev');
      break;
    case 'egm':
      def('id', 'egm');
      ref('pci-dev');
      break;
    case 'window': {
      const t = a('targets');
      if (!t) break;
      const re = /\S+/g;
      for (let r = re.exec(t.value.text); r; r = re.exec(t.value.text)) {
        const m = t.value.slice(r.index, r.index + r[0].length);
        add({ name: m.text, ns: 'id', span: m.span(), def: false, role: 'targets' });
      }
      break;
    }
  }
}

/**
 * A node's id occurrences (and its definitions alone), kept per model: nodes of
 * one shape derive them from their first node's, not from their own options
 * (engine/shapes.ts).
 */
const occurrencesSummary = (defsOnly: boolean) =>
  summaryOf((n: NodeModel): IdOccurrence[] => {
    const out: IdOccurrence[] = [];
    modelOccurrences(n, (o) => out.push(o), defsOnly);
    return out;
  });
const occurrencesIn = occurrencesSummary(false);
const definitionsIn = occurrencesSummary(true);

/** Ids in QEMU options, whatever document they came from. */
function modelOccurrences(node: NodeModel, add: (o: IdOccurrence) => void, defsOnly = false) {
  const refProps = (props: Prop[]) => {
    if (defsOnly) return;
    for (const p of props) if (REF_KEYS[p.key] && !p.bare) add({ name: p.value.text, ns: 'id', span: p.value.span(), def: false, role: p.key });
  };
  for (const o of node.objects) {
    if (o.id) add({ name: o.id.text, ns: 'id', span: o.id.span(), def: true, kind: o.qomType.startsWith('memory-backend-') ? 'backend' : 'object' });
    refProps(o.props);
  }
  for (const d of node.devices) {
    if (d.id) add({ name: d.id.text, ns: 'id', span: d.id.span(), def: true, kind: deviceKind(d.driver) });
    refProps(d.props);
  }
  if (!defsOnly) {
    for (const n of node.numa) if (n.memdev) add({ name: n.memdev.text, ns: 'id', span: n.memdev.span(), def: false, role: 'memdev' });
    for (const w of node.fmws) for (const t of w.targets) add({ name: t.m.text, ns: 'id', span: t.m.span(), def: false, role: 'targets' });
    refProps(node.machine.props);
    for (const e of node.egm) if (e.pciDev) add({ name: e.pciDev.text, ns: 'id', span: e.pciDev.span(), def: false, role: 'pci-dev' });
  }
  for (const a of node.args) {
    if (a.name !== 'chardev' || !a.value) continue;
    const id = parseKeyvals(a.value, 'backend').find((k) => k.key === 'id');
    if (id) add({ name: id.value.text, ns: 'id', span: id.value.span(), def: true, kind: 'chardev' });
  }
}

function sizeDetail(p: Prop[], key = 'size'): string | undefined {
  return prop(p, key)?.value.text;
}

/** Children of a node: its memory regions (backends) and devices. */
function nodeChildren(node: NodeModel, text: string, within?: Span): OutlineSymbol[] {
  const out: OutlineSymbol[] = [];
  const ok = (s: Span) => s.end >= s.start && s.end <= text.length && (!within || inside(s, within));
  for (const o of node.objects) {
    const span = o.m.span();
    const sel = o.id && o.id.text && text.slice(o.id.span().start, o.id.span().end) === o.id.text ? o.id.span() : span;
    if (!ok(span) || !inside(sel, span)) continue;
    const size = sizeDetail(o.props);
    out.push({ name: o.id?.text || o.qomType, detail: `${o.qomType}${size ? ` ${size}` : ''}`, kind: o.qomType.startsWith('memory-backend-') ? 'region' : 'object', span, selection: sel, children: [] });
  }
  for (const d of node.devices) {
    const span = d.m.span();
    const sel = d.id && text.slice(d.id.span().start, d.id.span().end) === d.id.text ? d.id.span() : span;
    if (!ok(span) || !inside(sel, span)) continue;
    out.push({ name: d.id?.text || d.driver, detail: d.driver, kind: 'device', span, selection: sel, children: [] });
  }
  node.fmws.forEach((w) => {
    const spans = w.keys.map((k) => k.keySpan).concat(w.keys.map((k) => k.value.span()));
    if (!spans.length) return;
    const span = { start: Math.min(...spans.map((s) => s.start)), end: Math.max(...spans.map((s) => s.end)) };
    if (!ok(span)) return;
    out.push({ name: `cxl-fmw.${w.index}`, detail: `CXL window${w.size ? ` ${w.size.m.text}` : ''} → ${w.targets.map((t) => t.m.text).join(' ')}`, kind: 'window', span, selection: span, children: [] });
  });
  out.sort((a, b) => a.span.start - b.span.start);
  return out;
}

function nodeOutline(node: NodeModel, text: string): OutlineSymbol {
  const spans: Span[] = [node.nameSpan];
  for (const a of node.args) {
    const s = a.option.span();
    if (s.end <= text.length) spans.push(s);
    if (a.value) {
      const v = a.value.span();
      if (v.end <= text.length) spans.push(v);
    }
  }
  const span = { start: Math.min(...spans.map((s) => s.start)), end: Math.max(...spans.map((s) => s.end)) };
  return { name: node.name, detail: `${node.kind} node`, kind: 'node', span, selection: node.nameSpan, children: nodeChildren(node, text) };
}

function topologyOutline(root: XmlElement, doc: AnalyzedDocument, text: string): OutlineSymbol {
  const nameA = attr(root, 'name');
  const cluster: OutlineSymbol = {
    name: nameA?.value.text || 'cluster',
    detail: `cluster, ${doc.nodes.length} node(s)`,
    kind: 'cluster',
    span: root.span,
    selection: nameA ? nameA.valueSpan : root.nameSpan,
    children: [],
  };
  for (const f of childElements(root, 'fabric')) {
    const id = attr(f, 'id');
    const size = attr(f, 'size')?.value.text;
    cluster.children.push({ name: id?.value.text || 'fabric', detail: `fabric${size ? ` ${size}` : ''}`, kind: 'fabric', span: f.span, selection: id ? id.valueSpan : f.nameSpan, children: [] });
  }
  for (const t of childElements(root, 'template')) {
    const id = attr(t, 'id');
    cluster.children.push({ name: id?.value.text || 'template', detail: 'template', kind: 'template', span: t.span, selection: id ? id.valueSpan : t.nameSpan, children: [] });
  }
  const info = doc.topology?.nodes ?? [];
  doc.nodes.forEach((n, i) => {
    const el = info[i]?.element;
    const span = el?.span ?? n.nameSpan;
    const sel = inside(n.nameSpan, span) ? n.nameSpan : el?.nameSpan ?? span;
    const memory = n.memory.size?.parsed.ok ? human(n.memory.size.parsed.value) : undefined;
    cluster.children.push({
      name: n.name,
      detail: ['node', n.machine.type?.text, memory].filter(Boolean).join(' '),
      kind: 'node',
      span,
      selection: sel,
      children: nodeChildren(n, text, span),
    });
  });
  cluster.children.sort((a, b) => a.span.start - b.span.start);
  return cluster;
}
