/**
 * memfabric's custom LSP messages: the one typed definition shared by the
 * server, the VS Code client and the tests (as microsoft/vscode-eslint shares
 * its `eslint/*` requests: a namespace per message holding its method and
 * RequestType). Only types and vscode-jsonrpc here: no engine, no server.
 */
import { RequestType, RequestType0 } from 'vscode-jsonrpc';

/**
 * The Node options the language server runs with (the VS Code client's
 * execArgv; bin/memfabric.js's `#!/usr/bin/env -S node …` line says the same,
 * test/lsp.test.ts checks; `npm run bench` runs with them too).
 * - A young generation of 6 MB semispaces instead of V8's 16 MB. Since
 *   dropped analyses are no longer kept alive through young collections
 *   (engine/index.ts, VIEW), a larger young generation lets most of an
 *   analysis die young. Medians of five interleaved runs of the bench's
 *   from-scratch analysis of the 40-node cluster: 3.27 ms with 2 MB, 3.11 with
 *   4, 2.30 with 6, 2.44 with 8 (in `npm run bench`: 3.80 ms with 2 MB, a
 *   miss, and 2.85 ms with 6). The cost is memory: the bench's server peaked
 *   at 81.5 MB with 2 MB and 89.9 MB with 6 on the 40-node cluster, 181 and
 *   188 MB on the 1 MB topology; a server that opened the 40-node cluster
 *   40 times, at 78 MB and 87 MB.
 * - The old generation may grow by half its live size before it is collected,
 *   not up to four times: with the defaults a server that had opened the
 *   40-node cluster 300 times grew to 156–330 MB around 20 MB of live objects;
 *   with this it stays at 104–111 MB, for no measurable time on that cluster.
 * - Less inlining by the optimizing compiler (200 bytes of bytecode inlined
 *   into a function in all, not 920). Two cores: while the engine runs on one,
 *   V8 compiles on the other, and with the default it spent 2.0 s compiling
 *   during the bench's 120 analyses of the 40-node cluster (readTopology
 *   157 ms, parseXml 143 ms), so most of the engine ran unoptimized code
 *   waiting for its turn; with 200, 1.35 s. Twelve interleaved runs of those
 *   analyses, medians: 4.28 ms with the default, 3.94 with 400, 3.76 with
 *   200, 4.11 with 100; after 400 analyses, no measurable difference; the
 *   1 MB topology from scratch 113–126 ms with the default, 103–129 with 200.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=6', '--heap-growing-percent=50', '--max-inlined-bytecode-size-cumulative=200'];

export interface LayoutParams {
  /** The document, as the client knows it (open or not: an unopened file: URI is read from disk). */
  uri: string;
  /** Only this node of the document (default: every node). */
  node?: string;
  /** Include memfabric's guest agent device, as `memfabric boot` runs the node (default true, as `memfabric layout`). */
  agent?: boolean;
}

/** Hex in lower case with a 0x prefix; `end` inclusive, as /proc/iomem prints it. */
export interface LayoutIomemEntry {
  start: string;
  end: string;
  name: string;
}

export interface LayoutE820Entry {
  start: string;
  end: string;
  type: string;
}

export interface LayoutBar {
  device: string;
  bdf: string;
  bar: number;
  start: string;
  size: string;
  bits: 32 | 64;
  prefetchable: boolean;
}

export interface LayoutNode {
  name: string;
  /** The QEMU version the layout is predicted for (e.g. 7.2.22). */
  qemuVersion: string;
  /** The SeaBIOS version it is predicted for (e.g. 1.16.2). */
  firmware?: string;
  iomem: LayoutIomemEntry[];
  e820: LayoutE820Entry[];
  bars: LayoutBar[];
  /** Set when the QEMU judged for is not one the model was checked against. */
  warning?: string;
  /** What the real QEMU said (layout --probe; the server's background probe). */
  probe?: LayoutProbe;
}

/** The real QEMU run on the node (firmware, no guest): confirmed, or where it disagrees (QEMU is right). */
export interface LayoutProbe {
  /** "10.0.2" */
  qemu: string;
  /** The firmware's version line. */
  firmware?: string;
  /** QEMU's E820 table, BARs, 64-bit hole and CXL windows are the prediction's. */
  confirmed: boolean;
  refused?: string;
  firmwareStop?: string;
  inconclusive?: string;
  disagreements: string[];
}

/** Exactly the JSON `memfabric layout --format json` prints. */
export interface LayoutResult {
  nodes: LayoutNode[];
}

export namespace LayoutRequest {
  export const method = 'memfabric/layout' as const;
  export const type = new RequestType<LayoutParams, LayoutResult, void>(method);
}

/** The QEMU the server judges documents for (its profile), for the status item and hovers. */
export interface QemuInfo {
  /** "QEMU 10.0.2, SeaBIOS 1.16.3" (with "(bundled profile)" when no binary was read). */
  label: string;
  version: string;
  firmware?: string;
  /** The binary's path, or 'bundled'. */
  origin: string;
  /** Why a bundled profile serves, when it does. */
  note?: string;
  /**
   * The profiles of other architectures' QEMUs (qemu-system-aarch64 …), read
   * once a document has nodes of that architecture; by architecture.
   */
  arches?: Record<string, Omit<QemuInfo, 'arches'>>;
}

export namespace QemuRequest {
  export const method = 'memfabric/qemu' as const;
  export const type = new RequestType0<QemuInfo, void>(method);
}
