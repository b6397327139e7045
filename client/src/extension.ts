/**
 * memfabric for VS Code: thin glue. activate() starts the language server
 * (dist/server.js over IPC), the Clusters view, the status item, the command
 * table (commands.ts); deactivate() stops every cluster this window booted and
 * ends every process it started.
 *
 * Workspace trust: in an untrusted workspace the language server still runs
 * (diagnostics, hover, completion, outline, the memory map): it is the
 * extension's own code, started with the extension's directory as its working
 * directory, it reads the workspace's files and executes nothing from the
 * workspace (its children are the user's QEMU, asked what it is: `--version`,
 * `-machine none` over QMP, SeaBIOS's first debug-console line; the binary is
 * memfabric.qemuBinary from the user's own settings, which an untrusted
 * workspace cannot set, else qemu-system-x86_64 on the PATH of VS Code
 * itself), and it gets no other memfabric.* setting. Everything that starts a process (boot, stop, status, exec, console,
 * the guest views, verify, the image build) refuses with a message; those
 * commands are also disabled (`enablement: isWorkspaceTrusted`).
 */
import { spawn } from 'node:child_process';
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions, TransportKind } from 'vscode-languageclient/node';
import { QemuInfo, QemuRequest, SERVER_NODE_FLAGS } from '../../server/src/lsp/protocol';
import { Cli, cliEnv } from './cli';
import { Clusters } from './clusters';
import { registerCommands, statusText } from './commands';
import { Consoles } from './console';
import { CxlEvents } from './cxlevents';
import type { Ctx } from './ctx';
import { GuestViews } from './guestviews';
import { MemoryMaps } from './memmap';

let ctx: Ctx | undefined;
let client: LanguageClient | undefined;
/** The QEMU the language server judges for (its profile), once it answered. */
let qemuInfo: QemuInfo | undefined;

export const DOCUMENT_SELECTOR = [
  { scheme: 'file', language: 'memfabric-topology' },
  { scheme: 'untitled', language: 'memfabric-topology' },
  { scheme: 'file', language: 'qemu-cmdline' },
  { scheme: 'untitled', language: 'qemu-cmdline' },
  { scheme: 'file', language: 'shellscript' },
  { scheme: 'file', language: 'xml' },
];

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('memfabric');
  context.subscriptions.push(output);
  const log = (l: string) => output.appendLine(l);
  const cli = new Cli(context.asAbsolutePath('dist/memfabric.js'), log);
  const clusters = new Clusters(cli, log);
  const memmaps = new MemoryMaps(context.extensionUri, () => client, log);
  const c: Ctx = {
    extension: context,
    output,
    cli,
    clusters,
    consoles: new Consoles(),
    memmaps,
    views: new GuestViews(context.extensionUri, cli, memmaps),
    cxlEvents: new CxlEvents(cli, clusters, log),
    client: () => client,
    booted: new Set(),
    log,
  };
  ctx = c;
  context.subscriptions.push(cli, clusters, c.consoles, memmaps, c.views, ...registerCommands(c));
  context.subscriptions.push(vscode.window.createTreeView('memfabric.clusters', { treeDataProvider: clusters, showCollapseAll: true }));
  // polls `memfabric cxl events` while visible and a cluster runs; disposed (polling stopped) on deactivate
  context.subscriptions.push(c.cxlEvents);
  c.cxlEvents.attach(vscode.window.createTreeView('memfabric.cxlEvents', { treeDataProvider: c.cxlEvents, showCollapseAll: true }));

  const status = vscode.window.createStatusBarItem('memfabric.status', vscode.StatusBarAlignment.Left, 10);
  status.name = 'memfabric';
  status.command = 'workbench.view.extension.memfabric';
  const updateStatus = () => {
    const e = clusters.active();
    if (!e) {
      status.hide();
      return;
    }
    status.text = statusText(e).replace(/^memfabric:/, 'memfabric: $(server-environment)') + (qemuInfo ? ` · QEMU ${qemuInfo.version}` : '');
    status.tooltip = `memfabric: cluster ${e.name} (${vscode.workspace.asRelativePath(e.uri)}); click for the Clusters view` +
      (qemuInfo ? `\nJudged for ${qemuInfo.label}${qemuInfo.origin !== 'bundled' ? ` (${qemuInfo.origin})` : ''}${qemuInfo.note ? `\n${qemuInfo.note}` : ''}` : '');
    status.show();
  };
  context.subscriptions.push(status, clusters.onDidChange(updateStatus), vscode.window.onDidChangeActiveTextEditor(updateStatus));

  await startServer(context, output);
  updateStatus();
  void client?.sendRequest(QemuRequest.type).then(
    (q) => {
      qemuInfo = q;
      output.appendLine(`memfabric: judging for ${q.label}${q.note ? ` (${q.note})` : ''}`);
      updateStatus();
    },
    () => undefined,
  );
  // read the workspace's clusters (outline, and status when trusted) without holding up activation
  void clusters.all().then(updateStatus);
}

