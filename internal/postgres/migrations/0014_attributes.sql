-- Attributes (model.Attributes): a resource's or an organization's own
-- facts for team-written extensions (input.resource.attributes, an
-- organization's attributes). Trellis's own rules never read them, but
-- they are part of the entity's data-document entry, so the change feed
-- carries them and an update that changes only them is a change with a
-- revision like any other (the log triggers compare whole rows).
--
-- NULL is none; the writers store an empty object as NULL too, so that
-- "none" has one spelling (model.Attributes is nil for both).

ALTER TABLE resources ADD COLUMN attributes jsonb
    CONSTRAINT resources_attributes_object CHECK (attributes IS NULL OR jsonb_typeof(attributes) = 'object');
ALTER TABLE organizations ADD COLUMN attributes jsonb
    CONSTRAINT organizations_attributes_object CHECK (attributes IS NULL OR jsonb_typeof(attributes) = 'object');

-- 0005's triggers, with the attributes in the upsert payload (JSON null
-- when none, which the follower decodes as nil).
CREATE OR REPLACE FUNCTION trellis_log_organization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('organization', 'delete', jsonb_build_object('id', OLD.id), 'deleted', to_jsonb(OLD));
    ELSIF TG_OP = 'INSERT' OR NEW IS DISTINCT FROM OLD THEN
        PERFORM trellis_log('organization', 'upsert', jsonb_build_object(
            'id', NEW.id, 'name', NEW.name,
            -- Empty when derived, as in snapshots (model.RootResourceID).
            'root_resource_id', CASE WHEN NEW.root_resource_id = 'authz_resource_root_' || NEW.id
                                     THEN '' ELSE NEW.root_resource_id END,
            'attributes', NEW.attributes), trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION trellis_log_resource() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Organization roots are implied by organizations.
    IF TG_OP = 'DELETE' THEN
        IF OLD.type <> 'organization' THEN
            PERFORM trellis_log('resource', 'delete', jsonb_build_object(
                'id', OLD.id, 'organization_id', OLD.organization_id), 'deleted', to_jsonb(OLD));
        END IF;
    ELSIF NEW.type <> 'organization' AND (TG_OP = 'INSERT' OR NEW IS DISTINCT FROM OLD) THEN
        PERFORM trellis_log('resource', 'upsert', jsonb_build_object(
            'id', NEW.id, 'organization_id', NEW.organization_id, 'type', NEW.type,
            'external_id', NEW.external_id, 'name', NEW.name, 'description', NEW.description,
            'parent_id', NEW.parent_id, 'attributes', NEW.attributes), trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

-- An event's data is what GET on the entity answers, and the API answers
-- attributes only when set: 0012's organization and 0005's resource
-- builders, with attributes added when not NULL.
CREATE FUNCTION trellis_event_attributes(r jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(r->'attributes') = 'object' AND r->'attributes' <> '{}'::jsonb
                THEN jsonb_build_object('attributes', r->'attributes') ELSE '{}'::jsonb END
$$;

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
                ELSE jsonb_build_object('stripe_customer_id', r->'stripe_customer_id') END
        || trellis_event_attributes(r));
END $$;

CREATE OR REPLACE FUNCTION trellis_event_resource(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object('object', 'authorization_resource', 'id', r->'id', 'external_id', r->'external_id',
        'name', r->'name', 'description', trellis_event_text(r->'description'), 'resource_type_slug', r->'type',
        'organization_id', r->'organization_id',
        -- null under the organization root, as the WorkOS API answers.
        'parent_resource_id', CASE WHEN r->>'parent_id' IS NULL OR EXISTS (SELECT 1 FROM organizations o
                                        WHERE o.id = r->>'organization_id' AND o.root_resource_id = r->>'parent_id')
                                        OR r->>'parent_id' = 'authz_resource_root_' || (r->>'organization_id')
                                   THEN 'null'::jsonb ELSE r->'parent_id' END,
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at'))
        || trellis_event_attributes(r));
END $$;
