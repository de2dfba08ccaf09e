// The hierarchy browser: an organization's resource tree, loaded lazily,
// one page of children at a time, from the WorkOS-compatible resource list
// (GET /authorization/resources?parent_resource_id=…); on a server without
// a database, which has no such routes, from the data document (the
// children, type and external id of each resource, no names).

import { h, clear, limiter } from './dom.js';

/** Children loaded per page. */
export const PAGE_SIZE = 50;

export class Tree {
  /**
   * @param {import('./api.js').API} api
   * @param {HTMLElement} el the <ul> the tree is drawn in
   * @param {HTMLElement} status where problems are shown
   * @param {(node: object) => void} onSelect
   */
  constructor(api, el, status, onSelect) {
    this.api = api;
    this.el = el;
    this.status = status;
    this.onSelect = onSelect;
    this.nodes = new Map();
    this.counts = limiter(6);
    this.org = '';
    this.fromData = false; // the WorkOS routes answered 501: read the data document
    this.selected = '';
    this.epoch = 0;
  }

  /** Opens organization org: its root, expanded to the first page of its children. */
  async open(org) {
    // A later open (another organization, a refresh) supersedes this one:
    // what its requests answer after that is dropped.
    const epoch = ++this.epoch;
    this.org = org;
    this.api.organization = org;
    this.nodes.clear();
    clear(this.el);
    this.status.textContent = '';
    const doc = await this.api.document('orgs', org);
    if (epoch !== this.epoch) return;
    if (!doc || !doc.root) {
      this.status.textContent = 'organization ' + org + ' is not in the data (or is quarantined)';
      return;
    }
    let root;
    try {
      root = await this.resource(doc.root);
    } catch (err) {
      this.status.textContent = hierarchyProblem(err);
      root = { id: doc.root, resource_type_slug: 'organization', external_id: org, name: '' };
    }
    if (epoch !== this.epoch) return;
    if (this.fromData) this.status.textContent = DATA_NOTE;
    const node = this.add(root, this.el);
    await this.expand(node);
  }

  /**
   * Resource id in the WorkOS shape: from the WorkOS routes, or, once they
   * answered 501 (no database), from the data document, without a name.
   */
  async resource(id) {
    if (!this.fromData) {
      try {
        return await this.api.get('/authorization/resources/' + encodeURIComponent(id));
      } catch (err) {
        if (err.status !== 501) throw err;
        this.fromData = true;
      }
    }
    const entry = await this.api.document('resources', id);
    if (!entry) throw new Error('resource ' + id + ' is not in the data');
    return { id, resource_type_slug: entry[1], external_id: entry[2], name: '' };
  }

  /** The page of node's children after node.after, as the WorkOS list answers it. */
  async childrenPage(node) {
    if (!this.fromData) {
      try {
        return await this.api.get('/authorization/resources', {
          organization_id: this.org, parent_resource_id: node.r.id, limit: PAGE_SIZE, order: 'asc', after: node.after,
        });
      } catch (err) {
        if (err.status !== 501) throw err;
        this.fromData = true;
      }
    }
    // The document lists a resource's children's ids, sorted: one read,
    // then a page of them is shown, each read for its type and external id.
    node.childIds ??= (await this.api.document('children', node.r.id)) || [];
    const start = Number(node.after || 0);
    const ids = node.childIds.slice(start, start + PAGE_SIZE);
    const data = await Promise.all(ids.map((id) => this.resource(id)));
    const next = start + PAGE_SIZE < node.childIds.length ? String(start + PAGE_SIZE) : null;
    return { data, list_metadata: { after: next } };
  }

  /** Adds a row for resource r to list (first when first is set). */
  add(r, list, first = false) {
    const toggle = h('button', { type: 'button', class: 'toggle', 'aria-label': 'expand', 'aria-expanded': 'false' }, '▸');
    const row = h('div', { class: 'row' },
      toggle,
      h('span', { class: 'type' }, r.resource_type_slug),
      h('span', { class: 'ext' }, r.external_id),
      h('span', { class: 'name' }, r.name || ''),
      h('span', { class: 'count', title: 'role assignments on this resource' }),
      h('span', { class: 'mark' }));
    const children = h('ul', { class: 'children', role: 'group' });
    const li = h('li', { class: 'node', role: 'treeitem', dataset: { id: r.id, type: r.resource_type_slug, ext: r.external_id } }, row, children);
    const node = { r, li, row, toggle, children, loaded: false, after: null, expanded: false, more: null, epoch: this.epoch };
    this.nodes.set(r.id, node);
    toggle.addEventListener('click', () => (node.expanded ? this.collapse(node) : this.expand(node)));
    row.addEventListener('click', (ev) => { if (ev.target !== toggle) this.select(r.id); });
    if (first) list.prepend(li); else list.append(li);
    this.count(node);
    return node;
  }

  /** Fills in the number of role assignments on node's resource. */
  count(node) {
    const el = node.row.querySelector('.count');
    if (node.r.resource_type_slug === 'organization') {
      el.textContent = 'org roles';
      el.title = "memberships' organization roles count as assignments on the root";
      return;
    }
    this.counts(() => this.assignmentsPage(node.r.id))
      .then((page) => {
        const n = page.data.length;
        el.textContent = (page.list_metadata && page.list_metadata.after ? n + '+' : String(n)) + (n === 1 ? ' assignment' : ' assignments');
        el.dataset.count = String(n);
      }, () => { el.textContent = '?'; });
  }

