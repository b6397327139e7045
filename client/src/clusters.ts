/**
 * The Clusters view: the workspace's *.cluster.xml files, their nodes with
 * live state (from `memfabric status --format json`, polled while something
 * runs), and under each node its memory regions and devices (the language
 * server's document symbols). Also the context keys the command `when`
 * clauses read: memfabric.activeClusterRunning, memfabric.runningClusters.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Cli } from './cli';
import type { ClusterStatus, NodeState as RuntimeNodeState, NodeStatus } from '../../server/src/runtime/cluster';
import { describeRegion } from '../../server/src/runtime/cxl-regions';

export type NodeState = RuntimeNodeState | 'unknown';

/** `memfabric status --format json` prints the runtime's ClusterStatus (one definition for both sides). */
export type NodeStatusJson = NodeStatus;
export type ClusterStatusJson = ClusterStatus;

export interface ClusterEntry {
  uri: vscode.Uri;
  /** Cluster name: from the outline, else the status, else the file name. */
  name: string;
  status?: ClusterStatusJson;
  statusError?: string;
  /** The cluster symbol of the outline (children: fabrics, templates, nodes). */
  symbol?: vscode.DocumentSymbol;
  /** A boot, stop or restart of this window is under way. */
  busy?: string;
}

export interface NodeView {
  name: string;
  state: NodeState;
  status?: NodeStatusJson;
  symbol?: vscode.DocumentSymbol;
}

export function nodesOf(e: ClusterEntry): NodeView[] {
  const syms = (e.symbol?.children ?? []).filter((s) => s.kind === vscode.SymbolKind.Module);
  const byName = new Map((e.status?.nodes ?? []).map((n) => [n.name, n]));
  const out: NodeView[] = syms.map((s) => ({ name: s.name, symbol: s, status: byName.get(s.name), state: byName.get(s.name)?.state ?? 'unknown' }));
  for (const n of e.status?.nodes ?? []) if (!syms.some((s) => s.name === n.name)) out.push({ name: n.name, status: n, state: n.state });
  return out;
}

export function isRunning(e: ClusterEntry | undefined): boolean {
  return !!e?.status?.nodes.some((n) => n.state === 'ready' || n.state === 'starting');
}

export function readyCount(e: ClusterEntry): { ready: number; total: number } {
  const nodes = nodesOf(e);
  return { ready: nodes.filter((n) => n.state === 'ready').length, total: nodes.length };
}

export class ClusterItem extends vscode.TreeItem {
  constructor(readonly entry: ClusterEntry) {
    super(entry.name, vscode.TreeItemCollapsibleState.Expanded);
    const rel = vscode.workspace.asRelativePath(entry.uri);
    const { ready, total } = readyCount(entry);
    const running = isRunning(entry);
    this.id = `cluster:${entry.uri.toString()}`;
    this.resourceUri = entry.uri;
    this.description = entry.busy ? `${entry.busy}…` : running ? `${ready}/${total} ready · ${rel}` : rel;
    this.contextValue = running ? 'cluster-running' : 'cluster-stopped';
    this.iconPath = entry.busy
      ? new vscode.ThemeIcon('loading~spin')
      : new vscode.ThemeIcon('server-environment', running ? new vscode.ThemeColor('testing.iconPassed') : undefined);
    this.tooltip = new vscode.MarkdownString(
      `**${entry.name}** — \`${rel}\`\n\n${running ? `running: ${ready} of ${total} node(s) ready` : 'not running'}` +
        (entry.status?.runDir ? `\n\nrun directory \`${entry.status.runDir}\`` : '') +
        (entry.statusError ? `\n\n_status: ${entry.statusError}_` : ''),
    );
    this.command = { command: 'vscode.open', title: 'Open', arguments: [entry.uri] };
  }
}

const STATE_ICON: Record<NodeState, [string, string | undefined]> = {
  ready: ['vm-running', 'testing.iconPassed'],
  starting: ['loading~spin', undefined],
  stopped: ['vm-outline', undefined],
  crashed: ['error', 'testing.iconFailed'],
  unknown: ['vm', undefined],
};

