/**
 * A cluster file in a fresh temporary directory, run by the CLI under QEMU
 * 10.0 (TCG) with a run directory of its own; the CXL tests' common frame.
 * end() stops the cluster, asserts that no process of its run is left and
 * removes the directory (call it in a finally).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QEMU10, processesMentioning, runCliWithRunDir } from './cli';

export function qemu10Cluster(prefix: string, name: string, text: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const run = join(dir, 'run');
  const file = join(dir, name);
  writeFileSync(file, text);
  const mf = (args: string[], timeoutMs = 300_000) => runCliWithRunDir(run, args, { timeoutMs, env: { MEMFABRIC_ACCEL: 'tcg', MEMFABRIC_QEMU: QEMU10 } });
  const sh = (node: string, script: string) => mf(['exec', file, node, '--', 'sh', '-c', script]);
  const end = () => {
    mf(['stop', file]);
    assert.deepEqual(processesMentioning(run), []);
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, run, file, mf, sh, end };
}
