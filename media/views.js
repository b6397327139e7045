// lspci / CXL / DAX / iomem views: the Refresh button asks the extension to read the guest again.
(function () {
  const vscode = acquireVsCodeApi();
  const b = document.getElementById('refresh');
  if (b) b.addEventListener('click', () => vscode.postMessage({ type: 'refresh' }));
})();
