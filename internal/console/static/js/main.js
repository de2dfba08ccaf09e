// The console page: sign-in, organization picker, tree, search, panels,
// and the live revision.

import { API, APIError, storedKey, storeKey, forgetKey } from './api.js';
import { h, clear, $ } from './dom.js';
import { Tree, hierarchyProblem } from './tree.js';
import { Explainer } from './explain.js';

/** How often the page asks for the data revision while Live is on. */
const POLL_MS = 2000;

const state = { api: null, tree: null, explainer: null, revision: null, timer: 0, lastRun: null };

function show(signedIn) {
  $('#signin').hidden = signedIn;
  $('#app').hidden = !signedIn;
  $('#signout').hidden = !signedIn;
}

function newAPI(key) {
  return new API(key, {
    onRevision: setRevision,
    onUnauthorized: () => signOut('The API key was refused (401): sign in again.'),
  });
}

// setRevision shows revision n, the newest any answer carried.
function setRevision(n) {
  if (state.revision !== null && n < state.revision) return;
  const el = $('#revision');
  state.revision = n;
  el.textContent = 'revision ' + n;
  el.dataset.revision = String(n);
}

// flashRevision marks the revision shown as new for a moment.
function flashRevision() {
  const el = $('#revision');
  el.classList.add('changed');
  setTimeout(() => el.classList.remove('changed'), 1500);
}

async function signIn(key) {
  const api = newAPI(key);
  api.hooks.onUnauthorized = null;
  try {
    await api.revision(); // shown by the onRevision hook
  } catch (err) {
    $('#signin-error').textContent = err instanceof APIError && err.status === 401
      ? 'This key is not one of the server\'s API keys (401).' : 'Sign-in failed: ' + err.message;
    return false;
  }
  storeKey(key);
  api.hooks.onUnauthorized = () => signOut('The API key was refused (401): sign in again.');
  state.api = api;
  show(true);
  start();
  return true;
}

function signOut(message) {
  forgetKey();
  clearInterval(state.timer);
  state.api = null;
  state.revision = null;
  $('#revision').textContent = 'revision –';
  show(false);
  $('#signin-error').textContent = message || '';
}

async function start() {
  const api = state.api;
  state.tree = new Tree(api, $('#tree'), $('#tree-status'), showDetails);
  state.explainer = new Explainer(api, state.tree, {
    membership: $('#subject-membership'), token: $('#subject-token'), permission: $('#permission'),
    resource: $('#resource'), result: $('#explain-result'), tokenInfo: $('#token-info'),
  });
  await loadOrganizations();
  loadPermissions();
  live();
}

async function loadOrganizations(after) {
  const sel = $('#org');
  if (!after) clear(sel);
  sel.querySelector('option[value="__more"]')?.remove();
  try {
    const page = await state.api.get('/organizations', { limit: 100, order: 'asc', after });
    for (const o of page.data) sel.append(h('option', { value: o.id }, o.name + ' (' + o.id + ')'));
    if (page.list_metadata && page.list_metadata.after) {
      sel.append(h('option', { value: '__more', dataset: { after: page.list_metadata.after } }, 'more organizations…'));
    }
  } catch (err) {
    // Without a database there is no organization list: name one.
    $('#tree-status').textContent = hierarchyProblem(err);
    $('#org-form').hidden = false;
  }
  if (!after && sel.value && sel.value !== '__more') await openOrganization(sel.value);
}

async function openOrganization(org) {
  clear($('#details')).append(h('p', { class: 'status' }, 'Select a resource in the tree.'));
  clear($('#search-results'));
  const started = performance.now();
  await state.tree.open(org);
  $('#tree').dataset.openedMs = String(Math.round(performance.now() - started));
  loadMemberships(org);
}

async function loadMemberships(org) {
  const list = clear($('#memberships'));
  try {
    const page = await state.api.get('/user_management/organization_memberships', { organization_id: org, limit: 100 });
    for (const m of page.data) list.append(h('option', { value: m.id }, m.user_id + ' · ' + m.status));
  } catch { /* typed by hand without a database */ }
}

async function loadPermissions() {
  const list = clear($('#permissions'));
  try {
    const page = await state.api.get('/authorization/permissions', { limit: 100, order: 'asc' });
    for (const p of page.data) list.append(h('option', { value: p.slug }, p.name || p.slug));
  } catch { /* typed by hand without a database */ }
}

