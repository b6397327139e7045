/** What the commands work with (made once in extension.ts activate). */
import type * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import type { Cli } from './cli';
import type { Clusters } from './clusters';
import type { Consoles } from './console';
import type { CxlEvents } from './cxlevents';
import type { GuestViews } from './guestviews';
import type { MemoryMaps } from './memmap';

export interface Ctx {
  extension: vscode.ExtensionContext;
  output: vscode.OutputChannel;
  cli: Cli;
  clusters: Clusters;
  consoles: Consoles;
  memmaps: MemoryMaps;
  views: GuestViews;
  /** The CXL Events view's provider. */
  cxlEvents: CxlEvents;
  client(): LanguageClient | undefined;
  /** Topology files (fsPath) this window booted: stopped on deactivate. */
  booted: Set<string>;
  log(line: string): void;
}
