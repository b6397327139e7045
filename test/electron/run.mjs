#!/usr/bin/env node
/**
 * `npm run test:electron`: the extension in a real VS Code desktop, for those
 * who can download one (@vscode/test-electron fetches VS Code from
 * update.code.visualstudio.com, which this project's CI machines cannot
 * reach; there the same checks and more run in code-server + chromium:
 * test/workbench.test.ts). Set VSCODE_EXECUTABLE to use an installed VS Code
 * instead of downloading one.
 */
import { runTests } from '@vscode/test-electron';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const ws = mkdtempSync(join(tmpdir(), 'mf-electron-'));
cpSync(join(root, 'examples', 'fame-4node.cluster.xml'), join(ws, 'fame.cluster.xml'));
try {
  await runTests({
    extensionDevelopmentPath: root,
    extensionTestsPath: join(here, 'suite.cjs'),
    vscodeExecutablePath: process.env.VSCODE_EXECUTABLE || undefined,
    launchArgs: [ws, '--disable-extensions', '--disable-workspace-trust'],
  });
} catch (e) {
  console.error(`test:electron: ${e?.message ?? e}`);
  process.exitCode = 1;
} finally {
  rmSync(ws, { recursive: true, force: true });
}
