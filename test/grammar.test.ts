/**
 * Editor support: the TextMate grammars (run with the real vscode-textmate
 * engine and the Oniguruma wasm VS Code uses), the language configurations,
 * the package.json contributions, and the snippets, each of which must check
 * clean with memfabric's own checker once its placeholders take their defaults.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vsctm from 'vscode-textmate';
import * as oniguruma from 'vscode-oniguruma';
import { analyzeDocument } from '../server/src/engine/index';
import { REPO } from './support/cli';

const QEMU = 'source.qemu-cmdline';
const TOPOLOGY = 'text.xml.memfabric-topology';
const GRAMMAR_FILES: Record<string, string> = {
  [QEMU]: 'syntaxes/qemu-cmdline.tmLanguage.json',
  [TOPOLOGY]: 'syntaxes/memfabric-topology.tmLanguage.json',
};

interface Tok {
  line: number;
  text: string;
  scopes: string[];
}

let registry: vsctm.Registry;
const grammars = new Map<string, vsctm.IGrammar>();

before(async () => {
  const wasm = readFileSync(join(REPO, 'node_modules', 'vscode-oniguruma', 'release', 'onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns: string[]) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s: string) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName: string) => {
      const f = GRAMMAR_FILES[scopeName];
      if (!f) return null;
      return vsctm.parseRawGrammar(readFileSync(join(REPO, f), 'utf8'), join(REPO, f));
    },
  });
  for (const scope of Object.keys(GRAMMAR_FILES)) {
    const g = await registry.loadGrammar(scope);
    assert.ok(g, `grammar ${scope} loads`);
    grammars.set(scope, g);
  }
});

function tokenize(scope: string, text: string): Tok[] {
  const g = grammars.get(scope)!;
  let stack = vsctm.INITIAL;
  const out: Tok[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const r = g.tokenizeLine(line, stack, 5000);
    assert.ok(!r.stoppedEarly, `line ${i + 1} tokenized in time`);
    stack = r.ruleStack;
    for (const t of r.tokens) out.push({ line: i + 1, text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes });
  });
  return out;
}

const show = (t: Tok) => `line ${t.line} ${JSON.stringify(t.text)}: ${t.scopes.join(' ')}`;

/** The `nth` token whose text is exactly `text` (optionally on `line`), asserting it exists. */
function tok(toks: Tok[], text: string, opts: { line?: number; nth?: number } = {}): Tok {
  const found = toks.filter((t) => t.text === text && (opts.line === undefined || t.line === opts.line));
  const t = found[opts.nth ?? 0];
  assert.ok(t, `no token ${JSON.stringify(text)}${opts.line ? ` on line ${opts.line}` : ''}; tokens there:\n${toks.filter((x) => opts.line === undefined || x.line === opts.line).slice(0, 60).map(show).join('\n')}`);
  return t;
}

/** Assert that some scope of `t` starts with each of `prefixes`. */
function hasScope(t: Tok, ...prefixes: string[]) {
  for (const p of prefixes) assert.ok(t.scopes.some((s) => s === p || s.startsWith(p + '.')), `expected ${p} on ${show(t)}`);
}

function lacksScope(t: Tok, prefix: string) {
  assert.ok(!t.scopes.some((s) => s === prefix || s.startsWith(prefix + '.')), `unexpected ${prefix} on ${show(t)}`);
}

function noInvalid(toks: Tok[]) {
  const bad = toks.filter((t) => t.scopes.some((s) => s.startsWith('invalid')));
  assert.deepEqual(bad.map(show), []);
}

