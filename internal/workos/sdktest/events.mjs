// events.mjs drives Trellis's change stream with the unmodified official
// WorkOS Node SDK: it registers a webhook endpoint (a loopback receiver it
// runs itself) with workos.webhooks.createWebhookEndpoint, writes through
// the SDK, lists the events with workos.events.listEvents, and verifies
// every delivery with workos.webhooks.constructEvent — and that a tampered
// body or a stale timestamp fails that verification. Exit 0 when all
// matched, 1 naming the first mismatch.
//
//   TRELLIS_URL=http://127.0.0.1:8080 TRELLIS_API_KEY=sk_… node events.mjs
import assert from 'node:assert/strict';
import http from 'node:http';
import { WorkOS, SignatureVerificationException } from '@workos-inc/node';

const base = new URL(process.env.TRELLIS_URL ?? fail('TRELLIS_URL is not set'));
const workos = new WorkOS(process.env.TRELLIS_API_KEY ?? fail('TRELLIS_API_KEY is not set'), {
  apiHostname: base.hostname, port: Number(base.port), https: false, maxRetries: 0,
});

function fail(msg) {
  console.error(`events: ${msg}`);
  process.exit(1);
}

const deliveries = [];
const receiver = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    deliveries.push({ body, sig: req.headers['workos-signature'] });
    res.writeHead(200).end();
  });
});
await new Promise((ok) => receiver.listen(0, '127.0.0.1', ok));
const hookURL = `http://127.0.0.1:${receiver.address().port}/hooks`;

let step = '';
async function run(name, fn) {
  step = name;
  await fn();
  console.log(`ok   ${name}`);
}

try {
  const types = ['organization.created', 'organization.updated', 'organization_membership.created'];
  let endpoint, org, om;
  await run('register a webhook endpoint', async () => {
    endpoint = await workos.webhooks.createWebhookEndpoint({ endpointUrl: hookURL, events: types });
    assert.match(endpoint.id, /^we_/);
    assert.equal(endpoint.endpointUrl, hookURL);
    assert.equal(endpoint.status, 'enabled');
    assert.deepEqual(endpoint.events, types);
    assert.ok(endpoint.secret.length >= 32);
    const list = await workos.webhooks.listWebhookEndpoints();
    assert.ok(list.data.some((e) => e.id === endpoint.id));
  });

  await run('write through the SDK', async () => {
    org = await workos.organizations.createOrganization({ name: 'Events Co' });
    await workos.organizations.updateOrganization({ organization: org.id, name: 'Events Co <renamed>' });
    om = await workos.userManagement.createOrganizationMembership({ organizationId: org.id, userId: 'user_events' });
  });

  let listed;
  await run('events.listEvents deserializes every event', async () => {
    const page = await workos.events.listEvents({ events: types, organizationId: org.id, limit: 10 });
    listed = page.data;
    assert.deepEqual(listed.map((e) => e.event), types);
    const [created, updated, member] = listed;
    assert.match(created.id, /^event_\d+$/);
    assert.equal(created.data.id, org.id);
    assert.equal(created.data.name, 'Events Co');
    assert.deepEqual(created.data.domains, []);
    assert.equal(updated.data.name, 'Events Co <renamed>');
    assert.equal(member.data.id, om.id);
    assert.equal(member.data.organizationId, org.id);
    assert.equal(member.data.userId, 'user_events');
    assert.equal(member.data.status, 'active');
    assert.ok(!Number.isNaN(Date.parse(created.createdAt)));
    assert.ok(created.context.position > 0 && created.context.revision > 0);
    // The cursor: after the first event, the other two.
    const next = await workos.events.listEvents({ events: types, organizationId: org.id, after: created.id });
    assert.deepEqual(next.data.map((e) => e.id), [updated.id, member.id]);
    assert.equal(next.listMetadata.after, member.id);
  });

  await run('webhooks.constructEvent verifies each delivery', async () => {
    for (let i = 0; i < 200 && deliveries.length < 3; i++) await new Promise((ok) => setTimeout(ok, 50));
    assert.equal(deliveries.length, 3, `${deliveries.length} deliveries within 10 s`);
    const got = [];
    for (const d of deliveries) {
      const ev = await workos.webhooks.constructEvent({ payload: d.body, sigHeader: d.sig, secret: endpoint.secret });
      got.push(ev);
    }
    assert.deepEqual(got.map((e) => e.id), listed.map((e) => e.id));
    assert.equal(got[2].data.userId, 'user_events');
  });

  await run('a tampered body or a stale timestamp fails verification', async () => {
    const d = deliveries[0];
    await assert.rejects(
      workos.webhooks.constructEvent({ payload: d.body.replace('Events Co', 'Evil Co'), sigHeader: d.sig, secret: endpoint.secret }),
      SignatureVerificationException);
    await assert.rejects(
      workos.webhooks.constructEvent({ payload: d.body, sigHeader: d.sig, secret: 'whsec_wrong' }),
      SignatureVerificationException);
    await new Promise((ok) => setTimeout(ok, 20));
    await assert.rejects(
      workos.webhooks.constructEvent({ payload: d.body, sigHeader: d.sig, secret: endpoint.secret, tolerance: 1 }),
      SignatureVerificationException);
  });

  await run('group events in WorkOS\'s names and shapes', async () => {
    // An organization's domains are in its events, as deserializeOrganization reads them.
    await workos.organizations.updateOrganization({ organization: org.id, domainData: [{ domain: 'events.example', state: 'pending' }] });
    const upd = await workos.events.listEvents({ events: ['organization.updated'], organizationId: org.id, limit: 10 });
    const last = upd.data[upd.data.length - 1];
    assert.deepEqual(last.data.domains.map((d) => [d.domain, d.state, d.organizationId]), [['events.example', 'pending', org.id]]);
    const g = await workos.groups.createGroup({ organizationId: org.id, name: 'Events group' });
    const member = { organizationId: org.id, groupId: g.id, organizationMembershipId: om.id };
    await workos.groups.addOrganizationMembership(member);
    await workos.groups.removeOrganizationMembership(member);
    const groupTypes = ['group.created', 'group.member_added', 'group.member_removed'];
    const page = await workos.events.listEvents({ events: groupTypes, organizationId: org.id, limit: 10 });
    assert.deepEqual(page.data.map((e) => e.event), groupTypes);
    const [created, added, removed] = page.data;
    assert.equal(created.data.id, g.id);
    assert.equal(created.data.name, 'Events group');
    for (const e of [added, removed]) {
      assert.deepEqual(e.data, { groupId: g.id, organizationMembershipId: om.id });
    }
  });

  await run('delete the endpoint', async () => {
    await workos.webhooks.deleteWebhookEndpoint({ id: endpoint.id });
    const list = await workos.webhooks.listWebhookEndpoints();
    assert.ok(!list.data.some((e) => e.id === endpoint.id));
  });
} catch (err) {
  receiver.close();
  fail(`${step}: ${err?.stack ?? err}`);
}
receiver.close();
