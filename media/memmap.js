// The memory-map picture (webview side). The extension computes the model
// (client/src/memmap-model.ts) and posts it; this draws it with DOM calls only
// (no inline markup, heights set through the CSSOM: allowed by the CSP).
(function () {
  const vscode = acquireVsCodeApi();
  const app = document.getElementById('app');

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function pad(hex) {
    const h = hex.replace(/^0x/, '');
    return '0x' + h.padStart(10, '0');
  }

  const KIND_LABEL = {
    ram: 'RAM', hole: 'hole', 'pci-window': 'PCI window', bar: 'BAR', 'cxl-window': 'CXL window', reserved: 'reserved',
    'soft-reserved': 'soft reserved', pmem: 'persistent memory', mmconfig: 'MMCONFIG', mmio: 'MMIO', other: 'other',
  };

  function render(model, file) {
    app.textContent = '';
    const head = el('header');
    head.appendChild(el('h1', null, 'Memory map: ' + model.node));
    head.appendChild(el('p', 'source', file + ' · guest physical address space as QEMU ' + model.qemuVersion + ', SeaBIOS ' + (model.firmware || '') + ' and Linux lay it out · up to ' + model.top));
    if (model.warning) head.appendChild(el('p', 'warning', model.warning));
    if (model.probe) head.appendChild(el('p', model.probe.confirmed ? 'confirmed' : 'warning', model.probe.text));
    app.appendChild(head);

    const legend = el('ul', 'legend');
    const kinds = [...new Set(model.segments.map((s) => s.kind).concat(model.segments.some((s) => s.bars.length) ? ['bar'] : []))];
    for (const k of kinds) {
      const li = el('li', 'kind-' + k);
      li.appendChild(el('span', 'swatch'));
      li.appendChild(document.createTextNode(KIND_LABEL[k] || k));
      legend.appendChild(li);
    }
    const lb = el('li', 'scale-note', 'heights ∝ size; ');
    lb.appendChild(el('span', 'break-sample', '≈'));
    lb.appendChild(document.createTextNode(' broken: too large to draw to scale; ▫ raised to a readable height'));
    legend.appendChild(lb);
    app.appendChild(legend);

    const diags = model.diagnostics;
    const map = el('div', 'map');
    model.segments.forEach((s, i) => {
      const seg = el('div', 'seg kind-' + s.kind + ' scale-' + s.scale + (s.diags.length ? ' has-diag sev-' + worst(s.diags) : ''));
      seg.dataset.kind = s.kind;
      seg.dataset.start = s.start;
      seg.dataset.end = s.end;
      seg.dataset.index = String(i);
      seg.style.minHeight = s.height + 'px';
      seg.title = s.name + '\n' + s.start + '–' + s.end + '\n' + s.size + ' (' + s.sizeHex + ')';
      const addr = el('div', 'addr');
      addr.appendChild(el('span', 'start', pad(s.start)));
      addr.appendChild(el('span', 'end', pad(s.end)));
      seg.appendChild(addr);
      const body = el('div', 'body');
      const label = el('div', 'label');
      label.appendChild(el('span', 'name', s.name));
      label.appendChild(el('span', 'size', s.size + ' · ' + s.sizeHex));
      body.appendChild(label);
      if (s.scale === 'broken') body.appendChild(el('div', 'break', 'not to scale'));
      if (s.bars.length) {
        const bars = el('div', 'bars');
        for (const b of s.bars) {
          const bar = el('div', 'bar kind-bar' + (b.diags.length ? ' has-diag sev-' + worst(b.diags) : ''));
          bar.dataset.kind = 'bar';
          bar.dataset.start = b.start;
          bar.dataset.end = b.end;
          bar.appendChild(el('span', 'name', b.label));
          bar.appendChild(el('span', 'range', b.start + '–' + b.end));
          bar.appendChild(el('span', 'size', b.size));
          bars.appendChild(bar);
        }
        body.appendChild(bars);
      }
      for (const d of s.diags) {
        const m = el('div', 'diag sev-' + diags[d].severity);
        m.dataset.diagnostic = String(d);
        if (diags[d].code) m.dataset.code = diags[d].code;
        m.appendChild(el('span', 'code', diags[d].code ? '[' + diags[d].code + ']' : diags[d].severity));
        m.appendChild(document.createTextNode(' ' + diags[d].message));
        m.addEventListener('click', () => vscode.postMessage({ type: 'reveal', line: diags[d].line }));
        body.appendChild(m);
      }
      seg.appendChild(body);
      map.appendChild(seg);
    });
    app.appendChild(map);

    if (diags.length) {
      const sec = el('section', 'diagnostics');
      sec.appendChild(el('h2', null, 'Diagnostics of this node (' + diags.length + ')'));
      const ul = el('ul');
      diags.forEach((d, i) => {
        const li = el('li', 'diag sev-' + d.severity + (d.placed.length ? ' placed' : ' unplaced'));
        li.dataset.diagnostic = String(i);
        if (d.code) li.dataset.code = d.code;
        li.appendChild(el('span', 'code', (d.code ? '[' + d.code + '] ' : '') + 'line ' + (d.line + 1)));
        li.appendChild(document.createTextNode(' ' + d.message + (d.placed.length ? '' : ' (no address on the map)')));
        li.addEventListener('click', () => vscode.postMessage({ type: 'reveal', line: d.line }));
        li.addEventListener('mouseenter', () => d.placed.forEach((p) => map.children[p] && map.children[p].classList.add('hilite')));
        li.addEventListener('mouseleave', () => d.placed.forEach((p) => map.children[p] && map.children[p].classList.remove('hilite')));
        ul.appendChild(li);
      });
      sec.appendChild(ul);
      app.appendChild(sec);
    }

    function worst(list) {
      const order = ['error', 'warning', 'information', 'hint'];
      return list.map((i) => diags[i].severity).sort((a, b) => order.indexOf(a) - order.indexOf(b))[0];
    }
  }

  window.addEventListener('message', (ev) => {
    const m = ev.data;
    if (m && m.type === 'render') {
      render(m.model, m.file);
      app.dataset.rendered = String(Number(app.dataset.rendered || 0) + 1);
    } else if (m && m.type === 'error') {
      const old = app.querySelector('.render-error');
      if (old) old.remove();
      const p = el('p', 'render-error', 'memfabric: ' + m.message);
      app.prepend(p);
    }
  });
  vscode.postMessage({ type: 'ready' });
})();
