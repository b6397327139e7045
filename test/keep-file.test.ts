/**
 * keepFile (runtime/keep-file.ts): the cache and memo files of the image
 * builder, the QEMU profile and version line, and the probe are written whole
 * or not at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keepFile } from '../server/src/runtime/keep-file';

test('keepFile makes the directory, replaces the file whole, keeps private files private, and fails without leaving a temporary file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-keep-'));
  try {
    const file = join(dir, 'a', 'b', 'entry.json');
    assert.equal(keepFile(file, '{"v":1}'), true);
    assert.equal(readFileSync(file, 'utf8'), '{"v":1}');
    assert.equal(keepFile(file, '{"v":2}'), true);
    assert.equal(readFileSync(file, 'utf8'), '{"v":2}');
    assert.deepEqual(readdirSync(join(dir, 'a', 'b')), ['entry.json'], 'no temporary file left');

    const priv = join(dir, 'private', 'entry.json');
    assert.equal(keepFile(priv, 'x', { private: true }), true);
    assert.equal(statSync(priv).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'private')).mode & 0o777, 0o700);

    // where the file is a directory, the rename fails: false, the directory as it was, no temporary file
    writeFileSync(join(dir, 'plain'), '');
    assert.equal(keepFile(join(dir, 'plain', 'under.json'), 'x'), false, 'a file where its directory goes');
    assert.equal(keepFile(join(dir, 'a'), 'x'), false, 'a directory where the file goes');
    assert.deepEqual(readdirSync(join(dir, 'a')), ['b']);
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temporary file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
