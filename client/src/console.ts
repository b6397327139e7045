/**
 * One interactive terminal per guest console: a Pseudoterminal connected with
 * net.connect to the node's console socket (QEMU's serial chardev, a unix
 * socket server). Closing the terminal closes the connection only: the node
 * keeps running. QEMU serves one console client at a time, so a second
 * request for the same node shows the terminal already open.
 */
import * as net from 'node:net';
import * as vscode from 'vscode';

export function consoleTerminalName(cluster: string, node: string): string {
  return `memfabric: ${cluster}/${node}`;
}

class ConsolePty implements vscode.Pseudoterminal {
  private readonly write = new vscode.EventEmitter<string>();
  private readonly closed = new vscode.EventEmitter<number | void>();
  readonly onDidWrite = this.write.event;
  readonly onDidClose = this.closed.event;
  private sock?: net.Socket;
  private closedByUser = false;
  private decoder = new TextDecoder('utf-8');

  constructor(private readonly socketPath: string, private readonly label: string) {}

  open(): void {
    this.write.fire(`\x1b[2mmemfabric: connecting to the console of ${this.label} (${this.socketPath}); closing this terminal leaves the node running\x1b[0m\r\n`);
    const sock = net.connect(this.socketPath);
    this.sock = sock;
    sock.on('connect', () => {
      // a fresh prompt: the guest's shell answers an empty line
      sock.write('\r');
    });
    sock.on('data', (b: Buffer) => this.write.fire(this.decoder.decode(b, { stream: true })));
    sock.on('error', (e) => {
      this.write.fire(`\r\n\x1b[31mmemfabric: console of ${this.label}: ${e.message}\x1b[0m\r\n`);
    });
    sock.on('close', () => {
      if (this.closedByUser) return;
      this.write.fire(`\r\n\x1b[33mmemfabric: the console of ${this.label} closed (the node stopped?)\x1b[0m\r\n`);
      // keep the terminal (and what it shows) until the user closes it
    });
  }

  handleInput(data: string): void {
    if (this.sock && !this.sock.destroyed) this.sock.write(data);
  }

  close_(): void {
    this.closedByUser = true;
    this.sock?.destroy();
  }

  // vscode calls close() when the user closes the terminal
  close(): void {
    this.close_();
  }

  dispose(): void {
    this.close_();
    this.write.dispose();
    this.closed.dispose();
  }
}

export class Consoles implements vscode.Disposable {
  private readonly terminals = new Map<string, { term: vscode.Terminal; pty?: ConsolePty }>();
  private readonly sub: vscode.Disposable;

  constructor() {
    this.sub = vscode.window.onDidCloseTerminal((t) => {
      for (const [k, v] of this.terminals) {
        if (v.term === t) {
          v.pty?.dispose();
          this.terminals.delete(k);
        }
      }
    });
  }

  /**
   * The console of a node: QEMU's console socket (memfabric's own QEMU), or the domain's console through
   * libvirt (`virsh console`, run from an argv; Ctrl-] leaves) for a node of the libvirt backend.
   */
  open(cluster: string, node: string, where: string | { uri: string; domain: string }): vscode.Terminal {
    const name = consoleTerminalName(cluster, node);
    const have = this.terminals.get(name);
    if (have && have.term.exitStatus === undefined) {
      have.term.show();
      return have.term;
    }
    if (typeof where !== 'string') {
      const term = vscode.window.createTerminal({ name, shellPath: 'virsh', shellArgs: ['-c', where.uri, 'console', where.domain, '--force'], iconPath: new vscode.ThemeIcon('vm') });
      this.terminals.set(name, { term });
      term.show();
      return term;
    }
    const pty = new ConsolePty(where, `${cluster}/${node}`);
    const term = vscode.window.createTerminal({ name, pty, iconPath: new vscode.ThemeIcon('vm') });
    this.terminals.set(name, { term, pty });
    term.show();
    return term;
  }

  /** Terminals of a cluster (closed when it stops). */
  closeCluster(cluster: string): void {
    for (const [k, v] of this.terminals) {
      if (k.startsWith(`memfabric: ${cluster}/`)) {
        v.term.dispose();
      }
    }
  }

  dispose(): void {
    for (const v of this.terminals.values()) {
      v.pty?.dispose();
      v.term.dispose();
    }
    this.terminals.clear();
    this.sub.dispose();
  }
}