async function showDetails(node) {
  const r = node.r;
  const box = clear($('#details'));
  box.append(h('h2', {}, r.resource_type_slug + ':' + r.external_id),
    h('dl', { id: 'resource-details' },
      h('dt', {}, 'name'), h('dd', {}, r.name || '—'),
      h('dt', {}, 'id'), h('dd', { class: 'id' }, r.id),
      h('dt', {}, 'type'), h('dd', {}, r.resource_type_slug),
      h('dt', {}, 'external id'), h('dd', {}, r.external_id),
      r.description && [h('dt', {}, 'description'), h('dd', {}, r.description)]));
  for (const id of ['#resource', '#who-resource']) $(id).value = r.id;
  if (r.resource_type_slug === 'organization') return;
  const list = h('ul', { class: 'assignments' });
  box.append(h('h3', {}, 'Role assignments here'), list);
  try {
    const page = await state.tree.assignmentsPage(r.id);
    if (!page.data.length) list.append(h('li', { class: 'status' }, 'none'));
    for (const a of page.data) list.append(h('li', {}, a.role.slug + ' → ' + a.organization_membership_id));
  } catch (err) {
    list.append(h('li', { class: 'error' }, err.message));
  }
}

async function search(term) {
  const out = clear($('#search-results'));
  term = term.trim();
  if (!term) return;
  const org = state.tree.org;
  const found = new Map();
  const tries = [];
  tries.push(state.api.get('/authorization/resources', { organization_id: org, search: term, limit: 20 })
    .then((p) => p.data.forEach((r) => found.set(r.id, r))).catch(() => {}));
  // An external id is unique per type: look it up under each type (without
  // a database, each type the tree shows).
  const types = await state.api.get('/authorization/resource_types', { limit: 100 }).then((p) => p.data.map((t) => t.slug))
    .catch(() => [...new Set([...state.tree.nodes.values()].map((n) => n.r.resource_type_slug))]);
  const colon = term.indexOf(':');
  const pairs = colon > 0 ? [[term.slice(0, colon), term.slice(colon + 1)]] : types.map((t) => [t, term]);
  for (const [type, ext] of pairs) {
    tries.push(state.api.document('lookup', org, type, ext)
      .then((id) => id && state.tree.resource(id)).then((r) => r && found.set(r.id, r)).catch(() => {}));
  }
  await Promise.all(tries);
  if (!found.size) { out.append(h('li', { class: 'status' }, 'nothing in ' + org + ' has that external id or a name containing it')); return; }
  for (const r of found.values()) {
    const btn = h('button', { type: 'button', class: 'link', dataset: { id: r.id } }, r.resource_type_slug + ':' + r.external_id + ' — ' + (r.name || ''));
    btn.addEventListener('click', async () => {
      await state.tree.reveal(r.id);
      state.tree.select(r.id);
    });
    out.append(h('li', {}, btn));
  }
}

function live() {
  clearInterval(state.timer);
  state.seen = state.revision === null ? undefined : state.revision;
  if (!$('#live').checked || !state.api) return;
  state.timer = setInterval(async () => {
    if (!state.api) return;
    // Read before asking: every answer's revision updates state.revision.
    const before = state.seen;
    let n;
    try { n = await state.api.revision(); } catch { return; }
    state.seen = n;
    if (before !== undefined && n > before) {
      flashRevision();
      await state.tree.refresh();
      if (state.lastRun) await state.lastRun();
    }
  }, POLL_MS);
}

function tabs() {
  for (const b of document.querySelectorAll('[role=tab]')) {
    b.addEventListener('click', () => {
      for (const o of document.querySelectorAll('[role=tab]')) o.setAttribute('aria-selected', String(o === b));
      for (const t of document.querySelectorAll('.tab')) t.hidden = t.id !== 'tab-' + b.dataset.tab;
    });
  }
}

function wire() {
  tabs();
  $('#signin-form').addEventListener('submit', (ev) => { ev.preventDefault(); signIn($('#api-key').value.trim()); });
  $('#signout').addEventListener('click', () => signOut(''));
  $('#live').addEventListener('change', live);
  $('#org').addEventListener('change', (ev) => {
    const opt = ev.target.selectedOptions[0];
    if (opt && opt.value === '__more') loadOrganizations(opt.dataset.after);
    else openOrganization(ev.target.value);
  });
  $('#org-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('#org-id').value.trim();
    if (id) openOrganization(id);
  });
  $('#search-form').addEventListener('submit', (ev) => { ev.preventDefault(); search($('#search').value); });
  for (const r of document.querySelectorAll('input[name=subject-kind]')) {
    r.addEventListener('change', () => {
      const token = document.querySelector('input[name=subject-kind]:checked').value === 'token';
      $('#subject-token').hidden = !token;
      $('#subject-membership').hidden = token;
    });
  }
  $('#explain-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.lastRun = () => state.explainer.explain();
    state.lastRun();
  });
  $('#who-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.lastRun = () => state.explainer.who($('#who-permission').value.trim(), $('#who-resource').value, $('#who-result'));
    state.lastRun();
  });
  $('#what-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.lastRun = () => state.explainer.what($('#what-membership').value.trim(), $('#what-permission').value.trim(), $('#what-result'));
    state.lastRun();
  });
}

wire();
const key = storedKey();
if (key) signIn(key); else show(false);
