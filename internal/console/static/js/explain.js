// The decision explainer, who-can and what-can. Every allowed/denied shown
// here is the API's answer (/v1/check with explain, /v1/list-memberships,
// /v1/list-resources); the page only draws it. Where the API does not say
// why (a denial's missing grant), the page draws an explanation from
// public reads and labels it as such.

import { h, clear } from './dom.js';
import { resourceRef } from './api.js';
import { decodeJWT } from './jwt.js';

/** What each denial code means, in words for support staff. */
const CAUSES = {
  no_grant: 'no role containing the permission is assigned to the membership (or its groups) on the resource or on any resource above it',
  membership_inactive: 'the membership is not active: its roles grant nothing',
  unknown_membership: 'the membership does not exist',
  no_membership: 'the subject names no membership',
  unknown_resource: 'no such resource for this subject: it does not exist, or it belongs to another organization (the answer is the same by design)',
  unknown_permission: 'no such permission',
  token_membership_mismatch: "the token's membership is not the one named",
  organization_unavailable: 'the organization is quarantined',
};

export class Explainer {
  constructor(api, tree, els) {
    this.api = api;
    this.tree = tree;
    this.els = els;
  }

  subject() {
    const kind = document.querySelector('input[name=subject-kind]:checked').value;
    if (kind === 'token') return { token: this.els.token.value.trim() };
    return { subject: { organization_membership_id: this.els.membership.value.trim() } };
  }

  /** Runs the check the form describes and draws the answer. */
  async explain() {
    // data-state is "done" once the answer and everything drawn from it
    // are on the page (tests and screen readers wait for it).
    this.els.result.dataset.state = 'working';
    try {
      await this.explainNow();
    } finally {
      this.els.result.dataset.state = 'done';
    }
  }

  async explainNow() {
    const sub = this.subject();
    const permission = this.els.permission.value.trim();
    const resource = resourceRef(this.els.resource.value, this.tree.org);
    const out = clear(this.els.result);
    this.tree.clearMarks('path');
    this.tree.clearMarks('target');
    this.drawToken(sub.token);
    let d;
    try {
      d = await this.api.post('/v1/check', { ...sub, permission, resource, explain: true });
    } catch (err) {
      out.append(h('p', { class: 'error', id: 'decision-error' }, err.message));
      return;
    }
    const reason = d.reason || {};
    const verdict = h('div', { id: 'decision', class: d.allowed ? 'allowed' : 'denied', dataset: { allowed: String(d.allowed), decidedBy: d.decided_by, code: reason.code || '' } },
      h('strong', { class: 'verdict' }, d.allowed ? 'ALLOWED' : 'DENIED'),
      ' ', permission, ' on ', refText(resource),
      h('dl', {},
        h('dt', {}, 'decided_by'), h('dd', { class: 'decided-by' }, d.decided_by),
        h('dt', {}, 'reason'), h('dd', { class: 'code' }, reason.code || ''),
        h('dt', {}, 'message'), h('dd', { class: 'message' }, reason.message || ''),
        reason.role && [h('dt', {}, 'role'), h('dd', { class: 'role' }, reason.role)],
        reason.group && [h('dt', {}, 'group'), h('dd', {}, (reason.group.name || '') + ' (' + reason.group.id + ')')],
        reason.rule && [h('dt', {}, 'rule'), h('dd', {}, reason.rule)],
        h('dt', {}, 'revision'), h('dd', {}, String(d.revision)),
        h('dt', {}, 'decision_id'), h('dd', {}, d.decision_id)));
    out.append(verdict);
    if (sub.token) this.drawVerification(reason);
    if (d.allowed && Array.isArray(reason.path) && reason.path.length) {
      await this.drawPath(reason, permission);
    } else if (!d.allowed) {
      const cause = CAUSES[reason.code] || (reason.code && reason.code.startsWith('token_') ? 'the token was refused' : '') ||
        (d.decided_by === 'extension' ? 'an extension (' + (reason.rule || 'trellis.ext') + ') denied what the roles allow' : '');
      out.append(h('p', { class: 'cause' }, h('strong', {}, 'What is missing: '), cause || reason.code));
      const target = await this.resolve(resource);
      if (target) {
        await this.tree.reveal(target).catch(() => null);
        this.tree.mark(target, 'target', '✗ ' + permission + ' denied here');
        if (reason.code === 'no_grant' && sub.subject) await this.drawMissing(sub.subject.organization_membership_id, permission, target);
      }
    }
    await this.drawEffective(sub, resource);
  }