export class NodeItem extends vscode.TreeItem {
  constructor(readonly entry: ClusterEntry, readonly node: NodeView) {
    super(node.name, node.symbol?.children.length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    this.id = `node:${entry.uri.toString()}#${node.name}`;
    const [icon, color] = STATE_ICON[node.state];
    this.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
    // Where the node runs: our QEMU (its pid) or a libvirt domain (its name and connection).
    const where = node.status?.backend === 'libvirt' ? `libvirt ${node.status.domain}` : node.status?.pid ? `pid ${node.status.pid}` : undefined;
    // The CXL regions boot made in its guest: their DAX devices at a glance, each in full in the tooltip.
    const regions = node.state === 'ready' ? node.status?.regions ?? [] : [];
    const dax = regions.map((r) => (r.dax ? `${r.dax.device} ${r.dax.mode}` : r.blockdev ? `${r.blockdev} fsdax` : r.region)).join(', ');
    this.description = [node.state === 'unknown' ? undefined : node.state, where, dax || undefined, node.symbol?.detail?.replace(/^node /, '')]
      .filter(Boolean)
      .join(' · ');
    this.contextValue = `node-${node.state}`;
    this.tooltip = new vscode.MarkdownString(
      `**${entry.name}/${node.name}**: ${node.state}` +
        (node.status?.backend === 'libvirt' ? `\n\nlibvirt domain \`${node.status.domain}\` on \`${node.status.uri}\`` : node.status?.pid ? `\n\nQEMU pid ${node.status.pid} (memfabric's own)` : '') +
        (node.status ? `\n\nconsole log \`${node.status.consoleLog}\`` : '') +
        regions.map((r) => `\n\n${describeRegion(r)}`).join(''),
    );
    if (node.symbol) this.command = reveal(entry.uri, node.symbol);
  }
}

const SYMBOL_ICON: Partial<Record<vscode.SymbolKind, string>> = {
  [vscode.SymbolKind.Array]: 'symbol-array',
  [vscode.SymbolKind.Object]: 'circuit-board',
  [vscode.SymbolKind.Field]: 'symbol-ruler',
  [vscode.SymbolKind.Struct]: 'database',
};

/**
 * A CXL Type 3 device of the outline: the language server lists each device of
 * a node with its id as name and its QEMU driver as detail. `memfabric cxl`
 * resolves DEVICE by that same id in the same file, so the outline is the
 * device list the CXL actions need (no extra process, and it follows edits).
 */
export function isType3(s: vscode.DocumentSymbol): boolean {
  return s.kind === vscode.SymbolKind.Object && s.detail === 'cxl-type3';
}

/** The Type 3 devices (ids) a node's outline lists. */
export function type3Devices(node: NodeView): string[] {
  return (node.symbol?.children ?? []).filter(isType3).map((s) => s.name);
}

export class SymbolItem extends vscode.TreeItem {
  constructor(readonly entry: ClusterEntry, readonly node: NodeView, readonly symbol: vscode.DocumentSymbol, parentId: string) {
    super(symbol.name, symbol.children.length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    this.id = `${parentId}/${symbol.name}@${symbol.range.start.line}:${symbol.range.start.character}`;
    this.description = symbol.detail;
    this.iconPath = new vscode.ThemeIcon(SYMBOL_ICON[symbol.kind] ?? 'symbol-misc');
    // A Type 3 device of a running node carries the CXL actions (Inject Poison/Event/Error…; package.json menus).
    this.contextValue = isType3(symbol) ? `cxl-type3-${node.state}` : 'symbol';
    if (isType3(symbol)) {
      this.description = `CXL Type 3${node.state === 'ready' ? ' · inject poison, events, errors from its menu' : ''}`;
      this.tooltip = `${symbol.name}: cxl-type3 of ${entry.name}/${node.name} (${node.state})`;
    }
    this.command = reveal(entry.uri, symbol);
  }
}

function reveal(uri: vscode.Uri, s: vscode.DocumentSymbol): vscode.Command {
  return { command: 'vscode.open', title: 'Reveal', arguments: [uri, { selection: s.selectionRange } as vscode.TextDocumentShowOptions] };
}

type Item = ClusterItem | NodeItem | SymbolItem;

export class Clusters implements vscode.TreeDataProvider<Item>, vscode.Disposable {
  private readonly entries = new Map<string, ClusterEntry>();
  private readonly changed = new vscode.EventEmitter<Item | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly statusChanged = new vscode.EventEmitter<void>();
  /** Fires after any status or outline change (status bar, context keys). */
  readonly onDidChange = this.statusChanged.event;
  private readonly disposables: vscode.Disposable[] = [];
  private poll?: NodeJS.Timeout;
  private polling = false;
  private loaded?: Promise<void>;

