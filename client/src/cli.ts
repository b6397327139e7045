/**
 * The client drives the runtime through the bundled CLI (dist/memfabric.js),
 * forked with argv arrays (never a shell). Settings reach it as environment
 * variables (see the contract): MEMFABRIC_QEMU, MEMFABRIC_ACCEL,
 * MEMFABRIC_IMAGE_DIR, MEMFABRIC_RUN_DIR. Every child is tracked so that
 * deactivate can end the ones still running.
 */
import { ChildProcess, fork } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Ended by cancel() or dispose(). */
  cancelled: boolean;
}

export interface CliRun {
  child: ChildProcess;
  result: Promise<CliResult>;
  cancel(): void;
}

/** Environment for the CLI from the memfabric.* settings (workspace values are ignored by VS Code in restricted mode). */
export function cliEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const cfg = vscode.workspace.getConfiguration('memfabric');
  const env: NodeJS.ProcessEnv = { ...base, ELECTRON_RUN_AS_NODE: '1' };
  const expand = (s: string) => (s.startsWith('~/') ? path.join(os.homedir(), s.slice(2)) : s);
  const set = (key: string, value: string | undefined) => {
    if (value && value.trim()) env[key] = expand(value.trim());
  };
  set('MEMFABRIC_QEMU', cfg.get<string>('qemuBinary'));
  set('MEMFABRIC_LIBVIRT_URI', cfg.get<string>('libvirtUri'));
  const backend = cfg.get<string>('backend');
  if (backend === 'qemu' || backend === 'libvirt') env.MEMFABRIC_BACKEND = backend;
  set('MEMFABRIC_IMAGE_DIR', cfg.get<string>('guestImageDir'));
  set('MEMFABRIC_RUN_DIR', cfg.get<string>('runDirectory'));
  const accel = cfg.get<string>('acceleration');
  if (accel === 'kvm' || accel === 'tcg' || accel === 'auto') env.MEMFABRIC_ACCEL = accel;
  return env;
}

export class Cli implements vscode.Disposable {
  private readonly running = new Set<ChildProcess>();

  constructor(
    /** Path of dist/memfabric.js. */
    readonly script: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Start `memfabric ARGS...`; onStderrLine gets each stderr line as it arrives. */
  start(args: string[], opts: { onStderrLine?: (line: string) => void; cwd?: string } = {}): CliRun {
    if (!vscode.workspace.isTrusted) throw new UntrustedError();
    // polled every few seconds (status; cxl events while the CXL Events view shows): not logged unless it fails
    const quiet = args[0] === 'status' || (args[0] === 'cxl' && args[1] === 'events');
    if (!quiet) this.log(`$ memfabric ${args.join(' ')}`);
    const child = fork(this.script, args, {
      cwd: opts.cwd,
      env: cliEnv(),
      execArgv: [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.running.add(child);
    let cancelled = false;
    const out: Buffer[] = [];
    let err = '';
    let partial = '';
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      err += s;
      partial += s;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        this.log(`  ${quiet ? `memfabric ${args[0] === 'cxl' ? 'cxl events' : 'status'}: ` : ''}${l}`);
        opts.onStderrLine?.(l);
      }
    });
    const result = new Promise<CliResult>((resolve) => {
      let done = false;
      const finish = (code: number) => {
        if (done) return;
        done = true;
        this.running.delete(child);
        if (partial) {
          this.log(`  ${partial}`);
          opts.onStderrLine?.(partial);
        }
        resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: err, cancelled });
      };
      child.on('error', (e) => {
        err += `cannot run ${this.script}: ${e.message}\n`;
        finish(-1);
      });
      child.on('close', (code, signal) => finish(code ?? (signal ? 128 : -1)));
    });
    return {
      child,
      result,
      cancel: () => {
        cancelled = true;
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      },
    };
  }

  run(args: string[], opts: { onStderrLine?: (line: string) => void; cwd?: string } = {}): Promise<CliResult> {
    return this.start(args, opts).result;
  }

  /** `memfabric ... --format json`: the parsed stdout, or an Error naming what went wrong. */
  async json<T>(args: string[]): Promise<T> {
    const r = await this.run(args);
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      throw new Error(`memfabric ${args[0]} failed (exit ${r.code}): ${firstLines(r.stderr || r.stdout) || 'no output'}`);
    }
  }

  /** Processes still running (for deactivate). */
  get children(): ChildProcess[] {
    return [...this.running];
  }

  killAll(): void {
    for (const c of this.running) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    }
  }

  dispose(): void {
    this.killAll();
  }
}

export class UntrustedError extends Error {
  constructor() {
    super('memfabric: this workspace is not trusted, so memfabric starts no process here (no boot, QEMU, console or guest command). Trust the workspace to run clusters.');
  }
}

export function firstLines(s: string, n = 6): string {
  return s.trim().split('\n').filter((l) => l.trim()).slice(0, n).join('\n');
}