  /** Draws reason.path, the decision's own grant path, on the tree. */
  async drawPath(reason, permission) {
    const path = reason.path;
    const last = path[path.length - 1].id;
    await this.tree.reveal(last).catch(() => null);
    const via = reason.group ? ' via group ' + (reason.group.name || reason.group.id) : '';
    path.forEach((p, i) => {
      let text = '';
      if (i === 0) text = '← role ' + reason.role + via + ' here';
      if (i === path.length - 1) text = (i === 0 ? text + '; ' : '← ') + permission + (i === 0 ? ' granted here' : ' inherited here');
      this.tree.mark(p.id, 'path', text);
    });
    this.els.result.append(h('div', { class: 'path', id: 'grant-path' },
      h('p', {}, 'Grant path (from the decision, reason.path):'),
      h('ol', {}, path.map((p, i) => h('li', { dataset: { id: p.id } }, p.type + ':' + p.external_id,
        i === 0 ? '  ← role ' + reason.role + via : '')))));
  }

  /**
   * For a no_grant denial, what the membership does hold on the resource
   * and above it: an explanation drawn from public reads (the resource's
   * ancestors, the membership's role assignments and roles, the roles'
   * permissions), not the decision.
   */
  async drawMissing(om, permission, rid) {
    const box = h('div', { class: 'explanation', id: 'missing' },
      h('p', {}, h('em', {}, 'Explanation, drawn from public reads (not the decision):')));
    this.els.result.append(box);
    try {
      const entry = await this.api.document('resources', rid);
      const chain = entry[3];
      const [membership, assignments, roles] = await Promise.all([
        this.api.get('/user_management/organization_memberships/' + encodeURIComponent(om)),
        this.api.get('/authorization/organization_memberships/' + encodeURIComponent(om) + '/role_assignments', { limit: 100 }),
        this.roles(this.tree.org),
      ]);
      const held = new Map(); // rid → [role slug]
      const root = chain[chain.length - 1];
      held.set(root, (membership.roles || []).map((r) => r.slug + ' (organization role)'));
      for (const a of assignments.data) {
        const list = held.get(a.resource.id) || [];
        list.push(a.role.slug + (a.source && a.source.type === 'group' ? ' (via a group)' : ''));
        held.set(a.resource.id, list);
      }
      const rows = chain.map((id) => {
        const slugs = held.get(id) || [];
        const text = slugs.length ? slugs.map((s) => {
          const perms = roles.get(s.split(' ')[0]) || [];
          return s + (perms.includes(permission) ? ' — has ' : ' — lacks ') + permission;
        }).join('; ') : 'no role';
        return h('li', { dataset: { id } }, this.label(id), ': ', text);
      });
      box.append(h('ol', { reversed: true }, rows));
    } catch (err) {
      box.append(h('p', { class: 'error' }, 'could not read the explanation: ' + err.message));
    }
  }

  label(id) {
    const n = this.tree.nodes.get(id);
    return n ? n.r.resource_type_slug + ':' + n.r.external_id : id;
  }

  /** The permissions of every role an organization sees, by slug. */
  async roles(org) {
    const out = new Map();
    const lists = await Promise.all([
      this.api.get('/authorization/roles'),
      org ? this.api.get('/authorization/organizations/' + encodeURIComponent(org) + '/roles').catch(() => ({ data: [] })) : { data: [] },
    ]);
    for (const l of lists) for (const r of l.data) out.set(r.slug, r.permissions || []);
    return out;
  }

  async resolve(ref) {
    if (ref.id) return ref.id;
    const org = ref.organization_id || this.tree.org;
    if (!org) return '';
    return await this.api.document('lookup', org, ref.type, ref.external_id).catch(() => '') || '';
  }

  async drawEffective(sub, resource) {
    try {
      const p = await this.api.post('/v1/effective-permissions', { ...sub, resource });
      this.els.result.append(h('p', { class: 'effective' }, 'Effective permissions here: ',
        p.permissions.length ? p.permissions.join(', ') : 'none'));
    } catch { /* the check above already said what is wrong */ }
  }

