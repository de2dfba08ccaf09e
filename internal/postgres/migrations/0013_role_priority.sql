-- Role priority and the default role (issue 13), as WorkOS has them: roles
-- are listed in priority order, a new role goes to the bottom, a
-- membership's `role` is its highest-priority one, and a membership
-- created without roles gets the environment's default role. Neither is
-- relationship data: decisions never read them, so changing them logs no
-- change and makes no revision.
--
-- priority orders the roles of one scope: the environment roles, or one
-- organization's custom roles (which follow every environment role). A new
-- role takes the next value of role_priority_seq, so it goes to the bottom;
-- a reorder gives the scope's roles new values in the order asked. Existing
-- roles are numbered in creation order, the order they were listed in.
CREATE SEQUENCE role_priority_seq AS integer OWNED BY roles.priority;
UPDATE roles SET priority = o.n
FROM (SELECT id, row_number() OVER (ORDER BY created_at, id COLLATE "C") AS n FROM roles) o
WHERE roles.id = o.id;
SELECT setval('role_priority_seq', (SELECT count(*) + 1 FROM roles), false);
ALTER TABLE roles ALTER COLUMN priority SET DEFAULT nextval('role_priority_seq');

-- is_default marks the environment's default role: at most one, an
-- environment role of resource type organization.
ALTER TABLE roles ADD COLUMN is_default boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT roles_default_organization_level
        CHECK (NOT is_default OR (organization_id IS NULL AND resource_type = 'organization'));
CREATE UNIQUE INDEX roles_one_default ON roles ((true)) WHERE is_default;

-- A role's priority and default mark are not in its data-document entry or
-- its event: 0005's trigger, with those two columns left out of the
-- comparison.
CREATE OR REPLACE FUNCTION trellis_log_role() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('role', 'delete', jsonb_build_object(
            'slug', OLD.slug, 'organization_id', coalesce(OLD.organization_id, '')), 'deleted', to_jsonb(OLD));
    ELSIF TG_OP = 'INSERT' OR to_jsonb(NEW) - 'priority' - 'is_default' IS DISTINCT FROM to_jsonb(OLD) - 'priority' - 'is_default' THEN
        PERFORM trellis_log('role', 'upsert', trellis_role_json(NEW.id), trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

-- A membership event's roles, highest priority first (its `role` is the
-- first): 0007's helper in priority order.
CREATE OR REPLACE FUNCTION trellis_event_roles(p_membership text) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT coalesce(jsonb_agg(jsonb_build_object('slug', ro.slug)
                              ORDER BY ro.organization_id IS NOT NULL, ro.priority, ro.slug), '[]'::jsonb)
    FROM membership_roles mr JOIN roles ro ON ro.id = mr.role_id WHERE mr.membership_id = p_membership);
END $$;
