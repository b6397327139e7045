/** Run the real `memfabric` CLI (bin/memfabric.js) as a child process. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';

export const REPO = join(__dirname, '..', '..', '..');
export const BIN = join(REPO, 'bin', 'memfabric.js');

export function runCli(args: string[], opts: { cwd?: string } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? REPO, encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function hasQemu(): boolean {
  return spawnSync('qemu-system-x86_64', ['--version']).status === 0;
}

/** The CLI with a private run directory (MEMFABRIC_RUN_DIR), as the runtime tests need. */
export function runCliWithRunDir(runBase: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: REPO,
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 300_000,
    env: { ...process.env, MEMFABRIC_RUN_DIR: runBase },
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
