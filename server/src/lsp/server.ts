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
import { performance } from 'node:perf_hooks';
import { addVerdicts, analyzeDocuments, AnalyzedDocument, forgetAnalysis, nodeArches, selectNodes } from '../engine/index';
import { layoutProbe, type Judged } from '../runtime/judge';
import { Diagnostic } from '../engine/diagnostics';
import { LineMap } from '../engine/text/source';
import { CompletionData, EditorAnalysis, ServedKind, servedKind as servedKindOf } from '../engine/editor/analysis';
import { complete, CompletionKind } from '../engine/editor/completion';
import { hover } from '../engine/editor/hover';
import { quickFixes } from '../engine/editor/fixes';
import { definition, prepareRename, references, rename } from '../engine/editor/navigation';
import { outline, OutlineItem } from '../engine/editor/outline';
import { cachedHost, nodeHost } from '../host/probe';
import { archProfile, knownProfile, userProfile } from '../host/qemu-profile';
import { bundledProfile, profileFor, profileLabel, QemuProfile, QemuProfiles } from '../engine/qemu/profile';
import { layoutReport } from '../engine/layout/report';
import { LayoutRequest, LayoutResult, QemuInfo, QemuRequest } from './protocol';

/** Offsets ↔ LSP positions of one text (LineMap's interface). */
type Positions = Pick<LineMap, 'range' | 'offset' | 'position'>;

/** One analyzed version of a document: the engine's view (ed) and the positions of its text. */
interface Analysis {
  version: number;
  lm: Positions;
  ed: EditorAnalysis;
}

/**
 * Positions in the text of version `version` of d: the document's own line
 * table while it is at that version (kept up to date on every change, so a
 * large document is not scanned again), else a LineMap of the text.
 */
function positionsOf(d: TextDocument, version: number, text: string): Positions {
  let own: LineMap | undefined;
  const lm = (): LineMap | undefined => (d.version === version ? undefined : (own ??= new LineMap(text)));
  const position = (o: number) => lm()?.position(o) ?? d.positionAt(o);
  return {
    position,
    range: (sp) => lm()?.range(sp) ?? { start: position(sp.start), end: position(sp.end) },
    offset: (pos) => {
      const m = lm();
      if (m) return m.offset(pos);
      // As LineMap.offset: the line clamped to the document, the character to the start of the next line.
      const line = Math.max(0, Math.min(pos.line, d.lineCount - 1));
      const start = d.offsetAt({ line, character: 0 });
      const next = line + 1 < d.lineCount ? d.offsetAt({ line: line + 1, character: 0 }) : text.length;
      return Math.min(start + Math.max(0, pos.character), next);
    },
  };
}

type Position = { line: number; character: number };

const DEBOUNCE_MS = 150;
/**
 * A document whose analyses take at most this long (analysisDelay) is
 * analyzed as soon as a change arrives; the debounce then only holds back publishing (no
 * squiggles flickering while typing), and hover, completion and quick fixes
 * find the new version analyzed.
 */
const EAGER_MAX_MS = 20;
/**
 * A dearer document whose analyses take at most this long is analyzed ahead
 * of the debounce, by twice that time, so that its analysis is done
 * when the debounce fires and publishing does not wait for it; changes that
 * follow each other faster than that (typing) never start it. The earliest it
 * starts is DEBOUNCE_MS - 2 * LEAD_MAX_MS = 70 ms after a change, so a
 * keystroke that follows one within 70 ms never waits behind it.
 */
const LEAD_MAX_MS = 40;
/**
 * How long that analysis waits after the change when it runs at once: long
 * enough for the requests an editor sends with a keystroke (completion,
 * signature help) to be read and answered first. Node runs an immediate
 * before the I/O that brings them, so an analysis started with setImmediate
 * made a completion request sent right after didChange wait for it (7 ms on
 * the 1 MB topology); completion needs only the text and the last analysis's
 * ids.
 */