  drawToken(token) {
    const box = clear(this.els.tokenInfo);
    if (!token) return;
    const t = decodeJWT(token);
    if (t.error) { box.append(h('p', { class: 'error', id: 'token-error' }, t.error)); return; }
    const c = t.claims;
    const when = (s) => (typeof s === 'number' ? new Date(s * 1000).toISOString() : '—');
    box.append(h('div', { id: 'token-claims' },
      h('p', {}, h('em', {}, 'Decoded (not verified by the page): ')),
      h('dl', {},
        h('dt', {}, 'alg / kid'), h('dd', {}, (t.header.alg || '—') + ' / ' + (t.header.kid || '—')),
        h('dt', {}, 'iss'), h('dd', {}, c.iss || '—'),
        h('dt', {}, 'sub'), h('dd', {}, c.sub || '—'),
        h('dt', {}, 'org_id'), h('dd', {}, c.org_id || '—'),
        h('dt', {}, 'membership'), h('dd', {}, c.organization_membership_id || '—'),
        h('dt', {}, 'role(s)'), h('dd', {}, [c.role, ...(c.roles || [])].filter(Boolean).join(', ') || '—'),
        h('dt', {}, 'permissions'), h('dd', {}, (c.permissions || []).join(', ') || '—'),
        h('dt', {}, 'exp'), h('dd', {}, when(c.exp)))));
  }

  drawVerification(reason) {
    const code = reason.code || '';
    const refused = code.startsWith('token_');
    this.els.tokenInfo.append(h('p', { id: 'token-verification', class: refused ? 'denied' : 'allowed', dataset: { refused: String(refused) } },
      refused ? 'Verification: refused by the server — ' + code + ': ' + (reason.message || '')
        : 'Verification: accepted by the server (the decision was made on its claims).'));
  }

  /** Who can: /v1/list-memberships, all and direct. */
  async who(permission, refText, out) {
    clear(out);
    const resource = resourceRef(refText, this.tree.org);
    try {
      const [all, direct] = await Promise.all([
        this.allPages((cursor) => this.api.post('/v1/list-memberships', { permission, resource, limit: 100, cursor }), 'membership_ids'),
        this.allPages((cursor) => this.api.post('/v1/list-memberships', { permission, resource, direct: true, limit: 100, cursor }), 'membership_ids'),
      ]);
      const d = new Set(direct.ids);
      out.append(h('p', {}, all.ids.length + ' member' + (all.ids.length === 1 ? '' : 's') + ' may ' + permission + ' on ' + refText.trim() +
        (all.truncated ? ' (first pages only)' : '') + ':'));
      out.append(h('table', { id: 'who-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'membership'), h('th', {}, 'access'))),
        h('tbody', {}, all.ids.map((id) => h('tr', { dataset: { id, access: d.has(id) ? 'direct' : 'inherited' } },
          h('td', {}, id), h('td', {}, d.has(id) ? 'direct (assigned here)' : 'inherited (from above)'))))));
    } catch (err) {
      out.append(h('p', { class: 'error' }, err.message));
    }
  }

  /** What can: /v1/list-resources for a membership, highlighted on the tree. */
  async what(om, permission, out) {
    clear(out);
    this.tree.clearMarks('reachable');
    try {
      const res = await this.allPages((cursor) => this.api.post('/v1/list-resources', {
        subject: { organization_membership_id: om }, permission, organization_id: this.tree.org || undefined, limit: 100, cursor,
      }), 'resource_ids');
      let shown = 0;
      for (const id of res.ids) if (this.tree.nodes.has(id)) { this.tree.mark(id, 'reachable', '✓ ' + permission); shown++; }
      out.append(h('p', {}, om + ' may ' + permission + ' on ' + res.ids.length + ' resource' + (res.ids.length === 1 ? '' : 's') +
        (res.truncated ? ' (first pages only)' : '') + '; ' + shown + ' of them are on loaded pages of the tree, highlighted.'));
      const list = h('ul', { id: 'what-list', class: 'results' });
      for (const id of res.ids.slice(0, 100)) {
        const btn = h('button', { type: 'button', class: 'link', dataset: { id } }, this.label(id));
        btn.addEventListener('click', async () => {
          await this.tree.reveal(id).catch(() => null);
          this.tree.mark(id, 'reachable', '✓ ' + permission);
          this.tree.select(id);
        });
        list.append(h('li', {}, btn));
      }
      out.append(list);
    } catch (err) {
      out.append(h('p', { class: 'error' }, err.message));
    }
  }

  /** Follows next_cursor up to 10 pages. */
  async allPages(fetchPage, field) {
    const ids = [];
    let cursor;
    for (let i = 0; i < 10; i++) {
      const p = await fetchPage(cursor);
      ids.push(...(p[field] || []));
      cursor = p.next_cursor;
      if (!cursor) return { ids, truncated: false };
    }
    return { ids, truncated: true };
  }
}

function refText(ref) {
  return ref.id || ref.type + ':' + ref.external_id;
}
