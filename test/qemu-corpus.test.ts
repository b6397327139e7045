/**
 * The ground truth: every configuration of test/corpus/qemu is run under each
 * real QEMU the corpus is recorded for (7.2 and 10.0; test/corpus/run-qemu.mjs
 * QEMU_VERSIONS) and checked with `memfabric check`:
 *  - record: the QEMU of that version is run again and must do what its record
 *    says (NNN-name.expected.json for 7.2, NNN-name.expected-10.0.json for
 *    10.0): start or refuse, exit code, signal and QEMU's own words (stderr);
 *  - check: `memfabric check` with MEMFABRIC_QEMU set to that version's binary
 *    must agree with that version's record and expectation ('# expect@10.0:'
 *    else '# expect:'): QEMU refuses → an error; clean → no diagnostic; every
 *    expected code present.
 * A version whose binary is missing has its record and check skipped, unless
 * CI or MEMFABRIC_CORPUS_ALL_QEMUS=1 is set: then a missing QEMU fails.
 *
 * test/corpus/pending-checks.txt lists checks that cannot agree yet (none
 * today): those run as TODO (reported, not failing); one that passes fails
 * until its line is removed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, openSync, ftruncateSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importEsm } from './support/esm';
import { REPO, runCliAsync } from './support/cli';

const CORPUS = join(REPO, 'test', 'corpus', 'qemu');
const PENDING = join(REPO, 'test', 'corpus', 'pending-checks.txt');
const files = readdirSync(CORPUS).filter((f) => f.endsWith('.qemu')).sort();

interface Rec { qemu: string; started: boolean; exitCode: number | null; signal: string | null; stderr: string }
interface Qemu { version: string; bin: string; present: boolean; actual: string | null }
interface Parsed { what: string; expect: string[]; expectAt: Record<string, string[]>; files: { path: string; size: number }[]; argv: string[] }

/** "10.0 061-name.qemu  reason" lines → Map("10.0 061-name.qemu" → reason). */
function readPending(): Map<string, string> {
  const m = new Map<string, string>();
  if (!existsSync(PENDING)) return m;
  for (const raw of readFileSync(PENDING, 'utf8').split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [version, name, ...reason] = line.split(/\s+/);
    m.set(`${version} ${name}`, reason.join(' ') || 'pending');
  }
  return m;
}
const pending = readPending();
const requireAll = !!process.env.CI || process.env.MEMFABRIC_CORPUS_ALL_QEMUS === '1';

let runnerP: Promise<any> | undefined;
const runner = () => (runnerP ??= importEsm(join(REPO, 'test', 'corpus', 'run-qemu.mjs')));

after(async () => { (await runner()).killAllQemus(); });

test('the corpus holds at least 40 configurations', () => {
  assert.ok(files.length >= 40, `${files.length} configurations`);
});

test('every configuration has a record for every QEMU version', async () => {
  const r = await runner();
  const missing: string[] = [];
  for (const f of files) {
    for (const { version } of r.QEMU_VERSIONS as { version: string }[]) {
      if (!existsSync(r.recordPath(join(CORPUS, f), version))) missing.push(`${version} ${f}`);
    }
  }
  assert.deepEqual(missing, [], 'record them with: node test/corpus/record.mjs --all FILE...');
});

test('every pending check names a configuration and a version', async () => {
  const r = await runner();
  const versions = new Set((r.QEMU_VERSIONS as { version: string }[]).map((q) => q.version));
  for (const key of pending.keys()) {
    const [version, name] = key.split(' ');
    assert.ok(versions.has(version), `${PENDING}: unknown version in '${key}'`);
    assert.ok(files.includes(name), `${PENDING}: no configuration '${name}'`);
  }
});

