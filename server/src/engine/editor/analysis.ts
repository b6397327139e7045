/**
 * One analysis of one document version, as the editor features read it: the
 * text it was made from, the engine's result, and what editors ask of it
 * again and again, computed once (ids, the symbol index, node layouts).
 * Pure: no vscode, no LSP. Every feature module takes an EditorAnalysis.
 */
import type { AnalyzedDocument } from '../index';
import type { NodeModel } from '../model/model';
import { computeLayout, NodeLayout } from '../layout/index';
import { analysisRoot, collectSymbols, definedIds, IdKind, IdNamespace, REF_KEYS, SymbolIndex } from '../symbols';
import type { XmlElement } from '../syntax/xml';
import type { Skip } from './context';
import { detectKind } from '../readers/detect';
import { diffTexts, TextChange } from '../incremental';
import { DEFAULT_PROFILE, layoutQemu, QemuProfile } from '../qemu/profile';
import { summaryOf } from '../shapes';

/** The inputs memfabric serves in an editor. */
export type ServedKind = 'topology' | 'libvirt' | 'qemu';

/**
 * Which input a document is, or undefined for documents memfabric leaves
 * alone: topology XML (a <cluster> root or *.cluster.xml), libvirt domain XML
 * (a <domain> root, whatever the editor calls the language: also plain `xml`,
 * with or without a prologue), QEMU command lines (*.qemu, languageId
 * qemu-cmdline, or text naming qemu-system-*) and shell launch scripts that
 * run $QEMU. Other XML gets nothing.
 */