const EAGER_DELAY_MS = 5;

/**
 * When to analyze a changed document, in ms after the change, or undefined
 * for when the debounce fires (a document never analyzed, or one whose
 * analyses take more than LEAD_MAX_MS: once per pause in typing). Judged by
 * the middle of its last three analysis times (the lower of two), so one
 * analysis that a garbage collection or a busy machine made slow does not
 * move the next change to a later analysis, and a document that became dear
 * moves after its second dear analysis:
 * - at most EAGER_MAX_MS: EAGER_DELAY_MS, at once;
 * - at most LEAD_MAX_MS: DEBOUNCE_MS less twice that time.
 * Before the middle band, the 1 MB topology (analyses after an edit 15-19 ms
 * when the machine is quiet, 20-30 ms while the server warms up or the
 * machine is busy) was analyzed when the debounce fired now and then, which
 * added the whole analysis to the time before publishing.
 */
export function analysisDelay(costs: readonly number[] | undefined): number | undefined {
  if (!costs?.length) return undefined;
  const last = costs.slice(-3).sort((a, b) => a - b);
  const cost = last[(last.length - 1) >> 1];
  if (cost <= EAGER_MAX_MS) return EAGER_DELAY_MS;
  if (cost <= LEAD_MAX_MS) return Math.round(DEBOUNCE_MS - 2 * cost);
  return undefined;
}
/** How long a document rests after publishing before the background probe runs QEMU on it. */
const PROBE_REST_MS = 800;
/** Quiet time after publishing before a new analysis computes its completion data. */
const PREPARE_IDLE_MS = 100;
/** docs/diagnostics.md: from out/server/src/lsp in the repository, from dist/ in the installed extension. */
const DOCS = [resolve(__dirname, '../../../../docs/diagnostics.md'), resolve(__dirname, '../docs/diagnostics.md')].find((p) => existsSync(p));
const DOCS_URL = DOCS ? pathToFileURL(DOCS).toString() : undefined;

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