describe('QEMU command-line grammar', () => {
  test('examples/tigon-launch.sh: binary, variables, options, drivers, properties, sizes, comments, continuations', () => {
    const toks = tokenize(QEMU, readFileSync(join(REPO, 'examples', 'tigon-launch.sh'), 'utf8'));
    noInvalid(toks);
    hasScope(tok(toks, '#!/bin/bash', { line: 1 }), 'comment.line.number-sign');
    // QEMU=/usr/local/bin/qemu-system-x86_64
    hasScope(tok(toks, 'QEMU', { line: 3 }), 'variable.other.assignment.qemu-cmdline');
    hasScope(tok(toks, 'qemu-system-x86_64', { line: 3 }), 'entity.name.function');
    // # Create DAX device in QEMU
    const comment = toks.filter((t) => t.line === 5);
    assert.ok(comment.length > 0);
    for (const t of comment) hasScope(t, 'comment.line.number-sign.qemu-cmdline');
    // $QEMU \
    hasScope(tok(toks, '$', { line: 6 }), 'variable.other', 'punctuation.definition.variable');
    hasScope(tok(toks, 'QEMU', { line: 6 }), 'variable.other');
    hasScope(tok(toks, '\\', { line: 6 }), 'punctuation.separator.continuation');
    //     --enable-kvm \      (no value: the continuation is not taken for one)
    hasScope(tok(toks, '--', { line: 7 }), 'keyword.other.option', 'punctuation.definition.option');
    hasScope(tok(toks, 'enable-kvm', { line: 7 }), 'keyword.other.option');
    hasScope(tok(toks, '\\', { line: 7 }), 'punctuation.separator.continuation');
    //     -M q35,cxl=on \
    hasScope(tok(toks, 'M', { line: 8 }), 'keyword.other.option');
    hasScope(tok(toks, 'q35', { line: 8 }), 'entity.name.type');
    hasScope(tok(toks, 'cxl', { line: 8 }), 'variable.parameter');
    hasScope(tok(toks, '=', { line: 8 }), 'punctuation.separator.key-value');
    hasScope(tok(toks, 'on', { line: 8 }), 'constant.language');
    //     -m 16G,maxmem=128G,slots=8 \
    hasScope(tok(toks, '16G', { line: 9 }), 'constant.numeric');
    hasScope(tok(toks, 'maxmem', { line: 9 }), 'variable.parameter');
    hasScope(tok(toks, '128G', { line: 9 }), 'constant.numeric');
    hasScope(tok(toks, '8', { line: 9 }), 'constant.numeric');
    //     \   and   # CXL Root Port   (the comment that cuts the command: still a comment)
    hasScope(tok(toks, '\\', { line: 11 }), 'punctuation.separator.continuation');
    hasScope(tok(toks, ' CXL Root Port', { line: 12 }), 'comment.line.number-sign');
    //     -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \
    hasScope(tok(toks, 'device', { line: 13 }), 'keyword.other.option');
    hasScope(tok(toks, 'pxb-cxl', { line: 13 }), 'entity.name.type');
    hasScope(tok(toks, 'bus_nr', { line: 13 }), 'variable.parameter');
    hasScope(tok(toks, '12', { line: 13 }), 'constant.numeric');
    hasScope(tok(toks, 'pcie.0', { line: 13 }), 'string.unquoted');
    hasScope(tok(toks, ',', { line: 13 }), 'punctuation.separator');
    //     -object memory-backend-file,id=cxl-mem1,share=on,mem-path=/dev/dax0.0,size=64G,align=2M \
    hasScope(tok(toks, 'memory-backend-file', { line: 17 }), 'entity.name.type');
    hasScope(tok(toks, 'share', { line: 17 }), 'variable.parameter');
    hasScope(tok(toks, 'mem-path', { line: 17 }), 'variable.parameter');
    hasScope(tok(toks, '/dev/dax0.0', { line: 17 }), 'string.unquoted');
    hasScope(tok(toks, '64G', { line: 17 }), 'constant.numeric.size');
    hasScope(tok(toks, '2M', { line: 17 }), 'constant.numeric.size');
    //     -device cxl-type3,…,sn=0x1 \
    hasScope(tok(toks, 'cxl-type3', { line: 18 }), 'entity.name.type');
    hasScope(tok(toks, '0x1', { line: 18 }), 'constant.numeric.hex');
    //     -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=64G \   (first item is a property, not a type)
    hasScope(tok(toks, 'cxl-fmw.0.targets.0', { line: 21 }), 'variable.parameter');
    lacksScope(tok(toks, 'cxl-fmw.0.targets.0', { line: 21 }), 'entity.name.type');
    hasScope(tok(toks, 'cxl-fmw.0.size', { line: 21 }), 'variable.parameter');
    hasScope(tok(toks, '64G', { line: 21 }), 'constant.numeric');
    hasScope(tok(toks, 'nographic', { line: 24 }), 'keyword.other.option');
  });

  test('the FAME stanza (test/corpus/qemu/005): ivshmem-plain is the driver, share= a key, 32G a size', () => {
    const toks = tokenize(QEMU, readFileSync(join(REPO, 'test', 'corpus', 'qemu', '005-q35-fame-ivshmem-32g.qemu'), 'utf8'));
    noInvalid(toks);
    hasScope(tok(toks, '# what: FAME stanza: pre-allocated 32 GiB shared file behind ivshmem-plain on q35 with 2 GiB RAM'.slice(1)), 'comment.line.number-sign');
    hasScope(tok(toks, 'qemu-system-x86_64'), 'entity.name.function');
    const iv = tok(toks, 'ivshmem-plain');
    hasScope(iv, 'entity.name.type.driver.qemu-cmdline', 'meta.option.qemu-cmdline');
    const share = tok(toks, 'share');
    hasScope(share, 'variable.parameter.property.qemu-cmdline');
    const eq = toks[toks.indexOf(share) + 1];
    assert.equal(eq.text, '=');
    hasScope(eq, 'punctuation.separator.key-value');
    hasScope(tok(toks, '32G'), 'constant.numeric.size.qemu-cmdline');
    hasScope(tok(toks, 'memdev'), 'variable.parameter');
  });

  test('quotes, ,, escapes, $VAR and ${VAR}, hex sizes, flags, -append, trailing blanks after a backslash', () => {
    const src = [
      'FAM=${FAM_DIR:-/srv}/fam.raw',
      'exec qemu-system-aarch64 -M virt -nographic -m 0x40000000 \\',
      '  -object "memory-backend-file,id=fam,mem-path=$FAM,size=32G,share=on" \\',
      "  -object memory-backend-file,id=f2,mem-path=/srv/a,,b.raw,size=1T,share \\",
      '  -device ivshmem-plain,memdev=${ID},bus=pcie.0 -append "console=ttyAMA0 $EXTRA" \\ ',
      '  -smp 4',
    ].join('\n');
    const toks = tokenize(QEMU, src);
    hasScope(tok(toks, 'FAM', { line: 1 }), 'variable.other.assignment');
    hasScope(tok(toks, '${', { line: 1 }), 'variable.other', 'punctuation.definition.variable');
    hasScope(tok(toks, 'FAM_DIR', { line: 1 }), 'variable.other');
    hasScope(tok(toks, 'qemu-system-aarch64', { line: 2 }), 'entity.name.function');
    hasScope(tok(toks, 'virt', { line: 2 }), 'entity.name.type');
    hasScope(tok(toks, 'nographic', { line: 2 }), 'keyword.other.option');
    hasScope(tok(toks, '0x40000000', { line: 2 }), 'constant.numeric');
    // A whole value in double quotes keeps its structure, and $FAM is expanded inside.
    hasScope(tok(toks, '"', { line: 3 }), 'string.quoted.double', 'punctuation.definition.string.begin');
    hasScope(tok(toks, 'memory-backend-file', { line: 3 }), 'string.quoted.double', 'entity.name.type');
    hasScope(tok(toks, 'mem-path', { line: 3 }), 'variable.parameter');
    hasScope(tok(toks, 'FAM', { line: 3 }), 'variable.other');
    hasScope(tok(toks, '32G', { line: 3 }), 'constant.numeric');
    // ,, is an escaped comma inside the value, not a property separator.
    hasScope(tok(toks, ',,', { line: 4 }), 'constant.character.escape');
    hasScope(tok(toks, 'b.raw', { line: 4 }), 'meta.property', 'string.unquoted');
    hasScope(tok(toks, 'size', { line: 4 }), 'variable.parameter');
    hasScope(tok(toks, '1T', { line: 4 }), 'constant.numeric');
    hasScope(tok(toks, 'share', { line: 4 }), 'variable.parameter');
    hasScope(tok(toks, 'ID', { line: 5 }), 'variable.other');
    hasScope(tok(toks, 'append', { line: 5 }), 'keyword.other.option');
    hasScope(tok(toks, 'console=ttyAMA0 ', { line: 5 }), 'string.quoted.double');
    hasScope(tok(toks, 'EXTRA', { line: 5 }), 'variable.other');
    // "\ " at the end of a line does not continue the command: marked.
    hasScope(tok(toks, ' ', { line: 5, nth: toks.filter((t) => t.line === 5 && t.text === ' ').length - 1 }), 'invalid.illegal.trailing-whitespace');
    hasScope(tok(toks, '4', { line: 6 }), 'constant.numeric');
  });

  test('every option of the 80+ recorded QEMU configurations is scoped as an option, with no invalid token', () => {
    const dir = join(REPO, 'test', 'corpus', 'qemu');
    const files = readdirSync(dir).filter((f) => f.endsWith('.qemu'));
    assert.ok(files.length >= 80);
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      const toks = tokenize(QEMU, text);
      noInvalid(toks);
      const lines = text.split('\n');
      lines.forEach((line, i) => {
        if (/^\s*#/.test(line)) return;
        for (const m of line.matchAll(/(?<=^|\s)--?([A-Za-z][\w.-]*)/g)) {
          const t = toks.find((x) => x.line === i + 1 && x.text === m[1]);
          assert.ok(t, `${f}:${i + 1}: token ${m[1]}`);
          hasScope(t, 'keyword.other.option');
        }
      });
    }
  });
});

