/**
 * The CXL Events view: per running node, the cxl_* trace records its guest's
 * kernel wrote (cxl_general_media, cxl_dram, cxl_memory_module, cxl_poison, …),
 * newest first, as they arrive. While the view is visible and a cluster runs,
 * every few seconds (memfabric.statusPollSeconds) each ready node is asked
 * `memfabric cxl events --format json --since N FILE NODE`, N the last record
 * seen; polling stops when the view is hidden, when no cluster runs, and on
 * dispose (deactivate). A node that booted again (another QEMU pid) starts over.
 */
import * as vscode from 'vscode';
import type { Cli } from './cli';
import type { CxlEvents as CxlEventsOfGuest, CxlTraceRecord } from '../../server/src/runtime/cxl-guest';
import { ClusterEntry, Clusters, isRunning } from './clusters';

/**
 * `memfabric cxl events --format json` (server/src/cli/main.ts cxlEventsCmd):
 * the runtime's CxlEvents with the node and the --since asked, or an error.
 * One definition of a record for both sides (server/src/runtime/cxl-guest.ts).
 */
export type CxlRecordJson = CxlTraceRecord;
export type CxlEventsJson = { node: string; since?: number; error?: string } & Partial<CxlEventsOfGuest>;

/** At most this many records are kept per node (the newest). */
const KEEP = 500;

interface NodeFeed {
  key: string;
  file: string;
  cluster: string;
  node: string;
  pid?: number;
  last: number;
  records: CxlRecordJson[];
  /** Why this node has no records to give (its kernel has no cxl events): not asked again until it boots again. */
  note?: string;
  error?: string;
  /** Still running (false: kept to show what it had). */
  live: boolean;
}

class FeedItem extends vscode.TreeItem {
  constructor(readonly feed: NodeFeed) {
    super(`${feed.cluster}/${feed.node}`, vscode.TreeItemCollapsibleState.Expanded);
    this.id = `cxl-events:${feed.key}`;
    const n = feed.records.length;
    this.description = [`${n} record${n === 1 ? '' : 's'}`, feed.live ? undefined : 'stopped', feed.note ? 'no cxl trace events' : undefined, feed.error ? `error: ${feed.error}` : undefined]
      .filter(Boolean)
      .join(' · ');
    this.iconPath = new vscode.ThemeIcon(feed.live ? 'pulse' : 'vm-outline');
    this.contextValue = 'cxl-events-node';
    this.tooltip = feed.note ?? feed.error ?? `${feed.file}\nnode ${feed.node}: last record #${feed.last}`;
  }
}

/** The fields worth a glance in the row's description (the rest is in the tooltip). */
const GLANCE = ['dpa', 'dpa_length', 'type', 'log', 'source', 'trace_type', 'event_type', 'health_status', 'hpa', 'region'];

class RecordItem extends vscode.TreeItem {
  constructor(feed: NodeFeed, readonly record: CxlRecordJson) {
    super(`${record.event} ${record.memdev ?? ''}`.trim(), vscode.TreeItemCollapsibleState.None);
    this.id = `cxl-events:${feed.key}#${feed.pid ?? 0}:${record.seq}`;
    const glance = GLANCE.filter((k) => record.fields[k] !== undefined && record.fields[k] !== '' && !(k === 'hpa' && /^(0x)?f+$/.test(record.fields[k])))
      .map((k) => `${k}=${record.fields[k]}`);
    this.description = [`#${record.seq}`, `${record.time.toFixed(3)} s`, ...glance].join(' · ');
    this.iconPath = new vscode.ThemeIcon(record.event === 'cxl_poison' ? 'warning' : /aer/.test(record.event) ? 'error' : 'bell');
    this.contextValue = 'cxl-event';
    this.tooltip = new vscode.MarkdownString().appendCodeblock(record.line, 'text');
  }
}

type Item = FeedItem | RecordItem;

export class CxlEvents implements vscode.TreeDataProvider<Item>, vscode.Disposable {
  private readonly feeds = new Map<string, NodeFeed>();
  private readonly changed = new vscode.EventEmitter<Item | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [];
  private view?: vscode.TreeView<Item>;
  private timer?: NodeJS.Timeout;
  private polling = false;
  private disposed = false;

  constructor(private readonly cli: Cli, private readonly clusters: Clusters, private readonly log: (l: string) => void) {
    this.disposables.push(clusters.onDidChange(() => this.schedule()));
  }

  /** The tree view that shows this provider: its visibility starts and stops the polling. */
  attach(view: vscode.TreeView<Item>): void {
    this.view = view;
    this.disposables.push(view, view.onDidChangeVisibility(() => this.schedule()));
    this.schedule();
  }

