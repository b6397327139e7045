/**
 * Reader for QEMU command lines: a `*.qemu` file or a shell launch script
 * holding a qemu-system-* invocation. One file describes one node, named by
 * `-name` or else by the file's base name.
 */
import { Diagnostic } from '../diagnostics';
import { NodeInput } from '../model/build';
import { archOfBinary } from '../model/model';
import { parseShell, ShellCommand, ShellComment, ShellParse } from '../syntax/shell';
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

const WRAPPERS = new Set([
  'exec', 'sudo', 'nohup', 'env', 'command', 'time', 'nice', 'ionice', 'setsid', 'stdbuf', 'chrt', 'taskset', 'numactl', 'timeout', 'doas',
]);
/** Reserved words and the like that may come before a command's name. */
const LEADING = new Set(['if', 'then', 'else', 'elif', 'while', 'until', 'do', '!', '{', 'time']);

/**
 * Where the QEMU invocation of a command starts: the binary word, after
 * exec/sudo/taskset/numactl/… wrappers and their options (an option of one
 * letter may take the next word as its value: sudo -u vmuser, taskset -c 0-3,
 * numactl -N 0). missingBinary: the command starts with an unset $QEMU-like
 * variable, so the shell runs whatever the environment holds.
 */
function qemuWordIndex(cmd: ShellCommand, sh: ShellParse): { index: number; missingBinary: boolean } {
  const w = cmd.words;
  /** An unset $QEMU-like variable right before word k (it expanded to nothing). */
  const unsetQemuBefore = (k: number) => {
    if (!w[k]?.text.startsWith('-')) return false;
    const from = k === 0 ? cmd.span.start : w[k - 1].span().end;
    const to = w[k].span().start;
    return sh.unresolved.some((u) => /qemu/i.test(u.name) && u.span.start >= from && u.span.end <= to);
  };
  let i = 0;
  while (i < w.length && LEADING.has(w[i].text)) i++;
  let wrapped = false;
  for (; i < w.length; i++) {
    const t = w[i].text;
    if (isQemuBinary(t)) return { index: i, missingBinary: false };
    if (unsetQemuBefore(i)) return { index: i, missingBinary: true };
    const base = t.slice(t.lastIndexOf('/') + 1);
    if (WRAPPERS.has(base)) {
      wrapped = true;
      continue;
    }
    if (!wrapped) break;
    if (/^-[A-Za-z]$/.test(t) && i + 1 < w.length && !isQemuBinary(w[i + 1].text) && !unsetQemuBefore(i + 1)) {
      i++; // the option's value
      continue;
    }
    if (/^-/.test(t) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(t) || /^(0x)?[0-9a-fA-F,.:-]+[smhd]?$/.test(t)) continue;
    break;
  }
  return { index: -1, missingBinary: false };
}

/**
 * The words of the QEMU invocation in a parsed script: from the binary on
 * (binary undefined when an unset variable stands for it), or, in a file of
 * bare options, every command that starts with an option.
 */
