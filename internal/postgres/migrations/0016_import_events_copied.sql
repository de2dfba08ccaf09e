-- An import's resource and assignment events, two million of tier M's 2.1
-- million, are built by Import in Go from the values it copies and copied
-- into events (import_events.go), no longer here (0015): their
-- jsonb_build_object and the `||` of the attributes cost 7 µs a resource,
-- against under 2 µs to read the same JSON as COPY input, and the joins
-- and sorts of their INSERT … SELECT are gone with them. The data they
-- carry is what the row builders make of the same rows
-- (TestImportEventsAreTheRowBuilders).
--
-- trellis_emit_import_events now takes the kinds to emit, in its order, so
-- that Import can place its own between them: an organization, its roles
-- and memberships before its resources and assignments, those before the
-- groups that hold them. A kind it is asked for and has no set-based query
-- for is built with the row builders, as 0009 did.
DROP FUNCTION trellis_emit_import_events(bigint);

CREATE FUNCTION trellis_emit_import_events(p_revision bigint, p_entities text[]) RETURNS bigint LANGUAGE plpgsql AS $$
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
        (6, 'resource', 'resources', 'parent_id IS NOT NULL', 'ctid'),
        (7, 'assignment', 'role_assignments', 'true', 'id'),
        (8, 'group', 'groups', 'true', 'id'),
        (9, 'group_member', 'group_members', 'true', 'group_id, membership_id'),
        (10, 'group_assignment', 'group_role_assignments', 'true', 'id')) v(i, entity, tbl, cond, ord)
    WHERE entity = ANY (p_entities) ORDER BY i
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