  constructor(private readonly cli: Cli, private readonly log: (l: string) => void) {
    const w = vscode.workspace.createFileSystemWatcher('**/*.cluster.xml');
    this.disposables.push(
      w,
      w.onDidCreate((u) => void this.refresh(u)),
      w.onDidDelete((u) => {
        this.entries.delete(u.toString());
        this.fire();
      }),
      w.onDidChange((u) => void this.refreshOutline(u)),
      vscode.workspace.onDidSaveTextDocument((d) => {
        if (this.entries.has(d.uri.toString())) void this.refreshOutline(d.uri);
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => void this.refresh()),
      vscode.window.onDidChangeActiveTextEditor(() => this.updateContext()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('memfabric')) void this.refresh();
      }),
    );
  }

  /** Every cluster file of the workspace (loaded once, then kept current). */
  async all(): Promise<ClusterEntry[]> {
    if (!this.loaded) this.loaded = this.refresh();
    await this.loaded;
    return [...this.entries.values()].sort((a, b) => a.uri.fsPath.localeCompare(b.uri.fsPath));
  }

  /** The entries known now (without loading). */
  known(): ClusterEntry[] {
    return [...this.entries.values()];
  }

  get(uri: vscode.Uri): ClusterEntry | undefined {
    return this.entries.get(uri.toString());
  }

  /** The entry of a file, created (and read) when the file is not known yet (a cluster opened from outside the workspace). */
  async ensure(uri: vscode.Uri): Promise<ClusterEntry> {
    await this.all();
    let e = this.get(uri);
    if (!e) {
      await this.refresh(uri);
      e = this.get(uri)!;
    }
    return e;
  }

  /** Re-read outlines and status: of one file, or of every cluster file of the workspace. */
  async refresh(uri?: vscode.Uri): Promise<void> {
    const uris = uri ? [uri] : await vscode.workspace.findFiles('**/*.cluster.xml', '**/{node_modules,out,dist,.git}/**');
    if (!uri) {
      const keep = new Set(uris.map((u) => u.toString()));
      for (const k of [...this.entries.keys()]) if (!keep.has(k)) this.entries.delete(k);
    }
    for (const u of uris) if (!this.entries.has(u.toString())) this.entries.set(u.toString(), { uri: u, name: path.basename(u.fsPath, '.cluster.xml') });
    await Promise.all(uris.map((u) => this.refreshOutline(u, false)));
    this.fire();
    await mapLimit(uris, 2, (u) => this.refreshStatus(u, false));
    this.fire();
    this.schedulePoll();
  }

  async refreshOutline(uri: vscode.Uri, fire = true): Promise<void> {
    const e = this.entries.get(uri.toString());
    if (!e) return;
    try {
      await vscode.workspace.openTextDocument(uri);
      const syms = await vscode.commands.executeCommand<(vscode.DocumentSymbol | vscode.SymbolInformation)[]>('vscode.executeDocumentSymbolProvider', uri);
      const cluster = (syms ?? []).find((s): s is vscode.DocumentSymbol => 'children' in s && s.kind === vscode.SymbolKind.Namespace);
      if (cluster) {
        e.symbol = cluster;
        e.name = cluster.name;
      }
    } catch (err) {
      this.log(`outline of ${uri.fsPath}: ${(err as Error).message}`);
    }
    if (fire) this.fire();
  }

