/**
 * The engine's entry points. Data flows one way:
 *   text → syntax tree (syntax/) → node inputs (readers/) → machine model (model/)
 *   → rules (rules/) → diagnostics; and model → argv / libvirt XML (emit/).
 * Nothing here imports vscode or the LSP libraries.
 */
import { Diagnostic, mapDiagnostic } from './diagnostics';
import { NodeModel } from './model/model';
import { buildNode, NodeInput } from './model/build';
import { ClusterContext, HostProbe, makeDiagnostic, NodeContext } from './rules/rule';
import { RULES } from './rules/index';
import { readQemuCommandLine, ReadResult } from './readers/qemu-cmdline';
import { readLibvirtDomain } from './readers/libvirt';
import { NodeElementRead, readNodeElement, readTopology, TopologyInfo, TopologyScope } from './readers/topology';
import { diffTexts, factsHold, HostFacts, mapDeep, recordingHost, Region, Regions, Unmappable } from './incremental';
import { XmlDocument, XmlElement } from './syntax/xml';
import { OffsetMap } from './text/source';
import { canProve, derive, deriveFacts, derivedOffsets, deriveUnit, mapModel, NodeTwins, NotShareable, offsetsOf, sameData, sameSummaries, Shape, shapeOf } from './shapes';
import { detectKind, DocumentKind } from './readers/detect';
import { parseXml } from './syntax/xml';
import { keepOn, keptOn } from './kept';
import { computeLayout, NodeLayout } from './layout/index';
import { layoutQemu, profileFor, QemuProfile, QemuProfiles } from './qemu/profile';
import { QemuVerdict, verdictDiagnostics } from './qemu/verdict';

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
  /** A topology's <node> elements this analysis read and checked, and those it derived from another of their shape (engine/shapes.ts). Not enumerable. */
  readonly shapes?: { read: number; derived: number };
}

export const NO_HOST: HostProbe = { stat: () => undefined };

/** A libvirt connection URI that names another host (qemu+ssh://user@lab2/system), not this one (qemu:///system). */
export function remoteHostUri(uri: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/]/.test(uri);
}

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
  /**
   * Reuse the previous analysis of the same document (same source, kind and
   * options) where its text did not change (default true): a change inside
   * one <node> of a topology re-reads and re-checks that node only. The
   * result is the same as an analysis from scratch (test/incremental.test.ts).
   */
  incremental?: boolean;
  /**
   * The QEMU to judge for: the profile of the binary the user runs (host/qemu-profile.ts),
   * or a bundled one; or one per architecture ({ x86_64, aarch64 }). Each node
   * is judged with the profile of its own architecture (NodeModel.arch:
   * qemu-system-aarch64, <type arch='aarch64'>); an architecture without one
   * gets the bundled profile of that architecture nearest in version
   * (qemu/profile.ts profileFor). Default: the bundled QEMU 7.2 profiles.
   */
  qemu?: QemuProfiles;
  /**
   * Share one layout among nodes whose options the layout reads alike (default
   * true). Off, a layout is shared only by nodes of the same option text at the
   * same place (a <node count=…>): for tests that compare the two.
   */
  shareLayouts?: boolean;
  /**
   * Read and check one <node> of each shape (engine/shapes.ts: alike but for
   * the node's name and serial numbers) and derive the others (default true).
   * Off: every node is read and checked (for tests that compare the two).
   */
  shareShapes?: boolean;
}

/** A number per profile object, for keys of kept analyses. */
const profileIds = new WeakMap<object, number>();
/** Stands for AnalyzeOptions.qemu left out (the bundled defaults) in keys. */
const NO_QEMU = {};
let profileCount = 0;
function profileId(q: object): number {
  let id = profileIds.get(q);
  if (id === undefined) profileIds.set(q, (id = profileCount++));
  return id;
}

/**
 * Nodes whose options are the same text (a <node count="40">, or forty
 * <node> elements written out alike) have the same layout: one computation.
 * The key leaves out where the options are and the option values the layout
 * never reads (LAYOUT_BLIND); the layout's functions point at the node's own
 * devices again (functions[i].source) when another node uses it.
 * test/layout-share.test.ts checks that every rule finds the same with and
 * without sharing, on every example and generated topology.
 */
