/**
 * A tolerant reader for the part of POSIX shell / bash that launch scripts
 * use: words, quoting ('…', "…", $'…'), backslash-newline continuations,
 * comments, variable and array assignments and their expansion (with field
 * splitting of unquoted expansions, ${NAME:-word} and friends), export and
 * the other declaration builtins, command separators, redirections and
 * here-documents. It never throws; every word keeps, per character, the span
 * of the source it came from (through quotes and variable expansion).
 *
 * Differences from bash are deliberate tolerance only: a backslash before
 * CR LF continues the line (reported as a problem, because bash does not),
 * and command substitutions are kept as their literal text.
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
  /** The command the comment ends (it follows words of that command), if any. */
  command?: ShellCommand;
}

export interface ShellParse {
  commands: ShellCommand[];
  comments: ShellComment[];
  /** Variables used but never assigned in the script (name and span of the use). */
  unresolved: { name: string; span: Span }[];
  /** Command substitutions ($(…), `…`): not run, their text is kept as written. */
  substitutions: Span[];
  problems: { span: Span; message: string }[];
}

type Value = MStr | MStr[];

interface Options {
  /** Variables shared with an enclosing parse (the word of ${NAME:-word}). */
  vars?: Map<string, Value>;
  /** Only split into words: no assignments, comments or commands of their own. */
  wordsOnly?: boolean;
}

const OPERATOR_CHARS = ';&|()';
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)(\+?)=/;
/** Builtins whose NAME=value arguments are assignments (and are not field-split). */
const DECLARATION = new Set(['export', 'readonly', 'declare', 'typeset', 'local']);
/** Reserved words that start (or close) a compound command: the next word starts a simple command. */
const RESERVED = new Set(['{', '}', 'if', 'then', 'else', 'elif', 'fi', 'while', 'until', 'do', 'done', '!', 'time']);

