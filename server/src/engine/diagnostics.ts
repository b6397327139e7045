import { Span } from './text/source';

export type Severity = 'error' | 'warning' | 'information' | 'hint';

export interface RelatedInfo {
  span: Span;
  message: string;
  /** Another document (cluster-wide findings); absent for the same document. */
  source?: string;
}

export interface TextEdit {
  span: Span;
  newText: string;
}

export interface Fix {
  title: string;
  edits: TextEdit[];
}

/** One finding, in document offsets. `code` is stable: scripts and editors key on it. */
export interface Diagnostic {
  code: string;
  severity: Severity;
  span: Span;
  message: string;
  related?: RelatedInfo[];
  fixes?: Fix[];
  /** Node of the cluster the finding is about, when there is more than one. */
  node?: string;
  /** Document the span is in; set on cluster-wide findings. */
  source?: string;
}
