/** Run the real `memfabric` CLI (bin/memfabric.js) as a child process. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const REPO = join(__dirname, '..', '..', '..');
export const BIN = join(REPO, 'bin', 'memfabric.js');

export function runCli(args: string[], opts: { cwd?: string } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? REPO, encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function hasQemu(): boolean {
  return spawnSync('qemu-system-x86_64', ['--version']).status === 0;
}