type LayoutCache = Map<string, { layout: NodeLayout; node: NodeModel; devices: number[] }>;

/** Option properties the layout does not read: backing file paths, serial numbers. */
const LAYOUT_BLIND = /(^|,)(mem-path|sn|serial|lsa-path)=[^,]*/g;
/** Options the layout does not read at all. */
const LAYOUT_BLIND_OPTIONS = new Set(['name', 'pidfile', 'D', 'chardev', 'serial', 'monitor', 'qmp', 'mon']);

function layoutOf(node: NodeModel, cache: LayoutCache, qemu: QemuProfile, share: boolean): NodeLayout {
  let key = `${profileId(qemu)}\u0003${node.source}\u0002`;
  for (const a of node.args) {
    if (LAYOUT_BLIND_OPTIONS.has(a.name)) continue;
    const text = a.value?.text ?? '';
    // (every LAYOUT_BLIND property ends in path=, sn= or serial=: most options have none, and skip the regular expression)
    if (share) key += `${a.name}\u0000${text.includes('path=') || text.includes('sn=') || text.includes('serial=') ? text.replace(LAYOUT_BLIND, '$1$2=') : text}\u0001`;
    else {
      const sp = a.value?.span();
      key += `${a.name}\u0000${text}\u0000${sp?.start}-${sp?.end}\u0001`;
    }
  }
  let c = cache.get(key);
  if (!c) {
    const layout = computeLayout(node, { qemu: layoutQemu(qemu) });
    const index = new Map(node.devices.map((d, i) => [d, i]));
    c = { layout, node, devices: layout.functions.map((f) => (f.source ? index.get(f.source) ?? -1 : -1)) };
    cache.set(key, c);
  }
  const l = c.layout;
  if (c.node === node) return l;
  // Another node's layout: its functions' sources are this node's devices.
  const functions = l.functions.map((f, i) => (f.source ? { ...f, source: node.devices[c!.devices[i]] } : f));
  return { ...l, name: node.name, functions };
}

function runNodeRules(node: NodeModel, thisHost: HostProbe, out: Diagnostic[], opts: AnalyzeOptions, layouts: LayoutCache) {
  let layout: NodeLayout | undefined;
  // A node on another host (host=qemu+ssh://…) maps that host's files: this host's file system says nothing of them.
  const host = node.host && remoteHostUri(node.host.text) ? NO_HOST : thisHost;
  const qemu = profileFor(opts.qemu, node.arch);
  // (one context for every rule: a rule reports while it runs, never after)
  let rule = RULES[0];
  const ctx: NodeContext = { node, host, qemu, layout: () => (layout ??= layoutOf(node, layouts, qemu, opts.shareLayouts !== false)), report: (f) => out.push(makeDiagnostic(rule, f, node.name)) };
  for (rule of RULES) {
    if (!rule.check || (rule.optIn && !opts.information)) continue;
    // A rule of one family of machines (the x86 PC's layout, SeaBIOS, e820) stays silent on other nodes.
    if (rule.arches && !rule.arches.includes(node.arch)) continue;
    try {
      rule.check(ctx);
    } catch (e) {
      out.push({ code: 'internal-error', severity: 'warning', span: node.nameSpan, message: `rule ${rule.code} failed: ${(e as Error).message}`, node: node.name });
    }
  }
}

/**
 * One answer per path for the length of one analysis (a 40-node cluster asks
 * about one fabric file 40 times). A path in a directory that does not exist
 * (or is no directory) does not exist either: one question for the directory
 * answers all its files (a 1 MB topology names thousands of backing files
 * under a few directories that are not there yet).
 */
function memoHost(host: HostProbe): HostProbe {
  const seen = new Map<string, ReturnType<HostProbe['stat']>>();
  const stat = (path: string): ReturnType<HostProbe['stat']> => {
    if (seen.has(path)) return seen.get(path);
    let r: ReturnType<HostProbe['stat']>;
    const slash = path.lastIndexOf('/');
    const dir = slash > 0 ? path.slice(0, slash) : undefined;
    // (Linux resolves '..' after the directory before it: a missing directory fails those too.)
    const d = dir !== undefined && path.charCodeAt(0) === 47 ? stat(dir) : null;
    if (d !== null && (d === undefined || !d.isDirectory)) r = undefined;
    else r = host.stat(path);
    seen.set(path, r);
    return r;
  };
  const gen = host.generation?.bind(host);
  return { stat, ...(gen ? { generation: gen } : {}), ...(host.real ? { real: true } : {}) };
}

