/**
 * The engine's entry points. Data flows one way:
 *   text → syntax tree (syntax/) → node inputs (readers/) → machine model (model/)
 *   → rules (rules/) → diagnostics; and model → argv / libvirt XML (emit/).
 * Nothing here imports vscode or the LSP libraries.
 */
import { Diagnostic } from './diagnostics';
import { NodeModel } from './model/model';
import { buildNode, NodeInput } from './model/build';
import { ClusterContext, HostProbe, makeDiagnostic, NodeContext } from './rules/rule';
import { RULES } from './rules/index';
import { readQemuCommandLine, ReadResult } from './readers/qemu-cmdline';
import { readLibvirtDomain } from './readers/libvirt';
import { readTopology, TopologyInfo } from './readers/topology';
import { detectKind, DocumentKind } from './readers/detect';
import { parseXml } from './syntax/xml';
import { computeLayout, NodeLayout } from './layout/index';

export type { Diagnostic } from './diagnostics';
export type { NodeModel } from './model/model';
export { detectKind } from './readers/detect';
export type { DocumentKind } from './readers/detect';

export interface AnalyzedDocument {
  source: string;
  kind: DocumentKind;
  nodes: NodeModel[];
  /** Diagnostics of this document (readers, node rules and cluster rules about it). */
  diagnostics: Diagnostic[];
  topology?: TopologyInfo;
}

export const NO_HOST: HostProbe = { stat: () => undefined };

/** The nodes named (all when no name is given); the message names the ones there are. */
export function selectNodes(r: AnalyzedDocument, name: string | undefined, what: string): { nodes: NodeModel[] } | { error: string } {
  if (name === undefined) return { nodes: r.nodes };
  const nodes = r.nodes.filter((n) => n.name === name);
  return nodes.length ? { nodes } : { error: `no node '${name}' in ${what} (nodes: ${r.nodes.map((n) => n.name).join(', ') || 'none'})` };
}

function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : path.slice(0, i);
}

/** Read one document into node inputs, whatever its kind. */
export function readDocument(text: string, source: string, kind = detectKind(text, source)): ReadResult & { kind: DocumentKind; topology?: TopologyInfo } {
  const baseDir = dirOf(source);
  if (kind === 'topology' || kind === 'libvirt' || kind === 'xml') {
    const doc = parseXml(text);
    if (kind === 'topology') return { kind, ...readTopology(doc, text, source, baseDir) };
    if (kind === 'libvirt') return { kind, ...readLibvirtDomain(doc, text, source, baseDir) };
    return { kind, nodes: [], diagnostics: [] };
  }
  return { kind, ...readQemuCommandLine(text, source, baseDir) };
}

export interface AnalyzeOptions {
  /** Also report the information rules (layout-placement: where the large regions land). */
  information?: boolean;
}

/**
 * Nodes made from the same text (a <node count="40">) have the same layout,
 * down to the source ranges the layout rules report on: one computation.
 */
type LayoutCache = Map<string, NodeLayout>;

function layoutOf(node: NodeModel, cache: LayoutCache): NodeLayout {
  const key =
    node.source +
    '\u0002' +
    node.args
      .map((a) => {
        const sp = a.value?.span();
        return `${a.name}\u0000${a.value?.text ?? ''}\u0000${sp?.start}-${sp?.end}`;
      })
      .join('\u0001');
  let l = cache.get(key);
  if (!l) {
    l = computeLayout(node);
    cache.set(key, l);
  }
  return l.name === node.name ? l : { ...l, name: node.name };
}

function runNodeRules(node: NodeModel, host: HostProbe, out: Diagnostic[], opts: AnalyzeOptions, layouts: LayoutCache) {
  let layout: NodeLayout | undefined;
  for (const rule of RULES) {
    if (!rule.check || (rule.optIn && !opts.information)) continue;
    const ctx: NodeContext = { node, host, layout: () => (layout ??= layoutOf(node, layouts)), report: (f) => out.push(makeDiagnostic(rule, f, node.name)) };
    try {
      rule.check(ctx);
    } catch (e) {
      out.push({ code: 'internal-error', severity: 'warning', span: node.nameSpan, message: `rule ${rule.code} failed: ${(e as Error).message}`, node: node.name });
    }
  }
}