  /** Whether the view polls now (visible, and a cluster runs). */
  get active(): boolean {
    return !!this.timer;
  }

  /** The running clusters of the Clusters view (whose status it polls while they run). */
  private running(): ClusterEntry[] {
    return this.clusters.known().filter(isRunning);
  }

  /** Poll while the view is visible and a cluster runs; stop otherwise. */
  schedule(): void {
    const want = !this.disposed && !!this.view?.visible && vscode.workspace.isTrusted && this.running().length > 0;
    if (want && !this.timer) {
      const secs = Math.max(1, vscode.workspace.getConfiguration('memfabric').get<number>('statusPollSeconds') ?? 3);
      this.timer = setInterval(() => void this.pollOnce(), secs * 1000);
      void this.pollOnce();
    } else if (!want && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    if (!want) this.markStopped();
  }

  /** Ask now (after an injection), when the view polls at all. */
  async pollNow(): Promise<void> {
    if (this.timer) await this.pollOnce();
  }

  private markStopped(): void {
    let change = false;
    const live = new Set(this.liveNodes().map((n) => n.key));
    for (const f of this.feeds.values()) {
      if (f.live && !live.has(f.key)) {
        f.live = false;
        change = true;
      }
    }
    if (change) this.changed.fire(undefined);
  }

  private liveNodes(): { key: string; entry: ClusterEntry; node: string; pid?: number }[] {
    const out: { key: string; entry: ClusterEntry; node: string; pid?: number }[] = [];
    for (const e of this.running()) {
      for (const n of e.status?.nodes ?? []) if (n.state === 'ready') out.push({ key: `${e.uri.fsPath}#${n.name}`, entry: e, node: n.name, pid: n.pid ?? undefined });
    }
    return out;
  }

  private async pollOnce(): Promise<void> {
    if (this.polling || this.disposed) return;
    this.polling = true;
    try {
      let change = false;
      const nodes = this.liveNodes();
      const live = new Set(nodes.map((n) => n.key));
      for (const f of this.feeds.values()) if (f.live !== live.has(f.key)) { f.live = live.has(f.key); change = true; }
      for (const n of nodes) {
        let f = this.feeds.get(n.key);
        if (!f || f.pid !== n.pid) {
          // new, or booted again: a new trace buffer
          f = { key: n.key, file: n.entry.uri.fsPath, cluster: n.entry.name, node: n.node, pid: n.pid, last: 0, records: [], live: true };
          this.feeds.set(n.key, f);
          change = true;
        }
        if (f.note) continue;
        const r = await this.cli.run(['cxl', 'events', '--format', 'json', '--since', String(f.last), f.file, f.node]).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message, cancelled: false }));
        if (this.disposed || r.cancelled) return;
        let j: CxlEventsJson | undefined;
        try {
          j = JSON.parse(r.stdout) as CxlEventsJson;
        } catch {
          j = undefined;
        }
        const error = r.code === 0 ? undefined : (j?.error ?? (r.stderr.trim().split('\n').pop() || `exit ${r.code}`));
        if (error !== f.error) { f.error = error; change = true; }
        if (!j || error) continue;
        if (j.note) { f.note = j.note; change = true; }
        if (j.last !== undefined && j.last < f.last) {
          // the buffer is shorter than what was seen (cleared): start over
          f.last = 0;
          f.records = [];
          change = true;
          continue;
        }
        if (j.records?.length) {
          f.records = [...j.records.slice().reverse(), ...f.records].slice(0, KEEP);
          f.last = Math.max(f.last, ...j.records.map((x) => x.seq));
          for (const x of j.records) this.log(`[cxl events] ${f.cluster}/${f.node} #${x.seq} ${x.line.replace(/^.*?: (cxl_\w+: )/, '$1')}`);
          change = true;
        }
        if (j.last !== undefined && j.last > f.last) f.last = j.last;
      }
      if (change) this.changed.fire(undefined);
    } finally {
      this.polling = false;
    }
  }

  getTreeItem(item: Item): vscode.TreeItem {
    return item;
  }

  getChildren(item?: Item): Item[] {
    if (!item) return [...this.feeds.values()].sort((a, b) => a.key.localeCompare(b.key)).map((f) => new FeedItem(f));
    if (item instanceof FeedItem) return item.feed.records.map((r) => new RecordItem(item.feed, r));
    return [];
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const d of this.disposables) d.dispose();
    this.changed.dispose();
  }
}