describe('topology grammar', () => {
  test('examples/fame-4node.cluster.xml: elements, attributes, sizes, {n:02}, comment', () => {
    const toks = tokenize(TOPOLOGY, readFileSync(join(REPO, 'examples', 'fame-4node.cluster.xml'), 'utf8'));
    noInvalid(toks);
    hasScope(tok(toks, 'xml', { line: 1 }), 'meta.tag.preprocessor');
    for (const t of toks.filter((x) => x.line >= 2 && x.line <= 8)) hasScope(t, 'comment.block');
    for (const name of ['cluster', 'fabric', 'node', 'attach']) hasScope(tok(toks, name), 'entity.name.tag.localname.memfabric-topology');
    for (const attr of ['name', 'id', 'size', 'path', 'count', 'machine', 'memory', 'cpus']) hasScope(tok(toks, attr), 'entity.other.attribute-name');
    hasScope(tok(toks, 'fabric', { line: 12 }), 'entity.other.attribute-name');
    const size = tok(toks, '32G', { line: 10 });
    hasScope(size, 'constant.numeric.size.memfabric-topology', 'string.quoted.double');
    hasScope(tok(toks, '1G', { line: 11 }), 'constant.numeric');
    hasScope(tok(toks, '4', { line: 11 }), 'constant.numeric');
    // name="node{n:02}": the prefix is plain text, the pattern is a placeholder.
    const node = tok(toks, 'node', { line: 11, nth: 1 });
    hasScope(node, 'string.quoted.double');
    lacksScope(node, 'constant');
    const open = toks[toks.indexOf(node) + 1];
    assert.deepEqual(toks.slice(toks.indexOf(node) + 1, toks.indexOf(node) + 6).map((t) => t.text), ['{', 'n', ':', '02', '}']);
    hasScope(open, 'constant.other.placeholder', 'punctuation.definition.placeholder.begin');
    for (const t of toks.slice(toks.indexOf(node) + 1, toks.indexOf(node) + 6)) hasScope(t, 'constant.other.placeholder.node-number.memfabric-topology');
    // Plain ids stay strings: "fam", "fam.raw".
    lacksScope(tok(toks, 'fam.raw'), 'constant');
  });

  test('CXL examples: every topology element name and CXL attribute is highlighted; ids with digits are not numbers', () => {
    const seen = new Set<string>();
    for (const f of readdirSync(join(REPO, 'examples')).filter((x) => x.endsWith('.cluster.xml'))) {
      const toks = tokenize(TOPOLOGY, readFileSync(join(REPO, 'examples', f), 'utf8'));
      noInvalid(toks);
      for (const t of toks) if (t.scopes.includes('entity.name.tag.localname.memfabric-topology')) seen.add(t.text);
      if (f === 'tigon-cxl-dax.cluster.xml') {
        for (const a of ['bus-nr', 'port', 'chassis', 'slot', 'align', 'sn', 'targets', 'maxmem', 'slots']) hasScope(tok(toks, a), 'entity.other.attribute-name.localname.memfabric-topology');
        hasScope(tok(toks, '64G'), 'constant.numeric.size');
        hasScope(tok(toks, '2M'), 'constant.numeric.size');
        hasScope(tok(toks, '0x1'), 'constant.numeric.hex');
        lacksScope(tok(toks, 'cxl.1'), 'constant');
        lacksScope(tok(toks, '/dev/dax0.0'), 'constant');
      }
      if (f === 'cxl-interleave.cluster.xml') {
        hasScope(tok(toks, 'granularity'), 'entity.other.attribute-name');
        hasScope(tok(toks, '8k'), 'constant.numeric.size');
        lacksScope(tok(toks, 'cxl.1 cxl.2'), 'constant');
      }
    }
    for (const el of ['cluster', 'fabric', 'node', 'template', 'attach', 'cxl', 'host-bridge', 'root-port', 'switch', 'downstream', 'type3', 'window']) assert.ok(seen.has(el), `element ${el} highlighted in examples/`);
  });

  test('<qemu> content is the QEMU grammar, embedded, and </qemu> ends it; other elements and {i} patterns', () => {
    const src = [
      '<cluster name="c">',
      '  <template id="t" memory="2G">',
      '    <numa><cell id="0" size="2G" cpus="0" path="/dev/dax{i}.0" align="2M"/></numa>',
      '    <backend id="b" size="256M"/><spm start="0x100000000" size="1G"/><hostdev id="gpu0" host="0009:01:00.0"/>',
      '    <egm id="e" path="/dev/egm4" size="64G" pci-dev="gpu0" numa-node="0"/><guest image="builtin"/>',
      '    <qemu>-device cxl-type3,memdev=b,id=x # note</qemu>',
      '    <qemu>',
      '      -object memory-backend-file,id=m{n},mem-path=/srv/m,,{n}.raw,size=256M \\',
      '        -device pc-dimm,memdev=m{n}</qemu><append>memmap=4G</append>',
      '  </template>',
      '  <node name="n{n}" count="2" template="t" unknown-attr="1"><other:el/></node>',
      '</cluster>',
    ].join('\n');
    const toks = tokenize(TOPOLOGY, src);
    noInvalid(toks);
    for (const el of ['template', 'numa', 'cell', 'backend', 'spm', 'hostdev', 'egm', 'guest', 'qemu', 'append']) hasScope(tok(toks, el), 'entity.name.tag.localname.memfabric-topology');
    for (const a of ['pci-dev', 'numa-node', 'start', 'host', 'image', 'template']) hasScope(tok(toks, a, { line: a === 'template' ? 11 : undefined }), 'entity.other.attribute-name.localname.memfabric-topology');
    hasScope(tok(toks, 'unknown-attr'), 'entity.other.attribute-name.localname.xml');
    lacksScope(tok(toks, 'unknown-attr'), 'entity.other.attribute-name.localname.memfabric-topology');
    hasScope(tok(toks, 'el'), 'entity.name.tag.localname.xml');
    hasScope(tok(toks, 'i', { line: 3 }), 'constant.other.placeholder');
    hasScope(tok(toks, '0x100000000'), 'constant.numeric.hex');
    // One-line <qemu>: option, driver, property, comment, and the closing tag back in XML.
    hasScope(tok(toks, 'device', { line: 6 }), 'meta.embedded.block.qemu-cmdline', 'source.qemu-cmdline', 'keyword.other.option.qemu-cmdline');
    hasScope(tok(toks, 'cxl-type3', { line: 6 }), 'source.qemu-cmdline', 'entity.name.type');
    hasScope(tok(toks, 'memdev', { line: 6 }), 'variable.parameter');
    hasScope(tok(toks, ' note', { line: 6 }), 'comment.line.number-sign');
    const close = tok(toks, '</', { line: 6 });
    hasScope(close, 'punctuation.definition.tag');
    lacksScope(close, 'source.qemu-cmdline');
    lacksScope(tok(toks, 'qemu', { line: 6, nth: 1 }), 'source.qemu-cmdline');
    // Multi-line <qemu>: continuation, ,, escape, size.
    hasScope(tok(toks, 'object', { line: 8 }), 'keyword.other.option');
    hasScope(tok(toks, ',,', { line: 8 }), 'constant.character.escape');
    hasScope(tok(toks, '256M', { line: 8 }), 'constant.numeric.size.qemu-cmdline');
    hasScope(tok(toks, '\\', { line: 8 }), 'punctuation.separator.continuation');
    hasScope(tok(toks, 'pc-dimm', { line: 9 }), 'entity.name.type');
    const m = tok(toks, 'm{n}', { line: 9 });
    hasScope(m, 'source.qemu-cmdline');
    lacksScope(tok(toks, 'qemu', { line: 9 }), 'source.qemu-cmdline');
    hasScope(tok(toks, 'append', { line: 9 }), 'entity.name.tag.localname.memfabric-topology');
    hasScope(tok(toks, 'memmap', { line: 9 }), 'variable.parameter');
    // After the embedded block, the XML grammar is back in charge.
    hasScope(tok(toks, 'template', { line: 10 }), 'entity.name.tag.localname.memfabric-topology');
    hasScope(tok(toks, 'n', { line: 11, nth: 1 }), 'constant.other.placeholder');
  });
});

