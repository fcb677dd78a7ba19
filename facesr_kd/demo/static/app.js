// facesr_kd demo page: sends each chosen photo to POST api/restore and shows what comes back.
// Plain JavaScript, no library, nothing loaded from elsewhere. Results live only in this tab.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $('form');
  const filesInput = $('files');
  const statusLine = $('status');
  const results = $('results');
  const submit = $('submit');
  let maxBodyBytes = 50e6;
  let objectUrls = [];
  let run = 0;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === 'text') node.textContent = value;
      else if (key === 'className') node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }

  // data:image/png;base64,... -> a blob: URL (downloads of long data: URLs fail in some browsers).
  function blobUrl(dataUrl) {
    const comma = dataUrl.indexOf(',');
    const type = dataUrl.slice(5, dataUrl.indexOf(';'));
    const bytes = atob(dataUrl.slice(comma + 1));
    const buf = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) buf[i] = bytes.charCodeAt(i);
    const url = URL.createObjectURL(new Blob([buf], { type }));
    objectUrls.push(url);
    return url;
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? '' : 's'}`;
  }

  function megabytes(n) {
    const mb = n / 1e6;
    return `${mb >= 10 ? mb.toFixed(0) : mb.toFixed(1)} MB`;
  }

  function figure(src, caption, className, alt) {
    return el('figure', { className }, [el('img', { src, alt, loading: 'lazy' }), el('figcaption', { text: caption })]);
  }

  function errorCard(name, reason) {
    return el('article', { className: 'result error', 'data-status': 'error', 'data-name': name }, [
      el('h2', { text: name }),
      el('p', { className: 'error-message', text: reason }),
    ]);
  }

  function resultCard(r) {
    const outUrl = blobUrl(r.output.url);
    const card = el('article', { className: 'result', 'data-status': 'ok', 'data-name': r.name,
      'data-faces': String(r.faces) });
    const what = r.aligned ? 'face crop' : `\u00d7${r.upscale}`;
    card.appendChild(el('h2', {}, [
      el('span', { className: 'name', text: r.name }),
      el('span', { className: 'badge face-count', text: r.aligned ? 'aligned crop' : `${plural(r.faces, 'face')} found` }),
    ]));
    if (r.message) card.appendChild(el('p', { className: 'message', text: r.message }));
    for (const note of r.notes || []) card.appendChild(el('p', { className: 'message', text: note }));
    card.appendChild(el('div', { className: 'pair whole' }, [
      figure(blobUrl(r.input.url), `input ${r.input.width}\u00d7${r.input.height}`, 'input', `${r.name}: input`),
      figure(outUrl, `result ${r.output.width}\u00d7${r.output.height} (${what})`, 'output', `${r.name}: result`),
    ]));
    const secs = r.seconds || {};
    card.appendChild(el('p', { className: 'actions' }, [
      el('a', { className: 'download button', href: outUrl, download: r.download, text: `Download ${r.download}` }),
      el('span', { className: 'timing',
        text: `detection ${(secs.detect || 0).toFixed(2)} s \u00b7 super-resolution ${(secs.sr || 0).toFixed(2)} s` +
          ` \u00b7 total ${(secs.total || 0).toFixed(2)} s` }),
    ]));
    if (r.crops.length && !r.aligned) {
      const size = r.face_size;
      card.appendChild(el('h3', { text: `Faces: network input ${size.input}\u00d7${size.input} | restored ` +
        `${size.output}\u00d7${size.output}` }));
      const faces = el('div', { className: 'faces' });
      r.crops.forEach((c, i) => {
        faces.appendChild(el('figure', { className: 'face', 'data-index': String(i) }, [
          el('div', { className: 'pair' }, [
            el('img', { className: 'lq', src: blobUrl(c.input), alt: `face ${i}: input` }),
            el('img', { src: blobUrl(c.restored), alt: `face ${i}: restored` }),
          ]),
          el('figcaption', { text: `#${i}` }),
        ]));
      });
      card.appendChild(faces);
    } else if (r.aligned) {
      const c = r.crops[0];
      card.appendChild(el('div', { className: 'faces' }, [
        el('figure', { className: 'face', 'data-index': '0' }, [
          el('div', { className: 'pair' }, [
            el('img', { className: 'lq', src: blobUrl(c.input), alt: 'face: network input' }),
            el('img', { src: outUrl, alt: 'face: restored' }),
          ]),
          el('figcaption', { text: `network input ${r.face_size.input}\u00d7${r.face_size.input} | restored` }),
        ]),
      ]));
    }
    return card;
  }

  async function restoreOne(file, fields, signal) {
    if (file.size > maxBodyBytes) {
      return [errorCard(file.name, `too large to upload: ${megabytes(file.size)}, over the limit of ` +
        `${megabytes(maxBodyBytes)}`)];
    }
    const body = new FormData();
    for (const [key, value] of Object.entries(fields)) body.append(key, value);
    body.append('files', file, file.name);
    let response;
    let payload;
    try {
      response = await fetch('api/restore', { method: 'POST', body, signal });
      payload = await response.json();
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      const status = response ? `HTTP ${response.status}` : 'no answer';
      return [errorCard(file.name, `the server could not be reached or did not answer (${status})`)];
    }
    if (!response.ok || !payload.results) {
      return [errorCard(file.name, payload.error || `refused (HTTP ${response.status})`)];
    }
    return payload.results.map((r) => (r.ok ? resultCard(r) : errorCard(r.name, r.error)));
  }

  let controller = null;

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const files = Array.from(filesInput.files);
    if (!files.length) {
      statusLine.textContent = 'Choose one or more photos first.';
      statusLine.className = 'status warn';
      return;
    }
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = ++run;
    for (const url of objectUrls) URL.revokeObjectURL(url);
    objectUrls = [];
    results.replaceChildren();
    results.removeAttribute('data-done');
    const fields = {
      upscale: $('upscale').value,
      color_fix: $('color_fix').value,
      only_center_face: $('only_center_face').checked ? '1' : '0',
      aligned: $('aligned').checked ? '1' : '0',
    };
    let faces = 0;
    let failed = 0;
    submit.disabled = true;
    statusLine.className = 'status busy';
    try {
      for (let i = 0; i < files.length; i++) {
        statusLine.textContent = `Restoring ${i + 1} of ${files.length}: ${files[i].name}\u2026`;
        const cards = await restoreOne(files[i], fields, controller.signal);
        if (mine !== run) return;
        for (const card of cards) {
          results.appendChild(card);
          if (card.dataset.status === 'ok') faces += Number(card.dataset.faces);
          else failed += 1;
        }
      }
    } catch (err) {
      if (err.name === 'AbortError') return;
      throw err;
    } finally {
      if (mine === run) submit.disabled = false;
    }
    statusLine.className = failed ? 'status warn' : 'status done';
    statusLine.textContent = `Done: ${plural(files.length - failed, 'photo')} restored, ${plural(faces, 'face')}` +
      (failed ? `, ${failed} not restored (see below)` : '') + '.';
    results.setAttribute('data-done', String(mine));
  });

  filesInput.addEventListener('change', () => {
    const n = filesInput.files.length;
    $('chosen').textContent = n === 0 ? 'No file chosen' : n === 1 ? filesInput.files[0].name : `${n} files chosen`;
  });

  const drop = $('drop');
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    if (event.dataTransfer && event.dataTransfer.files.length) {
      filesInput.files = event.dataTransfer.files;
      filesInput.dispatchEvent(new Event('change'));
    }
  });

  function fillSelect(select, values, selected, label) {
    select.replaceChildren(...values.map((v) => {
      const option = el('option', { value: String(v), text: label(v) });
      if (String(v) === String(selected)) option.selected = true;
      return option;
    }));
  }

  fetch('api/info').then((r) => r.json()).then((info) => {
    const m = info.model;
    $('model').textContent = `${m.type} \u00d7${m.scale}: faces ${m.lq_size}\u00d7${m.lq_size} \u2192 ` +
      `${m.out_size}\u00d7${m.out_size} on ${m.device} \u00b7 detector ${info.detector} \u00b7 uploads up to ` +
      `${megabytes(info.max_body_bytes)}`;
    if (info.note) {
      $('note').textContent = info.note;
      $('note').hidden = false;
    }
    maxBodyBytes = info.max_body_bytes;
    fillSelect($('upscale'), info.upscales, info.default_upscale, (v) => `\u00d7${v}`);
    fillSelect($('color_fix'), info.color_fixes, info.default_color_fix, (v) => (v === 'meanstd' ? 'mean / std' : v));
    document.body.setAttribute('data-ready', '1');
  }).catch(() => {
    $('model').textContent = 'The demo server does not answer: is facesr-kd-demo still running?';
  });
})();
