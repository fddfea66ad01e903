(() => {
  const FIELDS = __FIELDS__;
  const grid = document.getElementById('grid');
  const cards = Array.from(grid.querySelectorAll('.card'));
  const total = cards.length;
  const q = document.getElementById('q');
  const sortSel = document.getElementById('sort');
  const count = document.getElementById('count');
  const empty = document.getElementById('empty');
  const dlg = document.getElementById('viewer');
  const img = document.getElementById('viewer-img');
  const sel = {};
  let current = null;

  function boxes(f) { return document.querySelectorAll('input[data-field="' + f + '"]'); }

  function readUrl() {
    const p = new URLSearchParams(location.search);
    for (const f of FIELDS) {
      const vals = p.getAll(f).flatMap(v => v.split(',')).map(v => v.trim().toLowerCase()).filter(Boolean);
      sel[f] = new Set(vals);
      for (const b of boxes(f)) b.checked = sel[f].has(b.value.toLowerCase());
    }
    q.value = p.get('q') || '';
    const s = p.get('sort');
    if (s && Array.from(sortSel.options).some(o => o.value === s)) sortSel.value = s;
    return p.get('open');
  }

  function writeUrl() {
    const p = new URLSearchParams();
    for (const f of FIELDS) if (sel[f].size) p.set(f, Array.from(sel[f]).join(','));
    if (q.value.trim()) p.set('q', q.value.trim());
    if (sortSel.value !== sortSel.options[0].value) p.set('sort', sortSel.value);
    if (current) p.set('open', current.dataset.stem);
    const qs = p.toString();
    try { history.replaceState(null, '', qs ? '?' + qs : location.pathname); } catch (e) { /* file: URLs */ }
  }

  function apply() {
    const terms = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    let n = 0;
    for (const c of cards) {
      let ok = true;
      for (const f of FIELDS) {
        if (sel[f].size && !sel[f].has((c.dataset[f] || '').toLowerCase())) { ok = false; break; }
      }
      if (ok && terms.length) ok = terms.every(t => c.dataset.search.includes(t));
      c.hidden = !ok;
      if (ok) n++;
    }
    count.textContent = n + ' of ' + total + ' images';
    empty.hidden = n > 0;
    for (const f of FIELDS) {
      const chosen = Array.from(boxes(f)).filter(b => b.checked).map(b => b.value);
      const extra = Array.from(sel[f]).filter(v => !Array.from(boxes(f)).some(b => b.value.toLowerCase() === v));
      const all = chosen.concat(extra);
      document.getElementById('chosen-' + f).textContent = all.length ? all.join(', ') : 'all';
    }
  }

  function sortCards() {
    let key = sortSel.value, dir = 1;
    if (key.startsWith('-')) { dir = -1; key = key.slice(1); }
    const val = c => c.dataset[key] || '';
    const numeric = cards.every(c => val(c) === '' || !isNaN(Number(val(c))));
    const sorted = cards.slice().sort((a, b) => {
      const x = val(a), y = val(b);
      if (x === '' || y === '') return (x === '') - (y === '') || a.dataset.stem.localeCompare(b.dataset.stem);
      const d = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return dir * d || a.dataset.stem.localeCompare(b.dataset.stem);
    });
    for (const c of sorted) grid.appendChild(c);
  }

  function show(c) {
    if (!c) return;
    current = c;
    img.src = c.dataset.overlay;
    img.alt = 'overlay of ' + c.dataset.stem;
    document.getElementById('viewer-stem').textContent = c.dataset.stem;
    document.getElementById('viewer-meta').innerHTML = c.querySelector('.meta').innerHTML;
    document.getElementById('viewer-panels').hidden = c.dataset.prediction !== '1';
    if (!dlg.open) dlg.showModal();
    writeUrl();
  }

  function step(d) {
    if (!current) return;
    const visible = Array.from(grid.children).filter(c => c.classList.contains('card') && !c.hidden);
    const i = visible.indexOf(current);
    if (visible.length) show(visible[(i + d + visible.length) % visible.length]);
  }

  for (const f of FIELDS) for (const b of boxes(f)) b.addEventListener('change', () => {
    sel[f] = new Set(Array.from(boxes(f)).filter(x => x.checked).map(x => x.value.toLowerCase()));
    apply(); writeUrl();
  });
  q.addEventListener('input', () => { apply(); writeUrl(); });
  sortSel.addEventListener('change', () => { sortCards(); writeUrl(); });
  document.getElementById('reset').addEventListener('click', () => {
    for (const f of FIELDS) { sel[f] = new Set(); for (const b of boxes(f)) b.checked = false; }
    q.value = ''; sortSel.selectedIndex = 0; sortCards(); apply(); writeUrl();
  });
  grid.addEventListener('click', e => { const c = e.target.closest('.card'); if (c) show(c); });
  grid.addEventListener('keydown', e => {
    const c = e.target.closest('.card');
    if (c && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); show(c); }
  });
  document.getElementById('prev').addEventListener('click', () => step(-1));
  document.getElementById('next').addEventListener('click', () => step(1));
  document.getElementById('close').addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => { if (current) current.focus(); current = null; writeUrl(); });
  dlg.addEventListener('keydown', e => {
    if (e.key === 'ArrowLeft') step(-1);
    if (e.key === 'ArrowRight') step(1);
  });
  document.addEventListener('click', e => {
    for (const d of document.querySelectorAll('details.filter[open]')) if (!d.contains(e.target)) d.open = false;
  });

  const open = readUrl();
  sortCards();
  apply();
  if (open) show(cards.find(c => c.dataset.stem === open));
  document.body.dataset.ready = '1';
})();
