#!/usr/bin/env node
/**
 * `npm run package`: the bundles (scripts/build-extension.mjs), then
 * build/memfabric.vsix with @vscode/vsce, offline. One packaging at a time:
 * the test files that package (client-package, workbench) may run at once,
 * and a second build would delete dist/ under the first one's vsce. The lock
 * is a directory (mkdir is atomic) holding the owner's pid; a lock whose
 * owner is gone is taken over.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lock = join(root, 'build', '.package.lock');
mkdirSync(join(root, 'build'), { recursive: true });

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const deadline = Date.now() + 10 * 60_000;
for (;;) {
  try {
    mkdirSync(lock);
    writeFileSync(join(lock, 'pid'), String(process.pid));
    break;
  } catch (e) {
    if (e.code !== 'EEXIST') throw e;
    let owner = 0;
    try {
      owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    } catch {
      /* being written: wait */
    }
    if (owner && !alive(owner)) {
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) {
      console.error(`package: ${lock} is held by pid ${owner || '?'} for over 10 minutes`);
      process.exit(1);
    }
    sleep(500);
  }
}

let status = 1;
try {
  const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status ?? 1;
  status = run(process.execPath, [join(root, 'scripts', 'build-extension.mjs')]);
  if (status === 0) {
    status = run(join(root, 'node_modules', '.bin', 'vsce'), [
      'package', '--no-dependencies', '--allow-missing-repository', '--no-rewrite-relative-links', '--out', 'build/memfabric.vsix',
    ]);
  }
} finally {
  rmSync(lock, { recursive: true, force: true });
}
process.exit(status);
