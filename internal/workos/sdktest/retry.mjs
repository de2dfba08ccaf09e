// retry.mjs creates one entity of each kind through the unmodified WorkOS
// Node SDK with its default retries, against a proxy that drops the first
// response to every POST (after Trellis answered it): the SDK retries with
// the same Idempotency-Key, and each call must still return its entity.
// It prints the ids it got as one JSON object on the last line.
//
//   TRELLIS_URL=http://127.0.0.1:<proxy> TRELLIS_API_KEY=sk_… node retry.mjs
import assert from 'node:assert/strict';
import { WorkOS } from '@workos-inc/node';

const base = new URL(process.env.TRELLIS_URL);
const workos = new WorkOS(process.env.TRELLIS_API_KEY, {
  apiHostname: base.hostname, port: Number(base.port), https: false,
});
const { authorization: authz, organizations, userManagement } = workos;

try {
  await workos.post('/authorization/resource_types', { slug: 'workspace', name: 'Workspace', parent_type_slugs: ['organization'] });
  const perm = await authz.createPermission({ slug: 'workspace:view', name: 'View workspace', resourceTypeSlug: 'workspace' });
  const role = await authz.createEnvironmentRole({ slug: 'workspace-viewer', name: 'Viewer', resourceTypeSlug: 'workspace' });
  const withPerm = await authz.addEnvironmentRolePermission('workspace-viewer', { permissionSlug: 'workspace:view' });
  assert.deepEqual(withPerm.permissions, ['workspace:view']);
  const org = await organizations.createOrganization({ name: 'Retry Inc' });
  const om = await userManagement.createOrganizationMembership({ organizationId: org.id, userId: 'user_retry' });
  const res = await authz.createResource({ organizationId: org.id, resourceTypeSlug: 'workspace', externalId: 'ws', name: 'WS' });
  const ra = await authz.assignRole({ organizationMembershipId: om.id, roleSlug: 'workspace-viewer', resourceId: res.id });
  const check = await authz.check({ organizationMembershipId: om.id, permissionSlug: 'workspace:view', resourceId: res.id });
  assert.deepEqual(check, { authorized: true });
  console.log(JSON.stringify({ permission: perm.id, role: role.id, organization: org.id, membership: om.id, resource: res.id, assignment: ra.id }));
} catch (err) {
  console.error(`retry: FAILED: ${err?.stack ?? err}`);
  process.exit(1);
}
