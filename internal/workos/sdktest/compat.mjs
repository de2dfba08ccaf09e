// compat.mjs drives a running Trellis with the unmodified official WorkOS
// Node SDK (@workos-inc/node, pinned in package.json) and asserts every
// answer. It exits 0 when everything matched, 1 with a message naming the
// first mismatch otherwise.
//
//   TRELLIS_URL=http://127.0.0.1:8080 TRELLIS_API_KEY=sk_… node compat.mjs
//
// The SDK is pointed at Trellis with its documented constructor options
// (apiHostname, port, https). It expects an empty Trellis (or at least no
// resource types, permissions or roles with the slugs below).
import assert from 'node:assert/strict';
import {
  WorkOS,
  NotFoundException,
  ConflictException,
  UnauthorizedException,
  UnprocessableEntityException,
} from '@workos-inc/node';

const base = new URL(process.env.TRELLIS_URL ?? fail('TRELLIS_URL is not set'));
const apiKey = process.env.TRELLIS_API_KEY ?? fail('TRELLIS_API_KEY is not set');
const options = {
  apiHostname: base.hostname,
  port: base.port ? Number(base.port) : undefined,
  https: base.protocol === 'https:',
  maxRetries: 0,
};
const workos = new WorkOS(apiKey, options);

// used records every SDK method the script calls, counted at the end.
const used = new Set();
function tracked(name, target) {
  return new Proxy(target, {
    get(t, prop) {
      const v = t[prop];
      if (typeof v !== 'function') return v;
      return (...args) => { used.add(`${name}.${String(prop)}`); return v.apply(t, args); };
    },
  });
}
const authz = tracked('authorization', workos.authorization);
const organizations = tracked('organizations', workos.organizations);
const userManagement = tracked('userManagement', workos.userManagement);
const groups = tracked('groups', workos.groups);

function fail(msg) {
  console.error(`compat: ${msg}`);
  process.exit(1);
}

let step = '';
async function run(name, fn) {
  step = name;
  await fn();
  console.log(`ok   ${name}`);
}

// expectError runs fn and requires it to throw an instance of cls.
async function expectError(cls, fn) {
  try {
    await fn();
  } catch (err) {
    if (err instanceof cls) return err;
    throw new Error(`expected ${cls.name}, got ${err?.name}: ${err?.message}`);
  }
  throw new Error(`expected ${cls.name}, but the call succeeded`);
}

const sorted = (xs) => [...xs].sort();
const idsOf = (list) => list.data.map((x) => x.id);

