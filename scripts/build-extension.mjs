#!/usr/bin/env node
/**
 * Bundles the VS Code extension with esbuild (no network):
 *   dist/extension.js  client/src/extension.ts, `vscode` external
 *   dist/server.js     the language server (`node dist/server.js --stdio`, or --node-ipc)
 *   dist/memfabric.js  the CLI (same as bin/memfabric.js)
 *   dist/guest-init/   the files the guest image builder ships into the initramfs
 *                      (server/src/runtime/image.ts guestInitDir() looks next to the bundle)
 * The QEMU and PCI catalogs are JSON imports, so they are inside the bundles.
 * `npm run package` then writes build/memfabric.vsix with @vscode/vsce.
 *
 * node scripts/build-extension.mjs [--watch] [--minify]
 */
import * as esbuild from 'esbuild';
import { chmodSync, cpSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const watch = process.argv.includes('--watch');
const minify = process.argv.includes('--minify');

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
mkdirSync(join(root, 'build'), { recursive: true }); // npm run package writes build/memfabric.vsix

const common = {
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  sourcemap: true,
  minify,
  // keep names readable in stack traces; the command table is read from the bundle by test/client-package.test.ts
  keepNames: true,
  logLevel: 'warning',
  absWorkingDir: root,
};

/** An entry that runs the CLI's main() as bin/memfabric.js does (inside a bundle `require.main === module` is never true). */
const cliEntry = `
const { main, quietEpipe } = require('./server/src/cli/main');
quietEpipe();
main(process.argv.slice(2)).then((code) => { if (code >= 0) process.exitCode = code; });
`;
const serverEntry = `
require('./server/src/lsp/server').startServer(process.argv.slice(2));
`;

const builds = [
  { ...common, entryPoints: ['client/src/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...common, stdin: { contents: serverEntry, resolveDir: root, sourcefile: 'server-entry.js', loader: 'js' }, outfile: 'dist/server.js' },
  // main.ts runs itself when `require.main === module`; bundled as an ES module its `module` is the bundle's, so that test
  // would hold and main() would run twice: the entry runs it, the test is defined false.
  { ...common, stdin: { contents: cliEntry, resolveDir: root, sourcefile: 'cli-entry.js', loader: 'js' }, outfile: 'dist/memfabric.js', banner: { js: '#!/usr/bin/env node' }, define: { 'require.main': 'undefined' } },
];

function copyGuestInit() {
  const from = join(root, 'server', 'src', 'runtime', 'guest-init');
  const to = join(dist, 'guest-init');
  cpSync(from, to, { recursive: true });
  for (const f of readdirSync(to)) chmodSync(join(to, f), statSync(join(from, f)).mode & 0o777);
}

if (watch) {
  for (const b of builds) (await esbuild.context(b)).watch();
  copyGuestInit();
  console.log('build-extension: watching');
} else {
  const t0 = Date.now();
  await Promise.all(builds.map((b) => esbuild.build(b)));
  chmodSync(join(dist, 'memfabric.js'), 0o755);
  copyGuestInit();
  console.log(`build-extension: dist/extension.js, dist/server.js, dist/memfabric.js, dist/guest-init/ in ${Date.now() - t0} ms`);
}