/**
 * Analyze several documents that together form a cluster (one topology file,
 * or several per-node command lines / domain XMLs checked together).
 */
/** One answer per path for the length of one analysis (a 40-node cluster asks about one fabric file 40 times). */
function memoHost(host: HostProbe): HostProbe {
  const seen = new Map<string, ReturnType<HostProbe['stat']>>();
  return {
    stat(path) {
      if (!seen.has(path)) seen.set(path, host.stat(path));
      return seen.get(path);
    },
  };
}

export function analyzeDocuments(docs: { text: string; source: string; kind?: DocumentKind }[], probe: HostProbe = NO_HOST, opts: AnalyzeOptions = {}): AnalyzedDocument[] {
  const host = memoHost(probe);
  const layouts: LayoutCache = new Map();
  const results: AnalyzedDocument[] = docs.map((d) => {
    const read = readDocument(d.text, d.source, d.kind);
    const nodes = read.nodes.map((n: NodeInput) => buildNode(n));
    const diagnostics = [...read.diagnostics];
    for (const n of nodes) runNodeRules(n, host, diagnostics, opts, layouts);
    if (read.kind === 'topology') for (const x of diagnostics) x.fixes = x.fixes?.filter(fitsXmlValue);
    return { source: d.source, kind: read.kind, nodes, diagnostics: dedupe(diagnostics), topology: read.topology };
  });
  const all = results.flatMap((r) => r.nodes);
  const bySource = new Map(results.map((r) => [r.source, r]));
  for (const rule of RULES) {
    if (!rule.checkCluster) continue;
    const ctx: ClusterContext = {
      nodes: all,
      host,
      report: (node, f) => {
        const target = bySource.get(node?.source ?? results[0]?.source) ?? results[0];
        target.diagnostics.push(makeDiagnostic(rule, f, node?.name));
      },
    };
    rule.checkCluster(ctx);
  }
  return results;
}

export function analyzeDocument(text: string, source: string, host: HostProbe = NO_HOST, kind?: DocumentKind, opts: AnalyzeOptions = {}): AnalyzedDocument {
  return analyzeDocuments([{ text, source, kind }], host, opts)[0];
}

/**
 * Rules write fixes in QEMU option syntax. In a topology file the values they
 * point at are attribute values, so only fixes that replace a value with a
 * plain value (round a size up, change an id) still make sense there.
 */
function fitsXmlValue(f: { edits: { span: { start: number; end: number }; newText: string }[] }): boolean {
  return f.edits.every((e) => e.span.end > e.span.start && !/[,=<>&"']/.test(e.newText));
}

/**
 * A topology expands one template into many nodes: the same finding at the
 * same place would repeat once per node. Keep the first, and say how many
 * nodes share it.
 */
function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Map<string, { d: Diagnostic; nodes: string[] }>();
  const out: Diagnostic[] = [];
  for (const d of ds) {
    const key = `${d.code}|${d.span.start}|${d.span.end}|${d.message.replace(d.node ?? '\u0000', '')}`;
    const prev = seen.get(key);
    if (prev) {
      if (d.node) prev.nodes.push(d.node);
      continue;
    }
    seen.set(key, { d, nodes: d.node ? [d.node] : [] });
    out.push(d);
  }
  for (const { d, nodes } of seen.values()) {
    if (nodes.length > 1) d.message += ` (nodes ${nodes.length > 4 ? `${nodes.slice(0, 3).join(', ')} … ${nodes[nodes.length - 1]}, ${nodes.length} in all` : nodes.join(', ')})`;
  }
  return out;
}