/** Which input a document is, or undefined for documents memfabric does not serve (engine/editor/analysis.ts). */
export function servedKind(text: string, uri: string, languageId: string): ServedKind | undefined {
  return servedKindOf(text, sourceOf(uri), languageId);
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
  /** Backing-file facts for diagnostics, kept for a second (re-asked on the next change after that). */
  private readonly host = cachedHost(1000);
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** URIs we published non-empty diagnostics for (to clear them when a document stops being served). */
  private readonly published = new Set<string>();
  private readonly openedVersion = new Map<string, number>();
  /**
   * Per document, the latest analysis whose completion data (ids) is
   * computed. A new analysis computes it once the document is idle, so
   * neither the diagnostics nor a keystroke waits for it; until then
   * completion reads this one.
   */
  private readonly ready = new Map<string, CompletionData>();
  private readonly prepareTimers = new Map<string, NodeJS.Timeout>();
  /** How long the last analyses of each document took (ms, with its cluster peers; up to three, the latest last: analysisDelay). */
  private readonly cost = new Map<string, number[]>();
  /** The analysis of a changed document before the debounce fires (analysisDelay). */
  private readonly early = new Map<string, NodeJS.Timeout>();
  /**
   * The QEMU documents are judged for: until the profile of the user's binary is
   * read (host/qemu-profile.ts: cached on disk, about a second the first time),
   * the bundled profile nearest to its version; then every open document is
   * judged again.
   */
  private qemu: QemuProfile = bundledProfile();
  private qemuNote?: string;
  private qemuReady: Promise<void> = Promise.resolve();
  /**
   * The profiles of the other architectures' QEMUs (qemu-system-aarch64 for an
   * aarch64 domain), as the CLI judges them (host/qemu-profile.ts archProfile):
   * read in the background the first time a node of that architecture is
   * analyzed; until then the bundled profile of that architecture serves.
   */
  private readonly archProfiles = new Map<string, QemuProfile>();
  private readonly archNotes = new Map<string, string>();
  private readonly archReads = new Map<string, Promise<void>>();
  /** What analyses are given: the user's profile, or a map by architecture once others were read (one object per state: analyses are kept per profile object). */
  private qemuMap?: Record<string, QemuProfile>;
  /**
   * The background probe (runtime/probe.ts): the user's QEMU run on each node
   * shape of a document at rest, adding QEMU's own refusals and confirming the
   * layout. Only when the client asks for it (initializationOptions.probe: the
   * VS Code client in a trusted workspace); cancelled by the next change.
   */
  private probeEnabled = false;
  private readonly probeTimers = new Map<string, NodeJS.Timeout>();
  private readonly probeRuns = new Map<string, AbortController>();
  /** The last probe of each document: its version and what QEMU said. */
  private readonly probed = new Map<string, { version: number; judged: Judged[] }>();
  /** The libvirt to ask about domain documents at rest (initializationOptions.libvirtUri, else found as `check --libvirt` finds it). */
  private libvirtUri: string | undefined;
  /** Whether that libvirt answers: asked once, on the first domain that rests. */
  private libvirtReady: Promise<import('../host/libvirt').LibvirtTarget | undefined> | undefined;

  constructor(private readonly connection: Connection) {
    const c = connection;
    const docs = this.documents;
    c.onInitialize((p): InitializeResult => {
      const init = p.initializationOptions as { qemuBinary?: string; probe?: boolean; libvirtUri?: string } | undefined;
      this.probeEnabled = init?.probe === true;
      this.libvirtUri = init?.libvirtUri || undefined;
      this.qemuReady = this.readProfile(init?.qemuBinary);
      return {
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
      };
    });
    c.onRequest(QemuRequest.type, async (): Promise<QemuInfo> => {
      await this.qemuReady;
      await Promise.all(this.archReads.values());
      const info = (q: QemuProfile, note: string | undefined) => ({ label: profileLabel(q), version: q.version, firmware: q.firmware ? `${q.firmware.name} ${q.firmware.version}` : undefined, origin: q.origin.kind === 'binary' ? q.origin.path : 'bundled', ...(note ? { note } : {}) });
      const arches = [...this.archProfiles].filter(([a]) => a !== this.qemu.arch).sort(([a], [b]) => (a < b ? -1 : 1));
      return { ...info(this.qemu, this.qemuNote), ...(arches.length ? { arches: Object.fromEntries(arches.map(([a, q]) => [a, info(q, this.archNotes.get(a))])) } : {}) };
    });
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
        clearTimeout(this.prepareTimers.get(uri));
        clearTimeout(this.early.get(uri));
        this.cancelProbe(uri);
        this.probed.delete(uri);
        this.timers.delete(uri);
        this.prepareTimers.delete(uri);
        this.early.delete(uri);
        this.cost.delete(uri);
        this.cache.delete(uri);
        this.ready.delete(uri);
        this.openedVersion.delete(uri);
        forgetAnalysis(sourceOf(uri));
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
    c.onRenameRequest((p) => this.rename(p.textDocument.uri, p.position, p.newName));
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

  /**
   * Reads the profile of the user's QEMU (the client's memfabric.qemuBinary, else
   * $MEMFABRIC_QEMU, else qemu-system-x86_64 in PATH) and, when it is not the one
   * in use, judges every open document again.
   */
  private async readProfile(binary: string | undefined): Promise<void> {
    const env = binary?.trim() ? { ...process.env, MEMFABRIC_QEMU: binary.trim() } : process.env;
    try {
      // Read before (cached on disk): judge with it from the first document on, nothing to judge again.
      const known = knownProfile(env);
      if (known.resolved) {
        this.qemu = known.resolved.profile;
        this.qemuNote = known.resolved.note;
        return;
      }
      // Else the bundled profile nearest to its version until the binary is read.
      this.qemu = bundledProfile(/version (\d+\.\d+(?:\.\d+)?)/.exec(known.line ?? '')?.[1]);
      const { profile, note } = await userProfile(env);
      this.qemuNote = note;
      if (note) this.connection.console.info(`memfabric: ${note}`);
      if (profile === this.qemu) return;
      this.qemu = profile;
      this.qemuMap = undefined;
      this.connection.console.info(`memfabric: judging for ${profileLabel(profile)}`);
      this.cache.clear();
      this.ready.clear();
      for (const d of this.documents.all()) this.schedule(d.uri);
    } catch (e) {
      this.qemuNote = `the QEMU profile could not be read: ${(e as Error).message}`;
    }
  }

  /** The profiles analyses are judged with: the user's QEMU, and the other architectures' once read. */
  private profiles(): QemuProfiles {
    const others = [...this.archProfiles].filter(([a]) => a !== this.qemu.arch);
    if (!others.length) return this.qemu;
    return (this.qemuMap ??= { ...Object.fromEntries(others), [this.qemu.arch]: this.qemu });
  }

  /** Nodes of another architecture than the user's QEMU: read qemu-system-<arch> (once, in the background), then judge again. */
  private readArches(docs: AnalyzedDocument[]) {
    for (const arch of new Set(docs.flatMap((r) => nodeArches(r)))) {
      if (arch === this.qemu.arch || this.archReads.has(arch)) continue;
      this.archReads.set(
        arch,
        (async () => {
          try {
            await this.qemuReady;
            const { profile, note } = await archProfile(arch);
            if (note) {
              this.archNotes.set(arch, note);
              this.connection.console.info(`memfabric: ${note}`);
            }
            this.archProfiles.set(arch, profile);
            this.qemuMap = undefined;
            this.connection.console.info(`memfabric: judging ${arch} nodes for ${profileLabel(profile)}`);
            this.cache.clear();
            this.ready.clear();
            for (const d of this.documents.all()) this.schedule(d.uri);
          } catch (e) {
            this.archNotes.set(arch, `the ${arch} QEMU profile could not be read: ${(e as Error).message}`);
          }
        })(),
      );
    }
  }

  private schedule(uri: string) {
    this.cancelProbe(uri);
    clearTimeout(this.prepareTimers.get(uri));
    clearTimeout(this.timers.get(uri));
    this.timers.set(
      uri,
      setTimeout(() => {
        this.timers.delete(uri);
        this.guard(() => this.validateGroup(uri), undefined);
      }, DEBOUNCE_MS),
    );
    // Cheap to analyze: do it now (once the requests sent with the change are answered), or ahead of the debounce; publish when it fires.
    clearTimeout(this.early.get(uri));
    const delay = analysisDelay(this.cost.get(uri));
    if (delay !== undefined) {
      this.early.set(
        uri,
        setTimeout(() => {
          this.early.delete(uri);
          this.guard(() => this.ensure(uri), undefined);
        }, delay),
      );
    }
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
      lm: positionsOf(e.d, e.d.version, e.text),
      // (Hovers and completion name the QEMU of the document's own architecture.)
      ed: new EditorAnalysis(e.text, e.kind, doc, profileFor(this.profiles(), (doc && nodeArches(doc)[0]) ?? this.qemu.arch)),
    });
    const self = entries.find((e) => e.d === d)!;
    if (!kind) {
      this.cache.set(d.uri, fresh(self));
      return [d];
    }
    const run = (es: typeof entries) => {
      const r = analyzeDocuments(es.map((e) => ({ text: e.text, source: sourceOf(e.d.uri), kind: e.kind })), this.host, { information: true, qemu: this.profiles() });
      this.readArches(r);
      return r;
    };
    let results: AnalyzedDocument[] | undefined;
    let used = entries;
    const started = performance.now();
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
    const took = performance.now() - started;
    used.forEach((e, i) => {
      this.cache.set(e.d.uri, fresh(e, results?.[i]));
      const costs = this.cost.get(e.d.uri) ?? [];
      costs.push(took);
      if (costs.length > 3) costs.shift();
      this.cost.set(e.d.uri, costs);
    });
    return used.map((e) => e.d);
  }

  private validateGroup(uri: string) {
    const d = this.documents.get(uri);
    if (!d) return;
    // A request (completion, hover) may already have analyzed this version.
    const cached = this.cache.get(uri);
    const group = cached && cached.version === d.version ? [d, ...this.peersOf(d.uri, sourceOf(d.uri), this.kindOf(d))] : this.analyzeGroup(d);
    for (const m of group) {
      this.publish(m.uri);
      this.prepareWhenIdle(m.uri);
      this.probeWhenAtRest(m.uri);
    }
  }

  private cancelProbe(uri: string) {
    clearTimeout(this.probeTimers.get(uri));
    this.probeTimers.delete(uri);
    this.probeRuns.get(uri)?.abort();
    this.probeRuns.delete(uri);
  }

  /** After a publish: when the document rests, run the user's QEMU on it (if the client asked for the probe). */
  private probeWhenAtRest(uri: string) {
    if (!this.probeEnabled) return;
    if (this.qemu.origin.kind !== 'binary' && this.cache.get(uri)?.ed.doc?.kind !== 'libvirt') return;
    this.cancelProbe(uri);
    this.probeTimers.set(
      uri,
      setTimeout(() => {
        this.probeTimers.delete(uri);
        void this.probe(uri);
      }, PROBE_REST_MS),
    );
  }

  private async probe(uri: string): Promise<void> {
    const a = this.cache.get(uri);
    const doc = a?.ed.doc;
    if (!a || !doc || !doc.nodes.length || this.documents.get(uri)?.version !== a.version) return;
    const ac = new AbortController();
    this.probeRuns.set(uri, ac);
    try {
      // A domain: libvirt itself, when one answers, says what it makes of it (as `check --libvirt`).
      if (doc.kind === 'libvirt' && (await this.askLibvirt(uri, a, doc, ac.signal))) this.publish(uri);
      if (ac.signal.aborted || this.qemu.origin.kind !== 'binary') return;
      const { judgeWithQemu } = await import('../runtime/judge');
      // The user's QEMU runs the nodes of its own architecture (as `check --probe` does).
      const own = doc.nodes.filter((n) => n.arch === this.qemu.arch);
      if (!own.length) return;
      const judged = await judgeWithQemu(own, this.qemu, { signal: ac.signal, agent: true });
      // A change since: this answer is for text that is gone (the next rest probes again).
      if (ac.signal.aborted || this.cache.get(uri) !== a) return;
      addVerdicts(doc, judged);
      this.probed.set(uri, { version: a.version, judged });
      this.publish(uri);
    } catch (e) {
      if (!ac.signal.aborted) this.connection.console.warn(`memfabric: probe of ${uri} failed: ${(e as Error).message}`);
    } finally {
      if (this.probeRuns.get(uri) === ac) this.probeRuns.delete(uri);
    }
  }

  /** libvirt's findings on a resting domain document, added to its diagnostics; true if any. */
  private async askLibvirt(uri: string, a: Analysis, doc: AnalyzedDocument, signal: AbortSignal): Promise<boolean> {
    const lv = await import('../host/libvirt');
    this.libvirtReady ??= (async () => {
      const t = lv.libvirtTarget(process.env, this.libvirtUri);
      if ('none' in t) return undefined;
      const why = await lv.libvirtUnreachable(t.uri);
      if (why) this.connection.console.info(`memfabric: libvirt at ${t.uri} does not answer (${why}): domains are judged with the model of libvirt 9.0`);
      return why ? undefined : t;
    })();
    const target = await this.libvirtReady;
    const text = this.documents.get(uri)?.getText();
    if (!target || text === undefined || signal.aborted || this.cache.get(uri) !== a) return false;
    const answer = await lv.domxmlToNative(text, target);
    if (signal.aborted || this.cache.get(uri) !== a || (!answer.ok && lv.isConnectionError(answer.error))) return false;
    const { libvirtFindings } = await import('../engine/libvirt-answer');
    const argvDoc = answer.ok ? analyzeDocuments([{ text: answer.argv, source: `${sourceOf(uri)}#libvirt-argv`, kind: 'qemu' }], this.host, { qemu: this.profiles() })[0] : undefined;
    const found = libvirtFindings(text, doc, answer, argvDoc);
    doc.diagnostics.push(...found);
    return found.length > 0;
  }

  private prepareWhenIdle(uri: string) {
    clearTimeout(this.prepareTimers.get(uri));
    this.prepareTimers.set(
      uri,
      setTimeout(() => {
        this.prepareTimers.delete(uri);
        this.guard(() => {
          const a = this.cache.get(uri);
          if (a?.ed.doc) this.ready.set(uri, a.ed.completionData());
        }, undefined);
      }, PREPARE_IDLE_MS),
    );
  }

  private publish(uri: string) {
    const a = this.cache.get(uri);
    if (!a) return;
    let diagnostics: LspDiagnostic[] = [];
    try {
      diagnostics = (a.ed.doc?.diagnostics ?? []).map((x) => this.toLsp(x, a, uri));
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

  private lineMapOf(source: string): Positions | undefined {
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
        if (r.source && r.source !== a.ed.doc?.source) {
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

  // ---------------------------------------------------------------- features (engine/editor)

  private codeActions(uri: string, range: Range): CodeAction[] {
    const a = this.ensure(uri);
    if (!a?.ed.doc) return [];
    const lsp = new Map<Diagnostic, LspDiagnostic>();
    return quickFixes(a.ed, { start: a.lm.offset(range.start), end: a.lm.offset(range.end) }).map((f) => {
      let d = lsp.get(f.diagnostic);
      if (!d) lsp.set(f.diagnostic, (d = this.toLsp(f.diagnostic, a, uri)));
      const edit: WorkspaceEdit = { changes: { [uri]: f.edits.map((e) => TextEdit.replace(a.lm.range(e.span), e.newText)) } };
      return { title: f.title, kind: CodeActionKind.QuickFix, diagnostics: [d], edit, isPreferred: f.preferred };
    });
  }

  private hover(uri: string, pos: Position): Hover | null {
    const a = this.ensure(uri);
    if (!a?.ed.doc) return null;
    const h = hover(a.ed, a.lm.offset(pos));
    return h ? { contents: { kind: MarkupKind.Markdown, value: h.markdown }, range: h.span ? a.lm.range(h.span) : undefined } : null;
  }

  /**
   * Completion reads its context from the current text and ids from the last
   * analysis, even of an older version: a keystroke never waits for the
   * analysis of the whole document (the debounced one brings it up to date).
   */
  private complete(uri: string, pos: Position): CompletionItem[] {
    const d = this.documents.get(uri);
    if (!d) return [];
    const kind = this.kindOf(d);
    if (!kind) return [];
    const latest = this.cache.get(uri)?.ed;
    let data = latest?.hasCompletionData && latest.kind === kind ? latest.completionData() : this.ready.get(uri);
    if (data?.kind !== kind) {
      // Nothing prepared for this kind of document yet: analyze (if need be) and prepare now.
      const ed = latest?.kind === kind ? latest : this.ensure(uri)?.ed;
      data = ed?.doc ? ed.completionData() : undefined;
      if (data) this.ready.set(uri, data);
    }
    return complete(d.getText(), d.offsetAt(pos), kind, data).map((c) => {
      const item: CompletionItem = { label: c.label, kind: COMPLETION_KIND[c.kind], textEdit: TextEdit.replace({ start: d.positionAt(c.span.start), end: d.positionAt(c.span.end) }, c.newText) };
      if (c.detail !== undefined) item.detail = c.detail;
      if (c.documentation !== undefined) item.documentation = c.documentation;
      if (c.sortText !== undefined) item.sortText = c.sortText;
      if (c.filterText !== undefined) item.filterText = c.filterText;
      if (c.snippet) item.insertTextFormat = InsertTextFormat.Snippet;
      if (c.retrigger) item.command = { title: 'suggest', command: 'editor.action.triggerSuggest' };
      return item;
    });
  }

  private definition(uri: string, pos: Position): Location[] | null {
    const a = this.ensure(uri);
    const spans = a?.ed.doc ? definition(a.ed, a.lm.offset(pos)) : undefined;
    return spans ? spans.map((s) => Location.create(uri, a!.lm.range(s))) : null;
  }

  private references(uri: string, pos: Position, includeDeclaration: boolean): Location[] | null {
    const a = this.ensure(uri);
    const spans = a?.ed.doc ? references(a.ed, a.lm.offset(pos), includeDeclaration) : undefined;
    return spans ? spans.map((s) => Location.create(uri, a!.lm.range(s))) : null;
  }

  private prepareRename(uri: string, pos: Position): { range: Range; placeholder: string } | null {
    const a = this.ensure(uri);
    const r = a?.ed.doc ? prepareRename(a.ed, a.lm.offset(pos)) : undefined;
    return r ? { range: a!.lm.range(r.span), placeholder: r.placeholder } : null;
  }

  private rename(uri: string, pos: Position, newName: string): WorkspaceEdit | null | ResponseError<void> {
    let a: Analysis | undefined;
    let r: ReturnType<typeof rename>;
    try {
      a = this.ensure(uri);
      r = a?.ed.doc ? rename(a.ed, a.lm.offset(pos), newName) : undefined;
    } catch {
      return null;
    }
    if (!r || !a) return null;
    if ('error' in r) return new ResponseError(ErrorCodes.InvalidParams, r.error);
    const lm = a.lm;
    return { changes: { [uri]: r.edits.map((e) => TextEdit.replace(lm.range(e.span), e.newText)) } };
  }

  private documentSymbols(uri: string): DocumentSymbol[] {
    const a = this.ensure(uri);
    if (!a?.ed.doc) return [];
    const conv = (o: OutlineItem): DocumentSymbol => ({
      name: o.name,
      detail: o.detail,
      kind: OUTLINE_KIND[o.kind] ?? SymbolKind.Object,
      range: a.lm.range(o.span),
      selectionRange: a.lm.range(o.selection),
      children: o.children.map(conv),
    });
    return outline(a.ed).map(conv);
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
      const [r] = analyzeDocuments([{ text, source: sourceOf(uri), kind }], nodeHost, { qemu: this.profiles() });
      const sel = selectNodes(r, node, uri);
      if ('error' in sel) return new ResponseError(ErrorCodes.InvalidParams, sel.error);
      const result = layoutReport(sel.nodes, { agent, qemu: this.qemu }).result;
      // What the background probe found for this very text (with the agent, as the editor's layout is).
      const probed = this.probed.get(uri);
      const open = this.documents.get(uri);
      if (agent && probed && open && probed.version === open.version) {
        for (const n of result.nodes) {
          const j = probed.judged.find((x) => x.node.name === n.name);
          if (j) n.probe = layoutProbe(j);
        }
      }
      return result;
    } catch (e) {
      return new ResponseError(ErrorCodes.InternalError, `memfabric/layout failed: ${(e as Error).message}`);
    }
  }
}

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

const COMPLETION_KIND: Record<CompletionKind, CompletionItemKind> = {
  element: CompletionItemKind.Class,
  type: CompletionItemKind.Class,
  attribute: CompletionItemKind.Property,
  property: CompletionItemKind.Property,
  value: CompletionItemKind.Value,
  enum: CompletionItemKind.EnumMember,
  reference: CompletionItemKind.Reference,
  constant: CompletionItemKind.Constant,
  option: CompletionItemKind.Keyword,
};

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
