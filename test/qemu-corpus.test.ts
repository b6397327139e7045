/**
 * The ground truth: every configuration of test/corpus/qemu is run under the
 * real QEMU 7.2 (its recorded outcome is re-checked on every run) and checked
 * with `memfabric check`. QEMU refuses → check reports an error; QEMU starts
 * clean → check reports no error; a silent failure → its diagnostic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, openSync, ftruncateSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importEsm } from './support/esm';
import { REPO, hasQemu, runCli } from './support/cli';

const CORPUS = join(REPO, 'test', 'corpus', 'qemu');
const files = readdirSync(CORPUS).filter((f) => f.endsWith('.qemu')).sort();

interface Rec { started: boolean; exitCode: number | null; signal: string | null; stderr: string }

test('the corpus holds at least 40 configurations', () => {
  assert.ok(files.length >= 40, `${files.length} configurations`);
});

const qemu = hasQemu();

for (const f of files) {
  test(`corpus ${f}`, async () => {
    const runner = await importEsm(join(REPO, 'test', 'corpus', 'run-qemu.mjs'));
    const text = readFileSync(join(CORPUS, f), 'utf8');
    const parsed = runner.parseCorpusFile(text);
    const recorded: Rec = JSON.parse(readFileSync(join(CORPUS, f.replace(/\.qemu$/, '.expected.json')), 'utf8'));
    if (qemu) {
      const live: Rec = await runner.runQemu(parsed.argv, parsed.files);
      assert.equal(live.started, recorded.started, `QEMU now ${live.started ? 'starts' : 'refuses'}: ${live.stderr}`);
      assert.equal(live.exitCode, recorded.exitCode, live.stderr);
      assert.equal(live.signal, recorded.signal);
    }
    // Check in a directory holding the same files QEMU saw.
    const dir = mkdtempSync(join(tmpdir(), 'memfabric-check-'));
    try {
      copyFileSync(join(CORPUS, f), join(dir, f));
      for (const file of parsed.files) {
        const fd = openSync(join(dir, file.path), 'w');
        ftruncateSync(fd, file.size);
        closeSync(fd);
      }
      const r = runCli(['check', '--format', 'json', f], { cwd: dir });
      assert.ok(r.status === 0 || r.status === 1, r.stderr);
      const out = JSON.parse(r.stdout);
      const diags: { code: string; severity: string; message: string }[] = out.files[0].diagnostics;
      const errors = diags.filter((d) => d.severity === 'error');
      const codes = new Set(diags.map((d) => d.code));
      const summary = diags.map((d) => `${d.severity} ${d.code}: ${d.message}`).join('\n');
      if (!recorded.started) {
        assert.ok(errors.length > 0, `QEMU refuses (${recorded.stderr.trim()}) but check found no error`);
        assert.equal(r.status, 1);
      }
      if (parsed.expect.length === 0) {
        assert.equal(diags.length, 0, `clean configuration, but:\n${summary}`);
        assert.equal(r.status, 0);
      }
      for (const code of parsed.expect) assert.ok(codes.has(code), `expected ${code}, got:\n${summary}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
