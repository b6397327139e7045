/**
 * The memory-map picture: a webview of a node's address space from the
 * server's memfabric/layout request (LayoutRequest, server/src/lsp/protocol.ts),
 * modelled by memmap-model.ts and drawn by media/memmap.js. It follows the
 * document: re-rendered (debounced) when the text or its diagnostics change.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { LayoutRequest, LayoutResult } from '../../server/src/lsp/protocol';
import { buildModel, DiagnosticInput } from './memmap-model';
import { esc } from './views-model';
import { createPanel, page } from './webview';

const DEBOUNCE_MS = 300;

interface Open {
  panel: vscode.WebviewPanel;
  uri: vscode.Uri;
  node: string;
  timer?: NodeJS.Timeout;
  ready: boolean;
  seq: number;
}

const SEVERITY: Record<number, DiagnosticInput['severity']> = {
  [vscode.DiagnosticSeverity.Error]: 'error',
  [vscode.DiagnosticSeverity.Warning]: 'warning',
  [vscode.DiagnosticSeverity.Information]: 'information',
  [vscode.DiagnosticSeverity.Hint]: 'hint',
};

export class MemoryMaps implements vscode.Disposable {
  private readonly open = new Map<string, Open>();
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly extensionUri: vscode.Uri, private readonly client: () => LanguageClient | undefined, private readonly log: (l: string) => void) {
    this.subs.push(
      vscode.workspace.onDidChangeTextDocument((e) => this.touch(e.document.uri)),
      vscode.languages.onDidChangeDiagnostics((e) => e.uris.forEach((u) => this.touch(u))),
    );
  }

  /** The layout of a document: every node, or one. */
  async layout(uri: vscode.Uri, node?: string): Promise<LayoutResult> {
    const c = this.client();
    if (!c) throw new Error('memfabric: the language server is not running (see the output channel "memfabric")');
    return c.sendRequest(LayoutRequest.type, { uri: uri.toString(), node, agent: true });
  }

  async show(uri: vscode.Uri, node: string): Promise<vscode.WebviewPanel> {
    const key = `${uri.toString()}#${node}`;
    const have = this.open.get(key);
    if (have) {
      have.panel.reveal(undefined, false);
      this.schedule(have, 0);
      return have.panel;
    }
    const panel = createPanel(this.extensionUri, 'memfabric.memoryMap', `Memory map: ${node}`, true);
    const o: Open = { panel, uri, node, ready: false, seq: 0 };
    this.open.set(key, o);
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'memfabric.svg');
    panel.webview.html = page(panel.webview, this.extensionUri, {
      title: `Memory map: ${node}`,
      styles: ['memmap.css'],
      scripts: ['memmap.js'],
      body: `<main id="app" data-node="${esc(node)}"><p class="loading">computing the layout of ${esc(node)}…</p></main>`,
    });
    panel.webview.onDidReceiveMessage((m: { type: string; line?: number }) => {
      if (m?.type === 'ready') {
        o.ready = true;
        this.schedule(o, 0);
      } else if (m?.type === 'reveal' && typeof m.line === 'number') {
        const pos = new vscode.Position(m.line, 0);
        void vscode.window.showTextDocument(uri, { viewColumn: vscode.ViewColumn.One, selection: new vscode.Range(pos, pos) });
      }
    });
    panel.onDidDispose(() => {
      if (o.timer) clearTimeout(o.timer);
      this.open.delete(key);
    });
    return panel;
  }

  private touch(uri: vscode.Uri): void {
    for (const o of this.open.values()) if (o.uri.toString() === uri.toString()) this.schedule(o, DEBOUNCE_MS);
  }

  private schedule(o: Open, ms: number): void {
    if (o.timer) clearTimeout(o.timer);
    o.timer = setTimeout(() => void this.render(o), ms);
  }

  private async render(o: Open): Promise<void> {
    if (!o.ready) return;
    const seq = ++o.seq;
    try {
      const res = await this.layout(o.uri, o.node);
      const n = res.nodes.find((x) => x.name === o.node) ?? res.nodes[0];
      if (!n) throw new Error(`no node ${o.node} in ${o.uri.fsPath}`);
      const model = buildModel(n, await this.diagnosticsFor(o.uri, o.node));
      if (seq === o.seq) void o.panel.webview.postMessage({ type: 'render', model, file: vscode.workspace.asRelativePath(o.uri) });
    } catch (e) {
      const msg = (e as Error).message;
      this.log(`memory map of ${o.node}: ${msg}`);
      if (seq === o.seq) void o.panel.webview.postMessage({ type: 'error', message: msg });
    }
  }

  /** The document's diagnostics that concern this node: inside its element, or outside every node (cluster-level). */
  private async diagnosticsFor(uri: vscode.Uri, node: string): Promise<DiagnosticInput[]> {
    const all = vscode.languages.getDiagnostics(uri);
    let nodeRanges: { name: string; range: vscode.Range }[] = [];
    try {
      const syms = (await vscode.commands.executeCommand<vscode.DocumentSymbol[]>('vscode.executeDocumentSymbolProvider', uri)) ?? [];
      const walk = (s: vscode.DocumentSymbol) => {
        if (s.kind === vscode.SymbolKind.Module) nodeRanges.push({ name: s.name, range: s.range });
        else (s.children ?? []).forEach(walk);
      };
      syms.filter((s) => 'children' in s).forEach(walk);
    } catch {
      nodeRanges = [];
    }
    const mine = nodeRanges.find((r) => r.name === node);
    return all
      .filter((d) => !mine || mine.range.contains(d.range) || !nodeRanges.some((r) => r.range.contains(d.range)))
      .map((d) => ({
        message: d.message,
        code: typeof d.code === 'object' ? String(d.code.value) : d.code === undefined ? undefined : String(d.code),
        severity: SEVERITY[d.severity] ?? 'information',
        line: d.range.start.line,
      }));
  }

  dispose(): void {
    for (const o of this.open.values()) o.panel.dispose();
    this.subs.forEach((s) => s.dispose());
  }
}
