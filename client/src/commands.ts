/**
 * Every command of the extension, as one table from command id to a factory
 * (as rust-analyzer's editors/code does): activate() registers each entry.
 * package.json declares the same ids with their `enablement` and menu `when`
 * clauses; test/client-package.test.ts checks that both lists agree.
 *
 * A command gets its target from the Clusters view item it was invoked on, a
 * file Uri (explorer), `{ uri | file, node }`, or else the active editor's
 * file; when a node is needed and the file has several, a quick pick asks.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { firstLines, UntrustedError } from './cli';
import { ClusterEntry, ClusterItem, isRunning, isType3, NodeItem, nodesOf, NodeState, readyCount, SymbolItem, type3Devices } from './clusters';
import type { Ctx } from './ctx';
import { COR_ERROR_TYPES, EVENT_KINDS, EVENT_LOGS, UNCOR_ERROR_TYPES } from './cxl-model';
import type { GuestViewKind } from './views-model';

export type Cmd = (...args: unknown[]) => unknown;
export type Factory = (ctx: Ctx) => Cmd;

// COMMAND TABLE BEGIN
export const COMMANDS: Record<string, Factory> = {
  'memfabric.bootCluster': (ctx) => async (arg) => {
    const t = await target(ctx, arg, 'none');
    if (t) await boot(ctx, t.entry);
  },
  'memfabric.bootNode': (ctx) => async (arg) => {
    const t = await target(ctx, arg, ['stopped', 'crashed', 'unknown']);
    if (t?.node) await boot(ctx, t.entry, t.node);
  },
  'memfabric.stopCluster': (ctx) => async (arg) => {
    const t = await target(ctx, arg, 'none');
    if (t) await stop(ctx, t.entry);
  },
  'memfabric.restartCluster': (ctx) => async (arg) => {
    const t = await target(ctx, arg, 'none');
    if (t && (await stop(ctx, t.entry))) await boot(ctx, t.entry);
  },
  'memfabric.openConsole': (ctx) => async (arg) => {
    const t = await target(ctx, arg, ['ready', 'starting']);
    if (t?.node) await openConsole(ctx, t.entry, t.node);
  },
  'memfabric.showLspci': (ctx) => (arg) => guestView(ctx, 'lspci', arg),
  'memfabric.showCxl': (ctx) => (arg) => guestView(ctx, 'cxl', arg),
  'memfabric.showDax': (ctx) => (arg) => guestView(ctx, 'daxctl', arg),
  'memfabric.showIomem': (ctx) => (arg) => guestView(ctx, 'iomem', arg),
  'memfabric.verifyLayout': (ctx) => async (arg) => {
    const t = await target(ctx, arg, 'optional');
    if (t) await verify(ctx, t.entry, t.node);
  },
  'memfabric.showMemoryMap': (ctx) => (arg) => showMemoryMap(ctx, arg),
  'memfabric.buildImage': (ctx) => () => buildImage(ctx),
  'memfabric.refreshClusters': (ctx) => () => ctx.clusters.refresh(),
  'memfabric.cxlInjectPoison': (ctx) => (arg) => cxlInject(ctx, 'poison', arg),
  'memfabric.cxlInjectEvent': (ctx) => (arg) => cxlInject(ctx, 'event', arg),
  'memfabric.cxlInjectError': (ctx) => (arg) => cxlInject(ctx, 'error', arg),
};
// COMMAND TABLE END

export function registerCommands(ctx: Ctx): vscode.Disposable[] {
  return Object.entries(COMMANDS).map(([id, factory]) => {
    const fn = factory(ctx);
    return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        return await fn(...args);
      } catch (e) {
        const msg = (e as Error).message ?? String(e);
        ctx.log(`${id}: ${(e as Error).stack ?? msg}`);
        void vscode.window.showErrorMessage(e instanceof UntrustedError ? msg : `memfabric: ${msg.replace(/^memfabric:\s*/, '')}`);
        return undefined;
      }
    });
  });
}

// ---------------------------------------------------------------------- targets

interface Target {
  entry: ClusterEntry;
  node?: string;
}

function uriOf(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  if (typeof arg === 'string') return arg.includes('://') ? vscode.Uri.parse(arg) : vscode.Uri.file(path.resolve(arg));
  if (arg && typeof arg === 'object') {
    const o = arg as { uri?: unknown; file?: unknown };
    if (o.uri !== undefined) return uriOf(o.uri);
    if (o.file !== undefined) return uriOf(o.file);
  }
  return undefined;
}

/**
 * The cluster (and node) a command acts on. `need`: 'none' (cluster only), 'optional' (a node when the item names one),
 * or the node states to choose among (a quick pick when several).
 */
async function target(ctx: Ctx, arg: unknown, need: 'none' | 'optional' | NodeState[]): Promise<Target | undefined> {
  let entry: ClusterEntry | undefined;
  let node: string | undefined;
  if (arg instanceof ClusterItem) entry = arg.entry;
  else if (arg instanceof NodeItem || arg instanceof SymbolItem) {
    entry = arg.entry;
    node = arg.node.name;
  } else {
    const uri = uriOf(arg) ?? vscode.window.activeTextEditor?.document.uri;
    if (!uri || uri.scheme !== 'file') {
      void vscode.window.showWarningMessage('memfabric: open a topology file (*.cluster.xml) first, or pick a cluster in the Clusters view.');
      return undefined;
    }
    entry = await ctx.clusters.ensure(uri);
    node = arg && typeof arg === 'object' && typeof (arg as { node?: unknown }).node === 'string' ? (arg as { node: string }).node : undefined;
  }
  if (need === 'none' || need === 'optional' || node) return { entry, node };
  // a node is needed: refresh the state, then choose among the nodes in a fitting state
  if (vscode.workspace.isTrusted) await ctx.clusters.refreshStatus(entry.uri);
  const nodes = nodesOf(entry);
  const fit = nodes.filter((n) => need.includes(n.state));
  if (!fit.length) {
    const states = need.filter((s) => s !== 'unknown').join(' or ');
    void vscode.window.showWarningMessage(
      nodes.length ? `memfabric: no node of ${entry.name} is ${states}${need.includes('ready') ? ` (boot the cluster first)` : ''}.` : `memfabric: ${entry.name} has no node.`,
    );
    return undefined;
  }
  if (fit.length === 1) return { entry, node: fit[0].name };
  const pick = await vscode.window.showQuickPick(
    fit.map((n) => ({ label: n.name, description: n.state === 'unknown' ? undefined : n.state, detail: n.symbol?.detail })),
    { title: `memfabric: which node of ${entry.name}?`, placeHolder: 'node' },
  );
  return pick ? { entry, node: pick.label } : undefined;
}

function requireTrust(): void {
  if (!vscode.workspace.isTrusted) throw new UntrustedError();
}

async function saveIfDirty(uri: vscode.Uri): Promise<void> {
  const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (doc?.isDirty) await doc.save();
}

// ---------------------------------------------------------------------- boot / stop

/** `memfabric boot --format json` (contract): success or failure with the node and its last console lines. */
interface BootJson {
  ok: boolean;
  cluster?: string;
  runDir?: string;
  accel?: string;
  nodes?: { name: string; pid: number; bootMs: number }[];
  error?: string;
  node?: string;
  console?: string[];
}

export async function boot(ctx: Ctx, entry: ClusterEntry, node?: string): Promise<boolean> {
  requireTrust();
  await saveIfDirty(entry.uri);
  const what = node ? `${entry.name}/${node}` : entry.name;
  const file = entry.uri.fsPath;
  ctx.booted.add(file);
  ctx.clusters.setBusy(entry.uri, node ? `booting ${node}` : 'booting');
  ctx.output.appendLine(`[boot] ${what} (${file})`);
  let result: { code: number; stdout: string; stderr: string; cancelled: boolean };
  try {
    result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `memfabric: booting ${what}`, cancellable: true },
      async (progress, token) => {
        const run = ctx.cli.start(['boot', '--format', 'json', ...(node ? ['--node', node] : []), file], {
          onStderrLine: (l) => {
            if (l.trim()) progress.report({ message: l.replace(/^memfabric( boot)?:\s*/, '') });
          },
        });
        token.onCancellationRequested(() => run.cancel());
        return run.result;
      },
    );
  } finally {
    ctx.clusters.setBusy(entry.uri, undefined);
  }
  let json: BootJson | undefined;
  try {
    json = JSON.parse(result.stdout) as BootJson;
  } catch {
    json = undefined;
  }
  if (result.cancelled) {
    ctx.output.appendLine(`[boot] ${what}: cancelled; stopping what started`);
    await ctx.cli.run(['stop', file]);
    await ctx.clusters.refreshStatus(entry.uri);
    void vscode.window.showWarningMessage(`memfabric: boot of ${what} cancelled; the cluster was stopped.`);
    return false;
  }
  await ctx.clusters.refreshStatus(entry.uri);
  if (json?.ok) {
    const nodes = json.nodes ?? [];
    const secs = Math.max(0, ...nodes.map((n) => n.bootMs)) / 1000;
    const msg = `memfabric: ${json.cluster ?? entry.name}: ${nodes.length} node(s) ready (${(json.accel ?? '').toUpperCase() || 'QEMU'}) in ${secs.toFixed(1)} s: ${nodes.map((n) => n.name).join(', ')}`;
    ctx.output.appendLine(`[boot] ${msg}; run directory ${json.runDir ?? '?'}`);
    void vscode.window.showInformationMessage(msg, 'Open Console', 'Show Memory Map').then((a) => {
      const first = nodes[0]?.name;
      if (!first) return;
      if (a === 'Open Console') void vscode.commands.executeCommand('memfabric.openConsole', { uri: entry.uri, node: first });
      if (a === 'Show Memory Map') void vscode.commands.executeCommand('memfabric.showMemoryMap', { uri: entry.uri, node: first });
    });
    return true;
  }
  // failure: name the node, show its last console lines
  const error = json?.error ?? (firstLines(result.stderr, 8) || `memfabric boot exited with ${result.code}`);
  const consoleLines = json?.console ?? [];
  ctx.output.appendLine(`[boot] ${what} FAILED${json?.node ? ` on node ${json.node}` : ''}: ${error}`);
  for (const l of consoleLines) ctx.output.appendLine(`  | ${l}`);
  const tail = consoleLines.filter((l) => l.trim()).slice(-3).join(' ⏎ ');
  const first = error.split('\n')[0].replace(json?.node ? new RegExp(`^node ${json.node.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `) : /^$/, '').replace(/:\s*$/, '');
  const message = `memfabric: boot of ${entry.name} failed${json?.node ? ` on node ${json.node}` : ''}: ${first}${tail ? ` — last console lines: ${tail}` : consoleLines.length === 0 && json?.node ? ' (the console printed nothing)' : ''}`;
  const actions = ['Show Output', ...(json?.node ? ['Open Console Log'] : [])];
  void vscode.window.showErrorMessage(message, ...actions).then((a) => {
    if (a === 'Show Output') ctx.output.show(true);
    if (a === 'Open Console Log' && json?.node) {
      const log = ctx.clusters.get(entry.uri)?.status?.nodes.find((n) => n.name === json!.node)?.consoleLog;
      if (log) void vscode.window.showTextDocument(vscode.Uri.file(log), { preview: true });
    }
  });
  return false;
}

export async function stop(ctx: Ctx, entry: ClusterEntry): Promise<boolean> {
  requireTrust();
  ctx.clusters.setBusy(entry.uri, 'stopping');
  try {
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `memfabric: stopping ${entry.name}` }, () =>
      ctx.cli.run(['stop', entry.uri.fsPath]),
    );
    ctx.booted.delete(entry.uri.fsPath);
    if (r.code !== 0) {
      void vscode.window.showErrorMessage(`memfabric: stop of ${entry.name} failed: ${firstLines(r.stderr || r.stdout, 3)}`);
      return false;
    }
    const last = r.stdout.trim().split('\n').pop() ?? '';
    void vscode.window.showInformationMessage(`memfabric: ${last.replace(/^cluster /, '') || `${entry.name} stopped`}`);
    return true;
  } finally {
    ctx.clusters.setBusy(entry.uri, undefined);
    await ctx.clusters.refreshStatus(entry.uri);
  }
}

// ---------------------------------------------------------------------- console, views, verify

async function openConsole(ctx: Ctx, entry: ClusterEntry, node: string): Promise<void> {
  requireTrust();
  await ctx.clusters.refreshStatus(entry.uri);
  const st = entry.status?.nodes.find((n) => n.name === node);
  if (!st || (st.state !== 'ready' && st.state !== 'starting')) {
    void vscode.window.showWarningMessage(`memfabric: node ${node} of ${entry.name} is ${st?.state ?? 'unknown'}; boot it first.`);
    return;
  }
  ctx.consoles.open(entry.name, node, st.backend === 'libvirt' && st.uri && st.domain ? { uri: st.uri, domain: st.domain } : st.consoleSocket);
}

async function guestView(ctx: Ctx, kind: GuestViewKind, arg: unknown): Promise<void> {
  requireTrust();
  const t = await target(ctx, arg, ['ready']);
  if (!t?.node) return;
  await ctx.views.show(kind, t.entry.uri, t.node);
}

async function verify(ctx: Ctx, entry: ClusterEntry, node?: string): Promise<void> {
  requireTrust();
  const res = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `memfabric: verifying ${entry.name} against its guests` }, () =>
    ctx.cli.run(['verify', '--format', 'json', entry.uri.fsPath]),
  );
  let json: { nodes: { name: string; ok: boolean; differences: { what: string; predicted: string | null; guest: string | null }[] }[] };
  try {
    json = JSON.parse(res.stdout);
  } catch {
    void vscode.window.showErrorMessage(`memfabric: verify failed: ${firstLines(res.stderr || res.stdout, 3) || `exit ${res.code}`}`);
    return;
  }
  const nodes = json.nodes.filter((n) => !node || n.name === node);
  ctx.output.appendLine(`[verify] ${entry.name}`);
  for (const n of nodes) {
    ctx.output.appendLine(`  ${n.name}: ${n.ok ? 'equals the prediction' : `${n.differences.length} difference(s)`}`);
    for (const d of n.differences) ctx.output.appendLine(`    ${d.what}\n      predicted: ${d.predicted ?? '(none)'}\n      guest:     ${d.guest ?? '(none)'}`);
  }
  const bad = nodes.filter((n) => !n.ok);
  if (!nodes.length) void vscode.window.showWarningMessage(`memfabric: no ready node of ${entry.name} to verify.`);
  else if (!bad.length) void vscode.window.showInformationMessage(`memfabric: ${nodes.map((n) => n.name).join(', ')}: the guest's memory map equals the prediction.`);
  else {
    const a = await vscode.window.showWarningMessage(
      `memfabric: ${bad.map((n) => `${n.name} (${n.differences.length} difference(s))`).join(', ')} differ from the prediction.`,
      'Show /proc/iomem',
      'Show Output',
    );
    if (a === 'Show Output') ctx.output.show(true);
    if (a === 'Show /proc/iomem') await ctx.views.show('iomem', entry.uri, bad[0].name);
  }
}

