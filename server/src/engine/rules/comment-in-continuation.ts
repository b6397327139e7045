import { Rule } from './rule';

/**
 * In a shell script, a `# comment` line inside a backslash-continued command
 * ends the command: the shell treats the newline after the comment as the end,
 * and the following option lines run as separate (failing) commands.
 */
export const rule: Rule = {
  code: 'comment-in-continuation',
  severity: 'error',
  summary:
    'A comment line inside a backslash-continued command ends the command: the options after it are not passed to QEMU.',
  enforcedBy: 'POSIX shell grammar (a comment runs to the end of the line; the newline ends the command)',
};
