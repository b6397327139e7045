/** Run the real `memfabric` CLI (bin/memfabric.js) as a child process. */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

export const REPO = join(__dirname, '..', '..', '..');
export const BIN = join(REPO, 'bin', 'memfabric.js');

export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? REPO, encoding: 'utf8', env: opts.env ? { ...process.env, ...opts.env } : process.env });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** QEMU 10.0 (bookworm-backports) as scripts/qemu10-setup.sh unpacks it beside the system's 7.2. */
export const QEMU10 = process.env.MEMFABRIC_QEMU10 || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'memfabric', 'qemu-10.0', 'bin', 'qemu-system-x86_64');

export function hasQemu10(): boolean {
  return spawnSync(QEMU10, ['--version']).status === 0;
}

export function hasQemu(): boolean {
  return spawnSync('qemu-system-x86_64', ['--version']).status === 0;
}

/** The CLI with a private run directory (MEMFABRIC_RUN_DIR), as the runtime tests need. */
export function runCliWithRunDir(runBase: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: REPO,
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 300_000,
    env: { ...process.env, ...opts.env, MEMFABRIC_RUN_DIR: runBase },
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A two-node copy of the FAME example in dir (its fabric file fam.raw lands there too). */
export function fame2(dir: string): string {
  const text = readFileSync(join(REPO, 'examples', 'fame-4node.cluster.xml'), 'utf8').replace('count="4"', 'count="2"');
  if (!text.includes('count="2"')) throw new Error('examples/fame-4node.cluster.xml no longer has count="4"');
  const file = join(dir, 'fame.cluster.xml');
  writeFileSync(file, text);
  return file;
}

/** The CLI as an asynchronous child (several at once), with extra environment variables. */
export function runCliAsync(args: string[], env: NodeJS.ProcessEnv, opts: { timeoutMs?: number; cwd?: string } = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

/** The CLI with extra environment variables (synchronous). */
export function runCliEnv(args: string[], env: NodeJS.ProcessEnv, opts: { timeoutMs?: number; cwd?: string } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? REPO, encoding: 'utf8', timeout: opts.timeoutMs ?? 300_000, env: { ...process.env, ...env } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The pids of live processes whose command line mentions text (a run directory, say). */
export function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text)) pids.push(Number(e));
    } catch { /* gone */ }
  }
  return pids;
}

/** The argv of a live process. */
export function processArgv(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
}

/** Sockets, pid files and locks under dir (what a stopped cluster must not leave). */
export function socketsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isSocket() || /\.(sock|pid)$|^cluster\.json$/.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * The QEMU an example needs when it is newer than the system's 7.2: its
 * leading comment says "Needs QEMU X.Y or later." (e.g. volatile CXL Type 3
 * capacity arrived in 8.1). Such an example is judged and planned with QEMU 10.0.
 */
export function exampleNeedsQemu(text: string): string | undefined {
  return /Needs QEMU (\d+\.\d+) or later/.exec(text)?.[1];
}
