/**
 * What a rule is. Each diagnostic code has exactly one file in this folder
 * that states the rule, holds QEMU's own words where QEMU enforces it, and
 * either checks the model (check / checkCluster) or is raised by a reader
 * while reading syntax (make).
 */
import { Diagnostic, Fix, RelatedInfo, Severity } from '../diagnostics';
import { NodeModel } from '../model/model';
import { Span } from '../text/source';
import type { NodeLayout } from '../layout/index';
import type { QemuProfile } from '../qemu/profile';

export interface FileInfo {
  size: bigint;
  isFile: boolean;
  isDirectory: boolean;
  isCharDevice: boolean;
}

/** What the engine may learn about the host; injected so the engine stays pure. */
export interface HostProbe {
  stat(path: string): FileInfo | undefined;
  /**
   * The answers come from a real file system: stat's undefined then means the
   * path does not exist (not merely "unknown", as for NO_HOST). Rules that
   * report a missing file need this.
   */
  real?: boolean;
  /**
   * Optional: a number that stays the same while every answer stays the same
   * (a probe that keeps its answers for a while): an analysis that keeps
   * results depending on answers of this generation need not ask again.
   */
  generation?(): number;
}

export interface Finding {
  span: Span;
  message: string;
  severity?: Severity;
  related?: RelatedInfo[];
  fixes?: Fix[];
}

export interface NodeContext {
  node: NodeModel;
  host: HostProbe;
  /** The QEMU the node is judged for (its version, types and properties). */
  qemu: QemuProfile;
  /** The predicted guest memory map (computed once, on first use). */
  layout(): NodeLayout;
  report(f: Finding): void;
}

export interface ClusterContext {
  /**
   * The nodes of the cluster. A topology's models come as its analysis keeps
   * them (engine/incremental.ts): their offsets may be region offsets, which
   * the engine maps to text offsets in what is reported. Report spans as the
   * models give them; do not compare or combine offsets of different nodes.
   */
  nodes: NodeModel[];
  host: HostProbe;
  qemu: QemuProfile;
  report(node: NodeModel | undefined, f: Finding): void;
}

export interface Rule {
  code: string;
  severity: Severity;
  /** The rule in one sentence: shown on hover and in docs/diagnostics.md. */
  summary: string;
  /** QEMU's (or libvirt's, or Linux's) own message when it enforces the rule. */
  enforcedBy?: string;
  check?(ctx: NodeContext): void;
  checkCluster?(ctx: ClusterContext): void;
  /** Reported only when asked for (information that is not a problem, e.g. where regions land). */
  optIn?: boolean;
  /**
   * The guest architectures the rule holds for (NodeModel.arch), when not all:
   * the x86 PC's rules (pc/q35, SeaBIOS, the e820 memory map) are X86_ARCHES
   * and stay silent on an aarch64 node.
   */
  arches?: readonly string[];
}

export function makeDiagnostic(rule: Rule, f: Finding, node?: string): Diagnostic {
  const d: Diagnostic = { code: rule.code, severity: f.severity ?? rule.severity, span: f.span, message: f.message };
  if (f.related?.length) d.related = f.related;
  if (f.fixes?.length) d.fixes = f.fixes;
  if (node !== undefined) d.node = node;
  return d;
}
