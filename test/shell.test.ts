/**
 * The shell reader (parseShell) and the QEMU command-line reader against
 * bash itself: each script is run by the real bash with the QEMU binary
 * replaced by a stub that records the argv bash hands it, and the argv our
 * reader extracts has to be the same. The stub is a probe of bash, not a
 * model of QEMU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, runCli } from './support/cli';
import { parseShell } from '../server/src/engine/syntax/shell';
import { findQemuInvocation, readQemuCommandLine } from '../server/src/engine/readers/qemu-cmdline';
import { analyzeDocument } from '../server/src/engine/index';
import { OPTIONS_WITH_ARG, OPTIONS_WITHOUT_ARG } from '../server/src/engine/syntax/qemu-args';
import { LineMap } from '../server/src/engine/text/source';

const TIGON = join(__dirname, '..', '..', 'examples', 'tigon-launch.sh');

const hasBash = spawnSync('bash', ['-c', 'true']).status === 0;
const noBash = hasBash ? false : 'bash not found: the reader is NOT compared with bash';
if (!hasBash) console.log(`# SKIP ${noBash}`);

/**
 * Run `script` with bash. $QEMU is made a read-only variable holding the stub
 * (so the script's own QEMU=… assignment cannot replace it), and stubs named
 * qemu-system-x86_64, sudo and taskset come first on PATH. Each stub call
 * appends "<argc>\0<argv0>\0<arg1>\0…" to a file; returns one argv per call.
 */