/** What `memfabric check` (judging for QEMU `q`) gets wrong about f; [] when it agrees. */
async function checkProblems(f: string, parsed: Parsed, expect: string[], recorded: Rec, q: Qemu): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-check-'));
  try {
    // Check in a directory holding the same files QEMU saw.
    copyFileSync(join(CORPUS, f), join(dir, f));
    for (const file of parsed.files) {
      const fd = openSync(join(dir, file.path), 'w');
      ftruncateSync(fd, file.size);
      closeSync(fd);
    }
    const r = await runCliAsync(['check', '--format', 'json', f], { MEMFABRIC_QEMU: q.bin }, { cwd: dir, timeoutMs: 60_000 });
    if (r.status !== 0 && r.status !== 1) return [`memfabric check exited ${r.status}: ${r.stderr}`];
    const out = JSON.parse(r.stdout);
    const diags: { code: string; severity: string; message: string }[] = out.files[0].diagnostics;
    const errors = diags.filter((d) => d.severity === 'error');
    const codes = new Set(diags.map((d) => d.code));
    const summary = diags.map((d) => `  ${d.severity} ${d.code}: ${d.message}`).join('\n') || '  (nothing)';
    const problems: string[] = [];
    if (!recorded.started) {
      if (errors.length === 0) problems.push(`QEMU ${q.version} refuses (${recorded.stderr.trim()}) but check found no error`);
      else if (r.status !== 1) problems.push(`errors but exit status ${r.status}`);
    }
    if (expect.length === 0) {
      if (diags.length) problems.push('clean configuration, but diagnostics');
      if (r.status !== 0) problems.push(`clean configuration, but exit status ${r.status}`);
    }
    const missing = expect.filter((c) => !codes.has(c));
    if (missing.length) problems.push(`expected ${missing.join(' ')}`);
    if (problems.length) problems.push(`check (MEMFABRIC_QEMU=${q.bin}) reported:\n${summary}`);
    return problems;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const f of files) {
  test(`corpus ${f}`, async (t) => {
    const r = await runner();
    const parsed: Parsed = r.parseCorpusFile(readFileSync(join(CORPUS, f), 'utf8'));
    const qemus: Qemu[] = r.corpusQemus();
    // Per version: its QEMU, then memfabric check judging for it; the versions
    // side by side (at most two QEMUs, two processes at once).
    const runs = await Promise.all(qemus.map(async (q) => {
      const recorded: Rec = JSON.parse(readFileSync(r.recordPath(join(CORPUS, f), q.version), 'utf8'));
      const expect: string[] = r.expectFor(parsed, q.version);
      // Without its binary a version's check still runs for 7.2 (as it always
      // did), not for the others (a profile could not be told which QEMU).
      const live: Rec | null = q.present ? await r.runQemu(parsed.argv, parsed.files, { bin: q.bin }) : null;
      const problems = q.present || q.version === '7.2' ? await checkProblems(f, parsed, expect, recorded, q) : null;
      return { recorded, expect, live, problems };
    }));
    for (const [i, q] of qemus.entries()) {
      const recFile = r.recordPath(join(CORPUS, f), q.version);
      const { recorded, live, problems } = runs[i];
      const absent = !q.present && `QEMU ${q.version} not installed (${q.bin}${q.actual ? ` is ${q.actual}` : ''})`;

      await t.test(`QEMU ${q.version}: record`, (tt) => {
        assert.equal(r.versionKey(recorded.qemu), q.version, `${recFile} was recorded under ${recorded.qemu}`);
        assert.deepEqual(r.verifyRecord(parsed, recorded, q.version), [], `${recFile} does not fit '# expect${parsed.expectAt[q.version] ? '@' + q.version : ''}:'`);
        if (!live) {
          if (requireAll) assert.fail(`${absent} (CI / MEMFABRIC_CORPUS_ALL_QEMUS=1: every QEMU must be there; scripts/setup.sh installs them)`);
          tt.skip(`${absent}: record not re-run`);
          return;
        }
        assert.equal(live.started, recorded.started, `QEMU ${q.version} now ${live.started ? 'starts' : 'refuses'}: ${live.stderr}`);
        assert.equal(live.exitCode, recorded.exitCode, live.stderr);
        assert.equal(live.signal, recorded.signal);
        assert.equal(live.stderr, recorded.stderr, `QEMU ${q.version}'s words changed`);
      });

      if (!problems) {
        await t.test(`QEMU ${q.version}: memfabric check`, { skip: absent || true }, () => {});
        continue;
      }
      const key = `${q.version} ${f}`;
      if (pending.has(key)) {
        if (problems.length === 0) {
          await t.test(`QEMU ${q.version}: memfabric check`, () => assert.fail(`agrees now: remove '${key}' from test/corpus/pending-checks.txt`));
        } else {
          await t.test(`QEMU ${q.version}: memfabric check`, { todo: pending.get(key) }, () => assert.fail(problems.join('\n')));
        }
      } else {
        await t.test(`QEMU ${q.version}: memfabric check`, () => assert.deepEqual(problems, []));
      }
    }
  });
}