  async refreshStatus(uri: vscode.Uri, fire = true): Promise<void> {
    const e = this.entries.get(uri.toString());
    if (!e) return;
    // An outline asked for before the language server had started is empty: ask again (the nodes' devices come from it).
    if (!e.symbol) await this.refreshOutline(uri, false);
    if (!vscode.workspace.isTrusted) return;
    try {
      const st = await this.cli.json<ClusterStatusJson>(['status', '--format', 'json', uri.fsPath]);
      if (!Array.isArray(st?.nodes)) throw new Error('memfabric status printed no node list');
      e.status = st;
      e.statusError = undefined;
      if (!e.symbol && st.cluster) e.name = st.cluster;
    } catch (err) {
      e.status = undefined;
      e.statusError = (err as Error).message;
    }
    if (fire) this.fire();
  }

  setBusy(uri: vscode.Uri, what: string | undefined): void {
    const e = this.entries.get(uri.toString());
    if (!e) return;
    e.busy = what;
    this.fire();
    this.schedulePoll();
  }

  /** Poll status while a cluster runs or a boot is under way; stop when nothing does. */
  private schedulePoll(): void {
    const active = [...this.entries.values()].some((e) => e.busy || isRunning(e));
    if (active && !this.poll && vscode.workspace.isTrusted) {
      const secs = Math.max(1, vscode.workspace.getConfiguration('memfabric').get<number>('statusPollSeconds') ?? 3);
      this.poll = setInterval(() => void this.pollOnce(), secs * 1000);
    } else if (!active && this.poll) {
      clearInterval(this.poll);
      this.poll = undefined;
    }
  }

  private async pollOnce(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const live = [...this.entries.values()].filter((e) => e.busy || isRunning(e));
      const before = JSON.stringify(live.map((e) => e.status?.nodes.map((n) => [n.name, n.state, n.pid])));
      await mapLimit(live, 2, (e) => this.refreshStatus(e.uri, false));
      const after = JSON.stringify(live.map((e) => e.status?.nodes.map((n) => [n.name, n.state, n.pid])));
      if (before !== after) this.fire();
      this.schedulePoll();
    } finally {
      this.polling = false;
    }
  }

  private fire(): void {
    this.changed.fire(undefined);
    this.statusChanged.fire();
    this.updateContext();
  }

  /** The cluster entry of the active editor, if it is a known cluster file. */
  active(): ClusterEntry | undefined {
    const uri = vscode.window.activeTextEditor?.document.uri;
    return uri ? this.get(uri) : undefined;
  }

  private updateContext(): void {
    const a = this.active();
    void vscode.commands.executeCommand('setContext', 'memfabric.activeClusterRunning', isRunning(a));
    // Boot Node applies while a node is not up (or the state is not known: untrusted, status failed)
    void vscode.commands.executeCommand('setContext', 'memfabric.activeClusterHasDownNode', !!a && nodesOf(a).some((n) => n.state !== 'ready' && n.state !== 'starting'));
    void vscode.commands.executeCommand(
      'setContext',
      'memfabric.runningClusters',
      [...this.entries.values()].filter(isRunning).map((e) => e.uri.fsPath),
    );
  }

  // ------------------------------------------------------------------ TreeDataProvider

  getTreeItem(item: Item): vscode.TreeItem {
    return item;
  }

  async getChildren(item?: Item): Promise<Item[]> {
    if (!item) return (await this.all()).map((e) => new ClusterItem(e));
    if (item instanceof ClusterItem) return nodesOf(item.entry).map((n) => new NodeItem(item.entry, n));
    if (item instanceof NodeItem) return (item.node.symbol?.children ?? []).map((s) => new SymbolItem(item.entry, item.node, s, item.id!));
    return item.symbol.children.map((s) => new SymbolItem(item.entry, item.node, s, item.id!));
  }

  getParent(item: Item): Item | undefined {
    if (item instanceof NodeItem) return new ClusterItem(item.entry);
    return undefined;
  }

  dispose(): void {
    if (this.poll) clearInterval(this.poll);
    for (const d of this.disposables) d.dispose();
    this.changed.dispose();
    this.statusChanged.dispose();
  }
}

async function mapLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) await fn(items[i++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
