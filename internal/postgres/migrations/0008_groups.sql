-- Groups (issue 15): a group is a set of memberships of one organization;
-- a role assigned to a group on a resource grants every active member that
-- role there and below. Groups do not nest. The three tables are in the
-- change feed (0002) and the event log (0005, 0007) like every
-- relationship table: a group is logged as entity 'group' (events
-- group.created|updated|deleted, WorkOS's names), a member as
-- 'group_member' {group_id, membership_id} (trellis.group_member.created|
-- deleted) and a group role assignment as 'group_assignment', a
-- model.Assignment whose group_id is set and membership_id empty
-- (trellis.group_role_assignment.created|updated|deleted).

CREATE TABLE groups (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, organization_id)
);
CREATE INDEX groups_org ON groups (organization_id);

-- A member is a membership of the group's organization: both foreign keys
-- carry the organization, so a membership of another organization cannot
-- be a member, whatever writes run concurrently (a rule per commit).
CREATE TABLE group_members (
    group_id        text NOT NULL,
    membership_id   text NOT NULL,
    organization_id text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, membership_id),
    FOREIGN KEY (group_id, organization_id) REFERENCES groups (id, organization_id) ON DELETE CASCADE,
    FOREIGN KEY (membership_id, organization_id) REFERENCES organization_memberships (id, organization_id) ON DELETE CASCADE
);
CREATE INDEX group_members_membership ON group_members (membership_id);

CREATE TABLE group_role_assignments (
    id          text PRIMARY KEY,
    group_id    text NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    role_id     text NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    -- The role's slug, kept by trigger as in role_assignments.
    role_slug   text NOT NULL DEFAULT '',
    resource_id text NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (group_id, role_id, resource_id)
);
CREATE INDEX group_role_assignments_resource ON group_role_assignments (resource_id);
CREATE INDEX group_role_assignments_role ON group_role_assignments (role_id);

CREATE TRIGGER group_role_assignments_role_slug BEFORE INSERT OR UPDATE OF role_id ON group_role_assignments
    FOR EACH ROW EXECUTE FUNCTION trellis_assignment_role_slug();

CREATE TRIGGER groups_immutable BEFORE UPDATE ON groups
    FOR EACH ROW EXECUTE FUNCTION trellis_immutable('id', 'organization_id');
CREATE TRIGGER group_members_immutable BEFORE UPDATE ON group_members
    FOR EACH ROW EXECUTE FUNCTION trellis_immutable('group_id', 'membership_id');
CREATE TRIGGER group_role_assignments_immutable BEFORE UPDATE ON group_role_assignments
    FOR EACH ROW EXECUTE FUNCTION trellis_immutable('id');

-- trellis_group_assignment_organization is the organization of a group
-- role assignment: its group's, else (the group going in a cascade) its
-- resource's.
CREATE FUNCTION trellis_group_assignment_organization(p_group text, p_resource text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT g.organization_id FROM groups g WHERE g.id = p_group),
                    (SELECT x.organization_id FROM resources x WHERE x.id = p_resource))
$$;

