/**
 * The memfabric language server: thin glue between LSP and the engine.
 * `memfabric lsp --stdio` runs it. It serves topology files (*.cluster.xml or
 * a <cluster> root), libvirt domain XML (<domain> root, whatever the
 * languageId), and QEMU command lines / launch scripts; other XML gets
 * nothing. Every handler is guarded: a throwing engine call yields no result,
 * never a dead server.
 */
import {
  CodeAction,
  CodeActionKind,
  CompletionItem,
  CompletionItemKind,
  Connection,
  createConnection,
  Diagnostic as LspDiagnostic,
  DiagnosticRelatedInformation,
  DiagnosticSeverity,
  DocumentSymbol,
  ErrorCodes,
  Hover,
  InitializeResult,
  InsertTextFormat,
  Location,
  MarkupKind,
  ProposedFeatures,
  Range,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  SymbolKind,
  TextDocuments,
  TextDocumentSyncKind,
  TextEdit,
  WorkspaceEdit,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { analyzeDocuments, AnalyzedDocument, detectKind, selectNodes } from '../engine/index';
import { Diagnostic } from '../engine/diagnostics';
import { NodeModel } from '../engine/model/model';
import { computeLayout, NodeLayout } from '../engine/layout/index';
import { bdf } from '../engine/layout/pci';
import { LineMap, Span } from '../engine/text/source';
import { hexHuman, parseQemuSize } from '../engine/text/sizes';
import { RULES_BY_CODE } from '../engine/rules/index';
import { SCHEMA } from '../engine/topology/schema';
import { catalog } from '../engine/qemu/catalog';
import { OPTIONS_WITH_ARG, OPTIONS_WITHOUT_ARG } from '../engine/syntax/qemu-args';
import { collectSymbols, definedIds, IdKind, occurrenceAt, occurrencesOf, OutlineSymbol, REF_KEYS, SymbolIndex } from '../engine/symbols';
import { installedQemuVersion, nodeHost } from '../host/probe';
import { layoutReport } from '../engine/layout/report';
import { LayoutRequest, LayoutResult } from './protocol';

type ServedKind = 'topology' | 'libvirt' | 'qemu';

interface Analysis {
  version: number;
  text: string;
  lm: LineMap;
  kind?: ServedKind;
  doc?: AnalyzedDocument;
  symbols?: SymbolIndex;
  layouts: Map<NodeModel, NodeLayout | undefined>;
}

const DEBOUNCE_MS = 150;
const ID_RE = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const DOCS = resolve(__dirname, '../../../../docs/diagnostics.md');
const DOCS_URL = existsSync(DOCS) ? pathToFileURL(DOCS).toString() : undefined;

/** Path for file: URIs (the engine resolves mem-path and host files against it), else the URI itself. */
export function sourceOf(uri: string): string {
  if (uri.startsWith('file:')) {
    try {
      return fileURLToPath(uri);
    } catch {
      return uri;
    }
  }
  return uri;
}

/** Which input a document is, or undefined for documents memfabric does not serve. */
export function servedKind(text: string, uri: string, languageId: string): ServedKind | undefined {
  const path = sourceOf(uri);
  const k = detectKind(text, path);
  if (k === 'topology' || k === 'libvirt') return k;
  if (k === 'xml' || languageId === 'xml' || /\.xml$/i.test(path)) return undefined;
  if (languageId === 'qemu-cmdline' || /\.qemu$/.test(path)) return 'qemu';
  if (/\bqemu-(system-[A-Za-z0-9_]+|kvm)\b/.test(text)) return 'qemu';
  if (languageId === 'shellscript' && /\$\{?QEMU/i.test(text)) return 'qemu';
  return undefined;
}

const SEVERITY: Record<string, DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  information: DiagnosticSeverity.Information,
  hint: DiagnosticSeverity.Hint,
};

export class MemfabricServer {
  readonly documents = new TextDocuments(TextDocument);
  private readonly cache = new Map<string, Analysis>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** URIs we published non-empty diagnostics for (to clear them when a document stops being served). */
  private readonly published = new Set<string>();
  private readonly openedVersion = new Map<string, number>();

  constructor(private readonly connection: Connection) {
    const c = connection;
    const docs = this.documents;
    c.onInitialize((): InitializeResult => ({
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental },
        hoverProvider: true,
        completionProvider: { triggerCharacters: ['-', ',', '=', '<', ' ', '"', "'", '.'] },
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
        definitionProvider: true,
        referencesProvider: true,
        renameProvider: { prepareProvider: true },
        documentSymbolProvider: true,
        experimental: { memfabric: { layout: LayoutRequest.method } },
      },
      serverInfo: { name: 'memfabric', version: '0.1.0' },
    }));
    docs.onDidOpen((e) =>
      this.guard(() => {
        this.openedVersion.set(e.document.uri, e.document.version);
        this.validateGroup(e.document.uri);
      }, undefined),
    );
    docs.onDidChangeContent((e) =>
      this.guard(() => {
        // didOpen already published this version.
        if (e.document.version === this.openedVersion.get(e.document.uri)) return;
        this.schedule(e.document.uri);
      }, undefined),
    );
    docs.onDidClose((e) =>
      this.guard(() => {
        const uri = e.document.uri;
        clearTimeout(this.timers.get(uri));
        this.timers.delete(uri);
        this.cache.delete(uri);
        this.openedVersion.delete(uri);
        if (this.published.delete(uri)) c.sendDiagnostics({ uri, diagnostics: [] });
        // Its cluster peers lose a member.
        for (const peer of this.peersOf(uri, sourceOf(uri), 'qemu')) this.schedule(peer.uri);
      }, undefined),
    );
    c.onHover((p) => this.guard(() => this.hover(p.textDocument.uri, p.position), null));
    c.onCompletion((p) => this.guard(() => this.complete(p.textDocument.uri, p.position), []));
    c.onCodeAction((p) => this.guard(() => this.codeActions(p.textDocument.uri, p.range), []));
    c.onDefinition((p) => this.guard(() => this.definition(p.textDocument.uri, p.position), null));
    c.onReferences((p) => this.guard(() => this.references(p.textDocument.uri, p.position, p.context.includeDeclaration), null));
    c.onPrepareRename((p) => this.guard(() => this.prepareRename(p.textDocument.uri, p.position), null));
    c.onRenameRequest((p) => {
      const r = this.rename(p.textDocument.uri, p.position, p.newName);
      return r;
    });
    c.onDocumentSymbol((p) => this.guard(() => this.documentSymbols(p.textDocument.uri), []));
    c.onRequest(LayoutRequest.type, (p) => this.layoutRequest(p.uri, p.node, p.agent ?? true));
    docs.listen(c);
  }

  /** Run a handler; log and return the fallback if it throws. */
  private guard<T>(fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (e) {
      try {
        this.connection.console.error(`memfabric: ${(e as Error)?.stack ?? e}`);
      } catch {
        /* the connection itself is gone */
      }
      return fallback;
    }
  }

  // ---------------------------------------------------------------- analysis

  private schedule(uri: string) {
    clearTimeout(this.timers.get(uri));
    this.timers.set(
      uri,
      setTimeout(() => {
        this.timers.delete(uri);
        this.guard(() => this.validateGroup(uri), undefined);
      }, DEBOUNCE_MS),
    );
  }

  private kindOf(d: TextDocument): ServedKind | undefined {
    return servedKind(d.getText(), d.uri, d.languageId);
  }

  /**
   * Open documents analyzed together with uri: command lines and domain XMLs
   * in the same directory form one cluster (as `memfabric check a b` does);
   * a topology file is a cluster of its own.
   */
  private peersOf(uri: string, path: string, kind: ServedKind | undefined): TextDocument[] {
    if (kind === 'topology' || kind === undefined || !uri.startsWith('file:')) return [];
    const dir = dirname(path);
    return this.documents.all().filter((d) => {
      if (d.uri === uri || !d.uri.startsWith('file:')) return false;
      if (dirname(sourceOf(d.uri)) !== dir) return false;
      const k = this.kindOf(d);
      return k === 'qemu' || k === 'libvirt';
    });
  }

  /** Analyze uri (and its cluster peers) for their current versions; cached per version. */
  private ensure(uri: string): Analysis | undefined {
    const d = this.documents.get(uri);
    if (!d) return undefined;
    const cached = this.cache.get(uri);
    if (cached && cached.version === d.version) return cached;
    this.analyzeGroup(d);
    return this.cache.get(uri);
  }

  private analyzeGroup(d: TextDocument): TextDocument[] {
    const kind = this.kindOf(d);
    // In URI order, so a cluster finding lands on the same document whichever one changed.
    const group = [d, ...this.peersOf(d.uri, sourceOf(d.uri), kind)];
    const entries = group.map((x) => ({ d: x, text: x.getText(), kind: x === d ? kind : this.kindOf(x) }));
    entries.sort((x, y) => (x.d.uri < y.d.uri ? -1 : x.d.uri > y.d.uri ? 1 : 0));
    const fresh = (e: (typeof entries)[number], doc?: AnalyzedDocument): Analysis => ({
      version: e.d.version,
      text: e.text,
      lm: new LineMap(e.text),
      kind: e.kind,
      doc,
      layouts: new Map(),
    });
    const self = entries.find((e) => e.d === d)!;
    if (!kind) {
      this.cache.set(d.uri, fresh(self));
      return [d];
    }
    const run = (es: typeof entries) => analyzeDocuments(es.map((e) => ({ text: e.text, source: sourceOf(e.d.uri), kind: e.kind })), nodeHost, { information: true });
    let results: AnalyzedDocument[] | undefined;
    let used = entries;
    try {
      results = run(entries);
    } catch {
      // A peer may be what breaks the engine: try the document alone.
      used = [self];
      try {
        results = run(used);
      } catch {
        results = undefined;
      }
    }
    used.forEach((e, i) => this.cache.set(e.d.uri, fresh(e, results?.[i])));
    return used.map((e) => e.d);
  }

  private validateGroup(uri: string) {
    const d = this.documents.get(uri);
    if (!d) return;
    // A request (completion, hover) may already have analyzed this version.
    const cached = this.cache.get(uri);
    const group = cached && cached.version === d.version ? [d, ...this.peersOf(d.uri, sourceOf(d.uri), this.kindOf(d))] : this.analyzeGroup(d);
    for (const m of group) this.publish(m.uri);
  }

  private publish(uri: string) {
    const a = this.cache.get(uri);
    if (!a) return;
    let diagnostics: LspDiagnostic[] = [];
    try {
      diagnostics = (a.doc?.diagnostics ?? []).map((x) => this.toLsp(x, a, uri));
    } catch {
      diagnostics = [];
    }
    if (diagnostics.length) this.published.add(uri);
    else this.published.delete(uri);
    this.connection.sendDiagnostics({ uri, version: a.version, diagnostics });
  }

  private uriOfSource(source: string): string {
    for (const d of this.documents.all()) if (sourceOf(d.uri) === source) return d.uri;
    return source.startsWith('/') ? pathToFileURL(source).toString() : source;
  }

  private lineMapOf(source: string): LineMap | undefined {
    const uri = this.uriOfSource(source);
    const d = this.documents.get(uri);
    const cached = this.cache.get(uri);
    if (d && cached && cached.version === d.version) return cached.lm;
    if (d) return new LineMap(d.getText());
    try {
      return new LineMap(readFileSync(source, 'utf8'));
    } catch {
      return undefined;
    }
  }

  private toLsp(d: Diagnostic, a: Analysis, uri: string): LspDiagnostic {
    const out: LspDiagnostic = {
      range: a.lm.range(d.span),
      severity: SEVERITY[d.severity] ?? DiagnosticSeverity.Error,
      code: d.code,
      source: 'memfabric',
      message: d.message,
    };
    if (DOCS_URL) out.codeDescription = { href: `${DOCS_URL}#${d.code}` };
    if (d.related?.length) {
      const rel: DiagnosticRelatedInformation[] = [];
      for (const r of d.related) {
        if (r.source && r.source !== a.doc?.source) {
          const lm = this.lineMapOf(r.source);
          rel.push({ location: { uri: this.uriOfSource(r.source), range: lm ? lm.range(r.span) : Range.create(0, 0, 0, 0) }, message: r.message });
        } else rel.push({ location: { uri, range: a.lm.range(r.span) }, message: r.message });
      }
      out.relatedInformation = rel;
    }
    const data: Record<string, unknown> = {};
    if (d.node) data.node = d.node;
    if (d.fixes?.length) data.fixes = d.fixes.length;
    if (Object.keys(data).length) out.data = data;
    return out;
  }

  private symbols(a: Analysis): SymbolIndex | undefined {
    if (!a.doc) return undefined;
    return (a.symbols ??= collectSymbols(a.doc, a.text));
  }

  private layoutOf(a: Analysis, n: NodeModel): NodeLayout | undefined {
    if (!a.layouts.has(n)) {
      let l: NodeLayout | undefined;
      try {
        l = computeLayout(n);
      } catch {
        l = undefined;
      }
      a.layouts.set(n, l);
    }
    return a.layouts.get(n);
  }

  // ---------------------------------------------------------------- code actions

  private codeActions(uri: string, range: Range): CodeAction[] {
    const a = this.ensure(uri);
    if (!a?.doc) return [];
    const from = a.lm.offset(range.start);
    const to = a.lm.offset(range.end);
    const out: CodeAction[] = [];
    for (const d of a.doc.diagnostics) {
      if (!d.fixes?.length) continue;
      if (d.span.end < from || d.span.start > to) continue;
      const lsp = this.toLsp(d, a, uri);
      for (const f of d.fixes) {
        const edit: WorkspaceEdit = { changes: { [uri]: f.edits.map((e) => TextEdit.replace(a.lm.range(e.span), e.newText)) } };
        out.push({ title: f.title, kind: CodeActionKind.QuickFix, diagnostics: [lsp], edit, isPreferred: d.fixes.length === 1 });
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- hover

  private hover(uri: string, pos: { line: number; character: number }): Hover | null {
    const a = this.ensure(uri);
    if (!a?.doc) return null;
    const off = a.lm.offset(pos);
    const parts: string[] = [];
    let range: Span | undefined;
    const widen = (s: Span) => {
      if (!range || s.end - s.start < range.end - range.start) range = s;
    };

    // Placement of a device, a backend or a CXL window, from the layout.
    const placement = this.placementAt(a, off);
    if (placement) {
      parts.push(placement.text);
      widen(placement.span);
    }
    // A size or address value.
    const size = this.sizeAt(a, off);
    if (size) {
      parts.push(`\`${size.text}\` = **${hexHuman(size.value)}**${size.what ? ` (${size.what})` : ''}`);
      range = size.span;
    }
    // Diagnostics here: the rule in one sentence.
    const seen = new Set<string>();
    for (const d of a.doc.diagnostics) {
      if (d.span.start > off || d.span.end < off || seen.has(d.code)) continue;
      seen.add(d.code);
      const rule = RULES_BY_CODE.get(d.code);
      if (!rule) continue;
      parts.push(`**${d.code}**: ${rule.summary}${rule.enforcedBy ? `\n\nQEMU: "${rule.enforcedBy}"` : ''}`);
      if (!range) range = d.span;
    }
    if (!parts.length) return null;
    return { contents: { kind: MarkupKind.Markdown, value: parts.join('\n\n---\n\n') }, range: range ? a.lm.range(range) : undefined };
  }

  private sizeAt(a: Analysis, off: number): { text: string; value: bigint; span: Span; what?: string } | undefined {
    const within = (s: Span) => s.start <= off && off <= s.end && s.end > s.start;
    for (const n of a.doc?.nodes ?? []) {
      for (const s of n.sizes) {
        const sp = s.m.span();
        if (!within(sp) || a.text.slice(sp.start, sp.end) !== s.m.text || !s.parsed.ok) continue;
        return { text: s.m.text, value: s.parsed.value, span: sp, what: s.what };
      }
    }
    // Any other size- or address-like value: key=VALUE or attr="VALUE".
    const t = a.text;
    let s = off;
    let e = off;
    while (s > 0 && /[A-Za-z0-9.]/.test(t[s - 1])) s--;
    while (e < t.length && /[A-Za-z0-9.]/.test(t[e])) e++;
    if (e <= s) return undefined;
    const tok = t.slice(s, e);
    if (!/^[0-9]/.test(tok)) return undefined;
    const before = t.slice(Math.max(0, s - 40), s);
    const km = /([A-Za-z][\w.-]*)\s*=\s*["']?$/.exec(before) ?? /(-m)\s+$/.exec(before);
    if (!km || !/size|mem|align|start|addr|granularity|base|offset|^-m$/i.test(km[1])) return undefined;
    const r = parseQemuSize(tok);
    if (!r.ok) return undefined;
    return { text: tok, value: r.value, span: { start: s, end: e } };
  }

  private placementAt(a: Analysis, off: number): { text: string; span: Span } | undefined {
    const nodes = a.doc?.nodes ?? [];
    const within = (s: Span) => s.start <= off && off <= s.end;
    const byText = new Map<string, string[]>();
    let span: Span | undefined;
    const consider = (s: Span) => {
      if (!span || s.end - s.start < span.end - span.start) span = s;
    };
    for (const n of nodes.slice(0, 64)) {
      const lines: string[] = [];
      let layout: NodeLayout | undefined;
      const L = () => (layout ??= this.layoutOf(a, n));
      const shown = new Set<string>();
      const barLines = (dev: NodeModel['devices'][number], label: string, only?: number) => {
        const f = L()?.functions.find((x) => x.source === dev);
        if (!f) return;
        const bars = f.bars.filter((b) => b.start !== undefined && !b.rom && (only === undefined || b.bar === only));
        const head = `**${label}** \`${bdf(f)}\``;
        if (!bars.length && !f.rootBus && only === undefined) lines.push(`${head}: no memory BAR placed`);
        for (const b of bars) {
          const key = `${bdf(f)}/${b.bar}`;
          if (shown.has(key)) continue;
          shown.add(key);
          const end = b.start! + b.size - 1n;
          lines.push(`${head} BAR${b.bar}: start **0x${b.start!.toString(16)}**, end 0x${end.toString(16)}, size ${hexHuman(b.size)}, ${b.is64 ? '64' : '32'}-bit${b.prefetch ? ' prefetchable' : ''}`);
        }
      };
      for (const d of n.devices) {
        const sp = d.m.span();
        if (!within(sp) || sp.end > a.text.length) continue;
        consider(d.id && within(d.id.span()) ? d.id.span() : sp);
        barLines(d, `${d.id?.text ?? d.driver}`);
        if (d.driver === 'pxb-cxl') {
          const hb = L()?.platform.cxl?.hostBridges.find((h) => h.id === d.id?.text);
          if (hb) lines.push(`**${hb.id}** CXL host bridge registers: 0x${hb.base.toString(16)}–0x${(hb.base + 0xffffn).toString(16)} (64 KiB)`);
        }
      }
      // A backend: where the ivshmem device that maps it puts it (BAR2).
      for (const o of n.objects) {
        const sp = o.m.span();
        if (!within(sp) || !o.id || !o.qomType.startsWith('memory-backend-')) continue;
        const users = n.devices.filter((d) => d.driver.startsWith('ivshmem') && d.props.some((p) => p.key === 'memdev' && p.value.text === o.id!.text));
        if (!users.length) continue;
        consider(sp);
        for (const u of users) barLines(u, `${o.id.text} → ${u.id?.text ?? u.driver}`, 2);
      }
      for (const w of n.fmws) {
        const spans = [...w.keys.map((k) => k.keySpan), ...w.keys.map((k) => k.value.span())];
        const hit = spans.find(within);
        if (!hit) continue;
        consider(hit);
        const win = L()?.platform.cxl?.windows.find((x) => x.index === w.index);
        if (win && win.size > 0n) lines.push(`**CXL Window ${w.index}**: start **0x${win.base.toString(16)}**, end 0x${(win.base + win.size - 1n).toString(16)}, size ${hexHuman(win.size)}, targets ${win.targets.join(' ')}`);
      }
      if (lines.length) {
        const key = lines.join('\n\n');
        byText.set(key, [...(byText.get(key) ?? []), n.name]);
      }
    }
    if (!byText.size || !span) return undefined;
    const out: string[] = [];
    for (const [text, names] of byText) {
      const who = nodes.length > 1 ? `Node ${names.length > 4 ? `${names.slice(0, 3).join(', ')} … ${names[names.length - 1]}` : names.join(', ')}: ` : '';
      out.push(`${who}guest physical placement (QEMU 7.2, SeaBIOS, as \`memfabric layout\` predicts)\n\n${text}`);
    }
    return { text: out.join('\n\n'), span };
  }

  // ---------------------------------------------------------------- completion

  private complete(uri: string, pos: { line: number; character: number }): CompletionItem[] {
    const a = this.ensure(uri);
    if (!a?.kind) return [];
    const off = a.lm.offset(pos);
    const t = a.text;
    const ids = (kinds?: IdKind[], ns: 'id' | 'template' = 'id') => {
      const s = this.symbols(a);
      return s ? definedIds(s, kinds, ns) : [];
    };
    if (a.kind === 'topology') {
      const ctx = xmlContext(t, off);
      if (ctx.kind === 'text' && ctx.parent === 'qemu') return this.qemuCompletions(a, off, ctx.textStart ?? 0, ids);
      return topologyCompletions(a, off, ctx, ids);
    }
    if (a.kind === 'libvirt') {
      const ctx = xmlContext(t, off);
      if (ctx.kind === 'value' && /(^|:)arg$/.test(ctx.element ?? '') && ctx.attr === 'value') {
        // The previous <qemu:arg value=…> is the option this value belongs to.
        const before = t.slice(0, ctx.tagStart);
        const re = /<[\w.-]+:arg\s+value\s*=\s*(["'])(.*?)\1/g;
        let prev: string | undefined;
        for (let m = re.exec(before); m; m = re.exec(before)) prev = m[2];
        return qemuValueCompletions(a, off, ctx.valueStart!, t.slice(ctx.valueStart!, off), prev, ids);
      }
      return [];
    }
    return this.qemuCompletions(a, off, 0, ids);
  }

  private qemuCompletions(a: Analysis, off: number, regionStart: number, ids: IdsFn): CompletionItem[] {
    const t = a.text;
    let s = off;
    while (s > regionStart && !/[\s'"\\]/.test(t[s - 1])) s--;
    const cur = t.slice(s, off);
    const before = t
      .slice(regionStart, s)
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .join('\n')
      .replace(/\\\r?\n/g, ' ')
      .replace(/["']/g, '');
    const words = before.split(/\s+/).filter((w) => w && w !== '\\');
    const prev = words[words.length - 1];
    return qemuValueCompletions(a, off, s, cur, prev, ids);
  }

  // ---------------------------------------------------------------- ids

  private occurrence(uri: string, pos: { line: number; character: number }) {
    const a = this.ensure(uri);
    if (!a?.doc) return undefined;
    const s = this.symbols(a);
    if (!s) return undefined;
    const o = occurrenceAt(s, a.lm.offset(pos));
    return o ? { a, s, o } : undefined;
  }

  private definition(uri: string, pos: { line: number; character: number }): Location[] | null {
    const r = this.occurrence(uri, pos);
    if (!r) return null;
    const defs = occurrencesOf(r.s, r.o.name, r.o.ns).filter((x) => x.def);
    return defs.length ? defs.map((x) => Location.create(uri, r.a.lm.range(x.span))) : null;
  }

  private references(uri: string, pos: { line: number; character: number }, includeDeclaration: boolean): Location[] | null {
    const r = this.occurrence(uri, pos);
    if (!r) return null;
    return occurrencesOf(r.s, r.o.name, r.o.ns)
      .filter((x) => includeDeclaration || !x.def)
      .map((x) => Location.create(uri, r.a.lm.range(x.span)));
  }

  private prepareRename(uri: string, pos: { line: number; character: number }): { range: Range; placeholder: string } | null {
    const r = this.occurrence(uri, pos);
    if (!r) return null;
    if (!occurrencesOf(r.s, r.o.name, r.o.ns).some((x) => x.def)) return null;
    return { range: r.a.lm.range(r.o.span), placeholder: r.o.name };
  }

  private rename(uri: string, pos: { line: number; character: number }, newName: string): WorkspaceEdit | null | ResponseError<void> {
    let r: ReturnType<MemfabricServer['occurrence']>;
    try {
      r = this.occurrence(uri, pos);
    } catch {
      return null;
    }
    if (!r) return null;
    if (!ID_RE.test(newName)) return new ResponseError(ErrorCodes.InvalidParams, `'${newName}' is not a valid id: it starts with a letter and holds letters, digits, _ . -`);
    const all = occurrencesOf(r.s, r.o.name, r.o.ns);
    if (!all.some((x) => x.def)) return new ResponseError(ErrorCodes.InvalidParams, `'${r.o.name}' is not defined in this document`);
    return { changes: { [uri]: all.map((x) => TextEdit.replace(r!.a.lm.range(x.span), newName)) } };
  }

  private documentSymbols(uri: string): DocumentSymbol[] {
    const a = this.ensure(uri);
    if (!a?.doc) return [];
    const s = this.symbols(a);
    if (!s) return [];
    const conv = (o: OutlineSymbol): DocumentSymbol => {
      const range = a.lm.range(o.span);
      const sel = o.selection.start >= o.span.start && o.selection.end <= o.span.end ? a.lm.range(o.selection) : range;
      return { name: o.name || '?', detail: o.detail, kind: OUTLINE_KIND[o.kind] ?? SymbolKind.Object, range, selectionRange: sel, children: o.children.map(conv) };
    };
    return s.outline.map(conv);
  }

  // ---------------------------------------------------------------- memfabric/layout

  private layoutRequest(uri: string, node: string | undefined, agent: boolean): LayoutResult | ResponseError<void> {
    try {
      let text: string;
      let kind: ServedKind | undefined;
      const d = this.documents.get(uri);
      if (d) {
        text = d.getText();
        kind = this.kindOf(d);
      } else {
        try {
          text = readFileSync(sourceOf(uri), 'utf8');
        } catch (e) {
          return new ResponseError(ErrorCodes.InvalidParams, `cannot read ${uri}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
        kind = servedKind(text, uri, '');
      }
      if (!kind) return new ResponseError(ErrorCodes.InvalidParams, `${uri} is not a topology, libvirt domain or QEMU command line`);
      const [r] = analyzeDocuments([{ text, source: sourceOf(uri), kind }], nodeHost);
      const sel = selectNodes(r, node, uri);
      if ('error' in sel) return new ResponseError(ErrorCodes.InvalidParams, sel.error);
      return layoutReport(sel.nodes, { agent, installedQemu: installedQemuVersion() }).result;
    } catch (e) {
      return new ResponseError(ErrorCodes.InternalError, `memfabric/layout failed: ${(e as Error).message}`);
    }
  }
}

type IdsFn = (kinds?: IdKind[], ns?: 'id' | 'template') => { name: string; kind: IdKind }[];

const OUTLINE_KIND: Record<string, SymbolKind> = {
  cluster: SymbolKind.Namespace,
  node: SymbolKind.Module,
  fabric: SymbolKind.Struct,
  template: SymbolKind.Interface,
  region: SymbolKind.Array,
  device: SymbolKind.Object,
  object: SymbolKind.Object,
  window: SymbolKind.Field,
};

// ------------------------------------------------------------------ XML context

interface XmlContext {
  kind: 'element' | 'attr' | 'value' | 'text';
  /** Enclosing element (parent of the tag being written, or of the text). */
  parent?: string;
  /** Element whose start tag holds the cursor. */
  element?: string;
  attr?: string;
  tagStart: number;
  /** Start of the partial element name / attribute name / value. */
  valueStart?: number;
  textStart?: number;
  present?: string[];
}

/** Where in XML the cursor is, from the raw text (works on half-written documents). */
function xmlContext(t: string, off: number): XmlContext {
  const lt = t.lastIndexOf('<', off - 1);
  const gt = t.lastIndexOf('>', off - 1);
  const parentAt = (end: number) => enclosing(t.slice(0, end));
  if (lt > gt) {
    const tag = t.slice(lt, off);
    const nm = /^<\/?([\w.:-]*)$/.exec(tag);
    if (nm) return { kind: 'element', parent: parentAt(lt), tagStart: lt, valueStart: off - nm[1].length };
    const el = /^<([\w.:-]+)/.exec(tag)?.[1];
    const present = [...tag.matchAll(/([\w.:-]+)\s*=\s*(?:"[^"]*"|'[^']*')/g)].map((m) => m[1]);
    const val = /([\w.:-]+)\s*=\s*(["'])([^"']*)$/.exec(tag);
    if (val) return { kind: 'value', element: el, attr: val[1], tagStart: lt, valueStart: off - val[3].length, parent: parentAt(lt), present };
    const an = /\s([\w.:-]*)$/.exec(tag);
    if (an) return { kind: 'attr', element: el, tagStart: lt, valueStart: off - an[1].length, parent: parentAt(lt), present };
    return { kind: 'text', tagStart: lt, parent: parentAt(lt) };
  }
  return { kind: 'text', tagStart: gt, parent: parentAt(off), textStart: gt + 1 };
}

/** The innermost unclosed element of a prefix of XML. */
function enclosing(prefix: string): string | undefined {
  const stack: string[] = [];
  const re = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[[\s\S]*?\]\]>|<(\/?)([\w.:-]+)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g;
  for (let m = re.exec(prefix); m; m = re.exec(prefix)) {
    if (!m[2]) continue;
    if (m[1]) {
      const i = stack.lastIndexOf(m[2]);
      if (i >= 0) stack.length = i;
    } else if (!m[4]) stack.push(m[2]);
  }
  return stack[stack.length - 1];
}

/** zod internals, read without importing zod: the enum values of an attribute, if it is one. */
function enumValues(t: unknown): string[] | undefined {
  let x = t as { _def?: { typeName?: string; innerType?: unknown; values?: string[] } } | undefined;
  for (let i = 0; i < 5 && x?._def; i++) {
    if (x._def.typeName === 'ZodEnum') return x._def.values;
    if (x._def.innerType) x = x._def.innerType as typeof x;
    else break;
  }
  return undefined;
}

const POW2 = ['64M', '128M', '256M', '512M', '1G', '2G', '4G', '8G', '16G', '32G', '64G'];
const CXL_SIZES = ['256M', '512M', '768M', '1G', '2G', '4G', '8G', '16G', '32G', '64G', '128G'];
const GRANULARITY = ['256', '512', '1K', '2K', '4K', '8K', '16K'];
const RAM = ['512M', '1G', '2G', '4G', '8G', '16G', '32G', '64G'];

function sizeItems(values: string[], why: string, range: Range): CompletionItem[] {
  return values.map((v, i) => {
    const r = parseQemuSize(v);
    return {
      label: v,
      kind: CompletionItemKind.Value,
      detail: r.ok ? hexHuman(r.value) : undefined,
      documentation: why,
      sortText: String(i).padStart(3, '0'),
      textEdit: TextEdit.replace(range, v),
    };
  });
}

function idItems(ids: { name: string; kind: IdKind }[], range: Range, extra: string[] = []): CompletionItem[] {
  const out: CompletionItem[] = ids.map((x) => ({ label: x.name, kind: CompletionItemKind.Reference, detail: x.kind, textEdit: TextEdit.replace(range, x.name) }));
  for (const e of extra) if (!ids.some((x) => x.name === e)) out.push({ label: e, kind: CompletionItemKind.Constant, textEdit: TextEdit.replace(range, e) });
  return out;
}

function topologySizeChoice(element: string | undefined, attrName: string): { values: string[]; why: string } | undefined {
  if (attrName === 'granularity') return { values: GRANULARITY, why: 'CXL interleave granularity: a power of two from 256 B to 16 KiB (cxl-fmw-granularity)' };
  if (attrName === 'align') return { values: ['2M', '1G'], why: 'A device-DAX backend needs the DAX device alignment (dax-align)' };
  if (element === 'fabric') return { values: POW2, why: 'ivshmem maps the region as BAR2: its size must be a power of two (ivshmem-size-pow2)' };
  if ((element === 'type3' || element === 'window') && attrName === 'size') return { values: CXL_SIZES, why: 'CXL capacities and windows are multiples of 256 MiB (cxl-type3-size-256m, cxl-fmw-size-256m)' };
  if (attrName === 'lsa-size') return { values: ['256M', '512M'], why: 'Label storage area size' };
  if (attrName === 'memory' || attrName === 'maxmem' || (element === 'cell' && attrName === 'size')) return { values: RAM, why: 'Guest RAM' };
  if (attrName === 'size') return { values: POW2, why: 'A power of two fits every memory device (ivshmem BAR2, CXL at 256 MiB and up)' };
  return undefined;
}

function topologyCompletions(a: Analysis, off: number, ctx: XmlContext, ids: IdsFn): CompletionItem[] {
  const range = a.lm.range({ start: ctx.valueStart ?? off, end: off });
  if (ctx.kind === 'element') {
    const names = ctx.parent ? SCHEMA[ctx.parent]?.children ?? [] : ['cluster'];
    return names.map((n, i) => ({
      label: n,
      kind: CompletionItemKind.Class,
      documentation: SCHEMA[n]?.doc,
      sortText: String(i).padStart(3, '0'),
      textEdit: TextEdit.replace(range, n),
    }));
  }
  const spec = ctx.element ? SCHEMA[ctx.element] : undefined;
  if (ctx.kind === 'attr') {
    if (!spec) return [];
    return Object.keys(spec.attrs.shape)
      .filter((k) => k !== 'xmlns' && !ctx.present?.includes(k))
      .map((k) => ({
        label: k,
        kind: CompletionItemKind.Property,
        detail: `<${ctx.element} ${k}>`,
        insertTextFormat: InsertTextFormat.Snippet,
        textEdit: TextEdit.replace(range, `${k}="$1"`),
        command: { title: 'suggest', command: 'editor.action.triggerSuggest' },
      }));
  }
  if (ctx.kind === 'value' && spec && ctx.attr) {
    const en = enumValues(spec.attrs.shape[ctx.attr]);
    if (en) return en.map((v) => ({ label: v, kind: CompletionItemKind.EnumMember, textEdit: TextEdit.replace(range, v) }));
    if (ctx.element === 'attach' && ctx.attr === 'fabric') return idItems(ids(['fabric']), range);
    if (ctx.element === 'node' && ctx.attr === 'template') return idItems(ids(['template'], 'template'), range);
    if (ctx.element === 'window' && ctx.attr === 'targets') {
      const t = a.text;
      let s = off;
      while (s > (ctx.valueStart ?? off) && !/\s/.test(t[s - 1])) s--;
      return idItems(ids(['host-bridge']), a.lm.range({ start: s, end: off }));
    }
    if (ctx.element === 'egm' && ctx.attr === 'pci-dev') return idItems(ids(['hostdev', 'device']), range);
    if (ctx.attr === 'machine') return ['q35', 'pc'].map((v) => ({ label: v, kind: CompletionItemKind.EnumMember, textEdit: TextEdit.replace(range, v) }));
    const sz = topologySizeChoice(ctx.element, ctx.attr);
    if (sz) return sizeItems(sz.values, sz.why, range);
  }
  return [];
}

const COMMON_OPTIONS = ['object', 'device', 'machine', 'm', 'smp', 'numa', 'cpu', 'global', 'name', 'kernel', 'initrd', 'append', 'enable-kvm', 'nographic', 'chardev', 'accel', 'drive', 'netdev', 'M'];

function optionItems(range: Range, dashes: string): CompletionItem[] {
  const all = [...new Set([...COMMON_OPTIONS, ...OPTIONS_WITH_ARG, ...OPTIONS_WITHOUT_ARG])];
  return all.map((o) => {
    const rank = COMMON_OPTIONS.indexOf(o);
    return {
      label: `-${o}`,
      kind: CompletionItemKind.Keyword,
      detail: OPTIONS_WITH_ARG.has(o) ? 'takes a value' : undefined,
      sortText: `${rank < 0 ? 1 : 0}${String(rank < 0 ? 0 : rank).padStart(3, '0')}${o}`,
      filterText: `${dashes}${o}`,
      textEdit: TextEdit.replace(range, `${dashes}${o}`),
    };
  });
}

/** Properties of a -device driver / -object type / -machine / -numa / -m, with their QEMU types. */
function propsOf(option: string, first: string): Record<string, string> {
  switch (option) {
    case 'device':
      return { id: 'str', bus: 'str', ...(catalog.devices[first]?.props ?? {}) };
    case 'object':
      return { id: 'str', ...(catalog.objects[first]?.props ?? {}) };
    case 'machine':
    case 'M':
      return { ...catalog.machineProps.q35, 'cxl-fmw.0.targets.0': 'str', 'cxl-fmw.0.size': 'size', 'cxl-fmw.0.interleave-granularity': 'size' };
    case 'numa':
      return first === 'node' ? { nodeid: 'uint16', cpus: 'str', memdev: 'link<memory-backend>', mem: 'size', initiator: 'uint16' } : {};
    case 'm':
      return { size: 'size', maxmem: 'size', slots: 'uint64' };
    case 'smp':
      return { cpus: 'int', sockets: 'int', cores: 'int', threads: 'int', maxcpus: 'int' };
    default:
      return {};
  }
}

function qemuValueCompletions(a: Analysis, off: number, curStart: number, cur: string, prev: string | undefined, ids: IdsFn): CompletionItem[] {
  const lm = a.lm;
  const prevOpt = prev && /^--?[\w-]+$/.test(prev) ? prev.replace(/^--?/, '') : undefined;
  const option = prevOpt && OPTIONS_WITH_ARG.has(prevOpt) ? prevOpt : undefined;
  if (!option || cur.startsWith('-')) {
    if (cur === '' || cur.startsWith('-')) return optionItems(lm.range({ start: curStart, end: off }), cur.startsWith('--') ? '--' : '-');
    return [];
  }
  // "-M cxl-fmw.0.size=…": a first element with "=" is a key, not the type.
  const comma = cur.indexOf(',') < 0 && cur.includes('=') ? -1 : cur.lastIndexOf(',');
  if (comma < 0 && !cur.includes('=')) {
    const range = lm.range({ start: curStart, end: off });
    const names = (xs: string[], kind: CompletionItemKind, detail?: (x: string) => string | undefined) =>
      xs.map((x) => ({ label: x, kind, detail: detail?.(x), textEdit: TextEdit.replace(range, x) }));
    switch (option) {
      case 'device':
        return names(Object.keys(catalog.devices).sort(), CompletionItemKind.Class, (x) => (catalog.devices[x].bus ? `${catalog.devices[x].bus} device` : 'device'));
      case 'object':
        return names(Object.keys(catalog.objects).sort(), CompletionItemKind.Class, () => 'object type');
      case 'machine':
      case 'M':
        return names(Object.keys(catalog.machines), CompletionItemKind.EnumMember, (x) => catalog.machines[x].desc);
      case 'numa':
        return names(['node', 'dist', 'cpu', 'hmat-lb', 'hmat-cache'], CompletionItemKind.EnumMember);
      case 'm':
        return sizeItems(RAM, 'Guest RAM', range);
      default:
        return [];
    }
  }
  const first = comma < 0 ? '' : cur.slice(0, cur.indexOf(',')).replace(/^(driver|qom-type|type)=/, '');
  const seg = cur.slice(comma + 1);
  const segStart = curStart + comma + 1;
  const props = propsOf(option, option === 'm' || option === 'smp' ? '' : first);
  const eq = seg.indexOf('=');
  if (eq < 0) {
    const range = lm.range({ start: segStart, end: off });
    const present = new Set(cur.split(',').map((x) => x.split('=')[0]));
    return Object.entries(props)
      .filter(([k]) => !present.has(k) || k === seg)
      .map(([k, type]) => ({
        label: k,
        kind: CompletionItemKind.Property,
        detail: type,
        sortText: `${['id', 'memdev', 'size', 'mem-path', 'share', 'bus', 'persistent-memdev', 'lsa'].includes(k) ? 0 : 1}${k}`,
        textEdit: TextEdit.replace(range, `${k}=`),
        command: { title: 'suggest', command: 'editor.action.triggerSuggest' },
      }));
  }
  const key = seg.slice(0, eq);
  const range = lm.range({ start: segStart + eq + 1, end: off });
  const type = props[key] ?? '';
  if (REF_KEYS[key] || type.startsWith('link<memory-backend')) {
    const kinds = REF_KEYS[key] ?? ['backend'];
    const root = /pc-i440fx|^pc$/.test(a.doc?.nodes[0]?.machine.type?.text ?? 'q35') ? 'pci.0' : 'pcie.0';
    return idItems(ids(kinds), range, key === 'bus' ? [root] : []);
  }
  if (/^cxl-fmw\.\d+\.targets\.\d+$/.test(key)) return idItems(ids(['host-bridge']), range);
  if (/^cxl-fmw\.\d+\.size$/.test(key)) return sizeItems(CXL_SIZES, 'A CXL fixed memory window is a multiple of 256 MiB (cxl-fmw-size-256m)', range);
  if (/interleave-granularity$/.test(key)) return sizeItems(GRANULARITY, 'A power of two from 256 B to 16 KiB (cxl-fmw-granularity)', range);
  if (key === 'align') return sizeItems(['2M', '1G'], 'device-DAX alignment (dax-align)', range);
  if (key === 'size' && option === 'object' && first.startsWith('memory-backend-')) {
    // What the backend is for decides which sizes the rules accept.
    const id = /(?:^|,)id=([^,]*)/.exec(cur)?.[1];
    const users = id ? (a.doc?.nodes ?? []).flatMap((n) => n.devices.filter((d) => d.props.some((p) => REF_KEYS[p.key]?.includes('backend') && p.value.text === id))) : [];
    if (users.some((d) => d.driver === 'cxl-type3')) return sizeItems(CXL_SIZES, 'A CXL Type 3 capacity is a multiple of 256 MiB (cxl-type3-size-256m)', range);
    return sizeItems(POW2, 'A power of two: ivshmem maps it as BAR2, which must be one (ivshmem-size-pow2); for CXL, 256M and up', range);
  }
  if (key === 'size' || key === 'maxmem' || key === 'mem') return sizeItems(RAM, 'Guest RAM', range);
  if (type === 'bool' || type === 'OnOffAuto' || type === 'OnOffSplit') {
    const vals = type === 'OnOffAuto' ? ['on', 'off', 'auto'] : ['on', 'off'];
    return vals.map((v) => ({ label: v, kind: CompletionItemKind.EnumMember, textEdit: TextEdit.replace(range, v) }));
  }
  return [];
}

/** Start the server on the transport named in args (default stdio). */
export function startServer(args: string[] = []): MemfabricServer {
  const useStdio = !args.some((x) => x === '--node-ipc' || x.startsWith('--socket') || x.startsWith('--pipe'));
  const connection = useStdio
    ? createConnection(ProposedFeatures.all, new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout))
    : createConnection(ProposedFeatures.all);
  const server = new MemfabricServer(connection);
  process.on('uncaughtException', (e) => {
    try {
      connection.console.error(`memfabric: uncaught ${(e as Error)?.stack ?? e}`);
    } catch {
      /* nothing left to tell */
    }
  });
  if (useStdio) process.stdin.on('end', () => process.exit(0));
  connection.listen();
  return server;
}