async function showMemoryMap(ctx: Ctx, arg: unknown): Promise<void> {
  let uri: vscode.Uri | undefined;
  let node: string | undefined;
  if (arg instanceof NodeItem || arg instanceof SymbolItem) {
    uri = arg.entry.uri;
    node = arg.node.name;
  } else if (arg instanceof ClusterItem) uri = arg.entry.uri;
  else {
    uri = uriOf(arg) ?? vscode.window.activeTextEditor?.document.uri;
    if (arg && typeof arg === 'object' && typeof (arg as { node?: unknown }).node === 'string') node = (arg as { node: string }).node;
  }
  if (!uri) {
    void vscode.window.showWarningMessage('memfabric: open a topology file, a libvirt domain XML or a QEMU command line first.');
    return;
  }
  if (!node) {
    const all = await ctx.memmaps.layout(uri);
    if (!all.nodes.length) {
      void vscode.window.showWarningMessage(`memfabric: ${vscode.workspace.asRelativePath(uri)} has no node to lay out.`);
      return;
    }
    node = all.nodes.length === 1 ? all.nodes[0].name : (await vscode.window.showQuickPick(all.nodes.map((n) => n.name), { title: 'memfabric: memory map of which node?' }));
    if (!node) return;
  }
  await ctx.memmaps.show(uri, node);
}

