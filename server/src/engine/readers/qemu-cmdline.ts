/**
 * Reader for QEMU command lines: a `*.qemu` file or a shell launch script
 * holding a qemu-system-* invocation. One file describes one node, named by
 * `-name` or else by the file's base name.
 */
import { Diagnostic } from '../diagnostics';
import { NodeInput } from '../model/build';
import { parseShell, ShellCommand } from '../syntax/shell';
import { isQemuBinary, parseKeyvals, readQemuArgv } from '../syntax/qemu-args';
import { MStr, Span } from '../text/source';
import { makeDiagnostic } from '../rules/rule';
import { rule as commentRule } from '../rules/comment-in-continuation';
import { rule as shellRule } from '../rules/shell-syntax';
import { rule as unresolvedRule } from '../rules/unresolved-variable';
import { rule as unknownOption } from '../rules/unknown-option';

export interface ReadResult {
  nodes: NodeInput[];
  diagnostics: Diagnostic[];
}

const WRAPPERS = new Set(['exec', 'sudo', 'nohup', 'env', 'command', 'time', 'nice', 'ionice', 'setsid', 'stdbuf', 'chrt']);

/** Index of the QEMU binary word in a command, skipping exec/sudo/taskset/numactl wrappers. */
function qemuWordIndex(cmd: ShellCommand): number {
  for (let i = 0; i < cmd.words.length; i++) {
    const t = cmd.words[i].text;
    if (isQemuBinary(t)) return i;
    const base = t.slice(t.lastIndexOf('/') + 1);
    if (WRAPPERS.has(base) || base === 'taskset' || base === 'numactl' || /^-/.test(t) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(t) || /^[0-9,.-]+$/.test(t)) continue;
    return -1;
  }
  return -1;
}

export function baseName(path: string): string {
  const b = path.slice(path.lastIndexOf('/') + 1);
  return b.replace(/\.(qemu|sh|bash|cluster\.xml|xml)$/, '') || 'node';
}

/**
 * Read a QEMU command line held in `words` (binary first, or options only).
 * Shared by the libvirt reader for <qemu:commandline>.
 */
export function qemuArgsFromWords(words: MStr[], diagnostics: Diagnostic[]): NodeInput['args'] {
  const argv = readQemuArgv(words);
  for (const w of argv.unknown) {
    diagnostics.push(makeDiagnostic(unknownOption, { span: w.span(), message: `${w.text}: invalid option (QEMU 7.2 has no option '${w.text.replace(/^--?/, '-')}')` }));
  }
  for (const w of argv.missingValue) {
    diagnostics.push(makeDiagnostic(unknownOption, { span: w.span(), message: `${w.text}: requires an argument` }));
  }
  for (const w of argv.strays) {
    diagnostics.push(
      makeDiagnostic(unknownOption, {
        severity: 'warning',
        span: w.span(),
        message: `'${w.text}' is not an option: QEMU would take it as a disk image for -hda`,
      }),
    );
  }
  return argv.args.map((a) => ({ name: a.name === 'M' ? 'machine' : a.name, option: a.option, value: a.value }));
}

export function nodeNameFromArgs(args: NodeInput['args']): MStr | undefined {
  let name: MStr | undefined;
  for (const a of args) {
    if (a.name === 'name' && a.value) {
      const kv = parseKeyvals(a.value, 'guest').find((k) => k.key === 'guest');
      if (kv) name = kv.value;
    }
  }
  return name;
}

export function readQemuCommandLine(text: string, path: string, baseDir: string): ReadResult {
  const diagnostics: Diagnostic[] = [];
  const sh = parseShell(text);
  for (const p of sh.problems) diagnostics.push(makeDiagnostic(shellRule, { span: p.span, message: p.message }));

  const cmds = sh.commands;
  let qi = -1;
  let wi = -1;
  for (let i = 0; i < cmds.length; i++) {
    const w = qemuWordIndex(cmds[i]);
    if (w >= 0) {
      qi = i;
      wi = w;
      break;
    }
  }
  let words: MStr[];
  if (qi >= 0) words = cmds[qi].words.slice(wi);
  else {
    // A file of bare options ("-M q35 -m 1G ...") is a command line too.
    const opts = cmds.filter((c) => c.words[0]?.text.startsWith('-'));
    words = opts.flatMap((c) => c.words);
    if (!words.length) {
      diagnostics.push(
        makeDiagnostic(shellRule, {
          span: { start: 0, end: Math.min(text.length, text.indexOf('\n') < 0 ? text.length : text.indexOf('\n')) },
          message: 'no qemu-system-* invocation found in this file',
        }),
      );
      return { nodes: [], diagnostics };
    }
  }

  // A comment that cut the QEMU command short, with option lines following it.
  if (qi >= 0) {
    for (const c of sh.comments) {
      if (!c.endsContinuedCommand || c.command !== cmds[qi]) continue;
      const orphans: ShellCommand[] = [];
      for (let k = qi + 1; k < cmds.length && cmds[k].words[0]?.text.startsWith('-'); k++) orphans.push(cmds[k]);
      if (!orphans.length) continue;
      const lost = orphans.map((o) => o.words.map((w) => w.text).join(' '));
      diagnostics.push(
        makeDiagnostic(commentRule, {
          span: c.span,
          message:
            `This comment ends the backslash-continued QEMU command: the shell runs QEMU without any option after the comment ` +
            `(${lost.slice(0, 3).join('; ')}${lost.length > 3 ? '; …' : ''}), then tries to run ${orphans.length === 1 ? 'those lines as a command' : `those lines as ${orphans.length} commands`} of their own.`,
          related: orphans.map((o) => ({ span: o.span, message: 'not passed to QEMU: run by the shell as a separate command' })),
          fixes: [{ title: 'Remove the comment line', edits: [{ span: lineOf(text, c.span), newText: '' }] }],
        }),
      );
    }
  }

  for (const u of sh.unresolved) {
    const used = words.some((w) => w.span().start <= u.span.start && u.span.end <= w.span().end) || (words.length && u.span.start >= words[0].span().start && u.span.end <= words[words.length - 1].span().end);
    if (used) diagnostics.push(makeDiagnostic(unresolvedRule, { span: u.span, message: `$${u.name} is not set in this file; it is read as empty` }));
  }

  const args = qemuArgsFromWords(words, diagnostics);
  const nameM = nodeNameFromArgs(args);
  const nameSpan: Span = nameM ? nameM.span() : (words[0]?.span() ?? { start: 0, end: 0 });
  return {
    nodes: [{ source: path, name: nameM?.text ?? baseName(path), nameSpan, kind: 'qemu', baseDir, args }],
    diagnostics,
  };
}

/** The whole line holding span (with its newline), for "remove the line" fixes. */
function lineOf(text: string, s: Span): Span {
  const a = text.lastIndexOf('\n', s.start - 1) + 1;
  let b = text.indexOf('\n', s.end);
  b = b < 0 ? text.length : b + 1;
  return { start: a, end: b };
}
