-- Bulk imports (Store.Import, trellis load) make events too (issue 17: no
-- change without its event). Their rows skip the change log (0006), so
-- trellis_emit_import_events builds the events straight from the rows the
-- importing transaction wrote (xmin is its transaction id), one
-- <kind>.created per entity in the order a reader needs them (an
-- organization before its resources, a role before the memberships holding
-- it), with the data builders trellis_emit_events uses. Import calls it
-- after trellis_mark_resync, under the revision lock, so positions stay in
-- commit order. trellis.events = off skips it, as it skips every event.

CREATE FUNCTION trellis_emit_import_events(p_revision bigint) RETURNS bigint LANGUAGE plpgsql AS $$
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
        (5, 'membership', 'organization_memberships', 'true', 'id'),
        -- In the order they were copied: a parent before its children. An
        -- organization's root resource (no parent) is its organization, as
        -- in every write.
        (6, 'resource', 'resources', 'parent_id IS NOT NULL', 'ctid'),
        (7, 'assignment', 'role_assignments', 'true', 'id'),
        (8, 'group', 'groups', 'true', 'id'),
        (9, 'group_member', 'group_members', 'true', 'group_id, membership_id'),
        (10, 'group_assignment', 'group_role_assignments', 'true', 'id')) v(i, entity, tbl, cond, ord) ORDER BY i
    LOOP
        -- nextval runs in the subquery's order, so positions follow it.
        EXECUTE format($f$
            INSERT INTO events (position, revision, type, entity, entity_id, organization_id, data, created_at)
            SELECT nextval('event_position_seq'), $1, trellis_event_type(%1$L, r, 'created'), %1$L,
                   coalesce(r->>'id', r->>'slug', trellis_event_key(%1$L, r)), trellis_event_organization_id(%1$L, r),
                   trellis_event_data(%1$L, r), $2
            FROM (SELECT to_jsonb(t) AS r FROM %2$I t WHERE xmin = $3 AND %3$s ORDER BY %4$s) s$f$,
            src.entity, src.tbl, src.cond, src.ord) USING p_revision, now_, xid_;
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
    END LOOP;
    RETURN n;
END $$;