export function parseShell(text: string, baseOffset = 0, opts: Options = {}): ShellParse {
  const commands: ShellCommand[] = [];
  const comments: ShellComment[] = [];
  const unresolved: { name: string; span: Span }[] = [];
  const substitutions: Span[] = [];
  const problems: { span: Span; message: string }[] = [];
  const vars = opts.vars ?? new Map<string, Value>();
  const pendingHeredocs: { delim: string; strip: boolean; quoted: boolean }[] = [];
  const crlf: number[] = [];

  let words: MStr[] = [];
  let parts: MStr[] | null = null; // current word under construction
  let quotedWord = false; // the current word had quotes: it stays a word even when empty
  let wordStart = 0;
  let continued = false; // current command was continued onto this line by backslash-newline
  let cmdStart = -1;
  let cmdEnd = -1;
  let skipNextWordAsRedirectTarget = false;
  /** A non-assignment word was seen: later NAME=value words are arguments. */
  let commandWordSeen = false;
  /** Prefix assignments (NAME=value cmd) hold only for that command's environment. */
  let temporary: { name: string; prev: Value | undefined }[] = [];
  /** Inside NAME=( … ): words are the array's elements. */
  let array: { name: string; append: boolean; from: number; at: number } | null = null;

  const src = (a: number, b: number) => MStr.source(text.slice(a, b), baseOffset + a);
  const at = (a: number, b: number): Span => ({ start: baseOffset + a, end: baseOffset + b });

  const begin = (pos: number) => {
    if (!parts) {
      parts = [];
      wordStart = pos;
    }
  };
  const addPart = (p: MStr, pos: number) => {
    begin(pos);
    parts!.push(p);
  };
  const partCount = () => (parts as MStr[] | null)?.length ?? 0;
  const mark = (a: number, b: number) => {
    if (cmdStart < 0) cmdStart = a;
    cmdEnd = Math.max(cmdEnd, b);
  };
  /** $NAME of an array is its first element. */
  const scalar = (v: Value, use: Span): MStr => (Array.isArray(v) ? (v[0] ?? MStr.synthetic('', use)) : v);
  const isDeclaration = () => !!words.length && DECLARATION.has(words[0].text);
  /** The word being read is NAME=… in a place where that is an assignment. */
  const inAssignment = () =>
    !opts.wordsOnly && !!parts && ASSIGNMENT.test(MStr.concat(parts).text) && (!commandWordSeen || isDeclaration());

  const assign = (name: string, append: boolean, value: Value) => {
    const old = vars.get(name);
    if (append && old !== undefined) {
      // A+=word on an array appends to its first element, as bash does.
      if (Array.isArray(old)) vars.set(name, Array.isArray(value) ? [...old, ...value] : old.length ? [MStr.concat([old[0], value]), ...old.slice(1)] : [value]);
      else vars.set(name, Array.isArray(value) ? [old, ...value] : MStr.concat([old, value]));
    } else vars.set(name, value);
  };

  const endWord = () => {
    if (!parts) return;
    const w = MStr.concat(parts, at(wordStart, wordStart));
    const quoted = quotedWord;
    const keep = w.length > 0 || quoted;
    parts = null;
    quotedWord = false;
    if (skipNextWordAsRedirectTarget) {
      skipNextWordAsRedirectTarget = false;
      return;
    }
    // An unquoted expansion that came out empty is no word at all.
    if (!keep) return;
    if (!array && !opts.wordsOnly && !words.length && !quoted && RESERVED.has(w.text)) {
      // "then A=1", "{ local M=2G; …": what follows is a command of its own.
      cmdStart = -1;
      cmdEnd = -1;
      return;
    }
    if (array || opts.wordsOnly) {
      words.push(w);
      return;
    }
    const m = ASSIGNMENT.exec(w.text);
    if (m && !commandWordSeen) {
      // Assignments take effect left to right (A=1 B=$A sets B to 1).
      temporary.push({ name: m[1], prev: vars.get(m[1]) });
      assign(m[1], m[2] === '+', w.slice(m[0].length));
    } else if (!commandWordSeen) {
      commandWordSeen = true;
      // NAME=value before a command is for that command only.
      for (const t of temporary.reverse()) {
        if (t.prev === undefined) vars.delete(t.name);
        else vars.set(t.name, t.prev);
      }
      temporary = [];
    }
    words.push(w);
  };

  const endCommand = () => {
    endWord();
    if (array) {
      problems.push({ span: at(array.at, array.at + 1), message: `unterminated array assignment ${array.name}=(` });
      array = null;
    }
    if (words.length && !opts.wordsOnly) {
      let k = 0;
      while (k < words.length && ASSIGNMENT.test(words[k].text)) k++;
      const rest = words.slice(k);
      if (rest.length) {
        if (DECLARATION.has(rest[0].text)) {
          for (const w of rest.slice(1)) {
            const m = ASSIGNMENT.exec(w.text);
            if (m) assign(m[1], m[2] === '+', w.slice(m[0].length));
          }
        }
        commands.push({ words: rest, span: at(cmdStart, cmdEnd) });
      }
    } else if (words.length) {
      commands.push({ words, span: at(cmdStart, cmdEnd) });
    }
    words = [];
    continued = false;
    cmdStart = -1;
    commandWordSeen = false;
    temporary = [];
  };

  /**
   * Put the fields of an expansion into the words. separate: the fields are
   * distinct words even when quoted ("$@", "${A[@]}"). Unquoted fields are
   * split on blanks (IFS), except in an assignment's value and when they are
   * words already (split = false).
   */
  const emit = (fields: MStr[], quoted: boolean, separate: boolean, pos: number, split = true) => {
    if (inAssignment()) {
      addPart(MStr.concat(separate ? joinWithSpaces(fields) : fields), pos);
      return;
    }
    if (quoted) {
      if (!separate) {
        addPart(MStr.concat(fields), pos);
        return;
      }
      fields.forEach((f, idx) => {
        if (idx > 0) endWord();
        addPart(f, pos);
        quotedWord = true;
      });
      return;
    }
    const all = separate ? fields : [MStr.concat(fields)];
    all.forEach((v, n) => {
      if (n > 0) endWord();
      if (!split) {
        if (v.length) addPart(v, pos);
        return;
      }
      const pieces = v.text.split(/[ \t\n]+/);
      let from = 0;
      pieces.forEach((f, idx) => {
        const k = v.text.indexOf(f, from);
        from = k + f.length;
        if (idx > 0) endWord();
        if (f.length) addPart(v.slice(k, k + f.length), pos);
      });
    });
  };

  const lookup = (name: string, useSpan: Span): Value | undefined => {
    const v = vars.get(name);
    if (v === undefined) unresolved.push({ name, span: useSpan });
    return v;
  };

  /** The words of the `word` in ${NAME:-word}, expanded with the same variables. */
  const subWords = (a: number, b: number): MStr[] => {
    const sub = parseShell(text.slice(a, b), baseOffset + a, { vars, wordsOnly: true });
    unresolved.push(...sub.unresolved);
    substitutions.push(...sub.substitutions);
    return sub.commands.flatMap((c) => c.words);
  };

  /** Index just past the `close` that matches the opening at `from`, skipping quotes and nesting. */
  const matching = (from: number, open: string, close: string): number => {
    let depth = 0;
    for (let j = from; j < n; j++) {
      const d = text[j];
      if (d === '\\') {
        j++;
        continue;
      }
      if (d === "'" && open === '(') {
        const q = text.indexOf("'", j + 1);
        if (q < 0) return n;
        j = q;
        continue;
      }
      if (d === '"') {
        for (j++; j < n && text[j] !== '"'; j++) if (text[j] === '\\') j++;
        continue;
      }
      if (d === open) depth++;
      else if (d === close && --depth === 0) return j + 1;
    }
    return n;
  };

  /** Read $NAME / ${…} / $(...) / $'…' / $1 at i (text[i] === '$'); returns the new index. */
  const dollar = (quoted: boolean): number => {
    const start = i;
    const next = text[i + 1];
    if (next === '{') {
      const end = matching(i + 1, '{', '}');
      const closed = text[end - 1] === '}' && end > i + 2;
      const inner = text.slice(i + 2, closed ? end - 1 : end);
      const use = at(start, end);
      mark(start, end);
      let m: RegExpExecArray | null;
      if ((m = /^([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])$/.exec(inner))) {
        if (!NAME.test(m[1])) return special(m[1], quoted, start, end);
        const v = lookup(m[1], use);
        if (v !== undefined) emit([scalar(v, use)], quoted, false, start);
        else begin(start);
        return end;
      }
      if ((m = /^([A-Za-z_][A-Za-z0-9_]*)\[([@*]|[0-9]+)\]$/.exec(inner))) {
        const v = lookup(m[1], use);
        begin(start);
        if (v === undefined) return end;
        const elems = Array.isArray(v) ? v : [v];
        if (m[2] === '@') emit(elems, quoted, true, start);
        else if (m[2] === '*') emit(quoted ? joinWithSpaces(elems) : elems, quoted, !quoted, start);
        else if (elems[Number(m[2])]) emit([elems[Number(m[2])]], quoted, false, start);
        return end;
      }
      if ((m = /^#([A-Za-z_][A-Za-z0-9_]*)(\[[@*]\])?$/.exec(inner))) {
        const v = lookup(m[1], use);
        const len = v === undefined ? 0 : Array.isArray(v) ? (m[2] ? v.length : (v[0]?.length ?? 0)) : v.length;
        emit([MStr.synthetic(String(len), use)], quoted, false, start);
        return end;
      }
      if ((m = /^([A-Za-z_][A-Za-z0-9_]*)(:?)([-=+?])/.exec(inner))) {
        const name = m[1];
        const v = vars.get(name);
        const set = v !== undefined && (m[2] === '' || scalar(v, use).length > 0);
        const wordFrom = i + 2 + m[0].length;
        const wordTo = closed ? end - 1 : end;
        const op = m[3];
        begin(start);
        if (op === '+') {
          if (set) emit(quoted ? joinWithSpaces(subWords(wordFrom, wordTo)) : subWords(wordFrom, wordTo), quoted, !quoted, start, false);
          return end;
        }
        if (set) {
          emit([scalar(v!, use)], quoted, false, start);
          return end;
        }
        if (op === '?') {
          unresolved.push({ name, span: use });
          return end;
        }
        const w = subWords(wordFrom, wordTo);
        if (op === '=') vars.set(name, MStr.concat(joinWithSpaces(w)));
        emit(quoted ? joinWithSpaces(w) : w, quoted, !quoted, start, false);
        return end;
      }
      // Other parameter expansions (${X%.*}, ${X/a/b}, …): kept as written.
      addPart(src(start, end), start);
      return end;
    }
    if (next === '(') {
      const end = matching(i + 1, '(', ')');
      substitutions.push(at(start, end));
      addPart(src(start, end), start);
      mark(start, end);
      return end;
    }
    if (next === "'" && !quoted) return ansiC(start);
    if (next === '"' && !quoted) {
      // $"…" (locale translation) reads as "…".
      mark(start, start + 1);
      return start + 1;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9@*#?$!-]/.exec(text.slice(i + 1, i + 64));
    if (m) {
      const end = i + 1 + m[0].length;
      mark(start, end);
      if (!NAME.test(m[0])) return special(m[0], quoted, start, end);
      const v = lookup(m[0], at(start, end));
      if (v !== undefined) emit([scalar(v, at(start, end))], quoted, false, start);
      else begin(start);
      return end;
    }
    addPart(src(i, i + 1), i);
    mark(i, i + 1);
    return i + 1;
  };

  /** Positional and special parameters: unknown when checking, read as empty ("$@" as no words). */
  const special = (name: string, quoted: boolean, start: number, end: number): number => {
    unresolved.push({ name, span: at(start, end) });
    if (!(quoted && (name === '@' || name === '*'))) begin(start);
    return end;
  };

  /** $'…' with bash's backslash escapes. */
  const ansiC = (start: number): number => {
    begin(start);
    quotedWord = true;
    let j = start + 2;
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };
    while (j < n && text[j] !== "'") {
      if (text[j] === '\\' && j + 1 < n) {
        const e = text[j + 1];
        let m: RegExpExecArray | null;
        if (simple[e] !== undefined) {
          parts!.push(MStr.synthetic(simple[e], at(j, j + 2)));
          j += 2;
        } else if ((m = /^x([0-9a-fA-F]{1,2})/.exec(text.slice(j + 1, j + 4)))) {
          parts!.push(MStr.synthetic(String.fromCharCode(parseInt(m[1], 16)), at(j, j + 1 + m[0].length)));
          j += 1 + m[0].length;
        } else if ((m = /^[0-7]{1,3}/.exec(text.slice(j + 1, j + 4)))) {
          parts!.push(MStr.synthetic(String.fromCharCode(parseInt(m[0], 8) & 0xff), at(j, j + 1 + m[0].length)));
          j += 1 + m[0].length;
        } else {
          parts!.push(src(j, j + 2));
          j += 2;
        }
        continue;
      }
      parts!.push(src(j, j + 1));
      j++;
    }
    if (j >= n) problems.push({ span: at(start, n), message: 'unterminated $\'…\' quote' });
    mark(start, Math.min(n, j + 1));
    return j + 1;
  };

  let i = 0;
  const n = text.length;

  while (i < n) {
    const c = text[i];
    if (c === '\\') {
      // Backslash-newline is removed before anything else: it may even join a word.
      if (text[i + 1] === '\n' || (text[i + 1] === '\r' && text[i + 2] === '\n')) {
        if (text[i + 1] === '\r') crlf.push(i);
        if (words.length || parts) continued = true;
        i += text[i + 1] === '\r' ? 3 : 2;
        continue;
      }
      if (i + 1 < n) addPart(src(i + 1, i + 2), i);
      else begin(i);
      quotedWord = true;
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
      if (array) {
        endWord();
        i++;
        continue;
      }
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
      if (array || opts.wordsOnly) {
        i = j;
        continue;
      }
      const comment: ShellComment = { span: at(i, end), endsContinuedCommand: words.length > 0 && continued };
      comments.push(comment);
      if (words.length) {
        // The newline after the comment ends the command; remember which one.
        const before = commands.length;
        endCommand();
        if (commands.length > before) comment.command = commands[commands.length - 1];
      }
      i = j;
      continue;
    }
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      const end = close < 0 ? n : close;
      if (close < 0) problems.push({ span: at(i, n), message: 'unterminated single quote' });
      addPart(src(i + 1, end), i);
      quotedWord = true;
      mark(i, Math.min(n, end + 1));
      i = end + 1;
      continue;
    }
    if (c === '"') {
      const open = i;
      const hadWord = !!parts;
      const partsBefore = partCount();
      const wordsBefore = words.length;
      begin(i);
      i++;
      let closed = false;
      let onlyEmptyAt = false;
      while (i < n) {
        const d = text[i];
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === '\\' && i + 1 < n && '$`"\\\n'.includes(text[i + 1])) {
          if (text[i + 1] !== '\n') addPart(src(i + 1, i + 2), i);
          i += 2;
          continue;
        }
        if (d === '$') {
          const from = i;
          i = dollar(true);
          // "$@" / "${A[@]}" with no elements: no word at all (when nothing else is in it).
          if (/^\$(?:@|\{@\}|\{[A-Za-z_][A-Za-z0-9_]*\[@\]\})$/.test(text.slice(from, i)) && text[i] === '"') onlyEmptyAt = true;
          continue;
        }
        if (d === '`') {
          const close = text.indexOf('`', i + 1);
          const end = close < 0 ? n : close + 1;
          substitutions.push(at(i, end));
          addPart(src(i, end), i);
          i = end;
          continue;
        }
        addPart(src(i, i + 1), i);
        i++;
      }
      if (!closed) problems.push({ span: at(open, n), message: 'unterminated double quote' });
      const added = words.length > wordsBefore || partCount() > partsBefore;
      if (!(onlyEmptyAt && !added && !hadWord)) quotedWord = true;
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
      substitutions.push(at(i, end));
      addPart(src(i, end), i);
      mark(i, end);
      i = end;
      continue;
    }
    if (c === '(' && parts && inAssignment() && /=$/.test(MStr.concat(parts).text)) {
      // NAME=( … ): an array.
      const m = ASSIGNMENT.exec(MStr.concat(parts).text)!;
      parts = null;
      quotedWord = false;
      array = { name: m[1], append: m[2] === '+', from: words.length, at: i };
      mark(i, i + 1);
      i++;
      continue;
    }
    if (c === ')' && array) {
      endWord();
      const elems = words.splice(array.from);
      const a = array;
      array = null;
      const old = vars.get(a.name);
      vars.set(a.name, a.append && old !== undefined ? [...(Array.isArray(old) ? old : [old]), ...elems] : elems);
      mark(i, i + 1);
      i++;
      continue;
    }
    if (c === '&' && text[i + 1] === '>') {
      // &> and &>> redirect stdout and stderr.
      endWord();
      const j = text[i + 2] === '>' ? i + 3 : i + 2;
      skipNextWordAsRedirectTarget = true;
      mark(i, j);
      i = j;
      continue;
    }
    if (OPERATOR_CHARS.includes(c)) {
      endCommand();
      i++;
      while (i < n && OPERATOR_CHARS.includes(text[i]) && !(text[i] === '&' && text[i + 1] === '>')) i++;
      continue;
    }
    if (c === '<' || c === '>') {
      // Redirection: an fd number written right before it is part of it.
      if (parts && !quotedWord && /^[0-9]+$/.test(MStr.concat(parts).text)) parts = null;
      endWord();
      let j = i;
      while (j < n && (text[j] === '<' || text[j] === '>')) j++;
      const op = text.slice(i, j);
      if (op === '<<') {
        const strip = text[j] === '-';
        if (strip) j++;
        const m = /^[ \t]*(?:(['"])([^'"\n]+)\1|\\?([A-Za-z0-9_.-]+))/.exec(text.slice(j));
        if (m) {
          pendingHeredocs.push({ delim: m[2] ?? m[3], strip, quoted: m[1] !== undefined || m[0].includes('\\') });
          j += m[0].length;
        }
      } else if (text[j] === '&') {
        j++;
        if (/[0-9-]/.test(text[j] ?? '')) while (j < n && /[0-9-]/.test(text[j])) j++;
        else skipNextWordAsRedirectTarget = true;
      } else {
        if (text[j] === '|') j++; // >|
        skipNextWordAsRedirectTarget = true;
      }
      mark(i, j);
      i = j;
      continue;
    }
    // ordinary characters; '#' inside a word is literal
    let j = i + 1;
    while (j < n && !" \t\r\n\\'\"$`;&|()<>".includes(text[j])) j++;
    addPart(src(i, j), i);
    mark(i, j);
    i = j;
  }
  endCommand();
  if (crlf.length) {
    problems.push({
      span: at(crlf[0], crlf[0] + 1),
      message:
        `The script has Windows (CR LF) line endings: bash takes a backslash before CR LF as quoting the CR, so the command ends on that line and the CR becomes an argument ` +
        `(${crlf.length} line${crlf.length > 1 ? 's' : ''} continued this way). Save the file with LF line endings.`,
    });
  }
  return { commands, comments, unresolved, substitutions, problems };
}

function joinWithSpaces(fields: MStr[]): MStr[] {
  const out: MStr[] = [];
  fields.forEach((f, k) => {
    if (k > 0) out.push(MStr.synthetic(' ', f.span(0, 0)));
    out.push(f);
  });
  return out;
}

/**
 * Skip the bodies of here-documents. In the body of an unquoted one (<<EOF),
 * backslash-newline joins lines before the delimiter is looked for, so a
 * body line ending in a backslash hides the delimiter line after it.
 */
function skipHeredocs(text: string, i: number, docs: { delim: string; strip: boolean; quoted: boolean }[]): number {
  for (const d of docs) {
    let line = '';
    for (;;) {
      if (i >= text.length) return i;
      let j = text.indexOf('\n', i);
      if (j < 0) j = text.length;
      let part = text.slice(i, j).replace(/\r$/, '');
      if (d.strip && line === '') part = part.replace(/^\t+/, '');
      i = j + 1;
      const joined = !d.quoted && /(^|[^\\])(\\\\)*\\$/.test(part);
      line += joined ? part.slice(0, -1) : part;
      if (joined) continue;
      if (line === d.delim) break;
      line = '';
    }
  }
  return i;
}