async function buildImage(ctx: Ctx): Promise<void> {
  requireTrust();
  const r = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'memfabric: building the guest image', cancellable: true },
    async (progress, token) => {
      const run = ctx.cli.start(['image', '--format', 'json'], { onStderrLine: (l) => l.trim() && progress.report({ message: l.replace(/^memfabric:\s*/, '') }) });
      token.onCancellationRequested(() => run.cancel());
      return run.result;
    },
  );
  if (r.cancelled) return;
  if (r.code !== 0) {
    void vscode.window.showErrorMessage(`memfabric: building the guest image failed: ${firstLines(r.stderr || r.stdout, 4) || `exit ${r.code}`}`);
    return;
  }
  let detail = '';
  try {
    const j = JSON.parse(r.stdout) as { dir?: string; kernelRelease?: string; cached?: boolean };
    detail = [j.kernelRelease ? `kernel ${j.kernelRelease}` : '', j.dir ? `${j.cached ? 'cached ' : ''}in ${j.dir}` : ''].filter(Boolean).join(', ');
  } catch {
    detail = r.stdout.trim().split('\n').pop() ?? '';
  }
  void vscode.window.showInformationMessage(`memfabric: the guest image is ready${detail ? `: ${detail}` : ''}.`);
}

// ---------------------------------------------------------------------- CXL injection (memfabric cxl …)

