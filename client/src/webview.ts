/**
 * Webview panels with a strict Content-Security-Policy: no inline script or
 * style, scripts only with a per-render nonce, styles and images only from the
 * extension's media/ folder (localResourceRoots is media/ alone).
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { esc } from './views-model';

export function nonce(): string {
  return randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

export { esc } from './views-model';

export function createPanel(extensionUri: vscode.Uri, viewType: string, title: string, scripts: boolean): vscode.WebviewPanel {
  return vscode.window.createWebviewPanel(viewType, title, { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false }, {
    enableScripts: scripts,
    enableCommandUris: false,
    retainContextWhenHidden: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'media')],
  });
}

/** A whole document: CSP meta, the media/ stylesheets and scripts (with the nonce), the body. */
export function page(webview: vscode.Webview, extensionUri: vscode.Uri, o: { title: string; styles: string[]; scripts: string[]; body: string }): string {
  const n = nonce();
  const media = (f: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', f)).toString();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${n}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${o.styles.map((s) => `<link rel="stylesheet" href="${media(s)}">`).join('\n')}
<title>${esc(o.title)}</title>
</head>
<body>
${o.body}
${o.scripts.map((s) => `<script nonce="${n}" src="${media(s)}"></script>`).join('\n')}
</body>
</html>`;
}