// ---------------------------------------------------------------------------
// Snippets

interface SnippetNode {
  kind: 'text' | 'tabstop' | 'variable';
  text?: string;
  index?: number;
  name?: string;
  children?: SnippetNode[];
  choices?: string[];
}

/** Parse VS Code snippet syntax: $1, ${1}, ${1:default} (nested), ${1|a,b|}, $NAME, ${NAME:default}, and \$ \} \\ escapes. */
function parseSnippet(src: string): SnippetNode[] {
  let i = 0;
  function parseUntil(closers: string): SnippetNode[] {
    const out: SnippetNode[] = [];
    let text = '';
    const flush = () => {
      if (text) out.push({ kind: 'text', text });
      text = '';
    };
    while (i < src.length) {
      const c = src[i];
      if (c === '\\' && i + 1 < src.length && '$}\\'.includes(src[i + 1])) {
        text += src[i + 1];
        i += 2;
        continue;
      }
      if (closers.includes(c)) break;
      if (c === '$') {
        const rest = src.slice(i + 1);
        let m: RegExpExecArray | null;
        if ((m = /^(\d+)/.exec(rest))) {
          flush();
          out.push({ kind: 'tabstop', index: Number(m[1]) });
          i += 1 + m[1].length;
          continue;
        }
        if ((m = /^([A-Za-z_]\w*)/.exec(rest))) {
          flush();
          out.push({ kind: 'variable', name: m[1] });
          i += 1 + m[1].length;
          continue;
        }
        if ((m = /^\{(\d+)\}/.exec(rest))) {
          flush();
          out.push({ kind: 'tabstop', index: Number(m[1]) });
          i += 1 + m[0].length;
          continue;
        }
        if ((m = /^\{(\d+)\|((?:[^|\\]|\\.)*)\|\}/.exec(rest))) {
          flush();
          const choices = m[2].split(/(?<!\\),/).map((x) => x.replace(/\\(.)/g, '$1'));
          out.push({ kind: 'tabstop', index: Number(m[1]), choices });
          i += 1 + m[0].length;
          continue;
        }
        if ((m = /^\{(\d+):/.exec(rest))) {
          flush();
          i += 1 + m[0].length;
          const children = parseUntil('}');
          assert.equal(src[i], '}', `unclosed placeholder \${${m[1]}: in ${JSON.stringify(src)}`);
          i++;
          out.push({ kind: 'tabstop', index: Number(m[1]), children });
          continue;
        }
        if ((m = /^\{([A-Za-z_]\w*)(:?)/.exec(rest))) {
          flush();
          i += 1 + m[0].length;
          const children = m[2] ? parseUntil('}') : [];
          assert.equal(src[i], '}', `unclosed variable \${${m[1]} in ${JSON.stringify(src)}`);
          i++;
          out.push({ kind: 'variable', name: m[1], children });
          continue;
        }
      }
      text += c;
      i++;
    }
    flush();
    return out;
  }
  const nodes = parseUntil('');
  assert.equal(i, src.length, `snippet parsed to the end: ${JSON.stringify(src)}`);
  return nodes;
}

/** The text a snippet inserts when every placeholder keeps its default (first choice; mirrors copy it; $0 and unknown variables empty). */
function expandSnippet(body: string | string[]): string {
  const nodes = parseSnippet(Array.isArray(body) ? body.join('\n') : body);
  const defaults = new Map<number, SnippetNode[] | string>();
  const collect = (ns: SnippetNode[]) => {
    for (const n of ns) {
      if (n.kind !== 'tabstop') {
        if (n.children) collect(n.children);
        continue;
      }
      if (!defaults.has(n.index!) && (n.children || n.choices)) defaults.set(n.index!, n.choices ? n.choices[0] : n.children!);
      if (n.children) collect(n.children);
    }
  };
  collect(nodes);
  const render = (ns: SnippetNode[], depth = 0): string =>
    ns
      .map((n) => {
        assert.ok(depth < 20, 'placeholder cycle');
        if (n.kind === 'text') return n.text!;
        if (n.kind === 'variable') return render(n.children ?? [], depth + 1);
        const d = defaults.get(n.index!);
        return d === undefined ? '' : typeof d === 'string' ? d : render(d, depth + 1);
      })
      .join('');
  return render(nodes);
}

test('the snippet expander follows VS Code snippet syntax', () => {
  assert.equal(expandSnippet('a=${1:x},b=$1,c=${2|p,q|},d=${3:${1}-${4:y}},e=$2$0'), 'a=x,b=x,c=p,d=x-y,e=p');
  assert.equal(expandSnippet(['${1:a\\}b}', '\\$HOME ${TM_SELECTED_TEXT:sel}$UNKNOWN {n:02}']), 'a}b\n$HOME sel {n:02}');
  assert.equal(expandSnippet('${1|a\\,b,c|}'), 'a,b');
});

interface SnippetDef {
  prefix: string | string[];
  body: string | string[];
  description?: string;
}
function loadSnippets(file: string): Record<string, SnippetDef> {
  return JSON.parse(readFileSync(join(REPO, 'snippets', file), 'utf8'));
}

/** A fragment checked inside the smallest document it belongs in. */
const cluster = (inner: string) => `<cluster name="snippet-test">\n${inner}\n</cluster>\n`;
const node = (inner: string, attrs = 'memory="1G"') => cluster(`<node name="n" ${attrs}>\n${inner}\n</node>`);
const cmdline = (inner: string) => `qemu-system-x86_64 -M q35 -m 1G \\\n${inner}\n`;
const CXL_HB = '<host-bridge id="cxl.1"><root-port id="rp0" chassis="0" slot="2"><type3 id="mem0" size="256M" path="m.raw" lsa-size="256M" lsa-path="l.raw"/></root-port></host-bridge>';
const CXL_CMDLINE = [
  'qemu-system-x86_64 -M q35,cxl=on -m 1G,maxmem=4G,slots=4 \\',
  '  -object memory-backend-file,id=cxl-mem1,share=on,mem-path=cxltest.raw,size=256M \\',
  '  -object memory-backend-file,id=cxl-lsa1,share=on,mem-path=lsa.raw,size=256M \\',
  '  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \\',
  '  -device cxl-rp,port=0,bus=cxl.1,id=root_port13,chassis=0,slot=2 \\',
  '  -device cxl-type3,bus=root_port13,memdev=cxl-mem1,lsa=cxl-lsa1,id=cxl-pmem0 \\',
].join('\n');
const domain = (inner: string, devices = '') =>
  [
    "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>",
    '  <name>snippet-test</name>',
    "  <memory unit='GiB'>1</memory>",
    '  <vcpu>1</vcpu>',
    "  <os><type arch='x86_64' machine='q35'>hvm</type></os>",
    `  <devices>${devices}</devices>`,
    inner,
    '</domain>',
  ].join('\n');

type Wrap = { wrap: (s: string) => string; kind: 'topology' | 'qemu' | 'libvirt'; source: string; grammar?: string };
const TOPO = (wrap: (s: string) => string): Wrap => ({ wrap, kind: 'topology', source: '/work/x/snippet.cluster.xml', grammar: TOPOLOGY });
const CMD = (wrap: (s: string) => string): Wrap => ({ wrap, kind: 'qemu', source: '/work/x/snippet.qemu', grammar: QEMU });
const VIRT = (wrap: (s: string) => string): Wrap => ({ wrap, kind: 'libvirt', source: '/work/x/snippet.xml' });

/** Where each snippet goes. A snippet without an entry fails the test, so new snippets get checked too. */
const CONTEXTS: Record<string, Record<string, Wrap>> = {
  'topology.code-snippets': {
    'FAME cluster': TOPO((s) => s),
    'Fabric region and the nodes attaching it': TOPO(cluster),
    'Attach a fabric': TOPO((s) => cluster(`<fabric id="fam" size="1G" path="fam.raw"/>\n<node name="n">\n${s}\n</node>`)),
    Node: TOPO(cluster),
    'NUMA cells': TOPO((s) => node(s, 'memory="1G" cpus="2"')),
    'CXL topology': TOPO((s) => node(s)),
    'CXL host bridge with root port and Type 3': TOPO((s) => node(`<cxl>\n${s}\n</cxl>`)),
    'CXL fixed memory window': TOPO((s) => node(`<cxl>\n${CXL_HB}\n${s}\n</cxl>`)),
    // numa-node must name a NUMA cell of the node (the snippet's description says so).
    'NVIDIA Grace EGM device with its GPU': TOPO((s) => node(`<numa><cell id="0" size="1G" cpus="0"/></numa>\n${s}`)),
    'Raw QEMU options': TOPO((s) => node(s)),
  },
  'qemu.code-snippets': {
    'FAME ivshmem stanza': CMD(cmdline),
    'FAME node command line': CMD((s) => s + '\n'),
    'CXL reference topology': CMD((s) => s + '\n'),
    'CXL fixed memory window': CMD((s) => `${CXL_CMDLINE}\n  ${s}\n`),
  },
  'libvirt.code-snippets': {
    'FAME <qemu:commandline>': VIRT((s) => domain(s)),
    'FAME domain': VIRT((s) => s + '\n'),
    'ivshmem <shmem> device': VIRT((s) => domain('', s)),
  },
};

describe('snippets', () => {
  for (const [file, contexts] of Object.entries(CONTEXTS)) {
    const snippets = loadSnippets(file);
    test(`${file}: every snippet has a known context`, () => {
      assert.deepEqual(Object.keys(snippets).sort(), Object.keys(contexts).sort());
      for (const [name, s] of Object.entries(snippets)) {
        assert.ok(s.prefix && s.body && s.description, `${name}: prefix, body and description`);
        for (const p of [s.prefix].flat()) assert.match(p, /^[\w-]+$/, `${name}: prefix ${p} is one word`);
      }
    });
    for (const [name, ctx] of Object.entries(contexts)) {
      test(`snippet "${name}" (${file}) checks clean with its defaults`, () => {
        const s = snippets[name];
        assert.ok(s, `snippet ${name} exists`);
        const text = ctx.wrap(expandSnippet(s.body));
        assert.doesNotMatch(text, /\$\{?\d|\$\{/, `placeholders left in:\n${text}`);
        const r = analyzeDocument(text, ctx.source);
        assert.equal(r.kind, ctx.kind, text);
        assert.ok(r.nodes.length >= 1, `at least one node in:\n${text}`);
        assert.deepEqual(
          r.diagnostics.map((d) => `${d.severity} [${d.code}] ${text.slice(d.span.start, d.span.end)}: ${d.message}`),
          [],
          `diagnostics for:\n${text}`,
        );
        if (ctx.grammar) noInvalid(tokenize(ctx.grammar, text));
      });
    }
  }

  test('the FAME snippets carry the stanza: share=on, ivshmem-plain, bus=pcie.0; the libvirt one names the qemu namespace', () => {
    const q = expandSnippet(loadSnippets('qemu.code-snippets')['FAME ivshmem stanza'].body);
    assert.match(q, /^-object memory-backend-file,id=fam,mem-path=fam\.raw,size=32G,share=on \\\n-device ivshmem-plain,memdev=fam,bus=pcie\.0$/);
    const lv = loadSnippets('libvirt.code-snippets')['FAME <qemu:commandline>'];
    assert.match(lv.description!, /xmlns:qemu='http:\/\/libvirt\.org\/schemas\/domain\/qemu\/1\.0'/);
    assert.match(expandSnippet(lv.body), /ivshmem-plain,memdev=fam,bus=pcie\.0/);
    // Without the namespace on <domain>, the same block is an error: the snippet's description is not decoration.
    const bare = domain(expandSnippet(lv.body)).replace(/ xmlns:qemu='[^']*'/, '');
    assert.ok(analyzeDocument(bare, '/work/x/snippet.xml').diagnostics.some((d) => d.code === 'libvirt-qemu-namespace'));
    // The CXL reference snippet is corpus configuration 017 (recorded clean under real QEMU 7.2), placeholders at their defaults.
    const cxl = expandSnippet(loadSnippets('qemu.code-snippets')['CXL reference topology'].body);
    const words = (t: string) => t.split('\n').filter((l) => !l.startsWith('#')).join(' ').replace(/\\\s/g, ' ').split(/\s+/).filter(Boolean);
    assert.deepEqual(words(cxl), words(readFileSync(join(REPO, 'test', 'corpus', 'qemu', '017-q35-cxl-reference.qemu'), 'utf8')));
  });
});

// ---------------------------------------------------------------------------
// package.json contributions and language configurations

test('package.json contributes the grammars, language configurations and snippets that exist', () => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const c = pkg.contributes;
  const langs = new Map<string, { configuration?: string; extensions?: string[]; filenamePatterns?: string[] }>(c.languages.map((l: { id: string }) => [l.id, l]));
  assert.deepEqual(langs.get('qemu-cmdline')?.extensions, ['.qemu']);
  assert.ok(langs.get('memfabric-topology')?.filenamePatterns?.includes('*.cluster.xml'));
  for (const id of ['qemu-cmdline', 'memfabric-topology']) {
    const conf = langs.get(id)!.configuration!;
    assert.ok(conf && existsSync(join(REPO, conf)), `${id}: configuration ${conf}`);
    const j = JSON.parse(readFileSync(join(REPO, conf), 'utf8'));
    const word = new RegExp(j.wordPattern, 'g');
    for (const w of ['ivshmem-plain', 'cxl.1', 'node{n:02}', 'cxl-fmw.0.size']) assert.ok([...w.matchAll(word)].some((m) => m[0] === w), `${id}: "${w}" is one word`);
    for (const r of j.onEnterRules ?? []) new RegExp(r.beforeText);
    assert.ok(j.comments && j.brackets && j.autoClosingPairs);
  }
  assert.equal(JSON.parse(readFileSync(join(REPO, langs.get('qemu-cmdline')!.configuration!), 'utf8')).comments.lineComment, '#');
  assert.deepEqual(JSON.parse(readFileSync(join(REPO, langs.get('memfabric-topology')!.configuration!), 'utf8')).comments.blockComment, ['<!--', '-->']);
  for (const g of c.grammars) {
    assert.ok(langs.has(g.language), g.language);
    const file = JSON.parse(readFileSync(join(REPO, g.path), 'utf8'));
    assert.equal(file.scopeName, g.scopeName);
    assert.equal(GRAMMAR_FILES[g.scopeName], g.path.replace(/^\.\//, ''));
  }
  const topo = c.grammars.find((g: { language: string }) => g.language === 'memfabric-topology');
  assert.equal(topo.embeddedLanguages['meta.embedded.block.qemu-cmdline'], 'qemu-cmdline');
  const snippetFiles = new Set<string>();
  for (const s of c.snippets) {
    assert.ok(existsSync(join(REPO, s.path)), s.path);
    snippetFiles.add(s.path.replace(/^\.\/snippets\//, ''));
  }
  assert.deepEqual([...snippetFiles].sort(), Object.keys(CONTEXTS).sort());
});
