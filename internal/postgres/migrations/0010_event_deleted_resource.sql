-- The event of an assignment (direct or a group's) names its resource by
-- id, external id and type. When the resource is deleted in the same
-- transaction (the assignment goes with it, by cascade), its row is gone
-- before the events are built, and 0005/0008 gave such a deleted
-- assignment a null external_id and resource_type_slug. The resource's own
-- delete is in the transaction's change_log with its old row: take them
-- from there.

-- trellis_event_resource_ref is a resource as an assignment's event names
-- it: {id, external_id, resource_type_slug}, from the resource, or, when
-- the current transaction deleted it, from its logged old row.
CREATE FUNCTION trellis_event_resource_ref(p_resource text) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    x jsonb;
BEGIN
    SELECT jsonb_build_object('external_id', r.external_id, 'type', r.type) INTO x FROM resources r WHERE r.id = p_resource;
    IF x IS NULL THEN
        SELECT l.old_row INTO x FROM change_log l
        WHERE l.txid = pg_current_xact_id() AND l.entity = 'resource' AND l.op = 'delete' AND l.data->>'id' = p_resource
        ORDER BY l.seq DESC LIMIT 1;
    END IF;
    RETURN jsonb_build_object('id', p_resource, 'external_id', x->'external_id', 'resource_type_slug', x->'type');
END $$;

CREATE OR REPLACE FUNCTION trellis_event_assignment(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN jsonb_build_object('object', 'role_assignment', 'id', r->'id',
        'organization_membership_id', r->'membership_id',
        'role', jsonb_build_object('slug', r->'role_slug'),
        'resource', trellis_event_resource_ref(r->>'resource_id'),
        'source', jsonb_build_object('type', 'direct', 'group_role_assignment_id', null),
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at'));
END $$;

CREATE OR REPLACE FUNCTION trellis_event_group_assignment(r jsonb) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('object', 'group_role_assignment', 'id', r->'id', 'group_id', r->'group_id',
        'role', jsonb_build_object('slug', r->'role_slug'),
        'resource', trellis_event_resource_ref(r->>'resource_id'),
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at'))
$$;
