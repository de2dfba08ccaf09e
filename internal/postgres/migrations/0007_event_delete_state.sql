-- The events of deletes carry the state the entity had, not what is left
-- of it once the cascade has run (0005 gave a deleted membership empty
-- roles and a deleted assignment no organization when its membership went
-- with it).
--
-- A membership's delete is logged BEFORE the row goes: the cascade that
-- deletes its membership_roles and role_assignments runs in AFTER triggers
-- (PostgreSQL's RI triggers sort before ours), so an AFTER trigger finds
-- its roles gone. The delete is logged with its roles and organization
-- name in the old row, and ahead of the cascaded assignment deletes, which
-- a follower applies to the membership's grants already dropped (a no-op).
-- An assignment's delete records its organization while its membership or
-- its resource is still there to say it.
--
-- Numbered to be renumbered freely: it depends on 0005 and 0006 only.

-- The helpers are PL/pgSQL for their cached plans, as 0005's builders are.

-- trellis_event_roles is a membership's roles as its event shows them, in
-- position order.
CREATE FUNCTION trellis_event_roles(p_membership text) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT coalesce(jsonb_agg(jsonb_build_object('slug', ro.slug) ORDER BY mr.position, ro.slug), '[]'::jsonb)
    FROM membership_roles mr JOIN roles ro ON ro.id = mr.role_id WHERE mr.membership_id = p_membership);
END $$;

-- trellis_assignment_organization is an assignment's organization, told by
-- its membership or, once that is gone, its resource.
CREATE FUNCTION trellis_assignment_organization(p_membership text, p_resource text) RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(
        (SELECT m.organization_id FROM organization_memberships m WHERE m.id = p_membership),
        (SELECT x.organization_id FROM resources x WHERE x.id = p_resource));
END $$;

CREATE OR REPLACE FUNCTION trellis_log_membership() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('membership', 'delete', jsonb_build_object('id', OLD.id), 'deleted',
            to_jsonb(OLD) || jsonb_build_object(
                'deleted_roles', trellis_event_roles(OLD.id),
                'deleted_organization_name', (SELECT o.name FROM organizations o WHERE o.id = OLD.organization_id)));
        RETURN OLD;
    ELSIF TG_OP = 'INSERT' OR NEW IS DISTINCT FROM OLD THEN
        PERFORM trellis_log('membership', 'upsert', trellis_membership_json(NEW.id), trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER organization_memberships_log ON organization_memberships;
CREATE TRIGGER organization_memberships_log AFTER INSERT OR UPDATE ON organization_memberships
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_membership();
CREATE TRIGGER organization_memberships_log_delete BEFORE DELETE ON organization_memberships
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_membership();

CREATE OR REPLACE FUNCTION trellis_event_membership(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    roles jsonb := coalesce(r->'deleted_roles', trellis_event_roles(r->>'id'));
BEGIN
    RETURN jsonb_build_object('object', 'organization_membership', 'id', r->'id', 'user_id', r->'user_id',
        'organization_id', r->'organization_id',
        'organization_name', coalesce(r->'deleted_organization_name',
            (SELECT to_jsonb(o.name) FROM organizations o WHERE o.id = r->>'organization_id')),
        'status', r->'status', 'role', roles->0, 'roles', roles,
        'directory_managed', false, 'custom_attributes', '{}'::jsonb,
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at'));
END $$;

CREATE OR REPLACE FUNCTION trellis_log_assignment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved boolean := TG_OP = 'UPDATE' AND (NEW.membership_id, NEW.role_id, NEW.resource_id) IS DISTINCT FROM
                                          (OLD.membership_id, OLD.role_id, OLD.resource_id);
BEGIN
    -- Deletes carry the whole old state: the index needs the membership,
    -- role and resource to find the grant to drop, the event log the
    -- organization. An update that moves an assignment is logged as the old
    -- one's delete and the new one's upsert (one trellis.role_assignment.updated
    -- event).
    IF TG_OP = 'DELETE' OR moved THEN
        PERFORM trellis_log('assignment', 'delete', jsonb_build_object(
            'id', OLD.id, 'membership_id', OLD.membership_id, 'role', OLD.role_slug, 'resource_id', OLD.resource_id),
            'deleted', to_jsonb(OLD) || jsonb_build_object('organization_id',
                trellis_assignment_organization(OLD.membership_id, OLD.resource_id)));
    END IF;
    IF TG_OP = 'INSERT' OR moved THEN
        PERFORM trellis_log('assignment', 'upsert', jsonb_build_object(
            'id', NEW.id, 'membership_id', NEW.membership_id, 'role', NEW.role_slug, 'resource_id', NEW.resource_id),
            trellis_action(TG_OP));
    ELSIF TG_OP = 'UPDATE' AND NEW IS DISTINCT FROM OLD THEN
        -- Not a change of the grant (the follower ignores it): only events.
        PERFORM trellis_log('assignment', 'upsert', jsonb_build_object(
            'id', NEW.id, 'membership_id', NEW.membership_id, 'role', NEW.role_slug, 'resource_id', NEW.resource_id),
            'updated');
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION trellis_event_organization_id(p_entity text, r jsonb) RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT CASE p_entity
        WHEN 'organization' THEN r->>'id'
        WHEN 'membership' THEN r->>'organization_id'
        WHEN 'role' THEN r->>'organization_id'
        WHEN 'resource' THEN r->>'organization_id'
        WHEN 'assignment' THEN coalesce(r->>'organization_id',
            trellis_assignment_organization(r->>'membership_id', r->>'resource_id'))
        END);
END $$;
