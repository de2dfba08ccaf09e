-- Organization domains and Stripe customer ids (issue 13): fields the
-- WorkOS SDK sends (createOrganization/updateOrganization domain_data,
-- stripe_customer_id) and reads back. They are no relationship data:
-- decisions never read them; the WorkOS-compatible API writes them
-- (package workosdb) and the event log carries them.
--
-- domains is the organization's list of {id, domain, state, created_at,
-- updated_at}, in the order given. A domain belongs to one organization at
-- most: the writer checks it in its SERIALIZABLE transaction, and the
-- index serves that check and the organization list's domains filter.

ALTER TABLE organizations
    ADD COLUMN domains jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN stripe_customer_id text;
CREATE INDEX organizations_domains ON organizations USING gin (domains jsonb_path_ops);

CREATE OR REPLACE FUNCTION trellis_event_organization(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object('object', 'organization', 'id', r->'id', 'name', r->'name',
        'allow_profiles_outside_organization', false,
        'domains', coalesce((
            SELECT jsonb_agg(jsonb_build_object('object', 'organization_domain', 'id', d->'id',
                'organization_id', r->'id', 'domain', d->'domain', 'state', d->'state',
                'verification_strategy', 'manual',
                'created_at', trellis_event_ts(d->'created_at'), 'updated_at', trellis_event_ts(d->'updated_at')) ORDER BY n)
            FROM jsonb_array_elements(coalesce(r->'domains', '[]'::jsonb)) WITH ORDINALITY AS x(d, n)), '[]'::jsonb),
        'external_id', trellis_event_text(r->'external_id'),
        'metadata', coalesce(r->'metadata', '{}'::jsonb),
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at'))
        || CASE WHEN coalesce(r->>'stripe_customer_id', '') = '' THEN '{}'::jsonb
                ELSE jsonb_build_object('stripe_customer_id', r->'stripe_customer_id') END);
END $$;