/**
 * Analyze several documents. Cluster rules see each topology file as one
 * cluster, and the per-node command lines / domain XMLs given together as
 * another (two topology files are two clusters, even when their ids match).
 */
export function analyzeDocuments(docs: { text: string; source: string; kind?: DocumentKind }[], probe: HostProbe = NO_HOST, opts: AnalyzeOptions = {}): AnalyzedDocument[] {
  const host = memoHost(probe);
  const layouts: LayoutCache = new Map();
  const results: AnalyzedDocument[] = docs.map((d) => {
    const kind = d.kind ?? detectKind(d.text, d.source);
    if (kind === 'topology') return analyzeTopology(d.text, d.source, host, opts, layouts);
    const read = readDocument(d.text, d.source, kind);
    const nodes = read.nodes.map((n: NodeInput) => buildNode(n));
    const diagnostics = [...read.diagnostics];
    for (const n of nodes) runNodeRules(n, host, diagnostics, opts, layouts);
    return { source: d.source, kind: read.kind, nodes, diagnostics: dedupe(diagnostics), topology: read.topology };
  });
  // A topology file is a cluster of its own; the per-node files (command lines, domain XML) given together form one.
  const groups = results.filter((r) => r.kind === 'topology').map((r) => [r]);
  const loose = results.filter((r) => r.kind !== 'topology');
  if (loose.length) groups.push(loose);
  for (const group of groups) {
    // (A topology's models as its analysis keeps them, in region offsets: what they report is mapped back.)
    const all = group.flatMap((r) => viewOf(r)?.models ?? r.nodes);
    const bySource = new Map(group.map((r) => [r.source, r]));
    for (const rule of RULES) {
      if (!rule.checkCluster) continue;
      const ctx: ClusterContext = {
        nodes: all,
        host,
        qemu: profileFor(opts.qemu, 'x86_64'),
        report: (node, f) => {
          const target = bySource.get(node?.source ?? group[0].source) ?? group[0];
          target.diagnostics.push(placeFinding(makeDiagnostic(rule, f, node?.name), target));
        },
      };
      rule.checkCluster(ctx);
    }
  }
  return results;
}

// ------------------------------------------------------------------ topologies, node by node

/**
 * A <node> element's share of an analysis: its reading, and for each node it
 * stands for the model and the node rules' findings. Kept between analyses
 * of a document while the element, its template and the fabrics are the
 * same text and the host facts the rules used still hold. Everything in it
 * is in region offsets (engine/incremental.ts), so a kept unit is never
 * copied when its text moves.
 */
interface NodeUnit {
  read: NodeElementRead;
  /** Per expansion: the model and the node rules' findings (unset past a repeated name). */
  models: (NodeModel | undefined)[];
  rules: (Diagnostic[] | undefined)[];
  /** The regions of the element, its template and every fabric (empty: never kept). */
  deps: Region[];
  /** The element's template attribute (the same while the element's region is). */
  template: string | undefined;
  /** Every region an offset of the unit lies in (it is kept only while all are there): touchedOf. */
  touched: Region[] | undefined;
  /**
   * For a node derived in the first analysis of a text: how to find them, when
   * the next analysis first asks (a first analysis moves nothing, so it needs
   * them for no node; opening a 2000-node document does not wait for them).
   */
  touchedLater?: () => Region[];
  /** Everything else it depends on. */
  context: string;
  facts: HostFacts;
  /** When factsHold was last seen true: the host's generation then (engine/rules/rule.ts HostProbe). */
  factsGen?: number;
  /** Its models in text offsets for the last placement of its regions (reused while they stay there). */
  placedModels?: { starts: number[]; models: (NodeModel | undefined)[] };
}

/** The regions a unit touches (found now, for a unit derived in the first analysis of its text). */
function touchedOf(u: NodeUnit): Region[] {
  if (!u.touched) {
    u.touched = u.touchedLater!();
    u.touchedLater = undefined;
  }
  return u.touched;
}