/** `memfabric cxl … --format json` (server/src/cli/main.ts cxlCmd). */
interface CxlJson {
  ok: boolean;
  node?: string;
  device?: string;
  qemu?: string;
  error?: string;
  rule?: string;
  sent?: { execute: string; arguments: unknown } | null;
  answer?: { return?: unknown; error?: { class: string; desc: string }; none?: string };
  guest?: { memdev?: string; records?: string[]; mediaErrors?: { offset: number; length: number; source?: string }[]; notes: string[] };
}

/**
 * The Type 3 device an action is for: the Clusters view's item, `{ uri|file, node, device }`,
 * or the active cluster file's ready node and its Type 3 device (quick picks when several).
 */
async function type3Target(ctx: Ctx, arg: unknown): Promise<{ entry: ClusterEntry; node: string; device: string } | undefined> {
  if (arg instanceof SymbolItem && isType3(arg.symbol)) return { entry: arg.entry, node: arg.node.name, device: arg.symbol.name };
  const t = await target(ctx, arg, ['ready']);
  if (!t?.node) return undefined;
  const given = arg && typeof arg === 'object' && typeof (arg as { device?: unknown }).device === 'string' ? (arg as { device: string }).device : undefined;
  if (given) return { entry: t.entry, node: t.node, device: given };
  const view = nodesOf(t.entry).find((n) => n.name === t.node);
  const devices = view ? type3Devices(view) : [];
  if (!devices.length) {
    void vscode.window.showWarningMessage(`memfabric: node ${t.node} of ${t.entry.name} has no CXL Type 3 device (<type3> in its <cxl>).`);
    return undefined;
  }
  const device = devices.length === 1 ? devices[0] : await vscode.window.showQuickPick(devices, { title: `memfabric: which Type 3 device of ${t.node}?` });
  return device ? { entry: t.entry, node: t.node, device } : undefined;
}

