#!/usr/bin/env node
// The main job on the built-in example: check every example, plan the FAME
// cluster, boot two of its nodes under real QEMU with the built-in guest, show
// what the guests see, prove that the fabric is shared, and stop everything.
// (Run through `npm start`, which installs and builds first.)
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { buildImage } = require(join(root, 'out/server/src/runtime/image.js'));
const { launchNode } = require(join(root, 'out/server/src/runtime/launch.js'));
const cli = (args, opts = {}) => {
  console.log(`\n$ memfabric ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [join(root, 'bin/memfabric.js'), ...args], { encoding: 'utf8', ...opts });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r;
};

cli(['check', 'examples/fame-4node.cluster.xml', 'examples/tigon-cxl-dax.cluster.xml', 'examples/cxl-interleave.cluster.xml', 'examples/cxl-switch.cluster.xml', 'examples/the-machine-40.cluster.xml'], { cwd: root });
cli(['check', 'examples/tigon-launch.sh'], { cwd: root });

const dir = mkdtempSync(join(tmpdir(), 'memfabric-demo-'));
const example = join(dir, 'fame.cluster.xml');
spawnSync('cp', [join(root, 'examples/fame-4node.cluster.xml'), example]);
cli(['plan', '--format', 'argv', '--node', 'node01', example]);
const plan = JSON.parse(spawnSync(process.execPath, [join(root, 'bin/memfabric.js'), 'plan', example], { encoding: 'utf8' }).stdout);

const nodes = [];
const stopAll = async () => {
  for (const n of nodes) await n.stop();
  rmSync(dir, { recursive: true, force: true });
};
process.on('SIGINT', () => stopAll().then(() => process.exit(130)));
try {
  console.log('\n== building the guest image (cached after the first run)');
  const image = await buildImage({ log: (l) => console.log(`   ${l}`) });
  for (const n of plan.nodes.slice(0, 2)) {
    console.log(`== booting ${n.name}`);
    const node = await launchNode({ name: n.name, argv: n.argv, image, runDir: join(dir, 'run', n.name) });
    nodes.push(node);
    console.log(`   ${n.name} ready in ${(node.bootMs / 1000).toFixed(1)} s`);
  }
  let bar;
  for (const n of nodes) {
    const r = await n.exec(['lspci', '-v', '-d', '1af4:1110']);
    console.log(`\n[${n.name}] $ lspci -v -d 1af4:1110\n${r.stdout.trimEnd()}`);
    bar ??= /Memory at ([0-9a-f]+) \(64-bit, prefetchable\)/.exec(r.stdout)?.[1];
  }
  const addr = `0x${bar}`;
  const w = await nodes[0].exec(['devmem', addr, '32', '0x4d454d46']);
  console.log(`\n[${nodes[0].name}] $ devmem ${addr} 32 0x4d454d46   (exit ${w.exitCode})`);
  const r = await nodes[1].exec(['devmem', addr, '32']);
  console.log(`[${nodes[1].name}] $ devmem ${addr} 32\n${r.stdout.trim()}`);
  const fd = openSync(join(dir, 'fam.raw'), 'r');
  const buf = Buffer.alloc(4);
  readSync(fd, buf, 0, 4, 0);
  closeSync(fd);
  console.log(`host: first 4 bytes of fam.raw: ${buf.toString('hex')} ("${buf.toString('latin1')}")`);
  const shared = r.stdout.trim().toLowerCase() === '0x4d454d46' && buf.readUInt32LE(0) === 0x4d454d46;
  console.log(shared ? '\nThe fabric is shared: node01 wrote it, node02 and the host file read it.' : '\nFAILED: the value did not arrive');
  await stopAll();
  process.exitCode = shared ? 0 : 1;
} catch (e) {
  console.error(`memfabric demo: ${e.message}`);
  await stopAll();
  process.exitCode = 1;
}
