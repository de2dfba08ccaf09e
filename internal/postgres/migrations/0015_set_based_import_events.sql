-- An import's events (0009) are built set-based for the three kinds a
-- large dataset is made of: resources, assignments and memberships. 0009
-- built each event with the row builders of 0005 (trellis_event_data),
-- which look up per row what a join gives at once (a resource's
-- organization root, an assignment's resource and organization, a
-- membership's roles and organization name): 35 µs a resource, 40 µs an
-- assignment, 42 µs a membership, five minutes of tier M's import.
--
-- The wire shape of those kinds moves to SQL functions of the entity's
-- values (trellis_event_<kind>_of), which PostgreSQL inlines into a query,
-- so the row builders and the import share one definition: the row
-- builders look the values up as before and call them; the import joins
-- and calls them once per row of one INSERT … SELECT. The other kinds are
-- few in any dataset and keep 0009's builder calls.

-- trellis_event_ts of a timestamp, not of its JSON.
CREATE FUNCTION trellis_event_ts(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

CREATE OR REPLACE FUNCTION trellis_event_ts(t jsonb) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT trellis_event_ts((t #>> '{}')::timestamptz)
$$;

-- trellis_event_resource_of is the event data of a resource; p_root is its
-- organization's root resource id (NULL when unknown), under which the
-- parent is null, as the WorkOS API answers.
CREATE FUNCTION trellis_event_resource_of(p_id text, p_external_id text, p_name text, p_description text,
        p_type text, p_organization_id text, p_parent_id text, p_root text, p_attributes jsonb,
        p_created_at timestamptz, p_updated_at timestamptz) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('object', 'authorization_resource', 'id', p_id, 'external_id', p_external_id,
        'name', p_name, 'description', nullif(p_description, ''), 'resource_type_slug', p_type,
        'organization_id', p_organization_id,
        'parent_resource_id', CASE WHEN p_parent_id IS NULL OR p_parent_id = p_root
                                        OR p_parent_id = 'authz_resource_root_' || p_organization_id
                                   THEN NULL ELSE p_parent_id END,
        'created_at', trellis_event_ts(p_created_at), 'updated_at', trellis_event_ts(p_updated_at))
        || trellis_event_attributes(jsonb_build_object('attributes', p_attributes))
$$;

CREATE OR REPLACE FUNCTION trellis_event_resource(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN trellis_event_resource_of(r->>'id', r->>'external_id', r->>'name', r->>'description', r->>'type',
        r->>'organization_id', r->>'parent_id',
        (SELECT o.root_resource_id FROM organizations o WHERE o.id = r->>'organization_id'),
        r->'attributes', (r->>'created_at')::timestamptz, (r->>'updated_at')::timestamptz);
END $$;

-- trellis_event_resource_ref_of is a resource as an assignment's event
-- names it.
CREATE FUNCTION trellis_event_resource_ref_of(p_id text, p_external_id text, p_type text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('id', p_id, 'external_id', p_external_id, 'resource_type_slug', p_type)
$$;

CREATE OR REPLACE FUNCTION trellis_event_resource_ref(p_resource text) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    x jsonb;
BEGIN
    SELECT jsonb_build_object('external_id', r.external_id, 'type', r.type) INTO x FROM resources r WHERE r.id = p_resource;
    IF x IS NULL THEN
        SELECT l.old_row INTO x FROM change_log l
        WHERE l.txid = pg_current_xact_id() AND l.entity = 'resource' AND l.op = 'delete' AND l.data->>'id' = p_resource
        ORDER BY l.seq DESC LIMIT 1;
    END IF;
    RETURN trellis_event_resource_ref_of(p_resource, x->>'external_id', x->>'type');
END $$;

-- trellis_event_assignment_of is the event data of a direct assignment;
-- p_resource is its resource's trellis_event_resource_ref_of.
CREATE FUNCTION trellis_event_assignment_of(p_id text, p_membership_id text, p_role_slug text, p_resource jsonb,
        p_created_at timestamptz, p_updated_at timestamptz) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('object', 'role_assignment', 'id', p_id,
        'organization_membership_id', p_membership_id,
        'role', jsonb_build_object('slug', p_role_slug),
        'resource', p_resource,
        'source', jsonb_build_object('type', 'direct', 'group_role_assignment_id', null),
        'created_at', trellis_event_ts(p_created_at), 'updated_at', trellis_event_ts(p_updated_at))
$$;

CREATE OR REPLACE FUNCTION trellis_event_assignment(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN trellis_event_assignment_of(r->>'id', r->>'membership_id', r->>'role_slug',
        trellis_event_resource_ref(r->>'resource_id'), (r->>'created_at')::timestamptz, (r->>'updated_at')::timestamptz);
END $$;

-- trellis_event_membership_of is the event data of a membership;
-- p_organization_name is its organization's name (JSON) and p_roles its
-- trellis_event_roles.
CREATE FUNCTION trellis_event_membership_of(p_id text, p_user_id text, p_organization_id text,
        p_organization_name jsonb, p_status text, p_roles jsonb,
        p_created_at timestamptz, p_updated_at timestamptz) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('object', 'organization_membership', 'id', p_id, 'user_id', p_user_id,
        'organization_id', p_organization_id, 'organization_name', p_organization_name,
        'status', p_status, 'role', p_roles->0, 'roles', p_roles,
        'directory_managed', false, 'custom_attributes', '{}'::jsonb,
        'created_at', trellis_event_ts(p_created_at), 'updated_at', trellis_event_ts(p_updated_at))
$$;

CREATE OR REPLACE FUNCTION trellis_event_membership(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN trellis_event_membership_of(r->>'id', r->>'user_id', r->>'organization_id',
        coalesce(r->'deleted_organization_name',
            (SELECT to_jsonb(o.name) FROM organizations o WHERE o.id = r->>'organization_id')),
        r->>'status', coalesce(r->'deleted_roles', trellis_event_roles(r->>'id')),
        (r->>'created_at')::timestamptz, (r->>'updated_at')::timestamptz);
END $$;

-- 0009's function, the three large kinds set-based. Positions follow each
-- kind's order as before (a resource's parent before it: the order it was
-- copied in).
CREATE OR REPLACE FUNCTION trellis_emit_import_events(p_revision bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    now_ timestamptz := clock_timestamp();
    xid_ xid := pg_current_xact_id()::xid;
    n    bigint := 0;
    k    bigint;
    src  record;
BEGIN
    IF coalesce(current_setting('trellis.events', true), '') = 'off' THEN
        RETURN 0;
    END IF;
    FOR src IN SELECT * FROM (VALUES
        (1, 'organization', 'organizations', 'true', 'id'),
        (2, 'resource_type', 'resource_types', $q$slug <> 'organization'$q$, 'slug'),
        (3, 'permission', 'permissions', 'true', 'slug'),
        (4, 'role', 'roles', 'true', 'organization_id NULLS FIRST, slug'),
        (5, 'membership', NULL, NULL, NULL),
        (6, 'resource', NULL, NULL, NULL),
        (7, 'assignment', NULL, NULL, NULL),
        (8, 'group', 'groups', 'true', 'id'),
        (9, 'group_member', 'group_members', 'true', 'group_id, membership_id'),
        (10, 'group_assignment', 'group_role_assignments', 'true', 'id')) v(i, entity, tbl, cond, ord) ORDER BY i
    LOOP
        CASE src.entity
        WHEN 'membership' THEN
            INSERT INTO events (position, revision, type, entity, entity_id, organization_id, data, created_at)
            SELECT nextval('event_position_seq'), p_revision, trellis_event_type('membership', NULL, 'created'), 'membership',
                   m.id, m.organization_id,
                   trellis_event_membership_of(m.id, m.user_id, m.organization_id, to_jsonb(o.name), m.status,
                       coalesce(mr.roles, '[]'::jsonb), m.created_at, m.updated_at), now_
            FROM (SELECT * FROM organization_memberships WHERE xmin = xid_ ORDER BY id) m
            JOIN organizations o ON o.id = m.organization_id
            LEFT JOIN (
                -- trellis_event_roles of every membership at once.
                SELECT mr.membership_id, jsonb_agg(jsonb_build_object('slug', ro.slug)
                                                   ORDER BY ro.organization_id IS NOT NULL, ro.priority, ro.slug) AS roles
                FROM membership_roles mr JOIN roles ro ON ro.id = mr.role_id
                WHERE mr.xmin = xid_ GROUP BY mr.membership_id) mr ON mr.membership_id = m.id
            ORDER BY m.id;
        WHEN 'resource' THEN
            -- An organization's root resource (no parent) is its
            -- organization, as in every write.
            INSERT INTO events (position, revision, type, entity, entity_id, organization_id, data, created_at)
            SELECT nextval('event_position_seq'), p_revision, trellis_event_type('resource', NULL, 'created'), 'resource',
                   x.id, x.organization_id,
                   trellis_event_resource_of(x.id, x.external_id, x.name, x.description, x.type, x.organization_id,
                       x.parent_id, o.root_resource_id, x.attributes, x.created_at, x.updated_at), now_
            FROM (SELECT ctid AS c, * FROM resources WHERE xmin = xid_ AND parent_id IS NOT NULL) x
            JOIN organizations o ON o.id = x.organization_id
            ORDER BY x.c;
        WHEN 'assignment' THEN
            -- The organization is the membership's
            -- (trellis_assignment_organization).
            INSERT INTO events (position, revision, type, entity, entity_id, organization_id, data, created_at)
            SELECT nextval('event_position_seq'), p_revision, trellis_event_type('assignment', NULL, 'created'), 'assignment',
                   a.id, m.organization_id,
                   trellis_event_assignment_of(a.id, a.membership_id, a.role_slug,
                       trellis_event_resource_ref_of(x.id, x.external_id, x.type), a.created_at, a.updated_at), now_
            FROM (SELECT * FROM role_assignments WHERE xmin = xid_) a
            JOIN organization_memberships m ON m.id = a.membership_id
            JOIN resources x ON x.id = a.resource_id
            ORDER BY a.id;
        ELSE
            -- nextval runs in the subquery's order, so positions follow it.
            EXECUTE format($f$
                INSERT INTO events (position, revision, type, entity, entity_id, organization_id, data, created_at)
                SELECT nextval('event_position_seq'), $1, trellis_event_type(%1$L, r, 'created'), %1$L,
                       coalesce(r->>'id', r->>'slug', trellis_event_key(%1$L, r)), trellis_event_organization_id(%1$L, r),
                       trellis_event_data(%1$L, r), $2
                FROM (SELECT to_jsonb(t) AS r FROM %2$I t WHERE xmin = $3 AND %3$s ORDER BY %4$s) s$f$,
                src.entity, src.tbl, src.cond, src.ord) USING p_revision, now_, xid_;
        END CASE;
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
    END LOOP;
    RETURN n;
END $$;