/** An input box for a number (hex or decimal); undefined when cancelled. */
async function askNumber(title: string, value: string, prompt: string): Promise<string | undefined> {
  return vscode.window.showInputBox({
    title,
    value,
    prompt,
    validateInput: (v) => (/^\s*(0x[0-9a-fA-F]+|\d+)\s*$/.test(v) ? undefined : 'a number: 0x… (hex) or decimal'),
  }).then((v) => v?.trim());
}

/** The CLI's arguments after `cxl` for an action, asked with quick picks and input boxes; undefined when cancelled. */
async function askCxlArgs(action: 'poison' | 'event' | 'error', what: string): Promise<{ head: string[]; opts: string[] } | undefined> {
  if (action === 'poison') {
    const start = await askNumber(`Inject Poison into ${what}: start`, '0x1000', 'device physical address (DPA) of the poison, 64-byte aligned');
    if (start === undefined) return undefined;
    const length = await askNumber(`Inject Poison into ${what}: length`, '64', 'bytes (a multiple of 64)');
    if (length === undefined) return undefined;
    return { head: ['poison'], opts: ['--start', start, '--length', length] };
  }
  if (action === 'event') {
    const kind = await vscode.window.showQuickPick(EVENT_KINDS, { title: `Inject Event into ${what}: which event record?`, placeHolder: 'event record' });
    if (!kind) return undefined;
    const opts: string[] = [];
    if (kind !== 'memory-module') {
      const dpa = await askNumber(`Inject Event into ${what}: ${kind} DPA`, '0x2000', 'device physical address the event names (64-byte aligned)');
      if (dpa === undefined) return undefined;
      opts.push('--dpa', dpa);
    }
    const log = await vscode.window.showQuickPick(EVENT_LOGS, { title: `Inject Event into ${what}: which event log?`, placeHolder: 'event log' });
    if (!log) return undefined;
    opts.push('--log', log);
    return { head: ['event', kind], opts };
  }
  const kind = await vscode.window.showQuickPick(['uncorrectable', 'correctable'], { title: `Inject Error into ${what}: which protocol error?`, placeHolder: 'error' });
  if (!kind) return undefined;
  const type = await vscode.window.showQuickPick(kind === 'uncorrectable' ? UNCOR_ERROR_TYPES : COR_ERROR_TYPES, { title: `Inject Error into ${what}: ${kind} error type`, placeHolder: 'type' });
  if (!type) return undefined;
  return { head: ['error', kind], opts: ['--type', type] };
}

