/**
 * The workbench harness itself, independent of the extension's client code: a
 * real VS Code (code-server's) loads a directory extension made of memfabric's
 * declarative parts (languages, TextMate grammars, language configurations,
 * snippets; no `main`), opens the FAME example, and shows it as a memfabric
 * topology with the grammar's scopes and colours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, tempDir, withWorkbench, workbenchMissing } from './support/workbench';

/** A directory extension with the repo's language contributions only (no code runs). */
function declarativeExtension(dir: string): string {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as Record<string, any>;
  const ext = join(dir, 'extension');
  mkdirSync(ext, { recursive: true });
  const { languages, grammars, snippets } = pkg.contributes as Record<string, unknown>;
  const manifest = {
    name: pkg.name, publisher: pkg.publisher, version: pkg.version, displayName: pkg.displayName,
    engines: { vscode: pkg.engines.vscode },
    contributes: { languages, grammars, snippets },
  };
  writeFileSync(join(ext, 'package.json'), JSON.stringify(manifest, null, 2));
  for (const d of ['syntaxes', 'language-configuration', 'snippets']) cpSync(join(REPO, d), join(ext, d), { recursive: true });
  return ext;
}

test('the workbench shows a topology file with memfabric\'s language and grammar', { skip: workbenchMissing(), timeout: 240_000 }, async () => {
  const dir = tempDir('mf-wb-smoke-');
  try {
    const ext = declarativeExtension(dir);
    const ws = join(dir, 'ws');
    mkdirSync(ws);
    copyFileSync(join(REPO, 'examples', 'fame-4node.cluster.xml'), join(ws, 'fame-4node.cluster.xml'));
    await withWorkbench('smoke', { extensions: [ext], folder: ws, trust: true }, async (wb) => {
      await wb.openFile('fame-4node.cluster.xml');
      // The language mode in the status bar comes from the extension's `languages` contribution.
      const mode = wb.statusBarItem('status.editor.mode');
      await mode.waitFor();
      assert.equal((await mode.innerText()).trim(), 'memfabric topology');

      // Line 10 is `  <fabric id="fam" size="32G" path="fam.raw"/>`.
      const lines = await wb.visibleLines();
      assert.equal(lines[9].trim(), '<fabric id="fam" size="32G" path="fam.raw"/>');
      await wb.goTo(10, 5);
      const tag = await wb.inspectTokens();
      assert.match(tag, /entity\.name\.tag\.localname\.memfabric-topology/, tag);
      assert.match(tag, /text\.xml\.memfabric-topology/, tag);
      await wb.goTo(10, 28);
      const size = await wb.inspectTokens();
      assert.match(size, /constant\.numeric\.size\.memfabric-topology/, size);

      // The theme colours those tokens: the tag name is not drawn in the plain text colour.
      // (The callback runs in the page: DOM types are not in this project's lib.)
      const colours = await wb.editor().locator('.view-lines').evaluate((el: any) => {
        const style = (globalThis as any).getComputedStyle;
        const rows = [...el.querySelectorAll('.view-line')] as any[];
        rows.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
        const spans = [...rows[9].querySelectorAll('span > span')] as any[];
        const of = (t: string) => spans.find((s) => (s.textContent as string).includes(t));
        return {
          plain: style(el).color as string,
          tag: of('fabric') && (style(of('fabric')).color as string),
          size: of('32G') && (style(of('32G')).color as string),
          spans: spans.map((s) => s.textContent as string),
        };
      });
      assert.ok(colours.tag, `no token "fabric" on line 10: ${JSON.stringify(colours.spans)}`);
      assert.notEqual(colours.tag, colours.plain, `tag name drawn in the plain colour ${colours.plain}`);
      assert.ok(colours.size, `no token "32G" on line 10: ${JSON.stringify(colours.spans)}`);
      await wb.screenshot('smoke-fame-4node');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
