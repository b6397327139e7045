/**
 * The libvirt backend in a real VS Code workbench (code-server + chromium,
 * test/support/workbench.ts): with the settings memfabric.backend = libvirt and
 * memfabric.libvirtUri naming a private libvirtd (scripts/libvirtd-private.sh),
 * Boot Cluster in the Clusters view runs the nodes as libvirt domains, the view
 * shows each node's domain, Open Console is the domain's console (virsh console
 * in a terminal) and takes input, and Stop Cluster leaves no domain.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fame2, hasQemu, runCliWithRunDir } from './support/cli';
import { PrivateLibvirtd } from './support/libvirtd';
import { ensureVsix, workbenchDirs, waitFor, Workbench, workbenchMissing } from './support/workbench';

const missing = workbenchMissing();
const built = missing ? {} : ensureVsix();
const skip = missing ?? built.reason ?? (!hasQemu() ? 'qemu-system-x86_64 missing' : undefined);

describe('memfabric in a real VS Code workbench, libvirt backend', { skip, timeout: 600_000 }, () => {
  let lv: PrivateLibvirtd | string = 'not started';
  let dir = '';
  let ws = '';
  let runDir = '';
  let cluster = '';
  let wb: Workbench | undefined;
  let failed = false;
  const domains = () => (typeof lv === 'string' ? [] : lv.virsh('list', '--name', '--all').stdout.split('\n').map((x) => x.trim()).filter(Boolean));

  before(async () => {
    lv = await PrivateLibvirtd.start();
    if (typeof lv === 'string') return;
    let extension: string;
    ({ dir, ws, runDir, extension } = workbenchDirs('mf-e2e-libvirt-', built.vsix!));
    cluster = fame2(ws);
    wb = await Workbench.start({
      name: 'e2e-libvirt', extensions: [extension], folder: ws, trust: true,
      settings: { 'memfabric.runDirectory': runDir, 'memfabric.backend': 'libvirt', 'memfabric.libvirtUri': lv.uri },
    });
  });

  after(async () => {
    await wb?.close({ keep: failed });
    if (typeof lv !== 'string') {
      if (cluster) runCliWithRunDir(runDir, ['stop', cluster], { timeoutMs: 60_000, env: { MEMFABRIC_BACKEND: 'libvirt', MEMFABRIC_LIBVIRT_URI: lv.uri } });
      lv.stop();
    }
    if (dir && !failed) rmSync(dir, { recursive: true, force: true });
  });

  test('Boot Cluster runs libvirt domains, the view names them, the console is the domain\'s, Stop Cluster removes them', { timeout: 540_000 }, async (t) => {
    if (typeof lv === 'string') return t.skip(lv);
    const w = wb!;
    try {
      await w.runCommand('memfabric: Focus on Clusters View');
      const item = await w.treeItem('Clusters', 'fame');
      await waitFor('node rows stopped', async () => (await w.treeChildren('Clusters', 'fame')).filter((l) => /^node0[12]\b.*stopped/.test(l)).length === 2);
      await w.inlineAction(item, 'Boot Cluster');
      await waitFor('both nodes ready, as libvirt domains, in the Clusters view', async () => {
        const nodes = await w.treeChildren('Clusters', 'fame');
        if (nodes.some((l) => /crashed|failed/.test(l))) throw new Error(`boot failed: ${JSON.stringify(nodes)} ${JSON.stringify(await w.notifications())}`);
        return nodes.filter((l) => /^node0[12]\b.*ready.*libvirt mf-[0-9a-f]{8}-node0[12]/.test(l)).length === 2;
      }, 400_000, 1_000);
      assert.equal(domains().length, 2, 'two domains in virsh list');
      await w.screenshot('e2e-libvirt-booted');

      const node = await w.treeItem('Clusters', 'node01', { under: 'fame' });
      await w.inlineAction(node, 'Open Console');
      await waitFor('terminal "memfabric: fame/node01"', async () => (await w.terminalNames()).some((n) => n.includes('memfabric: fame/node01')));
      await w.page.locator('.part.panel .terminal-wrapper.active').first().waitFor({ state: 'visible', timeout: 15_000 });
      await w.waitForTerminal(/Connected to domain '?mf-[0-9a-f]{8}-node01'?/, 30_000);
      await w.page.locator('.terminal-wrapper.active .xterm').first().click();
      await w.page.keyboard.type('\recho mf-$((6*7))\r', { delay: 20 });
      await w.waitForTerminal(/^mf-42\s*$/m, 60_000);
      await w.screenshot('e2e-libvirt-console');

      await w.runCommand('memfabric: Focus on Clusters View');
      await w.inlineAction(await w.treeItem('Clusters', 'fame'), 'Stop Cluster');
      await waitFor('both nodes stopped', async () => (await w.treeChildren('Clusters', 'fame')).filter((l) => /^node0[12]\b.*stopped/.test(l)).length === 2, 90_000, 1_000);
      await waitFor('no domain left', () => domains().length === 0, 30_000);
    } catch (e) {
      failed = true;
      const shot = await w.screenshot('e2e-libvirt-failure').catch(() => '(no screenshot)');
      (e as Error).message += `\n  screenshot: ${shot}\n  notifications: ${JSON.stringify(await w.notifications().catch(() => []))}\n` +
        w.extensionHostLog().split('\n').filter((l) => /memfabric|error|Error/.test(l)).slice(-30).join('\n');
      throw e;
    }
  });
});