/**
 * Inject Poison… / Inject Event… / Inject Error… on a Type 3 device: asks the
 * arguments, runs `memfabric cxl … --format json`, and shows QEMU's answer and
 * what the guest read back (output channel and a notification); a refusal shows
 * the CLI's message. The CXL Events view is asked to poll at once.
 */
async function cxlInject(ctx: Ctx, action: 'poison' | 'event' | 'error', arg: unknown): Promise<CxlJson | undefined> {
  requireTrust();
  const t = await type3Target(ctx, arg);
  if (!t) return undefined;
  const what = `${t.entry.name}/${t.node} ${t.device}`;
  const preset = arg && typeof arg === 'object' && Array.isArray((arg as { args?: unknown }).args) ? (arg as { args: string[] }).args : undefined;
  // (a caller may give the arguments: { uri, node, device, args: ['general-media', '--dpa', '0x2000'] })
  const a = preset ? { head: [action], opts: preset } : await askCxlArgs(action, what);
  if (!a) return undefined;
  await saveIfDirty(t.entry.uri);
  const argv = ['cxl', ...a.head, '--format', 'json', t.entry.uri.fsPath, t.node, t.device, ...a.opts];
  const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `memfabric: ${action} → ${what}` }, () => ctx.cli.run(argv));
  let j: CxlJson | undefined;
  try {
    j = JSON.parse(r.stdout) as CxlJson;
  } catch {
    j = undefined;
  }
  const cliError = (r.stderr.split('\n').find((l) => l.startsWith('memfabric cxl:')) ?? firstLines(r.stderr || r.stdout, 2)).replace(/^memfabric cxl:\s*/, '');
  ctx.output.appendLine(`[cxl] ${what}: memfabric ${argv.join(' ')}`);
  if (!j?.ok) {
    const msg = j?.error ?? (j?.answer?.error ? `QEMU refused ${j.sent?.execute}: "${j.answer.error.desc}" (${j.answer.error.class})` : cliError || `exit ${r.code}`);
    ctx.output.appendLine(`[cxl] ${what}: FAILED: ${msg}`);
    void vscode.window.showErrorMessage(`memfabric: ${what}: ${msg}`, 'Show Output').then((x) => x && ctx.output.show(true));
    return j;
  }
  const g = j.guest ?? { notes: [] };
  ctx.output.appendLine(`[cxl] ${what}: QEMU ${j.qemu ?? ''} accepted ${j.sent?.execute} ${JSON.stringify(j.sent?.arguments)}: ${JSON.stringify(j.answer?.return ?? {})}`);
  const who = `${t.node} guest${g.memdev ? ` ${g.memdev}` : ''}`;
  for (const e of g.mediaErrors ?? []) ctx.output.appendLine(`[cxl] ${who}: media error at DPA 0x${e.offset.toString(16)}, ${e.length} bytes${e.source ? ` (${e.source})` : ''}`);
  for (const rec of g.records ?? []) ctx.output.appendLine(`[cxl] ${who}: ${rec.replace(/^.*?: (cxl_\w+: )/, '$1')}`);
  for (const n of g.notes) ctx.output.appendLine(`[cxl] ${who}: ${n}`);
  const saw = g.records?.length
    ? `the guest traced ${[...new Set(g.records.map((x) => /: (cxl_\w+):/.exec(x)?.[1] ?? 'a record'))].join(', ')}`
    : g.mediaErrors?.length
      ? `the guest lists ${g.mediaErrors.length} media error(s)`
      : g.notes[0] ?? 'the guest showed nothing';
  void vscode.window.showInformationMessage(`memfabric: ${what}: QEMU accepted ${j.sent?.execute}; ${saw}.`, 'Show Output').then((x) => x && ctx.output.show(true));
  void ctx.cxlEvents.pollNow();
  return j;
}

/** Status-bar text for the active cluster: "memfabric: fame 2/4 ready". */
export function statusText(e: ClusterEntry): string {
  const { ready, total } = readyCount(e);
  return `memfabric: ${e.name} ${isRunning(e) || ready ? `${ready}/${total} ready` : `0/${total} running`}`;
}
