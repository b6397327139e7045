/**
 * A tolerant reader for the part of POSIX shell that launch scripts use:
 * words, quoting, backslash-newline continuations, comments, simple variable
 * assignments and their expansion, command separators, redirections and
 * here-documents. It never throws; every word keeps, per character, the span
 * of the source it came from (through quotes and variable expansion).
 */
import { MStr, Span } from '../text/source';

export interface ShellCommand {
  words: MStr[];
  /** Span from the first to the last character of the command. */
  span: Span;
}

export interface ShellComment {
  span: Span;
  /**
   * The comment sits inside a command that a backslash continued onto this
   * line: the shell ends the command at the comment's newline.
   */
  endsContinuedCommand: boolean;
  /** The command the comment cut short, if any. */
  command?: ShellCommand;
}

export interface ShellParse {
  commands: ShellCommand[];
  comments: ShellComment[];
  /** Variables used but never assigned in the script (name and span of the use). */
  unresolved: { name: string; span: Span }[];
  problems: { span: Span; message: string }[];
}

const OPERATOR_CHARS = ';&|()';

export function parseShell(text: string, baseOffset = 0): ShellParse {
  const commands: ShellCommand[] = [];
  const comments: ShellComment[] = [];
  const unresolved: { name: string; span: Span }[] = [];
  const problems: { span: Span; message: string }[] = [];
  const vars = new Map<string, MStr>();
  const pendingHeredocs: { delim: string; strip: boolean }[] = [];

  let words: MStr[] = [];
  let parts: MStr[] | null = null; // current word under construction
  let wordStart = 0;
  let continued = false; // current command was continued onto this line by backslash-newline
  let cmdStart = -1;
  let cmdEnd = -1;
  let skipNextWordAsRedirectTarget = false;

  const src = (a: number, b: number) => MStr.source(text.slice(a, b), baseOffset + a);

  const addPart = (p: MStr) => {
    if (!parts) {
      parts = [];
    }
    parts.push(p);
  };
  const endWord = () => {
    if (parts) {
      const w = MStr.concat(parts, { start: baseOffset + wordStart, end: baseOffset + wordStart });
      parts = null;
      if (skipNextWordAsRedirectTarget) {
        skipNextWordAsRedirectTarget = false;
      } else {
        words.push(w);
      }
    }
  };
  const endCommand = () => {
    endWord();
    if (words.length) {
      // Leading assignments: NAME=value. Only assignments: they persist.
      let k = 0;
      while (k < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[k].text)) k++;
      for (let j = 0; j < k; j++) {
        const w = words[j];
        const eq = w.text.indexOf('=');
        vars.set(w.text.slice(0, eq), w.slice(eq + 1));
      }
      const rest = words.slice(k);
      if (rest.length) {
        commands.push({ words: rest, span: { start: baseOffset + cmdStart, end: baseOffset + cmdEnd } });
      }
    }
    words = [];
    continued = false;
    cmdStart = -1;
  };
  const expand = (name: string, useSpan: Span, quoted: boolean, at: number) => {
    const v = vars.get(name);
    if (v === undefined) {
      unresolved.push({ name, span: useSpan });
      if (!parts) {
        parts = [];
        wordStart = at;
      }
      return;
    }
    if (quoted) {
      addPart(v);
      return;
    }
    // Unquoted: field splitting on blanks.
    const fields = v.text.split(/[ \t\n]+/);
    let pos = 0;
    fields.forEach((f, idx) => {
      const i = v.text.indexOf(f, pos);
      pos = i + f.length;
      if (idx > 0) endWord();
      if (f.length) {
        if (!parts) wordStart = at;
        addPart(v.slice(i, i + f.length));
      }
    });
  };

  let i = 0;
  const n = text.length;
  const mark = (a: number, b: number) => {
    if (cmdStart < 0) cmdStart = a;
    cmdEnd = Math.max(cmdEnd, b);
  };

  /** Read $NAME / ${NAME} / $(...) / $1 at i (text[i] === '$'); returns new index. */
  const dollar = (quoted: boolean): number => {
    const start = i;
    const next = text[i + 1];
    if (next === '{') {
      const close = text.indexOf('}', i + 2);
      const end = close < 0 ? n : close + 1;
      const inner = text.slice(i + 2, close < 0 ? n : close);
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(inner);
      if (m && m[0].length === inner.length) expand(m[0], { start: baseOffset + start, end: baseOffset + end }, quoted, start);
      else {
        if (!parts) wordStart = start;
        addPart(src(start, end));
      }
      mark(start, end);
      return end;
    }
    if (next === '(') {
      let depth = 0;
      let j = i + 1;
      for (; j < n; j++) {
        if (text[j] === '(') depth++;
        else if (text[j] === ')' && --depth === 0) break;
      }
      const end = Math.min(n, j + 1);
      if (!parts) wordStart = start;
      addPart(src(start, end));
      mark(start, end);
      return end;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9@*#?$!-]/.exec(text.slice(i + 1, i + 64));
    if (m) {
      const end = i + 1 + m[0].length;
      if (/^[A-Za-z_]/.test(m[0])) expand(m[0], { start: baseOffset + start, end: baseOffset + end }, quoted, start);
      else {
        // positional and special parameters: unknown at check time
        unresolved.push({ name: m[0], span: { start: baseOffset + start, end: baseOffset + end } });
        if (!parts) {
          parts = [];
          wordStart = start;
        }
      }
      mark(start, end);
      return end;
    }
    if (!parts) wordStart = i;
    addPart(src(i, i + 1));
    mark(i, i + 1);
    return i + 1;
  };

  while (i < n) {
    const c = text[i];
    if (c === '\\') {
      if (text[i + 1] === '\n') {
        endWord();
        continued = words.length > 0 || continued;
        i += 2;
        continue;
      }
      if (text[i + 1] === '\r' && text[i + 2] === '\n') {
        endWord();
        continued = words.length > 0 || continued;
        i += 3;
        continue;
      }
      if (!parts) wordStart = i;
      if (i + 1 < n) addPart(src(i + 1, i + 2));
      mark(i, Math.min(n, i + 2));
      i += 2;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      endWord();
      i++;
      continue;
    }
    if (c === '\n') {
      endCommand();
      i++;
      if (pendingHeredocs.length) i = skipHeredocs(text, i, pendingHeredocs.splice(0));
      continue;
    }
    if (c === '#' && !parts) {
      let j = text.indexOf('\n', i);
      if (j < 0) j = n;
      let end = j;
      if (text[end - 1] === '\r') end--;
      const inCmd = words.length > 0 && continued;
      const comment: ShellComment = { span: { start: baseOffset + i, end: baseOffset + end }, endsContinuedCommand: inCmd };
      comments.push(comment);
      if (inCmd) {
        // The newline after the comment ends the command; remember which one.
        endCommand();
        comment.command = commands[commands.length - 1];
      }
      i = j;
      continue;
    }
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      const end = close < 0 ? n : close;
      if (close < 0) problems.push({ span: { start: baseOffset + i, end: baseOffset + n }, message: 'unterminated single quote' });
      if (!parts) wordStart = i;
      addPart(src(i + 1, end));
      mark(i, Math.min(n, end + 1));
      i = end + 1;
      continue;
    }
    if (c === '"') {
      if (!parts) {
        parts = [];
        wordStart = i;
      }
      const open = i;
      i++;
      let closed = false;
      while (i < n) {
        const d = text[i];
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === '\\' && i + 1 < n && '$`"\\\n'.includes(text[i + 1])) {
          if (text[i + 1] !== '\n') addPart(src(i + 1, i + 2));
          i += 2;
          continue;
        }
        if (d === '$') {
          i = dollar(true);
          continue;
        }
        addPart(src(i, i + 1));
        i++;
      }
      if (!closed) problems.push({ span: { start: baseOffset + open, end: baseOffset + n }, message: 'unterminated double quote' });
      mark(open, i);
      continue;
    }
    if (c === '$') {
      i = dollar(false);
      continue;
    }
    if (c === '`') {
      const close = text.indexOf('`', i + 1);
      const end = close < 0 ? n : close + 1;
      if (!parts) wordStart = i;
      addPart(src(i, end));
      mark(i, end);
      i = end;
      continue;
    }
    if (OPERATOR_CHARS.includes(c)) {
      endCommand();
      i++;
      while (i < n && OPERATOR_CHARS.includes(text[i])) i++;
      continue;
    }
    if (c === '<' || c === '>') {
      // Redirection: an fd number already read as a word is part of it.
      if (parts && /^[0-9]+$/.test(MStr.concat(parts).text)) parts = null;
      endWord();
      let j = i;
      while (j < n && (text[j] === '<' || text[j] === '>' || text[j] === '&' || text[j] === '-')) j++;
      const op = text.slice(i, j);
      if (op.startsWith('<<') && !op.startsWith('<<<')) {
        const m = /^[ \t]*(['"]?)([A-Za-z0-9_]+)\1/.exec(text.slice(j));
        if (m) {
          pendingHeredocs.push({ delim: m[2], strip: op.startsWith('<<-') });
          j += m[0].length;
        }
      } else if (/&$/.test(op) && /[0-9-]/.test(text[j] ?? '')) {
        while (j < n && /[0-9-]/.test(text[j])) j++;
      } else {
        skipNextWordAsRedirectTarget = true;
      }
      mark(i, j);
      i = j;
      continue;
    }
    // ordinary character
    if (!parts) wordStart = i;
    let j = i + 1;
    while (j < n && !" \t\r\n\\'\"$`#;&|()<>".includes(text[j])) j++;
    // '#' inside a word is literal
    while (j < n && text[j] === '#') {
      j++;
      while (j < n && !" \t\r\n\\'\"$`;&|()<>".includes(text[j])) j++;
    }
    addPart(src(i, j));
    mark(i, j);
    i = j;
  }
  endCommand();
  return { commands, comments, unresolved, problems };
}

function skipHeredocs(text: string, i: number, docs: { delim: string; strip: boolean }[]): number {
  for (const d of docs) {
    for (;;) {
      if (i >= text.length) return i;
      let j = text.indexOf('\n', i);
      if (j < 0) j = text.length;
      let line = text.slice(i, j).replace(/\r$/, '');
      if (d.strip) line = line.replace(/^\t+/, '');
      i = j + 1;
      if (line === d.delim) break;
    }
  }
  return i;
}