export function servedKind(text: string, path: string, languageId: string): ServedKind | undefined {
  const k = detectKind(text, path);
  if (k === 'topology' || k === 'libvirt') return k;
  if (k === 'xml' || languageId === 'xml' || /\.xml$/i.test(path)) return undefined;
  if (languageId === 'qemu-cmdline' || /\.qemu$/.test(path)) return 'qemu';
  if (/\bqemu-(system-[A-Za-z0-9_]+|kvm)\b/.test(text)) return 'qemu';
  if (languageId === 'shellscript' && /\$\{?QEMU/i.test(text)) return 'qemu';
  return undefined;
}

export class EditorAnalysis {
  private index?: SymbolIndex;
  private readonly layouts = new Map<NodeModel, NodeLayout | undefined>();
  private data?: CompletionData;

  /** doc is undefined when the document is not served or the engine failed on it. */
  constructor(
    readonly text: string,
    readonly kind: ServedKind | undefined,
    readonly doc?: AnalyzedDocument,
    /** The QEMU the document was judged for. */
    readonly qemu: QemuProfile = DEFAULT_PROFILE,
  ) {}

  /** Every id occurrence and the outline (computed on first use). */
  symbols(): SymbolIndex | undefined {
    if (!this.doc) return undefined;
    return (this.index ??= collectSymbols(this.doc, this.text));
  }

  /** What completion reads of this analysis (computed on first use; it outlives the analysis cheaply). */
  completionData(): CompletionData {
    return (this.data ??= new CompletionData(this));
  }

  get hasCompletionData(): boolean {
    return this.data !== undefined;
  }

  /** The node's guest memory map (undefined if the layout model fails on it), computed once per node. */
  layout(n: NodeModel): NodeLayout | undefined {
    if (!this.layouts.has(n)) {
      let l: NodeLayout | undefined;
      try {
        l = computeLayout(n, { qemu: layoutQemu(this.qemu) });
      } catch {
        l = undefined;
      }
      this.layouts.set(n, l);
    }
    return this.layouts.get(n);
  }
}

interface ClosedElement {
  start: number;
  end: number;
  name: string;
}

/**
 * The backends a node's devices name (memdev=, …) and the drivers that name
 * them: a summary, so that nodes of one shape do not derive their devices for
 * it (engine/shapes.ts).
 */
const backendUsers = summaryOf((n: NodeModel): { backend: string; driver: string }[] => {
  const out: { backend: string; driver: string }[] = [];
  for (const d of n.devices) for (const p of d.props) if (REF_KEYS[p.key]?.includes('backend')) out.push({ backend: p.value.text, driver: d.driver });
  return out;
});

/**
 * What completion needs of an analysis, and nothing else: the ids defined
 * (names and kinds; completion never reads their offsets), the machine's
 * root bus, which drivers use each backend, and the elements a context scan
 * may jump over. Small next to the analysis, so an editor can keep the last
 * one while a newer analysis is not yet prepared; completion on a keystroke
 * reads it and never waits for an analysis.
 */
export class CompletionData {
  readonly text: string;
  readonly kind: ServedKind | undefined;
  readonly qemu: QemuProfile;
  /** The root PCI bus of the first node: pci.0 on pc machines, pcie.0 on q35. */
  readonly rootBus: string;
  private readonly defs: SymbolIndex;
  private readonly idCache = new Map<string, { name: string; kind: IdKind }[]>();
  private readonly users = new Map<string, Set<string>>();
  private readonly closed: Map<number, ClosedElement> | undefined;
  private lastSkip?: { text: string; skip: Skip | undefined };

  constructor(a: EditorAnalysis) {
    this.text = a.text;
    this.kind = a.kind;
    this.qemu = a.qemu;
    const doc = a.doc;
    this.defs = doc ? collectSymbols(doc, a.text, { definitionsOnly: true }) : { occurrences: [], outline: [] };
    this.rootBus = /pc-i440fx|^pc$/.test(doc?.nodes[0]?.machine.type?.text ?? 'q35') ? 'pci.0' : 'pcie.0';
    for (const n of doc?.nodes ?? []) {
      for (const { backend, driver } of backendUsers(n)) {
        let u = this.users.get(backend);
        if (!u) this.users.set(backend, (u = new Set()));
        u.add(driver);
      }
    }
    this.closed = doc && a.kind === 'topology' ? closedElements(doc, a.text) : undefined;
  }

  /** Ids defined in the document, optionally of some kinds only (each name once). */
  ids(kinds?: IdKind[], ns: IdNamespace = 'id'): { name: string; kind: IdKind }[] {
    const key = `${ns}:${kinds?.join(',') ?? '*'}`;
    let ids = this.idCache.get(key);
    if (!ids) this.idCache.set(key, (ids = definedIds(this.defs, kinds, ns)));
    return ids;
  }

  /** Drivers of the devices whose memory backend is the object with this id. */
  backendUsers(id: string): string[] {
    return [...(this.users.get(id) ?? [])];
  }

  /**
   * For the backward scan of the current text (context.ts): whole elements
   * it may jump over, those this analysis saw closed and that lie in text
   * unchanged since (before or after the edited region). Undefined when the
   * analysis has no tree.
   */
  skipper(current: string): Skip | undefined {
    if (this.lastSkip?.text === current) return this.lastSkip.skip;
    const closed = this.closed;
    let skip: Skip | undefined;
    if (closed?.size) {
      let region: TextChange | undefined;
      const old = this.text;
      skip = (q, name) => {
        // (the diff only when a scan first asks: a value's completion never does)
        const c = (region ??= diffTexts(old, current));
        const after = q >= c.newEnd;
        if (!after && q >= c.start) return undefined;
        const e = closed.get(after ? q - c.delta : q);
        if (!e || e.name !== name) return undefined;
        if (after) return e.start >= c.oldEnd ? e.start + c.delta : undefined;
        return e.end <= c.start ? e.start : undefined;
      };
    }
    this.lastSkip = { text: current, skip };
    return skip;
  }
}

/**
 * Elements of the analyzed tree closed by their own end tag with no XML
 * problem inside, by the offset of their end tag's `<` (topology only: the
 * analysis keeps its tree).
 */
function closedElements(doc: AnalyzedDocument, text: string): Map<number, ClosedElement> | undefined {
  const root = analysisRoot(doc, text);
  if (!root) return undefined;
  const problems = doc.diagnostics.filter((d) => d.code === 'xml-syntax').map((d) => d.span.start);
  problems.sort((x, y) => x - y);
  const clean = (s: number, e: number) => {
    let lo = 0;
    let hi = problems.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (problems[mid] < s) lo = mid + 1;
      else hi = mid;
    }
    return lo >= problems.length || problems[lo] >= e;
  };
  const map = new Map<number, ClosedElement>();
  const walk = (el: XmlElement) => {
    if (el.endTagSpan && !el.selfClosing && clean(el.span.start, el.span.end)) map.set(el.endTagSpan.start, { start: el.span.start, end: el.span.end, name: el.name });
    for (const c of el.children) if (c.kind === 'element') walk(c);
  };
  walk(root);
  return map;
}