interface TopologyState {
  text: string;
  doc: XmlDocument;
  regions: Regions;
  /** By the region of their <node> element. */
  units: Map<Region, NodeUnit>;
}

/** How many previous analyses are kept, and how much text they may hold together (the latest is always kept). */
const MAX_STATES = 8;
const MAX_STATE_CHARS = 3 << 20;
/** Previous analyses, by source, kind and options (least recently used first). */
const states = new Map<string, TopologyState>();

/** Forget every previous analysis (the next ones start from scratch). */
export function resetAnalysisCache(): void {
  states.clear();
}

/** Forget the previous analyses of one document (an editor closed it). */
export function forgetAnalysis(source: string): void {
  for (const k of [...states.keys()]) if (k.slice(k.indexOf('\u0000') + 1) === source) states.delete(k);
}

function templateOf(el: XmlElement): string | undefined {
  return el.attrs.find((a) => a.name === 'template')?.value.text;
}

function sameRegions(a: Region[], b: (Region | undefined)[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function contextOf(scope: TopologyScope): string {
  // The guest's append only decides whether a node gets -append at all; no span of it is used.
  // Its disk only decides whether boot adds a virtio disk (NodeModel.bootDisk).
  // Its kernel only says which built-in guest the node boots (NodeModel.guestKernel).
  const g = scope.topology.guest;
  return JSON.stringify([g?.append ?? null, !!g?.disk, g?.['kernel-version'] ?? null, !!g?.kernel, g?.image ?? null]);
}

/**
 * What a topology analysis keeps beside what it shows: its models in region
 * offsets and the way back to text offsets (what analyzeDocuments' cluster
 * rules read), and how to make `nodes` when first read. Kept on the analysis
 * under a symbol, read through one getter shared by every analysis, and not
 * in a WeakMap nor in a getter closure of the analysis's own: V8 keeps
 * whatever an old WeakMap's values hold, and whatever a per-object getter's
 * closure holds, alive through young-generation collections. Each of the
 * 40-node cluster's analyses, dropped, was still copied at the next
 * scavenge (0.6–0.8 MB each, the whole analysis: units, models, reading),
 * and most of the engine's time in garbage collection went there.
 */
interface TopologyView {
  models: NodeModel[];
  textMap: OffsetMap;
  nodes: () => NodeModel[];
}
const VIEW = Symbol('topology analysis');
const viewOf = (doc: AnalyzedDocument): TopologyView | undefined => (doc as { [VIEW]?: TopologyView })[VIEW];
const NODES_LATER: PropertyDescriptor = {
  enumerable: true,
  configurable: true,
  get(this: AnalyzedDocument) {
    return viewOf(this)!.nodes();
  },
};

/** A cluster rule's finding about a topology's (region-offset) models, in its text offsets. */
function placeFinding(d: Diagnostic, target: AnalyzedDocument): Diagnostic {
  const v = viewOf(target);
  return v ? mapDiagnostic(d, v.textMap, target.source) : d;
}

/** What a <node> element comes to: its reading, and per node it stands for the model and the node rules' findings. */
type UnitData = [NodeElementRead, (NodeModel | undefined)[], (Diagnostic[] | undefined)[]];

/** The document's text outside its <node> elements, and its path: where a node's name must not occur for its shape to be shared. */
function textOutsideNodes(doc: XmlDocument, text: string, source: string): string {
  let out = source + '\u0000';
  let from = 0;
  for (const c of doc.root?.children ?? []) {
    if (c.kind !== 'element' || c.local !== 'node') continue;
    out += text.slice(from, c.span.start);
    from = c.span.end;
  }
  return out + text.slice(from);
}

function analyzeTopology(text: string, source: string, host: HostProbe, opts: AnalyzeOptions, layouts: LayoutCache, fromScratch = false): AnalyzedDocument {
  const key = `${opts.information ? 'i' : '-'}${profileId(opts.qemu ?? NO_QEMU)}\u0000${source}`;
  const incremental = opts.incremental !== false;
  const prev = incremental && !fromScratch ? states.get(key) : undefined;
  const change = prev ? diffTexts(prev.text, text) : undefined;
  const baseDir = dirOf(source);
  // (nodes of one shape: the first read in full, the others' content when first read: engine/shapes.ts NodeTwins)
  const doc = parseXml(text, prev && change ? { prev: prev.doc, change } : undefined, opts.shareShapes !== false ? new NodeTwins(text) : undefined);
  const children = doc.root ? doc.root.children.filter((c): c is XmlElement => c.kind === 'element').map((c) => c.span) : [];
  const regions = Regions.build(text.length, children, prev?.regions, change) ?? Regions.build(text.length, [])!;
  const textMap = regions.textMap;
  const units = new Map<Region, NodeUnit>();
  const unitOf = new Map<NodeElementRead, NodeUnit>();
  let context: string | undefined;
  const gen = host.generation?.();
  const factsStill = (u: NodeUnit) => {
    if (gen !== undefined && u.factsGen === gen) return true;
    if (!factsHold(u.facts, host)) return false;
    u.factsGen = gen;
    return true;
  };
  /** Units whose region offsets are not their text offsets now (some region moved): their maps to text offsets. */
  const placeOf = new Map<NodeElementRead, OffsetMap | undefined>();

  let fabricRegions: (Region | undefined)[] | undefined;
  /** Shapes of this analysis: the first node of each (its data in text offsets), and whether the second proved it can be derived. */
  const shapes = new Map<string, { shape: Shape; data: UnitData; facts: HostFacts; proven: boolean | undefined; offsets: number[] | null | undefined }>();
  let outsideNodes: string | undefined;
  const stats = { read: 0, derived: 0 };
  const readAndCheck = (el: XmlElement, scope: TopologyScope, recording: HostProbe): UnitData => {
    const read = readNodeElement(el, scope);
    const models: (NodeModel | undefined)[] = [];
    const rules: (Diagnostic[] | undefined)[] = [];
    for (const x of read.expansions) {
      if (!x.input) continue;
      const model = buildNode(x.input);
      const found: Diagnostic[] = [];
      runNodeRules(model, recording, found, opts, layouts);
      for (const d of found) d.fixes = d.fixes?.filter(fitsXmlValue); // (as for every finding of a topology)
      models.push(model);
      rules.push(found);
    }
    // (The inputs were for the models: what is kept of the reading is its findings and names.)
    return [{ ...read, expansions: read.expansions.map((x) => ({ nameM: x.nameM, diags: x.diags })) }, models, rules];
  };
  const readNode = (el: XmlElement, scope: TopologyScope): NodeElementRead => {
    fabricRegions ??= (doc.root?.children ?? []).filter((c): c is XmlElement => c.kind === 'element' && c.local === 'fabric').map((f) => regions.ofElement(f.span.start));
    context ??= contextOf(scope);
    const own = regions.ofElement(el.span.start);
    const old = prev && own ? prev.units.get(own) : undefined;
    // (An element whose region is kept has the template attribute it had: no need to read its attributes.)
    const template = old ? old.template : templateOf(el);
    const templateEl = template !== undefined ? scope.templates.get(template) : undefined;
    const deps = [own, ...(templateEl ? [regions.ofElement(templateEl.span.start)] : []), ...fabricRegions];
    let unit: NodeUnit | undefined;
    if (old && old.deps.length && sameRegions(old.deps, deps) && touchedOf(old).every((r) => regions.has(r)) && old.context === context && factsStill(old)) unit = old;
    if (!unit) {
      // One node of each shape is read and checked; a second too (the next whose name and serials all differ: canProve), to prove that the others can be derived (engine/shapes.ts).
      const shape = opts.shareShapes !== false ? shapeOf(el, text, (outsideNodes ??= textOutsideNodes(doc, text, source))) : undefined;
      const group = shape && shapes.get(shape.key);
      let data: UnitData | undefined;
      let facts: HostFacts | undefined;
      let later: (() => Region[]) | undefined;
      if (group?.proven) {
        try {
          const f = deriveFacts(group.facts, group.shape, shape!);
          if (factsHold(f, host)) {
            // (its models are derived when read: what could stop a derivation depends on the first node alone, and the proof derived it in full)
            [data, facts] = [deriveUnit(group.data, group.shape, shape!), f];
            stats.derived++;
            // (what it touches matters only to an analysis kept for the next: not to `memfabric check`)
            if (!prev && incremental) {
              group.offsets ??= offsetsOf(group.data) ?? null;
              // (a derived node touches the regions its first node's offsets, moved to its element, fall in)
              if (group.offsets) {
                const [first, a, b, at] = [group.offsets, group.shape, { ...shape!, key: '' }, regions];
                later = () => [...at.touchedAt(derivedOffsets(first, a, b))];
              }
            }
          }
        } catch (e) {
          if (!(e instanceof NotShareable || e instanceof Unmappable)) throw e;
          data = undefined;
        }
      }
      if (!data || !facts) {
        later = undefined;
        facts = new Map();
        data = readAndCheck(el, scope, recordingHost(host, facts));
        stats.read++;
        if (shape && !group) shapes.set(shape.key, { shape, data, facts, proven: undefined, offsets: undefined });
        else if (group && group.proven === undefined && canProve(group.shape, shape!)) {
          try {
            group.proven =
              sameData([derive(group.data, group.shape, shape!), deriveFacts(group.facts, group.shape, shape!)], [data, facts]) &&
              sameSummaries(group.data[1], data[1], group.shape, shape!);
          } catch (e) {
            if (!(e instanceof NotShareable || e instanceof Unmappable)) throw e;
            group.proven = false;
          }
        }
      }
      // Into region offsets (in the first analysis of a text, the same numbers: only which regions it touches is needed).
      let mapped: UnitData = data;
      let touched: Set<Region> | undefined;
      if (!prev) touched = later || !incremental ? undefined : regions.touchedBy(data);
      else mapped = mapDeep(data, regions.toRegion((touched = new Set())));
      const keep = (touched !== undefined || later !== undefined) && deps.every((r) => r !== undefined);
      unit = { read: mapped[0], models: mapped[1], rules: mapped[2], deps: keep ? (deps as Region[]) : [], template, touched: later ? undefined : [...(touched ?? [])], touchedLater: later, context, facts, factsGen: gen };
    }
    if (own) units.set(own, unit);
    unitOf.set(unit.read, unit);
    // (in the first analysis of a text no region has moved)
    placeOf.set(unit.read, prev && touchedOf(unit).some((r) => regions.moved(r)) ? textMap : undefined);
    return unit.read;
  };

  let read: ReturnType<typeof readTopology>;
  try {
    read = readTopology(doc, text, source, baseDir, readNode, (r) => placeOf.get(r));
  } catch (e) {
    // A unit read now holds what region offsets cannot express: this analysis starts from scratch.
    if (e instanceof Unmappable && prev) return analyzeTopology(text, source, host, opts, layouts, true);
    throw e;
  }
  // (Kept findings are shared with the units: never changed in place, here or in dedupe.)
  const diagnostics: Diagnostic[] = read.diagnostics.map((d) => (d.fixes ? { ...d, fixes: d.fixes.filter(fitsXmlValue) } : d));
  const models: NodeModel[] = [];
  const refs: { unit: NodeUnit; index: number }[] = [];
  for (const ref of read.refs) {
    const u = unitOf.get(ref.read)!;
    models.push(u.models[ref.index]!);
    refs.push({ unit: u, index: ref.index });
    const place = placeOf.get(ref.read);
    for (const d of u.rules[ref.index]!) diagnostics.push(place ? mapDiagnostic(d, place) : d); // (fixes filtered when found)
  }

  if (incremental) {
    states.delete(key);
    states.set(key, { text, doc, regions, units });
    let chars = 0;
    for (const st of states.values()) chars += st.text.length;
    for (const [k, st] of states) {
      if (states.size <= 1 || (states.size <= MAX_STATES && chars <= MAX_STATE_CHARS)) break;
      states.delete(k);
      chars -= st.text.length;
    }
  }
  // The models in text offsets, made when first asked for (publishing diagnostics never asks).
  let nodes: NodeModel[] | undefined;
  const materialize = (): NodeModel[] =>
    refs.map(({ unit: u, index }) => {
      if (!placeOf.get(u.read)) return u.models[index]!;
      const starts = touchedOf(u).map((r) => regions.startOf(r)!);
      let p = u.placedModels;
      if (!p || p.starts.some((x, i) => x !== starts[i])) {
        const memo = new Map<object, unknown>();
        u.placedModels = p = { starts, models: u.models.map((x) => x && mapModel(x, textMap, memo)) };
      }
      return p.models[index]!;
    });
  const result = { source, kind: 'topology', diagnostics: dedupe(diagnostics), topology: read.topology, [VIEW]: { models, textMap, nodes: () => (nodes ??= materialize()) } satisfies TopologyView } as unknown as AnalyzedDocument;
  Object.defineProperty(result, 'nodes', NODES_LATER);
  Object.defineProperty(result, 'shapes', { enumerable: false, value: stats });
  return result;
}

/**
 * The architecture of each node of an analyzed document, without making its
 * models in text offsets (a topology's are kept in region offsets: asking
 * doc.nodes after typing moved half the nodes maps every one of them).
 */
export function nodeArches(doc: AnalyzedDocument): string[] {
  return (viewOf(doc)?.models ?? doc.nodes).map((n) => n.arch);
}

export function analyzeDocument(text: string, source: string, host: HostProbe = NO_HOST, kind?: DocumentKind, opts: AnalyzeOptions = {}): AnalyzedDocument {
  return analyzeDocuments([{ text, source, kind }], host, opts)[0];
}

/**
 * Adds what the real QEMU said of the document's nodes (probe verdicts, in the
 * nodes' text offsets: doc.nodes) to its diagnostics, merged across nodes as
 * node findings are. A refusal the model already reports with QEMU's own words
 * is not reported twice.
 */
export function addVerdicts(doc: AnalyzedDocument, verdicts: { node: NodeModel; verdict: QemuVerdict }[]): Diagnostic[] {
  const found: Diagnostic[] = [];
  for (const { node, verdict } of verdicts) {
    let v = verdict;
    const text = v.refused?.message.trim().replace(/\.$/, '');
    if (text && doc.diagnostics.some((d) => d.severity === 'error' && d.message.includes(text))) v = { ...v, refused: undefined };
    found.push(...verdictDiagnostics(node, v));
  }
  const added = dedupe(found);
  doc.diagnostics.push(...added);
  return added;
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
  // Findings can only be the same at the same span: bucket by span (the first finding
  // there, then a chain through `next`), compare the rest only there.
  const seen = new Map<string | number, number>();
  const out: Diagnostic[] = [];
  const next: number[] = [];
  /** The nodes of each kept finding that others were merged into. */
  let merged: Map<number, string[]> | undefined;
  for (const d of ds) {
    const { start, end } = d.span;
    const at = start >= 0 && end >= 0 && start < 2 ** 26 && end < 2 ** 26 && Number.isInteger(start) && Number.isInteger(end) ? start * 2 ** 26 + end : `${start}|${end}`;
    const first = seen.get(at);
    if (first === undefined) {
      seen.set(at, out.length);
      out.push(d);
      next.push(-1);
      continue;
    }
    const key = restOf(d);
    let i = first;
    let last = first;
    for (; i !== -1; last = i, i = next[i]) if (restOf(out[i]) === key) break;
    if (i === -1) {
      next[last] = out.length;
      out.push(d);
      next.push(-1);
      continue;
    }
    if (!d.node) continue;
    merged ??= new Map();
    let nodes = merged.get(i);
    if (!nodes) merged.set(i, (nodes = out[i].node ? [out[i].node!] : []));
    nodes.push(d.node);
  }
  // (A new object where the message grows: the findings given may be shared with kept results.)
  for (const [i, nodes] of merged ?? []) {
    const d = out[i];
    if (nodes.length > 1) out[i] = { ...d, message: `${d.message} (nodes ${nodes.length > 4 ? `${nodes.slice(0, 3).join(', ')} … ${nodes[nodes.length - 1]}, ${nodes.length} in all` : nodes.join(', ')})` };
  }
  return out;
}

/**
 * A finding as dedupe compares it: its code and message, with its node's name
 * (quoted, as 'node01') taken out. Kept per finding: the findings of kept
 * units are the same objects from one analysis to the next.
 */
const REST = Symbol('rest');
function restOf(d: Diagnostic): string {
  return keptOn<string>(d, REST) ?? keepOn(d, REST, `${d.code}|${d.node ? d.message.split(`'${d.node}'`).join("'\u0000'") : d.message}`);
}