  /**
   * The first page of role assignments on resource id: from the WorkOS
   * routes, or the data document's grants (membership → roles) there.
   */
  async assignmentsPage(id) {
    if (!this.fromData) {
      try {
        return await this.api.get('/authorization/resources/' + encodeURIComponent(id) + '/role_assignments', { limit: 100 });
      } catch (err) {
        if (err.status !== 501) throw err;
        this.fromData = true;
      }
    }
    const grants = (await this.api.document('grants', id)) || {};
    const data = Object.entries(grants).flatMap(([om, keys]) => keys.map((k) => ({ organization_membership_id: om, role: { slug: k.split('/').pop() } })));
    return { data, list_metadata: {} };
  }

  async expand(node) {
    node.expanded = true;
    node.toggle.setAttribute('aria-expanded', 'true');
    node.toggle.textContent = '▾';
    node.children.hidden = false;
    if (!node.loaded) await this.loadPage(node);
  }

  collapse(node) {
    node.expanded = false;
    node.toggle.setAttribute('aria-expanded', 'false');
    node.toggle.textContent = '▸';
    node.children.hidden = true;
  }

  /** Loads the next page of node's children. */
  async loadPage(node) {
    if (node.loading) return node.loading;
    node.loading = (async () => {
      try {
        const page = await this.childrenPage(node);
        if (node.epoch !== this.epoch) return;
        node.loaded = true;
        if (node.more) { node.more.remove(); node.more = null; }
        for (const r of page.data) {
          if (!this.nodes.has(r.id)) this.add(r, node.children);
        }
        node.after = page.list_metadata && page.list_metadata.after;
        if (node.after) {
          const btn = h('button', { type: 'button', class: 'more' }, 'more children…');
          btn.addEventListener('click', () => this.loadPage(node));
          node.more = h('li', { class: 'more' }, btn);
          node.children.append(node.more);
        } else if (node.children.children.length === 0) {
          node.children.append(h('li', { class: 'empty' }, 'no children'));
        }
      } catch (err) {
        this.status.textContent = hierarchyProblem(err);
      } finally {
        node.loading = null;
      }
    })();
    return node.loading;
  }

  /** Reloads the first page of every expanded node (after the data changed). */
  async refresh() {
    const expanded = [...this.nodes.values()].filter((n) => n.expanded);
    const marks = this.savedMarks();
    await this.open(this.org);
    for (const n of expanded) {
      const again = this.nodes.get(n.r.id);
      if (again && !again.expanded) await this.expand(again);
    }
    if (this.selected) this.select(this.selected);
    this.restoreMarks(marks);
  }

  /**
   * Shows the resource id in the tree, expanding its ancestors; a resource
   * not on a loaded page is added at the top of its parent's children,
   * flagged as revealed. Returns its node.
   */
  async reveal(id) {
    if (this.nodes.has(id) && this.isVisible(this.nodes.get(id))) return this.nodes.get(id);
    const entry = await this.api.document('resources', id);
    if (!entry) throw new Error('resource ' + id + ' is not in the data');
    const chain = [...entry[3]].reverse(); // root first
    const epoch = this.epoch;
    let parent = this.nodes.get(chain[0]);
    if (!parent) return null;
    for (const cid of chain.slice(1)) {
      if (!parent.expanded) await this.expand(parent);
      let child = this.nodes.get(cid);
      if (!child) {
        const r = await this.resource(cid);
        if (epoch !== this.epoch) return null;
        if (this.nodes.has(cid)) { parent = this.nodes.get(cid); continue; }
        parent.children.querySelector(':scope > li.empty')?.remove();
        child = this.add(r, parent.children, true);
        child.li.classList.add('revealed');
        child.row.title = 'not on a loaded page: shown here to draw the path';
      }
      parent = child;
    }
    return parent;
  }

  isVisible(node) {
    for (let el = node.li.parentElement; el && el !== this.el; el = el.parentElement) {
      if (el.hidden) return false;
    }
    return true;
  }

  select(id) {
    for (const n of this.el.querySelectorAll('.node.selected')) n.classList.remove('selected');
    const node = this.nodes.get(id);
    this.selected = id;
    if (!node) return;
    node.li.classList.add('selected');
    this.onSelect(node);
  }

  /** Removes every drawn mark and highlight of class cls ("path", "reachable"). */
  clearMarks(cls) {
    for (const n of this.nodes.values()) {
      n.li.classList.remove(cls);
      const m = n.row.querySelector('.mark');
      if (m.dataset.kind === cls) { m.textContent = ''; delete m.dataset.kind; }
    }
  }

  /** Marks node id with class cls and, when text is set, a note beside it. */
  mark(id, cls, text) {
    const n = this.nodes.get(id);
    if (!n) return;
    n.li.classList.add(cls);
    if (text) {
      const m = n.row.querySelector('.mark');
      m.textContent = text;
      m.dataset.kind = cls;
    }
  }

  savedMarks() {
    const out = [];
    for (const n of this.nodes.values()) {
      const m = n.row.querySelector('.mark');
      for (const cls of ['path', 'reachable', 'target']) if (n.li.classList.contains(cls)) out.push([n.r.id, cls, m.dataset.kind === cls ? m.textContent : '']);
    }
    return out;
  }

  restoreMarks(marks) {
    for (const [id, cls, text] of marks) this.mark(id, cls, text);
  }
}

/** What the tree says when it reads the data document. */
const DATA_NOTE = 'No database: the tree is read from the data document (ids, types, external ids and role assignments; names need --database-url).';

/** What to tell the user when the resource routes cannot answer. */
export function hierarchyProblem(err) {
  if (err.status === 501) {
    return 'Without a database (--database-url) there is no organization list: name the organization. ' +
      'Its tree is read from the data document, without names.';
  }
  return 'could not load the tree: ' + err.message;
}
