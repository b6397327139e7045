/**
 * lspci / CXL / DAX / iomem views of a running node (webviews): the layout
 * prediction (memfabric/layout) beside what the guest shows (`memfabric view
 * --format json`), with `memfabric verify --format json` for lspci and iomem.
 */
import * as vscode from 'vscode';
import type { Cli } from './cli';
import { firstLines } from './cli';
import type { MemoryMaps } from './memmap';
import { createPanel, page } from './webview';
import {
  cxlRows, daxRows, esc, GuestViewKind, iomemRows, IomemJson, lspciRows, LspciJson, rowsTable, summary, verifySection, VerifyJson,
} from './views-model';

export const VIEW_TITLE: Record<GuestViewKind, string> = { lspci: 'lspci', cxl: 'CXL', daxctl: 'DAX', iomem: 'iomem' };

interface Open {
  panel: vscode.WebviewPanel;
  kind: GuestViewKind;
  uri: vscode.Uri;
  node: string;
}

export class GuestViews implements vscode.Disposable {
  private readonly open = new Map<string, Open>();

  constructor(private readonly extensionUri: vscode.Uri, private readonly cli: Cli, private readonly maps: MemoryMaps) {}

  async show(kind: GuestViewKind, uri: vscode.Uri, node: string): Promise<vscode.WebviewPanel> {
    const key = `${kind}:${uri.toString()}#${node}`;
    let o = this.open.get(key);
    if (!o) {
      const panel = createPanel(this.extensionUri, `memfabric.${kind}`, `${VIEW_TITLE[kind]}: ${node}`, true);
      panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'memfabric.svg');
      o = { panel, kind, uri, node };
      const oo = o;
      this.open.set(key, o);
      panel.onDidDispose(() => this.open.delete(key));
      panel.webview.onDidReceiveMessage((m: { type: string }) => {
        if (m?.type === 'refresh') void this.render(oo);
      });
    } else o.panel.reveal(undefined, false);
    await this.render(o);
    return o.panel;
  }

  private async render(o: Open): Promise<void> {
    const { kind, uri, node, panel } = o;
    const title = `${VIEW_TITLE[kind]}: ${node}`;
    const set = (body: string) => {
      panel.webview.html = page(panel.webview, this.extensionUri, { title, styles: ['views.css'], scripts: ['views.js'], body });
    };
    set(`<h1>${esc(title)}</h1><p class="loading">asking the guest…</p>`);
    const file = uri.fsPath;
    const withVerify = kind === 'lspci' || kind === 'iomem';
    const [layoutR, viewR, verifyR] = await Promise.allSettled([
      this.maps.layout(uri, node),
      kind === 'cxl' || kind === 'daxctl' ? this.rawJson(['view', '--format', 'json', file, node, kind]) : this.cli.json<unknown>(['view', '--format', 'json', file, node, kind]),
      withVerify ? this.cli.json<VerifyJson>(['verify', '--format', 'json', file]) : Promise.resolve(undefined),
    ]);
    const err = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' ? (r.reason as Error).message : undefined);
    const layout = layoutR.status === 'fulfilled' ? layoutR.value.nodes.find((n) => n.name === node) : undefined;
    const guest = viewR.status === 'fulfilled' ? viewR.value : undefined;
    const parts: string[] = [`<header><h1>${esc(title)}</h1><button id="refresh" type="button">Refresh</button></header>`];
    parts.push(`<p class="source">${esc(vscode.workspace.asRelativePath(uri))} · node ${esc(node)} · predicted by memfabric layout (QEMU ${esc(layout?.qemuVersion ?? '7.2')}), read from the running guest</p>`);
    if (!layout) parts.push(`<p class="error">layout: ${esc(err(layoutR) ?? `no node ${node}`)}</p>`);
    if (guest === undefined) parts.push(`<p class="error">guest: ${esc(err(viewR) ?? 'no answer')}</p>`);
    if (layout && guest !== undefined) {
      const rows =
        kind === 'lspci' ? lspciRows(layout, guest as LspciJson)
        : kind === 'iomem' ? iomemRows(layout, guest as IomemJson)
        : kind === 'cxl' ? cxlRows(layout, guest)
        : daxRows(layout, guest);
      const heads: Record<GuestViewKind, [string, string, string]> = {
        lspci: ['BDF · BAR', 'predicted (memfabric layout)', 'guest (lspci)'],
        iomem: ['start', 'predicted (memfabric layout)', 'guest (/proc/iomem, top level from 1 MiB)'],
        cxl: ['window / decoder', 'predicted CXL fixed memory window', 'guest (cxl list -v)'],
        daxctl: ['range / device', 'predicted soft-reserved range', 'guest (daxctl list)'],
      };
      parts.push(summary(rows), rowsTable(rows, heads[kind]));
    }
    if (withVerify) parts.push(verifySection(verifyR.status === 'fulfilled' ? verifyR.value : undefined, node, kind === 'lspci' ? /PCI/ : /iomem|memmap/, err(verifyR)));
    if (guest !== undefined) parts.push(`<details><summary>the guest's JSON</summary><pre>${esc(JSON.stringify(guest, null, 2))}</pre></details>`);
    set(parts.join('\n'));
  }

  /** cxl/daxctl: the tools' own JSON, passed through by `memfabric view`. */
  private async rawJson(args: string[]): Promise<unknown> {
    const r = await this.cli.run(args);
    const text = r.stdout.trim();
    if (r.code !== 0 && !text) throw new Error(`memfabric view failed (exit ${r.code}): ${firstLines(r.stderr) || 'no output'}`);
    try {
      return text ? JSON.parse(text) : [];
    } catch {
      throw new Error(`memfabric view printed no JSON: ${firstLines(text)}`);
    }
  }

  dispose(): void {
    for (const o of this.open.values()) o.panel.dispose();
  }
}
