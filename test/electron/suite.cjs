/**
 * Runs inside the VS Code extension host (see run.mjs): the extension
 * activates on a topology file, publishes the server's diagnostics, registers
 * the contract's commands, and answers memfabric/layout through its memory map.
 */
const assert = require('node:assert/strict');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const vscode = require('vscode');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms = 30000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

exports.run = async function run() {
  const ws = vscode.workspace.workspaceFolders[0].uri.fsPath;
  const fame = vscode.Uri.file(join(ws, 'fame.cluster.xml'));
  const broken = join(ws, 'broken.cluster.xml');
  const text = (await vscode.workspace.fs.readFile(fame)).toString().replace('<attach fabric="fam"', '<attach fabric="fabx"');
  writeFileSync(broken, text);

  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(broken));
  await vscode.window.showTextDocument(doc);
  assert.equal(doc.languageId, 'memfabric-topology');
  const ext = vscode.extensions.getExtension('memfabric.memfabric');
  await until('activation', () => ext.isActive);

  const diags = await until('diagnostics', () => {
    const d = vscode.languages.getDiagnostics(doc.uri).filter((x) => x.source === 'memfabric');
    return d.length ? d : undefined;
  });
  const bad = diags.find((d) => /fabx/.test(d.message));
  assert.ok(bad, `no diagnostic names fabx: ${diags.map((d) => d.message).join(' | ')}`);
  assert.equal(doc.getText(bad.range), 'fabx');

  const commands = await vscode.commands.getCommands(true);
  for (const id of ['bootCluster', 'bootNode', 'stopCluster', 'restartCluster', 'openConsole', 'showLspci', 'showCxl', 'showDax', 'showIomem', 'verifyLayout', 'showMemoryMap', 'buildImage', 'refreshClusters']) {
    assert.ok(commands.includes(`memfabric.${id}`), `memfabric.${id} is not registered`);
  }
};