function bashArgvs(script: string): { argvs: string[][]; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-bash-'));
  try {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const out = join(dir, 'argv');
    const stub = join(bin, 'qemu-system-x86_64');
    const sh = (path: string, body: string) => {
      writeFileSync(path, `#!/bin/sh\n${body}\n`);
      chmodSync(path, 0o755);
    };
    sh(stub, `printf '%s\\0' "$(($# + 1))" "$0" "$@" >> "$MEMFABRIC_ARGV"`);
    sh(join(bin, 'sudo'), 'while [ "${1#-}" != "$1" ]; do shift; done; exec "$@"');
    sh(join(bin, 'taskset'), '[ "$1" = -c ] && shift; shift; exec "$@"');
    const file = join(dir, 'script.sh');
    writeFileSync(file, script);
    const r = spawnSync('bash', ['-c', 'readonly QEMU="$1"; __script=$2; set --; . "$__script"', 'probe', stub, file], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, MEMFABRIC_ARGV: out },
      timeout: 10000,
    });
    const argvs: string[][] = [];
    if (existsSync(out)) {
      const f = readFileSync(out, 'utf8').split('\0');
      for (let k = 0; k + 1 < f.length; ) {
        const argc = Number(f[k]);
        argvs.push(f.slice(k + 1, k + 1 + argc));
        k += 1 + argc;
      }
    }
    return { argvs, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The QEMU argv (without the binary) our reader takes from a script. */
function ourArgv(text: string): string[] {
  const inv = findQemuInvocation(parseShell(text));
  assert.ok(inv, 'no QEMU invocation found');
  return inv.words.slice(inv.binary ? 1 : 0).map((w) => w.text);
}

/** The options of the node model, flattened back into words. */
function modelArgv(text: string, path = 'node.sh'): string[] {
  const r = readQemuCommandLine(text, path, '.');
  return r.nodes[0].args.flatMap((a) => (a.value ? [a.option.text, a.value.text] : [a.option.text]));
}

/** Assert that bash passes QEMU exactly the argv our reader extracts. */
function sameAsBash(text: string): string[] {
  const { argvs, stderr } = bashArgvs(text);
  assert.equal(argvs.length, 1, `bash ran the stub ${argvs.length} times\n${stderr}`);
  const bash = argvs[0].slice(1);
  assert.deepEqual(ourArgv(text), bash, `bash stderr:\n${stderr}`);
  return bash;
}

const words = (text: string) => parseShell(text).commands.map((c) => c.words.map((w) => w.text));
/** The source text each character of a word came from, joined. */
const origin = (text: string, w: { span(a?: number, b?: number): { start: number; end: number } }, a: number, b: number) => {
  const s = w.span(a, b);
  return text.slice(s.start, s.end);
};

// ---------------------------------------------------------------- the Tigon script

const GUIDE = '/work/shared/seeds/tigon-dax-guide.txt';
test('fixture: Option 1 of the Tigon DAX guide, verbatim', { skip: existsSync(GUIDE) ? false : `${GUIDE} not found` }, () => {
  const guide = readFileSync(GUIDE, 'utf8');
  const text = readFileSync(TIGON, 'utf8');
  assert.ok(guide.includes('### Option 1') && guide.includes(text.trimEnd()), 'the fixture is the script of Option 1');
});

test('Tigon script: bash passes QEMU only the options before the first comment', { skip: noBash }, () => {
  const text = readFileSync(TIGON, 'utf8');
  const { argvs, stderr } = bashArgvs(text);
  assert.equal(argvs.length, 1);
  const bash = argvs[0].slice(1);
  assert.deepEqual(bash, ['--enable-kvm', '-M', 'q35,cxl=on', '-m', '16G,maxmem=128G,slots=8', '-smp', '4']);
  assert.deepEqual(ourArgv(text), bash);
  assert.deepEqual(modelArgv(text), bash);
  // …and bash then runs the option lines as commands.
  for (const cmd of ['-device', '-object', '-M', '-nographic']) assert.match(stderr, new RegExp(`${cmd}: command not found`));
});

test('Tigon script: memfabric check reports comment-in-continuation at the first comment', () => {
  const text = readFileSync(TIGON, 'utf8');
  const r = runCli(['check', '--format', 'json', TIGON]);
  assert.equal(r.status, 1, r.stderr);
  const diags: { code: string; severity: string; message: string; range: any; related?: { range: any; message: string }[]; fixes?: any[] }[] =
    JSON.parse(r.stdout).files[0].diagnostics;
  const d = diags.filter((x) => x.code === 'comment-in-continuation');
  assert.equal(d.length, 1, JSON.stringify(diags, null, 1));
  assert.equal(d[0].severity, 'error');
  const lines = text.split('\n');
  const first = lines.findIndex((l) => l.trim() === '# CXL Root Port');
  assert.deepEqual(d[0].range, { start: { line: first, character: 4 }, end: { line: first, character: lines[first].length } });
  // Related information: every option line the shell runs on its own, nothing else.
  const optionLines = lines.map((l, k) => [l, k] as const).filter(([l, k]) => k > first && /^\s*-/.test(l));
  assert.equal(optionLines.length, 6);
  assert.deepEqual(
    d[0].related!.map((x) => x.range),
    optionLines.map(([l, k]) => ({ start: { line: k, character: l.indexOf('-') }, end: { line: k, character: l.replace(/\s*\\$/, '').length } })),
  );
  assert.match(d[0].message, /-device pxb-cxl,bus_nr=12,bus=pcie\.0,id=cxl\.1/);
  // The fix removes every comment line that cuts the command; bash then passes everything.
  const edits: { range: any; newText: string }[] = d[0].fixes![0].edits;
  assert.equal(edits.length, 4);
  const map = new LineMap(text);
  let fixed = text;
  for (const e of [...edits].sort((a, b) => map.offset(b.range.start) - map.offset(a.range.start))) {
    fixed = fixed.slice(0, map.offset(e.range.start)) + e.newText + fixed.slice(map.offset(e.range.end));
  }
  assert.doesNotMatch(fixed, /^\s*# (CXL|Other)/m);
  const all = ourArgv(fixed);
  assert.equal(all.length, 18);
  assert.deepEqual(all.slice(-3), ['-M', 'cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=64G', '-nographic']);
  if (hasBash) assert.deepEqual(sameAsBash(fixed), all);
});

test('Tigon script: the model holds only the options before the comment', () => {
  const text = readFileSync(TIGON, 'utf8');
  const doc = analyzeDocument(text, TIGON);
  assert.equal(doc.nodes.length, 1);
  const node = doc.nodes[0];
  assert.deepEqual(
    node.args.map((a) => [a.name, a.value?.text]),
    [
      ['enable-kvm', undefined],
      ['machine', 'q35,cxl=on'],
      ['m', '16G,maxmem=128G,slots=8'],
      ['smp', '4'],
    ],
  );
  assert.equal(node.machine.type?.text, 'q35');
  assert.equal(node.memory.size?.parsed.ok && node.memory.size.parsed.value, 16n << 30n);
  assert.equal(node.devices.length, 0);
  assert.equal(node.objects.length, 0);
  assert.equal(node.fmws.length, 0);
});

// ---------------------------------------------------------------- bash decides

/** Scripts whose QEMU argv bash and the reader must agree on. */
const SCRIPTS: Record<string, string> = {
  variables: `#!/bin/bash
# node a of the cluster
MEM=4G
SMP_OPTS="-smp 2,sockets=1 -nodefaults"
NAME=node-a
BACKEND="memory-backend-file,id=m0,share=on,mem-path=/dev/shm/\${NAME},size=\${MEM}"
export LOG=/tmp/$NAME.log
OPTS=$SMP_OPTS            # no field splitting in an assignment
$QEMU -M q35 -m $MEM $OPTS \\
  -object "$BACKEND" \\
  -device ivshmem-plain,memdev=m0,bus=pcie.0 \\
  -name "$NAME",debug-threads=on 2>&1 | tee log
`,
  quotes: `#!/bin/sh
\${QEMU} -M 'q35' \\
   -append "console=ttyS0 memmap=\\"1G\\$4G\\" root=/dev/vda quiet" \\
   -name 'it'\\''s a "vm"' \\
   -object memory-backend-ram,id=m1,size=1G\\,x=y \\
   -device "ivshmem-plain,memdev=m1"'',bus=pcie.0 \\
   -fw_cfg name=opt/x,string="a  b"'#c' \\
   -smp "" -k ''
`,
  'unset and positional': `#!/bin/bash
EXTRA=
exec $QEMU -M q35 $EXTRA $UNSET \${UNSET} -m 1G "$@" $@ -smp 1 "\${EMPTY_ARRAY[@]}"
`,
  'defaults and arrays': `#!/bin/bash
: \${MEM:=2G}
args=(-M q35 -m "$MEM")
args+=(-object "memory-backend-ram,id=r,size=\${SIZE:-1G}")
args+=(-device pc-dimm,memdev=r)   # comment inside an array line
\${QEMU:-qemu-system-x86_64} "\${args[@]}" \${EXTRA:+-S} \${MEM:+-name "has mem"} -smp \${#args[@]}
`,
  wrappers: `#!/bin/bash
cat > /dev/null <<EOF
-m 1G this is not QEMU \\\\
EOF
cat <<-'END' >/dev/null
	$QEMU -m 9G
	END
sudo -E taskset -c 0-3 qemu-system-x86_64 -M q35 \\
  -m 1G   -smp 2 \\
  -name n1 &> out
`,
  'if then': `#!/bin/bash
if [ -e /dev/null ]; then
  exec $QEMU -M pc -m 512M -nodefaults > qemu.out 2>&1
fi
`,
  'joined continuation': `$QEMU -name vm\\
1 -m 1\\
G -append $'a\\tb\\x41' -M "q35"\\
,cxl=on
`,
  'prefix assignment': `#!/bin/bash
M=1G
M=8G true
A=1 B=$A
$QEMU -m $M -name $A$B
`,
};

for (const [name, text] of Object.entries(SCRIPTS)) {
  test(`bash and the reader agree: ${name}`, { skip: noBash }, () => {
    const argv = sameAsBash(text);
    assert.ok(argv.length > 2);
  });
}

test('the bash probe is not vacuous: what bash passed', { skip: noBash }, () => {
  assert.deepEqual(bashArgvs(SCRIPTS.variables).argvs[0].slice(1), [
    '-M', 'q35', '-m', '4G', '-smp', '2,sockets=1', '-nodefaults',
    '-object', 'memory-backend-file,id=m0,share=on,mem-path=/dev/shm/node-a,size=4G',
    '-device', 'ivshmem-plain,memdev=m0,bus=pcie.0', '-name', 'node-a,debug-threads=on',
  ]);
  assert.deepEqual(bashArgvs(SCRIPTS.quotes).argvs[0].slice(1), [
    '-M', 'q35', '-append', 'console=ttyS0 memmap="1G$4G" root=/dev/vda quiet', '-name', `it's a "vm"`,
    '-object', 'memory-backend-ram,id=m1,size=1G,x=y', '-device', 'ivshmem-plain,memdev=m1,bus=pcie.0',
    '-fw_cfg', 'name=opt/x,string=a  b#c', '-smp', '', '-k', '',
  ]);
  assert.deepEqual(bashArgvs(SCRIPTS['unset and positional']).argvs[0].slice(1), ['-M', 'q35', '-m', '1G', '-smp', '1']);
  assert.deepEqual(bashArgvs(SCRIPTS['defaults and arrays']).argvs[0].slice(1), [
    '-M', 'q35', '-m', '2G', '-object', 'memory-backend-ram,id=r,size=1G', '-device', 'pc-dimm,memdev=r', '-name', 'has mem', '-smp', '8',
  ]);
  assert.deepEqual(bashArgvs(SCRIPTS['joined continuation']).argvs[0].slice(1), ['-name', 'vm1', '-m', '1G', '-append', 'a\tbA', '-M', 'q35,cxl=on']);
  assert.deepEqual(bashArgvs(SCRIPTS['prefix assignment']).argvs[0].slice(1), ['-m', '1G', '-name', '11']);
});

test('a backslash at the end of a here-document line hides the delimiter (bash agrees)', { skip: noBash }, () => {
  const text = `cat >/dev/null <<EOF\nnot QEMU \\\nEOF\n$QEMU -m 1G\n`;
  assert.equal(bashArgvs(text).argvs.length, 0, 'bash reads the rest of the script as the here-document');
  assert.equal(findQemuInvocation(parseShell(text)), undefined);
  const quoted = `cat >/dev/null <<'EOF'\nnot QEMU \\\nEOF\n$QEMU -m 1G\n`;
  assert.deepEqual(sameAsBash(quoted), ['-m', '1G']);
});

// ---------------------------------------------------------------- comments and cut commands

test('comments: at the end of a line, as a line inside a continued command', () => {
  const sh = parseShell('qemu-system-x86_64 -m 1G # memory\necho "# not a comment" a#b\n');
  assert.equal(sh.comments.length, 1);
  assert.equal(sh.comments[0].endsContinuedCommand, false);
  assert.deepEqual(sh.commands.map((c) => c.words.map((w) => w.text)), [['qemu-system-x86_64', '-m', '1G'], ['echo', '# not a comment', 'a#b']]);
  const cut = parseShell('qemu-system-x86_64 -M q35 \\\n  # machine\n  -m 1G\n');
  assert.equal(cut.comments[0].endsContinuedCommand, true);
  assert.equal(cut.comments[0].command, cut.commands[0]);
  assert.deepEqual(cut.commands.map((c) => c.words.map((w) => w.text)), [['qemu-system-x86_64', '-M', 'q35'], ['-m', '1G']]);
});

/** Diagnostics of one code for a script, with the text they point at. */
function diagnosticsOf(text: string, code: string) {
  return analyzeDocument(text, 'node.sh')
    .diagnostics.filter((d) => d.code === code)
    .map((d) => ({ ...d, at: text.slice(d.span.start, d.span.end) }));
}

/** Apply a diagnostic's first fix. */
function applyFix(text: string, d: { fixes?: { edits: { span: { start: number; end: number }; newText: string }[] }[] }): string {
  const edits = [...d.fixes![0].edits].sort((a, b) => b.span.start - a.span.start);
  for (const e of edits) text = text.slice(0, e.span.start) + e.newText + text.slice(e.span.end);
  return text;
}

const CUT: Record<string, { text: string; code: string; at: string }> = {
  'comment after words, in a continued command': {
    text: `$QEMU -M q35 \\\n  -m 1G   # memory\n  -smp 2 \\\n  -nodefaults\n`,
    code: 'comment-in-continuation',
    at: '# memory',
  },
  'comment that swallowed the backslash': {
    text: `$QEMU -M q35 -m 1G # memory \\\n  -smp 2\n`,
    code: 'comment-in-continuation',
    at: '# memory \\',
  },
  'missing backslash': {
    text: `$QEMU -M q35 \\\n  -m 1G\n  -smp 2 \\\n  -nodefaults\n`,
    code: 'shell-syntax',
    at: '1G',
  },
  'backslash followed by a space': {
    text: `$QEMU -M q35 \\\n  -m 1G \\ \n  -smp 2\n`,
    code: 'shell-syntax',
    at: '\\ ',
  },
};

for (const [name, c] of Object.entries(CUT)) {
  test(`cut short: ${name}`, () => {
    const ds = diagnosticsOf(c.text, c.code);
    assert.equal(ds.length, 1, JSON.stringify(analyzeDocument(c.text, 'node.sh').diagnostics));
    assert.equal(ds[0].at, c.at);
    assert.equal(ds[0].severity, 'error');
    assert.ok(ds[0].related!.length >= 1);
    for (const r of ds[0].related!) assert.match(c.text.slice(r.span.start, r.span.end), /^-/);
    // The fix makes one command of it: bash passes every option.
    const fixed = applyFix(c.text, ds[0]);
    assert.deepEqual(diagnosticsOf(fixed, c.code), []);
    const all = c.text.match(/(?<=\s)-[a-zA-Z]+|\b(?:q35|1G|2)\b/g)!;
    assert.deepEqual(ourArgv(fixed), all);
    if (hasBash) {
      assert.deepEqual(sameAsBash(fixed), all);
      // And before the fix bash agrees with the reader on what QEMU gets.
      const before = bashArgvs(c.text).argvs[0].slice(1);
      assert.deepEqual(ourArgv(c.text), before);
      assert.ok(before.length < all.length);
    }
  });
}

// ---------------------------------------------------------------- CR LF

test('CR LF: the reader continues the lines but reports that bash does not', () => {
  const lf = `QEMU=qemu-system-x86_64\n$QEMU -M q35 \\\n  -m 1G \\\n  -smp 2\n`;
  const crlf = lf.replace(/\n/g, '\r\n');
  assert.deepEqual(ourArgv(crlf), ourArgv(lf));
  assert.deepEqual(ourArgv(lf), ['-M', 'q35', '-m', '1G', '-smp', '2']);
  const ds = diagnosticsOf(crlf, 'shell-syntax');
  assert.equal(ds.length, 1);
  assert.equal(ds[0].at, '\\');
  assert.equal(ds[0].span.start, crlf.indexOf('\\\r\n'));
  assert.match(ds[0].message, /CR LF/);
  assert.deepEqual(diagnosticsOf(lf, 'shell-syntax'), []);
  // Word positions still point at the CR LF text.
  const m = findQemuInvocation(parseShell(crlf))!.words.find((w) => w.text === '1G')!;
  assert.equal(crlf.slice(m.span().start, m.span().end), '1G');
});

test('CR LF: what bash really does with a backslash before CR LF', { skip: noBash }, () => {
  const crlf = `$QEMU -M q35 \\\r\n  -m 1G\r\n`;
  const { argvs } = bashArgvs(crlf);
  assert.deepEqual(argvs[0].slice(1), ['-M', 'q35', '\r']);
});

// ---------------------------------------------------------------- command substitution

test('$(...) and backquotes: kept as written, reported, and they do not derail the words', { skip: noBash }, () => {
  const text = `$QEMU -m 1G -name "$(echo 'x)#y')" -smp $(echo 2) -k \`echo de\` # trailing\n`;
  const ours = ourArgv(text);
  const bash = sameAsBashLength(text);
  assert.deepEqual(ours, ['-m', '1G', '-name', `$(echo 'x)#y')`, '-smp', '$(echo 2)', '-k', '`echo de`']);
  assert.deepEqual(bash, ['-m', '1G', '-name', 'x)#y', '-smp', '2', '-k', 'de']);
  const infos = diagnosticsOf(text, 'unresolved-variable');
  assert.deepEqual(infos.map((d) => d.at), ['$QEMU', `$(echo 'x)#y')`, '$(echo 2)', '`echo de`']);
  assert.match(infos[0].message, /binary comes from the environment/);
  assert.match(infos[1].message, /command substitution/);
});

function sameAsBashLength(text: string): string[] {
  const { argvs } = bashArgvs(text);
  assert.equal(argvs.length, 1);
  assert.equal(argvs[0].length - 1, ourArgv(text).length);
  return argvs[0].slice(1);
}

// ---------------------------------------------------------------- words and where they came from

test('quoting: every character of a word maps to the source character it came from', () => {
  const text = `X=1\nqemu-system-x86_64 a'b c'"d\\"e$X"f\\ g\n`;
  const w = parseShell(text).commands[0].words[1];
  assert.equal(w.text, 'ab cd"e1f g');
  assert.equal(origin(text, w, 0, 1), 'a');
  assert.equal(origin(text, w, 1, 4), 'b c');
  assert.equal(origin(text, w, 5, 6), '"'); // the quote that \" produced
  assert.equal(text[w.span(5, 6).start - 1], '\\');
  assert.equal(origin(text, w, 7, 8), '1'); // from X's assignment
  assert.equal(w.span(7, 8).start, 2);
  assert.equal(origin(text, w, 9, 10), ' ');
});

test('variables: $V, ${V}, word splitting, no splitting in assignments or quotes', () => {
  assert.deepEqual(words('A="-m 1G"\nB=$A\nq $A "$A" ${A}x $B\n'), [['q', '-m', '1G', '-m 1G', '-m', '1Gx', '-m', '1G']]);
  assert.deepEqual(words('A=" a  b "\nq x$A\n'), [['q', 'x', 'a', 'b']]);
  assert.deepEqual(words('export QEMU=/usr/bin/qemu-system-x86_64 X=1\n$QEMU -m $X\n'), [['export', 'QEMU=/usr/bin/qemu-system-x86_64', 'X=1'], ['/usr/bin/qemu-system-x86_64', '-m', '1']]);
  const sh = parseShell('q $NOPE "$NOPE" x${NOPE}y\n');
  assert.deepEqual(sh.commands[0].words.map((w) => w.text), ['q', '', 'xy']);
  assert.deepEqual(sh.unresolved.map((u) => u.name), ['NOPE', 'NOPE', 'NOPE']);
});

test('redirections, pipes and separators are not words', () => {
  assert.deepEqual(words('q -m 1G 2>&1 | tee log; echo done > out && true\n'), [['q', '-m', '1G'], ['tee', 'log'], ['echo', 'done'], ['true']]);
  assert.deepEqual(words('q -a 2 >x -b 2>>y -c <z -d &>w -e >| v\n'), [['q', '-a', '2', '-b', '-c', '-d', '-e']]);
  assert.deepEqual(words('q -a <<< "here string" -b\n'), [['q', '-a', '-b']]);
});

test('wrappers: exec, sudo, taskset, numactl, if/then in front of the binary', () => {
  for (const prefix of ['exec ', 'sudo ', 'sudo -E ', 'sudo -u vm ', 'taskset -c 0-3 ', 'taskset 0x3 ', 'numactl -N 0 -m 0 ', 'numactl --membind=1 ', 'nice -n 5 ', 'timeout 60s ', 'if ! ', 'then ', 'env A=1 ', 'exec sudo taskset -c 1,3 ']) {
    for (const bin of ['qemu-system-x86_64', '/opt/q/bin/qemu-system-x86_64', '$QEMU']) {
      const text = `${prefix}${bin} -M q35 -m 1G\n`;
      const inv = findQemuInvocation(parseShell(text));
      assert.ok(inv && inv.command === 0, text);
      assert.deepEqual(inv.words.slice(inv.binary ? 1 : 0).map((w) => w.text), ['-M', 'q35', '-m', '1G'], text);
      assert.equal(inv.binary?.text, bin === '$QEMU' ? undefined : bin, text);
    }
  }
  assert.equal(findQemuInvocation(parseShell('echo qemu-system-x86_64 -m 1G\n')), undefined);
});

test('diagnostic ranges: size=1GB inside "…", in a variable, in an array', () => {
  const cases: Record<string, string> = {
    'double quotes': `qemu-system-x86_64 -M q35 -object "memory-backend-ram,id=m,size=1GB"\n`,
    'single quotes, joined': `qemu-system-x86_64 -M q35 -object 'memory-backend-ram,id=m,'"size=1GB"\n`,
    'variable holding the size': `SIZE=1GB\nqemu-system-x86_64 -M q35 -object memory-backend-ram,id=m,size=$SIZE\n`,
    'variable holding the option': `BACKEND="memory-backend-ram,id=m,size=1GB"\nQEMU=qemu-system-x86_64\n$QEMU -M q35 -object $BACKEND\n`,
    'array element': `args=(-M q35)\nargs+=(-object "memory-backend-ram,id=m,size=1GB")\nqemu-system-x86_64 "\${args[@]}"\n`,
    'default value': `qemu-system-x86_64 -M q35 -object memory-backend-ram,id=m,size=\${SIZE:-1GB}\n`,
  };
  for (const [name, text] of Object.entries(cases)) {
    const ds = diagnosticsOf(text, 'size-syntax');
    assert.equal(ds.length, 1, `${name}: ${JSON.stringify(analyzeDocument(text, 'node.sh').diagnostics)}`);
    assert.equal(ds[0].at, '1GB', name);
    assert.equal(ds[0].span.start, text.indexOf('1GB'), name);
    // The fix edits those characters and nothing else.
    assert.equal(applyFix(text, ds[0]), text.replace('1GB', '1G'), name);
  }
});

test('diagnostic ranges: a word from a variable used twice points at the assignment', () => {
  const text = `ID=m0\nqemu-system-x86_64 -M q35 -object memory-backend-ram,id=$ID,size=1G -object memory-backend-ram,id=$ID,size=1G\n`;
  const ds = analyzeDocument(text, 'node.sh').diagnostics.filter((d) => d.severity === 'error');
  assert.ok(ds.length >= 1, JSON.stringify(ds));
  for (const d of ds) assert.equal(text.slice(d.span.start, d.span.end), 'm0', d.message);
});

test('2000 mutated scripts: the reader never throws and every range stays inside the text', () => {
  const seeds = [...Object.values(SCRIPTS), ...Object.values(CUT).map((c) => c.text), readFileSync(TIGON, 'utf8')];
  const alphabet = ['\\', '\n', '\r\n', "'", '"', '$', '${', '$(', ')', '(', '}', '#', ' ', '<<', 'EOF\n', '>', '&', '|', ';', '`', '=', 'A', '-m', '1G', '[@]', ':-'];
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let k = 0; k < 2000; k++) {
    let t = seeds[k % seeds.length];
    for (let e = 1 + rnd(4); e > 0; e--) {
      const at = rnd(t.length + 1);
      const op = rnd(3);
      if (op === 0) t = t.slice(0, at) + alphabet[rnd(alphabet.length)] + t.slice(at);
      else if (op === 1) t = t.slice(0, at) + t.slice(at + 1 + rnd(3));
      else t = t.slice(0, at) + t.slice(rnd(t.length), rnd(t.length)) + t.slice(at);
    }
    const inside = (s: { start: number; end: number }, what: string) =>
      assert.ok(s.start >= 0 && s.start <= s.end && s.end <= t.length, `${what} ${JSON.stringify(s)} outside ${JSON.stringify(t)}`);
    const sh = parseShell(t);
    for (const c of sh.commands) for (const w of c.words) inside(w.span(), 'word');
    const doc = analyzeDocument(t, 'mutant.sh');
    for (const d of doc.diagnostics) {
      inside(d.span, d.code);
      for (const r of d.related ?? []) inside(r.span, `${d.code} related`);
      for (const f of d.fixes ?? []) for (const e of f.edits) inside(e.span, `${d.code} fix`);
    }
  }
});

// ---------------------------------------------------------------- QEMU decides which options take a value

const hasQemuBinary = spawnSync('qemu-system-x86_64', ['--version']).status === 0;

test('the reader knows which options take a value, as qemu-system-x86_64 7.2 does', { skip: hasQemuBinary ? false : 'qemu-system-x86_64 not found: the option table is NOT compared with QEMU', timeout: 60000 }, async () => {
  const help = spawnSync('qemu-system-x86_64', ['-help'], { encoding: 'utf8' }).stdout;
  const listed = [...help.matchAll(/^(-[-a-z0-9_]+)(?:\/(-[a-z0-9_]+))?/gm)].flatMap((m) => [m[1], m[2]]).filter(Boolean).map((s) => s.replace(/^--?/, ''));
  const names = [...new Set([...OPTIONS_WITH_ARG, ...OPTIONS_WITHOUT_ARG, ...listed, 'hdb', 'hdd', 'fdb', 'curses', 'sdl', 'no-kvm', 'tb-size', 'soundhw', 'watchdog', 'realtime'])].sort();
  assert.ok(listed.length > 80, `-help lists ${listed.length} options`);
  // "-NAME" as the last word: QEMU's first pass over argv says "requires an argument" or
  // "invalid option"; any other option is taken, and the bogus machine stops QEMU before it starts.
  const kind = (name: string) =>
    new Promise<string>((resolve) => {
      const p = spawn('qemu-system-x86_64', ['-M', 'no-such-machine', '-display', 'none', `-${name}`], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
      const timer = setTimeout(() => p.kill('SIGKILL'), 10000);
      p.on('close', () => {
        clearTimeout(timer);
        resolve(/requires an argument/.test(err) ? 'value' : /invalid option/.test(err) ? 'unknown' : 'flag');
      });
    });
  const qemu = new Map<string, string>();
  for (let k = 0; k < names.length; k += 8) {
    const batch = names.slice(k, k + 8);
    (await Promise.all(batch.map(kind))).forEach((v, j) => qemu.set(batch[j], v));
  }
  const wrong: string[] = [];
  for (const name of names) {
    const ours = OPTIONS_WITH_ARG.has(name) ? 'value' : OPTIONS_WITHOUT_ARG.has(name) ? 'flag' : 'unknown';
    if (ours !== qemu.get(name)) wrong.push(`-${name}: QEMU ${qemu.get(name)}, ours ${ours}`);
  }
  assert.deepEqual(wrong, []);
});

test('options after a flag are read as options (-async-teardown takes no value in 7.2)', () => {
  assert.deepEqual(modelArgv('qemu-system-x86_64 -async-teardown -m 1G -seed 7 -M q35\n'), ['-async-teardown', '-m', '1G', '-seed', '7', '-M', 'q35']);
  const ds = analyzeDocument('qemu-system-x86_64 -async-teardown -m 1G -dfilter 0x0..0xff -M q35\n', 'node.sh').diagnostics;
  assert.deepEqual(ds.filter((d) => d.code === 'unknown-option'), []);
});