CREATE FUNCTION trellis_log_group() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('group', 'delete', jsonb_build_object('id', OLD.id, 'organization_id', OLD.organization_id),
            'deleted', to_jsonb(OLD));
    ELSIF TG_OP = 'INSERT' OR (NEW.name, NEW.description) IS DISTINCT FROM (OLD.name, OLD.description) THEN
        PERFORM trellis_log('group', 'upsert', jsonb_build_object(
            'id', NEW.id, 'organization_id', NEW.organization_id, 'name', NEW.name, 'description', NEW.description),
            trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_group_member() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('group_member', 'delete', jsonb_build_object('group_id', OLD.group_id, 'membership_id', OLD.membership_id),
            'deleted', to_jsonb(OLD));
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM trellis_log('group_member', 'upsert', jsonb_build_object('group_id', NEW.group_id, 'membership_id', NEW.membership_id),
            'created');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_group_assignment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved boolean := TG_OP = 'UPDATE' AND (NEW.group_id, NEW.role_id, NEW.resource_id) IS DISTINCT FROM
                                          (OLD.group_id, OLD.role_id, OLD.resource_id);
BEGIN
    -- As trellis_log_assignment (0007): deletes carry the whole old state.
    IF TG_OP = 'DELETE' OR moved THEN
        PERFORM trellis_log('group_assignment', 'delete', jsonb_build_object(
            'id', OLD.id, 'membership_id', '', 'group_id', OLD.group_id, 'role', OLD.role_slug, 'resource_id', OLD.resource_id),
            'deleted', to_jsonb(OLD) || jsonb_build_object('organization_id',
                trellis_group_assignment_organization(OLD.group_id, OLD.resource_id)));
    END IF;
    IF TG_OP = 'INSERT' OR moved THEN
        PERFORM trellis_log('group_assignment', 'upsert', jsonb_build_object(
            'id', NEW.id, 'membership_id', '', 'group_id', NEW.group_id, 'role', NEW.role_slug, 'resource_id', NEW.resource_id),
            trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER groups_log AFTER INSERT OR UPDATE OR DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION trellis_log_group();
CREATE TRIGGER group_members_log AFTER INSERT OR UPDATE OR DELETE ON group_members
    FOR EACH ROW EXECUTE FUNCTION trellis_log_group_member();
CREATE TRIGGER group_role_assignments_log AFTER INSERT OR UPDATE OR DELETE ON group_role_assignments
    FOR EACH ROW EXECUTE FUNCTION trellis_log_group_assignment();

-- ---- events (0005): the three new kinds ----

CREATE FUNCTION trellis_event_group(r jsonb) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('object', 'group', 'id', r->'id', 'organization_id', r->'organization_id',
        'name', r->'name', 'description', trellis_event_text(r->'description'),
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at'))
$$;

CREATE FUNCTION trellis_event_group_member(r jsonb) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('object', 'group_member', 'group_id', r->'group_id',
        'organization_membership_id', r->'membership_id', 'organization_id', r->'organization_id',
        'created_at', trellis_event_ts(r->'created_at'))
$$;

CREATE FUNCTION trellis_event_group_assignment(r jsonb) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('object', 'group_role_assignment', 'id', r->'id', 'group_id', r->'group_id',
        'role', jsonb_build_object('slug', r->'role_slug'),
        'resource', jsonb_build_object('id', r->'resource_id',
            'external_id', (SELECT x.external_id FROM resources x WHERE x.id = r->>'resource_id'),
            'resource_type_slug', (SELECT x.type FROM resources x WHERE x.id = r->>'resource_id')),
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at'))
$$;

CREATE OR REPLACE FUNCTION trellis_event_key(p_entity text, d jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_entity
        WHEN 'permission' THEN d->>'slug'
        WHEN 'resource_type' THEN d->>'slug'
        WHEN 'role' THEN (d->>'organization_id') || '/' || (d->>'slug')
        WHEN 'group_member' THEN (d->>'group_id') || '/' || (d->>'membership_id')
        ELSE d->>'id' END
$$;

CREATE OR REPLACE FUNCTION trellis_event_row(p_entity text, d jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT CASE p_entity
        WHEN 'organization' THEN (SELECT to_jsonb(t) FROM organizations t WHERE t.id = d->>'id')
        WHEN 'membership' THEN (SELECT to_jsonb(t) FROM organization_memberships t WHERE t.id = d->>'id')
        WHEN 'permission' THEN (SELECT to_jsonb(t) FROM permissions t WHERE t.slug = d->>'slug')
        WHEN 'role' THEN (SELECT to_jsonb(t) FROM roles t WHERE t.slug = d->>'slug'
                          AND t.organization_id IS NOT DISTINCT FROM nullif(d->>'organization_id', ''))
        WHEN 'resource' THEN (SELECT to_jsonb(t) FROM resources t WHERE t.id = d->>'id')
        WHEN 'assignment' THEN (SELECT to_jsonb(t) FROM role_assignments t WHERE t.id = d->>'id')
        WHEN 'resource_type' THEN (SELECT to_jsonb(t) FROM resource_types t WHERE t.slug = d->>'slug')
        WHEN 'group' THEN (SELECT to_jsonb(t) FROM groups t WHERE t.id = d->>'id')
        WHEN 'group_member' THEN (SELECT to_jsonb(t) FROM group_members t
                                  WHERE t.group_id = d->>'group_id' AND t.membership_id = d->>'membership_id')
        WHEN 'group_assignment' THEN (SELECT to_jsonb(t) FROM group_role_assignments t WHERE t.id = d->>'id')
        END);
END $$;

CREATE OR REPLACE FUNCTION trellis_event_data(p_entity text, r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT CASE p_entity
        WHEN 'organization' THEN trellis_event_organization(r)
        WHEN 'membership' THEN trellis_event_membership(r)
        WHEN 'permission' THEN trellis_event_permission(r)
        WHEN 'role' THEN trellis_event_role(r)
        WHEN 'resource' THEN trellis_event_resource(r)
        WHEN 'assignment' THEN trellis_event_assignment(r)
        WHEN 'resource_type' THEN trellis_event_resource_type(r)
        WHEN 'group' THEN trellis_event_group(r)
        WHEN 'group_member' THEN trellis_event_group_member(r)
        WHEN 'group_assignment' THEN trellis_event_group_assignment(r)
        END);
END $$;

CREATE OR REPLACE FUNCTION trellis_event_type(p_entity text, r jsonb, p_action text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_entity
        WHEN 'organization' THEN 'organization'
        WHEN 'membership' THEN 'organization_membership'
        WHEN 'permission' THEN 'permission'
        WHEN 'role' THEN CASE WHEN r->>'organization_id' IS NULL THEN 'role' ELSE 'organization_role' END
        WHEN 'resource' THEN 'trellis.authorization_resource'
        WHEN 'assignment' THEN 'trellis.role_assignment'
        WHEN 'resource_type' THEN 'trellis.resource_type'
        WHEN 'group' THEN 'group'
        WHEN 'group_member' THEN 'trellis.group_member'
        WHEN 'group_assignment' THEN 'trellis.group_role_assignment'
        END || '.' || p_action
$$;

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
        WHEN 'group' THEN r->>'organization_id'
        WHEN 'group_member' THEN r->>'organization_id'
        WHEN 'group_assignment' THEN coalesce(r->>'organization_id',
            trellis_group_assignment_organization(r->>'group_id', r->>'resource_id'))
        END);
END $$;

-- trellis_emit_events as in 0005, but a group member, which has no id of
-- its own, is named by its key (group_id/membership_id).
CREATE OR REPLACE FUNCTION trellis_emit_events(p_revision bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    g      record;
    r        jsonb;
    v_action text;
    now_   timestamptz := clock_timestamp();
BEGIN
    IF coalesce(current_setting('trellis.events', true), '') = 'off' THEN
        RETURN;
    END IF;
    FOR g IN
        SELECT entity, (array_agg(action ORDER BY seq))[1] AS first_action,
               (array_agg(op ORDER BY seq DESC))[1] AS last_op,
               (array_agg(old_row ORDER BY seq DESC))[1] AS old_row,
               (array_agg(data ORDER BY seq DESC))[1] AS data
        FROM change_log WHERE txid = pg_current_xact_id()
        GROUP BY entity, trellis_event_key(entity, data)
        ORDER BY min(seq)
    LOOP
        IF g.last_op = 'delete' THEN
            CONTINUE WHEN g.first_action = 'created'; -- created and deleted in one transaction
            v_action := 'deleted';
            r := g.old_row;
        ELSE
            v_action := CASE WHEN g.first_action = 'created' THEN 'created' ELSE 'updated' END;
            r := trellis_event_row(g.entity, g.data);
        END IF;
        CONTINUE WHEN r IS NULL;
        INSERT INTO events (position, revision, type, entity, entity_id, organization_id, data, created_at)
        VALUES (nextval('event_position_seq'), p_revision, trellis_event_type(g.entity, r, v_action), g.entity,
                coalesce(r->>'id', r->>'slug', trellis_event_key(g.entity, r)), trellis_event_organization_id(g.entity, r),
                trellis_event_data(g.entity, r), now_);
    END LOOP;
END $$;