async function startServer(context: vscode.ExtensionContext, output: vscode.OutputChannel): Promise<void> {
  const module = context.asAbsolutePath('dist/server.js');
  // no memfabric.* setting reaches the server; its cwd is the extension, never the workspace
  const options = { cwd: context.extensionPath, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } };
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc, options: { ...options, execArgv: [...SERVER_NODE_FLAGS] } },
    debug: { module, transport: TransportKind.ipc, options: { ...options, execArgv: [...SERVER_NODE_FLAGS, '--nolazy', '--inspect=6019'] } },
  };
  // The one setting the server gets: the QEMU to judge for (restricted: an untrusted workspace cannot set it).
  const qemuBinary = vscode.workspace.getConfiguration('memfabric').get<string>('qemuBinary')?.trim() || undefined;
  // And the libvirt to ask about domain files (restricted too); empty: found as `memfabric check --libvirt` finds it.
  const libvirtUri = vscode.workspace.getConfiguration('memfabric').get<string>('libvirtUri')?.trim() || undefined;
  const clientOptions: LanguageClientOptions = {
    documentSelector: DOCUMENT_SELECTOR,
    // The background probe runs the user's QEMU: only in a trusted workspace (the client restarts when trust is granted).
    initializationOptions: () => ({ qemuBinary, libvirtUri, probe: vscode.workspace.isTrusted }),
    outputChannel: output,
    traceOutputChannel: output,
  };
  client = new LanguageClient('memfabric', 'memfabric', serverOptions, clientOptions);
  // Trust granted: start again, so that the server gets probe: true.
  context.subscriptions.push(vscode.workspace.onDidGrantWorkspaceTrust(() => void client?.restart()));
  try {
    await client.start();
    output.appendLine(`memfabric: language server started (${module})`);
  } catch (e) {
    output.appendLine(`memfabric: the language server did not start: ${(e as Error).message}`);
    void vscode.window.showErrorMessage(`memfabric: the language server did not start: ${(e as Error).message}`);
  }
}

/** Stop every cluster this window booted, end every process it started, stop the language server. */
export async function deactivate(): Promise<void> {
  const c = ctx;
  ctx = undefined;
  const waits: Promise<unknown>[] = [];
  if (c) {
    c.cxlEvents.dispose(); // no poll after this
    c.cli.killAll();
    c.consoles.dispose();
    for (const file of c.booted) {
      c.output.appendLine(`[deactivate] memfabric stop ${file}`);
      // detached: the stop finishes even if the extension host exits first
      const child = spawn(process.execPath, [c.cli.script, 'stop', file], { env: cliEnv(), detached: true, stdio: 'ignore' });
      waits.push(new Promise((r) => {
        child.on('exit', r);
        child.on('error', r);
      }));
      child.unref();
    }
    c.booted.clear();
  }
  if (client) {
    const cl = client;
    client = undefined;
    waits.push(cl.stop(4000).catch(() => undefined));
  }
  await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 15_000))]);
}