export function findQemuInvocation(sh: ShellParse): { command: number; binary?: MStr; words: MStr[] } | undefined {
  const cmds = sh.commands;
  for (let i = 0; i < cmds.length; i++) {
    const q = qemuWordIndex(cmds[i], sh);
    if (q.index < 0) continue;
    const words = cmds[i].words.slice(q.index);
    return q.missingBinary ? { command: i, words } : { command: i, binary: words[0], words };
  }
  // A file of bare options ("-M q35 -m 1G ...") is a command line too.
  const words = cmds.filter((c) => c.words[0]?.text.startsWith('-')).flatMap((c) => c.words);
  return words.length ? { command: -1, words } : undefined;
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

  const inv = findQemuInvocation(sh);
  if (!inv) {
    diagnostics.push(
      makeDiagnostic(shellRule, {
        span: { start: 0, end: Math.min(text.length, text.indexOf('\n') < 0 ? text.length : text.indexOf('\n')) },
        message: 'no qemu-system-* invocation found in this file',
      }),
    );
    return { nodes: [], diagnostics };
  }
  const qi = inv.command;
  const words = inv.words;
  if (qi >= 0) diagnostics.push(...cutShort(text, sh, qi));

  for (const u of sh.unresolved) {
    const cmd = qi >= 0 ? sh.commands[qi].span : undefined;
    const used =
      words.some((w) => w.span().start <= u.span.start && u.span.end <= w.span().end) ||
      (words.length && u.span.start >= words[0].span().start && u.span.end <= words[words.length - 1].span().end) ||
      (cmd && cmd.start <= u.span.start && u.span.end <= cmd.end);
    if (!used) continue;
    const standsForBinary = qi >= 0 && !inv.binary && /qemu/i.test(u.name) && words.length > 0 && u.span.end <= words[0].span().start;
    const message = standsForBinary
      ? `$${u.name} is not set in this file: the QEMU binary comes from the environment; what follows is checked as a qemu-system-x86_64 command line`
      : /^[A-Za-z_]/.test(u.name)
      ? `$${u.name} is not set in this file; it is read as empty`
      : `$${u.name} is ${/^[0-9@*]$/.test(u.name) ? "one of the script's arguments" : 'a special parameter'}: unknown when checking, it is read as empty`;
    diagnostics.push(makeDiagnostic(unresolvedRule, { span: u.span, message }));
  }
  for (const c of sh.substitutions) {
    if (!words.some((w) => w.span().start <= c.start && c.end <= w.span().end)) continue;
    diagnostics.push(
      makeDiagnostic(unresolvedRule, {
        span: c,
        message: `${text.slice(c.start, c.end)} is a command substitution: it is not run when checking, so the checks read it as written`,
      }),
    );
  }

  const args = qemuArgsFromWords(words, diagnostics);
  const nameM = nodeNameFromArgs(args);
  const nameSpan: Span = nameM ? nameM.span() : (words[0]?.span() ?? { start: 0, end: 0 });
  return {
    nodes: [{ source: path, name: nameM?.text ?? baseName(path), nameSpan, kind: 'qemu', arch: archOfBinary(inv.binary?.text), baseDir, args }],
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

/**
 * Option lines after the QEMU command that the shell runs as commands of
 * their own: a comment inside the backslash-continued command, a comment that
 * swallowed the line's backslash, a missing backslash, or a backslash
 * followed by a space.
 */
function cutShort(text: string, sh: ShellParse, qi: number): Diagnostic[] {
  const cmds = sh.commands;
  const orphans: ShellCommand[] = [];
  for (let k = qi + 1; k < cmds.length && cmds[k].words[0]?.text.startsWith('-'); k++) orphans.push(cmds[k]);
  if (!orphans.length) return [];
  const lines = orphans.flatMap((o) => optionLines(text, o));
  const lost = lines.map((l) => text.slice(l.start, l.end));
  const lostText = `(${lost.slice(0, 3).join('; ')}${lost.length > 3 ? '; …' : ''})`;
  const related = lines.map((l) => ({ span: l, message: 'not passed to QEMU: run by the shell as a separate command' }));
  const tail = `then tries to run ${orphans.length === 1 ? 'those lines as a command' : `those lines as ${orphans.length} commands`} of their own.`;
  const qemuCmd = cmds[qi];
  const comment = sh.comments.find((c) => c.command === qemuCmd);
  if (comment && (comment.endsContinuedCommand || /\\\s*$/.test(text.slice(comment.span.start, comment.span.end)))) {
    // Every comment that cuts the chain: the first, and those ending an orphan that another orphan follows.
    const cutting = [comment, ...orphans.slice(0, -1).map((o) => sh.comments.find((c) => c.command === o)).filter((c): c is ShellComment => !!c)];
    const swallowed = !comment.endsContinuedCommand;
    return [
      makeDiagnostic(commentRule, {
        span: comment.span,
        message:
          (swallowed
            ? 'The backslash at the end of this comment is part of the comment, so it does not continue the QEMU command: '
            : 'This comment ends the backslash-continued QEMU command: ') +
          `the shell runs QEMU without any option after the comment ${lostText}, ${tail}`,
        related,
        fixes: [
          {
            title: cutting.length > 1 ? `Remove the ${cutting.length} comments that cut the command` : 'Remove the comment',
            edits: cutting.map((c) => removeComment(text, c)),
          },
        ],
      }),
    ];
  }
  // No backslash at the end of the command's last line (or one that quotes a space).
  const last = qemuCmd.words[qemuCmd.words.length - 1];
  const ls = last.span();
  const lineEnd = endOfLine(text, ls.end);
  const escapedSpace = /^\s+$/.test(last.text) && text[ls.start - 1] === '\\' && text.slice(ls.end, lineEnd).trim() === '';
  return [
    makeDiagnostic(shellRule, {
      span: escapedSpace ? { start: ls.start - 1, end: lineEnd } : ls,
      message:
        (escapedSpace
          ? 'This backslash quotes the space after it instead of the newline, so the QEMU command ends on this line (and gets a blank argument): '
          : 'The QEMU command ends on this line (no backslash at its end): ') + `the shell runs QEMU without the option lines after it ${lostText}, ${tail}`,
      related,
      fixes: [
        escapedSpace
          ? { title: 'Remove the space after the backslash', edits: [{ span: { start: ls.start, end: lineEnd }, newText: '' }] }
          : { title: 'Continue the command with a backslash', edits: [{ span: { start: ls.end, end: ls.end }, newText: ' \\' }] },
      ],
    }),
  ];
}

/** Each source line of a command's words: from the first to the last word on the line. */
function optionLines(text: string, cmd: ShellCommand): Span[] {
  const out: Span[] = [];
  for (const w of cmd.words) {
    const s = w.span();
    const prev = out[out.length - 1];
    if (prev && !text.slice(prev.end, s.start).includes('\n')) out[out.length - 1] = { start: prev.start, end: Math.max(prev.end, s.end) };
    else out.push(s);
  }
  return out;
}

function endOfLine(text: string, from: number): number {
  const j = text.indexOf('\n', from);
  const e = j < 0 ? text.length : j;
  return text[e - 1] === '\r' ? e - 1 : e;
}

/** Remove a comment line, or a comment after words (keeping the line continued). */
function removeComment(text: string, c: ShellComment): { span: Span; newText: string } {
  const lineStart = text.lastIndexOf('\n', c.span.start - 1) + 1;
  if (text.slice(lineStart, c.span.start).trim() === '') return { span: lineOf(text, c.span), newText: '' };
  let a = c.span.start;
  while (a > lineStart && (text[a - 1] === ' ' || text[a - 1] === '\t')) a--;
  return { span: { start: a, end: c.span.end }, newText: ' \\' };
}