try {
  const ids = {};

  await run('resource types (Trellis extension, through the SDK client)', async () => {
    // WorkOS manages resource types in its dashboard; Trellis adds an API
    // in the same style, called here with the SDK's own HTTP client.
    const { data: ws } = await workos.post('/authorization/resource_types', {
      slug: 'workspace', name: 'Workspace', parent_type_slugs: ['organization'],
    });
    assert.equal(ws.object, 'resource_type');
    await workos.post('/authorization/resource_types', {
      slug: 'project', name: 'Project', parent_type_slugs: ['workspace'],
    });
  });

  await run('permissions', async () => {
    const p = await authz.createPermission({ slug: 'org:read', name: 'Read the organization' });
    assert.equal(p.object, 'permission');
    assert.match(p.id, /^perm_/);
    assert.equal(p.resourceTypeSlug, 'organization');
    assert.equal(p.system, false);
    assert.equal(p.description, null);
    await authz.createPermission({ slug: 'workspace:view', name: 'View workspace', resourceTypeSlug: 'workspace' });
    await authz.createPermission({ slug: 'project:view', name: 'View project', resourceTypeSlug: 'project' });
    await authz.createPermission({ slug: 'project:edit', name: 'Edit project', resourceTypeSlug: 'project', description: 'Change it' });
    const got = await authz.getPermission('project:edit');
    assert.equal(got.description, 'Change it');
    const upd = await authz.updatePermission('project:edit', { name: 'Edit a project' });
    assert.equal(upd.name, 'Edit a project');
    const all = await (await authz.listPermissions()).autoPagination();
    assert.deepEqual(sorted(all.map((p) => p.slug)), ['org:read', 'project:edit', 'project:view', 'workspace:view']);
    await expectError(ConflictException, () => authz.createPermission({ slug: 'org:read', name: 'again' }));
  });

  await run('environment roles', async () => {
    const r = await authz.createEnvironmentRole({ slug: 'org-member', name: 'Member' });
    assert.equal(r.type, 'EnvironmentRole');
    assert.equal(r.resourceTypeSlug, 'organization');
    assert.deepEqual(r.permissions, []);
    const set = await authz.setEnvironmentRolePermissions('org-member', { permissions: ['org:read'] });
    assert.deepEqual(set.permissions, ['org:read']);
    await authz.createEnvironmentRole({ slug: 'workspace-admin', name: 'Workspace admin', resourceTypeSlug: 'workspace' });
    await authz.setEnvironmentRolePermissions('workspace-admin', { permissions: ['workspace:view', 'project:view', 'project:edit'] });
    await authz.createEnvironmentRole({ slug: 'project-viewer', name: 'Project viewer', resourceTypeSlug: 'project' });
    const added = await authz.addEnvironmentRolePermission('project-viewer', { permissionSlug: 'project:view' });
    assert.deepEqual(added.permissions, ['project:view']);
    const upd = await authz.updateEnvironmentRole('project-viewer', { description: 'Reads projects' });
    assert.equal(upd.description, 'Reads projects');
    assert.equal((await authz.getEnvironmentRole('workspace-admin')).permissions.length, 3);
    const list = await authz.listEnvironmentRoles();
    assert.deepEqual(list.data.map((r) => r.slug), ['org-member', 'workspace-admin', 'project-viewer']);
    // Priority order (a Trellis extension, through the SDK client): the
    // list follows it; put back as it was for the steps below.
    const order = async (slugs) => workos.put('/authorization/roles/priority', { role_slugs: slugs });
    await order(['project-viewer', 'org-member', 'workspace-admin']);
    assert.deepEqual((await authz.listEnvironmentRoles()).data.map((r) => r.slug), ['project-viewer', 'org-member', 'workspace-admin']);
    await order(['org-member', 'workspace-admin', 'project-viewer']);
    // The type rule: a project role may not hold a workspace permission.
    await expectError(UnprocessableEntityException, () =>
      authz.addEnvironmentRolePermission('project-viewer', { permissionSlug: 'workspace:view' }));
  });

  await run('organizations', async () => {
    const org = await organizations.createOrganization({ name: 'Acme', externalId: 'acme-sdk',
      domainData: [{ domain: 'acme-sdk.example', state: 'verified' }], metadata: { tier: 'gold' } });
    assert.equal(org.object, 'organization');
    assert.match(org.id, /^org_/);
    assert.equal(org.domains.length, 1);
    const [domain] = org.domains;
    assert.equal(domain.object, 'organization_domain');
    assert.match(domain.id, /^org_domain_/);
    assert.deepEqual([domain.domain, domain.state, domain.organizationId, domain.verificationStrategy],
      ['acme-sdk.example', 'verified', org.id, 'manual']);
    assert.equal(org.stripeCustomerId, undefined);
    assert.equal(org.externalId, 'acme-sdk');
    assert.deepEqual(org.metadata, { tier: 'gold' });
    ids.org = org.id;
    assert.equal((await organizations.getOrganization(org.id)).name, 'Acme');
    assert.equal((await organizations.getOrganizationByExternalId('acme-sdk')).id, org.id);
    const upd = await organizations.updateOrganization({ organization: org.id, name: 'Acme Inc', stripeCustomerId: 'cus_sdk' });
    assert.equal(upd.name, 'Acme Inc');
    assert.equal(upd.stripeCustomerId, 'cus_sdk');
    assert.deepEqual(upd.domains.map((d) => d.id), [domain.id]);
    assert.deepEqual(idsOf(await organizations.listOrganizations({ domains: ['acme-sdk.example'] })), [org.id]);
    await expectError(ConflictException, () =>
      organizations.createOrganization({ name: 'Copycat', domainData: [{ domain: 'acme-sdk.example', state: 'pending' }] }));
    const list = await organizations.listOrganizations({ limit: 10 });
    assert.ok(idsOf(list).includes(org.id));
    const missing = await expectError(NotFoundException, () => organizations.getOrganization('org_missing'));
    // Every response carries X-Request-ID, which the SDK reports.
    assert.match(missing.requestID, /^req_[0-9a-f]{32}$/);
    assert.match(missing.message, /org_missing/);
  });

  await run('organization roles', async () => {
    const r = await authz.createOrganizationRole(ids.org, { slug: 'org-billing', name: 'Billing' });
    assert.equal(r.type, 'OrganizationRole');
    await authz.addOrganizationRolePermission(ids.org, 'org-billing', { permissionSlug: 'org:read' });
    await authz.removeOrganizationRolePermission(ids.org, 'org-billing', { permissionSlug: 'org:read' });
    const set = await authz.setOrganizationRolePermissions(ids.org, 'org-billing', { permissions: ['org:read'] });
    assert.deepEqual(set.permissions, ['org:read']);
    assert.equal((await authz.updateOrganizationRole(ids.org, 'org-billing', { name: 'Billing admin' })).name, 'Billing admin');
    const list = await authz.listOrganizationRoles(ids.org);
    assert.deepEqual(list.data.map((r) => [r.slug, r.type]), [
      ['org-member', 'EnvironmentRole'], ['workspace-admin', 'EnvironmentRole'],
      ['project-viewer', 'EnvironmentRole'], ['org-billing', 'OrganizationRole'],
    ]);
    assert.equal((await authz.getOrganizationRole(ids.org, 'org-member')).type, 'EnvironmentRole');
  });

  await run('organization memberships', async () => {
    const alice = await userManagement.createOrganizationMembership({ organizationId: ids.org, userId: 'user_alice', roleSlug: 'org-member' });
    assert.equal(alice.object, 'organization_membership');
    assert.match(alice.id, /^om_/);
    assert.equal(alice.status, 'active');
    assert.deepEqual(alice.role, { slug: 'org-member' });
    assert.equal(alice.organizationName, 'Acme Inc');
    ids.alice = alice.id;
    const bob = await userManagement.createOrganizationMembership({ organizationId: ids.org, userId: 'user_bob', roleSlugs: ['org-member', 'org-billing'] });
    assert.deepEqual(bob.roles, [{ slug: 'org-member' }, { slug: 'org-billing' }]);
    ids.bob = bob.id;
    const carol = await userManagement.createOrganizationMembership({ organizationId: ids.org, userId: 'user_carol', roleSlug: 'org-member' });
    ids.carol = carol.id;
    assert.equal((await userManagement.deactivateOrganizationMembership(carol.id)).status, 'inactive');
    const inactive = await userManagement.listOrganizationMemberships({ organizationId: ids.org, statuses: ['inactive'] });
    assert.deepEqual(idsOf(inactive), [carol.id]);
    assert.equal((await userManagement.reactivateOrganizationMembership(carol.id)).status, 'active');
    const upd = await userManagement.updateOrganizationMembership(bob.id, { roleSlug: 'org-member' });
    assert.deepEqual(upd.roles, [{ slug: 'org-member' }]);
    // The default role (a Trellis extension to set; WorkOS sets it in its
    // dashboard): a membership without roles, or left with none, gets it.
    await workos.put('/authorization/default_role', { role_slug: 'org-member' });
    const dana = await userManagement.createOrganizationMembership({ organizationId: ids.org, userId: 'user_dana' });
    assert.deepEqual(dana.role, { slug: 'org-member' }, 'a membership created without roles has the default role');
    const none = await userManagement.updateOrganizationMembership(bob.id, { roleSlugs: [] });
    assert.deepEqual(none.roles, [{ slug: 'org-member' }], 'a membership left without roles has the default role');
    await userManagement.deleteOrganizationMembership(dana.id);
    assert.equal((await userManagement.getOrganizationMembership(alice.id)).userId, 'user_alice');
    const all = await (await userManagement.listOrganizationMemberships({ organizationId: ids.org })).autoPagination();
    assert.deepEqual(sorted(all.map((m) => m.id)), sorted([alice.id, bob.id, carol.id]));
    await expectError(ConflictException, () =>
      userManagement.createOrganizationMembership({ organizationId: ids.org, userId: 'user_alice' }));
  });

  await run('resource tree', async () => {
    const eng = await authz.createResource({ organizationId: ids.org, resourceTypeSlug: 'workspace', externalId: 'eng', name: 'Engineering' });
    assert.equal(eng.object, 'authorization_resource');
    assert.match(eng.id, /^authz_resource_/);
    assert.equal(eng.parentResourceId, null);
    ids.eng = eng.id;
    ids.ops = (await authz.createResource({ organizationId: ids.org, resourceTypeSlug: 'workspace', externalId: 'ops', name: 'Operations', description: null })).id;
    const web = await authz.createResource({
      organizationId: ids.org, resourceTypeSlug: 'project', externalId: 'web', name: 'Web',
      parentResourceExternalId: 'eng', parentResourceTypeSlug: 'workspace',
    });
    assert.equal(web.parentResourceId, eng.id);
    ids.web = web.id;
    ids.api = (await authz.createResource({ organizationId: ids.org, resourceTypeSlug: 'project', externalId: 'api', name: 'API', parentResourceId: eng.id })).id;
    assert.equal((await authz.getResource(web.id)).externalId, 'web');
    const byExt = await authz.getResourceByExternalId({ organizationId: ids.org, resourceTypeSlug: 'project', externalId: 'web' });
    assert.equal(byExt.id, web.id);
    const upd = await authz.updateResource({ resourceId: web.id, name: 'Website', description: 'The site' });
    assert.equal(upd.name, 'Website');
    assert.equal(upd.description, 'The site');
    const upd2 = await authz.updateResourceByExternalId({ organizationId: ids.org, resourceTypeSlug: 'project', externalId: 'web', name: 'Web' });
    assert.equal(upd2.name, 'Web');
    const children = await authz.listResources({ organizationId: ids.org, parentResourceId: eng.id });
    assert.deepEqual(sorted(idsOf(children)), sorted([ids.web, ids.api]));
    const byParentExt = await authz.listResources({ organizationId: ids.org, parentResourceTypeSlug: 'workspace', parentExternalId: 'eng' });
    assert.deepEqual(sorted(idsOf(byParentExt)), sorted([ids.web, ids.api]));
    const workspaces = await authz.listResources({ organizationId: ids.org, resourceTypeSlug: 'workspace', order: 'asc' });
    assert.deepEqual(idsOf(workspaces), [ids.eng, ids.ops]);
    const page1 = await authz.listResources({ organizationId: ids.org, limit: 2 });
    assert.equal(page1.data.length, 2);
    assert.ok(page1.listMetadata.after, 'a first page of 2 of 4 resources has an after cursor');
    const page2 = await authz.listResources({ organizationId: ids.org, limit: 2, after: page1.listMetadata.after });
    assert.deepEqual(sorted([...idsOf(page1), ...idsOf(page2)]), sorted([ids.eng, ids.ops, ids.web, ids.api]));
    await expectError(ConflictException, () =>
      authz.createResource({ organizationId: ids.org, resourceTypeSlug: 'workspace', externalId: 'eng', name: 'dup' }));
    await expectError(UnprocessableEntityException, () =>
      authz.createResource({ organizationId: ids.org, resourceTypeSlug: 'project', externalId: 'orphan', name: 'Orphan' }));
    await expectError(NotFoundException, () => authz.getResource('authz_resource_missing'));
  });

  await run('role assignments', async () => {
    const a = await authz.assignRole({ organizationMembershipId: ids.alice, roleSlug: 'workspace-admin', resourceId: ids.eng });
    assert.equal(a.object, 'role_assignment');
    assert.deepEqual(a.resource, { id: ids.eng, externalId: 'eng', resourceTypeSlug: 'workspace' });
    assert.deepEqual(a.source, { type: 'direct', groupRoleAssignmentId: null });
    ids.aliceOnEng = a.id;
    const b = await authz.assignRole({ organizationMembershipId: ids.bob, roleSlug: 'project-viewer', resourceExternalId: 'web', resourceTypeSlug: 'project' });
    assert.equal(b.resource.id, ids.web);
    await authz.assignRole({ organizationMembershipId: ids.carol, roleSlug: 'project-viewer', resourceId: ids.api });
    const alices = await authz.listRoleAssignments({ organizationMembershipId: ids.alice });
    assert.deepEqual(idsOf(alices), [a.id]);
    const onWeb = await authz.listRoleAssignmentsForResource({ resourceId: ids.web, roleSlug: 'project-viewer' });
    assert.deepEqual(onWeb.data.map((x) => x.organizationMembershipId), [ids.bob]);
    const onWebExt = await authz.listResourceRoleAssignments({ organizationId: ids.org, resourceTypeSlug: 'project', externalId: 'web' });
    assert.deepEqual(idsOf(onWebExt), [b.id]);
    await expectError(UnprocessableEntityException, () =>
      authz.assignRole({ organizationMembershipId: ids.bob, roleSlug: 'project-viewer', resourceId: ids.eng }));
  });

  await run('check', async () => {
    const cases = [
      [ids.alice, 'project:edit', { resourceId: ids.web }, true],
      [ids.alice, 'project:edit', { resourceExternalId: 'web', resourceTypeSlug: 'project' }, true],
      [ids.alice, 'org:read', { resourceId: ids.ops }, true],
      [ids.alice, 'project:edit', { resourceId: ids.ops }, false],
      [ids.bob, 'project:view', { resourceId: ids.web }, true],
      [ids.bob, 'project:edit', { resourceId: ids.web }, false],
      [ids.bob, 'project:view', { resourceId: ids.api }, false],
    ];
    for (const [om, perm, res, want] of cases) {
      const got = await authz.check({ organizationMembershipId: om, permissionSlug: perm, ...res });
      assert.deepEqual(got, { authorized: want }, `check ${om} ${perm} ${JSON.stringify(res)}`);
    }
    await expectError(NotFoundException, () =>
      authz.check({ organizationMembershipId: 'om_missing', permissionSlug: 'project:edit', resourceId: ids.web }));
  });

  await run('listResourcesForMembership', async () => {
    const res = await authz.listResourcesForMembership({ organizationMembershipId: ids.alice, permissionSlug: 'project:edit', parentResourceId: ids.eng });
    assert.deepEqual(sorted(idsOf(res)), sorted([ids.web, ids.api]));
    assert.equal(res.data[0].object, 'authorization_resource');
    const bobs = await authz.listResourcesForMembership({
      organizationMembershipId: ids.bob, permissionSlug: 'project:view', parentResourceExternalId: 'eng', parentResourceTypeSlug: 'workspace',
    });
    assert.deepEqual(idsOf(bobs), [ids.web]);
    const all = await (await authz.listResourcesForMembership({ organizationMembershipId: ids.alice, permissionSlug: 'project:view', parentResourceId: ids.eng })).autoPagination();
    assert.deepEqual(sorted(all.map((r) => r.id)), sorted([ids.web, ids.api]));
    // Resources of the permission's type, under the parent at any depth:
    // the projects two levels below the root, not the workspace.
    const root = await authz.getResourceByExternalId({ organizationId: ids.org, resourceTypeSlug: 'organization', externalId: ids.org });
    const asc = await authz.listResourcesForMembership({ organizationMembershipId: ids.alice, permissionSlug: 'project:edit', parentResourceId: root.id, order: 'asc' });
    assert.deepEqual(idsOf(asc), sorted([ids.web, ids.api]));
    const desc = await authz.listResourcesForMembership({ organizationMembershipId: ids.alice, permissionSlug: 'project:edit', parentResourceId: root.id, order: 'desc', limit: 1 });
    assert.deepEqual(idsOf(desc), [sorted([ids.web, ids.api])[1]]);
    const next = await authz.listResourcesForMembership({
      organizationMembershipId: ids.alice, permissionSlug: 'project:edit', parentResourceId: root.id, order: 'desc', limit: 1,
      after: desc.listMetadata.after,
    });
    assert.deepEqual(idsOf(next), [sorted([ids.web, ids.api])[0]]);
    await expectError(NotFoundException, () =>
      authz.listResourcesForMembership({ organizationMembershipId: 'om_missing', permissionSlug: 'project:edit', parentResourceId: root.id }));
    await expectError(UnprocessableEntityException, () =>
      authz.listResourcesForMembership({ organizationMembershipId: ids.alice, permissionSlug: 'nope:nope', parentResourceId: root.id }));
  });

  await run('listMembershipsForResource', async () => {
    const direct = await authz.listMembershipsForResource({ resourceId: ids.web, permissionSlug: 'project:view' });
    assert.deepEqual(idsOf(direct), [ids.bob]);
    assert.equal(direct.data[0].object, 'organization_membership');
    const indirect = await authz.listMembershipsForResource({ resourceId: ids.web, permissionSlug: 'project:view', assignment: 'indirect' });
    assert.deepEqual(sorted(idsOf(indirect)), sorted([ids.alice, ids.bob]));
    const byExt = await authz.listMembershipsForResourceByExternalId({
      organizationId: ids.org, resourceTypeSlug: 'project', externalId: 'api', permissionSlug: 'project:view', assignment: 'indirect',
    });
    assert.deepEqual(sorted(idsOf(byExt)), sorted([ids.alice, ids.carol]));
  });

  await run('listEffectivePermissions', async () => {
    const perms = await authz.listEffectivePermissions({ organizationMembershipId: ids.bob, resourceId: ids.web });
    assert.deepEqual(sorted(perms.data.map((p) => p.slug)), ['org:read', 'project:view']);
    assert.equal(perms.data[0].object, 'permission');
    const alices = await (await authz.listEffectivePermissionsByExternalId({ organizationMembershipId: ids.alice, resourceTypeSlug: 'project', externalId: 'web' })).autoPagination();
    assert.deepEqual(sorted(alices.map((p) => p.slug)), ['org:read', 'project:edit', 'project:view', 'workspace:view']);
  });

  await run('re-parent', async () => {
    // The SDK's updateResource sends only name and description; a
    // re-parent is a PATCH with parent fields, sent with the SDK's client.
    const { data } = await workos.patch(`/authorization/resources/${ids.web}`, { parent_resource_id: ids.ops });
    assert.equal(data.parent_resource_id, ids.ops);
    assert.deepEqual(await authz.check({ organizationMembershipId: ids.alice, permissionSlug: 'project:edit', resourceId: ids.web }), { authorized: false });
    const res = await authz.listResourcesForMembership({ organizationMembershipId: ids.alice, permissionSlug: 'project:edit', parentResourceId: ids.eng });
    assert.deepEqual(idsOf(res), [ids.api]);
    await authz.assignRole({ organizationMembershipId: ids.alice, roleSlug: 'workspace-admin', resourceId: ids.ops });
    assert.deepEqual(await authz.check({ organizationMembershipId: ids.alice, permissionSlug: 'project:edit', resourceId: ids.web }), { authorized: true });
    await workos.patch(`/authorization/resources/${ids.web}`, { parent_resource_external_id: 'eng', parent_resource_type_slug: 'workspace' });
    await authz.removeRole({ organizationMembershipId: ids.alice, roleSlug: 'workspace-admin', resourceId: ids.ops });
  });

  await run('groups', async () => {
    const org = { organizationId: ids.org };
    const g = await groups.createGroup({ ...org, name: 'Platform' });
    assert.equal(g.object, 'group');
    assert.equal(g.organizationId, ids.org);
    assert.equal(g.description, null);
    assert.ok(!Number.isNaN(g.createdAt.getTime()) && !Number.isNaN(g.updatedAt.getTime()));
    const group = { ...org, groupId: g.id };
    assert.equal((await groups.getGroup(group)).name, 'Platform');
    assert.equal((await groups.updateGroup({ ...group, name: 'Platform Eng', description: 'infra' })).description, 'infra');
    // updateGroup sends description: null when it is left out; it is kept.
    const renamed = await groups.updateGroup({ ...group, name: 'Platform Engineering' });
    assert.deepEqual([renamed.name, renamed.description], ['Platform Engineering', 'infra']);
    assert.deepEqual(idsOf(await groups.listGroups(org)), [g.id]);

    const member = { ...group, organizationMembershipId: ids.carol };
    assert.equal((await groups.addOrganizationMembership(member)).id, g.id);
    await expectError(ConflictException, () => groups.addOrganizationMembership(member));
    assert.deepEqual(idsOf(await groups.listOrganizationMemberships(group)), [ids.carol]);
    assert.deepEqual(idsOf(await userManagement.listGroupsForOrganizationMembership({ organizationMembershipId: ids.carol })), [g.id]);

    const carolMay = async (perm, resourceId) =>
      (await authz.check({ organizationMembershipId: ids.carol, permissionSlug: perm, resourceId })).authorized;
    assert.equal(await carolMay('project:edit', ids.web), false);
    const a = await authz.createGroupRoleAssignment({ groupId: g.id, roleSlug: 'workspace-admin', resourceId: ids.eng });
    assert.equal(a.object, 'group_role_assignment');
    assert.ok(a.id.startsWith('gra_'), a.id);
    assert.equal(a.groupId, g.id);
    assert.deepEqual(a.role, { slug: 'workspace-admin' });
    assert.deepEqual(a.resource, { id: ids.eng, externalId: 'eng', resourceTypeSlug: 'workspace' });
    assert.equal(await carolMay('project:edit', ids.web), true, 'a group grant on eng reaches its member on web');
    const carols = await (await authz.listRoleAssignments({ organizationMembershipId: ids.carol })).autoPagination();
    const viaGroup = carols.filter((x) => x.source.type === 'group');
    assert.deepEqual(viaGroup.map((x) => [x.id, x.role.slug, x.resource.id, x.source.groupRoleAssignmentId]),
      [[a.id, 'workspace-admin', ids.eng, a.id]], 'the member lists the role it holds through the group');
    assert.equal((await authz.getGroupRoleAssignment({ groupId: g.id, roleAssignmentId: a.id })).id, a.id);
    await expectError(ConflictException, () =>
      authz.createGroupRoleAssignment({ groupId: g.id, roleSlug: 'workspace-admin', resourceId: ids.eng }));
    await expectError(UnprocessableEntityException, () =>
      authz.createGroupRoleAssignment({ groupId: g.id, roleSlug: 'project-viewer', resourceId: ids.eng }));
    const orgWide = await authz.createGroupRoleAssignment({ groupId: g.id, roleSlug: 'org-billing' });
    assert.equal(orgWide.resource.resourceTypeSlug, 'organization');

    const replaced = await authz.replaceGroupRoleAssignments({ groupId: g.id, roleAssignments: [
      { roleSlug: 'workspace-admin', resourceId: ids.eng },
      { roleSlug: 'project-viewer', resourceExternalId: 'web', resourceTypeSlug: 'project' },
    ] });
    assert.equal(replaced.object, 'list');
    assert.equal(replaced.data.length, 2);
    assert.ok(idsOf(replaced).includes(a.id) && !idsOf(replaced).includes(orgWide.id));
    const listed = await (await authz.listGroupRoleAssignments({ groupId: g.id })).autoPagination();
    assert.deepEqual(sorted(listed.map((x) => x.id)), sorted(idsOf(replaced)));
    await authz.removeGroupRoleAssignments({ groupId: g.id, roleSlug: 'project-viewer', resourceExternalId: 'web', resourceTypeSlug: 'project' });
    await authz.removeGroupRoleAssignment({ groupId: g.id, roleAssignmentId: a.id });
    await expectError(NotFoundException, () => authz.getGroupRoleAssignment({ groupId: g.id, roleAssignmentId: a.id }));
    assert.equal(await carolMay('project:edit', ids.web), false, 'a removed group grant still allows');

    await authz.createGroupRoleAssignment({ groupId: g.id, roleSlug: 'workspace-admin', resourceId: ids.eng });
    await groups.removeOrganizationMembership(member);
    assert.equal(await carolMay('project:edit', ids.web), false, 'a removed member is still granted');
    assert.deepEqual(idsOf(await groups.listOrganizationMemberships(group)), []);
    await groups.deleteGroup(group);
    await expectError(NotFoundException, () => groups.getGroup(group));
  });

  await run('delete with cascade', async () => {
    await expectError(ConflictException, () => authz.deleteResource({ resourceId: ids.eng }));
    await expectError(ConflictException, () => authz.deleteResource({ resourceId: ids.web, cascadeDelete: false }));
    await authz.deleteResourceByExternalId({ organizationId: ids.org, resourceTypeSlug: 'workspace', externalId: 'eng', cascadeDelete: true });
    await expectError(NotFoundException, () => authz.getResource(ids.web));
    await expectError(NotFoundException, () => authz.getResource(ids.api));
    assert.deepEqual(idsOf(await authz.listRoleAssignments({ organizationMembershipId: ids.alice })), []);
    assert.deepEqual(idsOf(await authz.listRoleAssignments({ organizationMembershipId: ids.bob })), []);
    await expectError(NotFoundException, () =>
      authz.check({ organizationMembershipId: ids.alice, permissionSlug: 'project:edit', resourceId: ids.web }));
    assert.deepEqual(idsOf(await authz.listResources({ organizationId: ids.org })), [ids.ops]);
    await authz.deleteResource({ resourceId: ids.ops });
  });

  await run('removals', async () => {
    const a = await authz.assignRole({ organizationMembershipId: ids.bob, roleSlug: 'org-member', resourceExternalId: ids.org, resourceTypeSlug: 'organization' });
    await authz.removeRoleAssignment({ organizationMembershipId: ids.bob, roleAssignmentId: a.id });
    await expectError(NotFoundException, () => authz.removeRoleAssignment({ organizationMembershipId: ids.bob, roleAssignmentId: a.id }));
    await authz.deleteOrganizationRole(ids.org, 'org-billing');
    await expectError(NotFoundException, () => authz.getOrganizationRole(ids.org, 'org-billing'));
    await userManagement.deleteOrganizationMembership(ids.carol);
    await expectError(NotFoundException, () => userManagement.getOrganizationMembership(ids.carol));
    await authz.deletePermission('org:read');
    assert.deepEqual((await authz.getEnvironmentRole('org-member')).permissions, []);
    await organizations.deleteOrganization(ids.org);
    await expectError(NotFoundException, () => organizations.getOrganization(ids.org));
    await expectError(NotFoundException, () => userManagement.getOrganizationMembership(ids.alice));
  });

  await run('a wrong API key is refused', async () => {
    const stranger = new WorkOS('sk_wrong', options);
    await expectError(UnauthorizedException, () => stranger.organizations.listOrganizations());
  });

  console.log(`compat: ${used.size} SDK methods exercised: ${[...used].sort().join(', ')}`);
  console.log('compat: all WorkOS SDK calls matched');
} catch (err) {
  console.error(`compat: FAILED in step "${step}": ${err?.stack ?? err}`);
  process.exit(1);
}
