-- The event log (issue 17): every committed change as an event with a
-- position, in the shapes of the WorkOS Events API.
--
-- It is built on change_log, which the row triggers already fill in every
-- writing transaction (also by other programs), one row per changed
-- aggregate (a role with its permissions, a membership with its roles).
-- This migration makes those triggers record what events need besides:
-- whether the row was created, updated or deleted (change_log.action), the
-- deleted row itself (change_log.old_row), and every real update, not only
-- the ones that change decisions (an organization's metadata, a
-- membership's custom attributes). The follower ignores the new columns.
--
-- At commit, under the revision lock of 0002, trellis_emit_events turns the
-- transaction's change_log rows into events: one per entity the
-- transaction changed (its state at commit: a membership created with two
-- roles is one organization_membership.created), each with the next value
-- of event_position_seq. Positions are therefore allocated in commit order
-- and become visible in position order, like revisions: a reader that has
-- seen position p never later finds a new event below p. Positions may have
-- gaps (a transaction that fails at commit); they never repeat.
--
-- events is a table of its own, not a view over change_log, because its
-- rows must outlive the follower's pruning of change_log, keep their own
-- retention, and carry the entity's state at commit (timestamps, names,
-- ids) which change_log does not hold. data is the WorkOS wire object of
-- the entity (what GET on the entity answers at that commit), so every
-- consumer (GET /events, webhooks, /v1/watch) serves it as it is.
--
-- Adding an entity kind: a trellis_event_<kind>(row jsonb) builder, a
-- branch in trellis_event_row, trellis_event_type and
-- trellis_event_organization, and the kind in internal/events (Kinds).

ALTER TABLE change_log ADD COLUMN action text CHECK (action IN ('created', 'updated', 'deleted'));
ALTER TABLE change_log ADD COLUMN old_row jsonb;

CREATE SEQUENCE event_position_seq;

CREATE TABLE events (
    position        bigint PRIMARY KEY,
    revision        bigint NOT NULL,
    -- organization_membership.created, trellis.authorization_resource.deleted, …
    type            text NOT NULL,
    -- change_log.entity: organization, membership, role, …
    entity          text NOT NULL,
    entity_id       text NOT NULL,
    -- NULL for what every organization shares (permissions, environment
    -- roles, resource types), and when it could no longer be told (an
    -- assignment deleted with its organization).
    organization_id text,
    data            jsonb NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX events_organization ON events (organization_id, position);
CREATE INDEX events_created_at ON events (created_at);

-- Webhook endpoints and their delivery state. delivered_position: every
-- event up to it was delivered (2xx) or does not match the filter. A
-- deliverer holds the row's lock (FOR UPDATE SKIP LOCKED) while it posts,
-- so each endpoint has one deliverer at a time, whatever the number of
-- Trellis instances; the position moves in the transaction that holds it.
CREATE TABLE webhook_endpoints (
    id                 text PRIMARY KEY,
    endpoint_url       text NOT NULL,
    secret             text NOT NULL,
    status             text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    -- Event types delivered; empty: all.
    events             text[] NOT NULL DEFAULT '{}',
    delivered_position bigint NOT NULL DEFAULT 0,
    attempts           integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    failing_since      timestamptz,
    last_error         text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- ---- logging: action and old row ----

DROP FUNCTION trellis_log(text, text, jsonb);

CREATE FUNCTION trellis_log(p_entity text, p_op text, p_data jsonb, p_action text, p_old jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Bulk loads set trellis.bulk and call trellis_mark_resync instead.
    IF coalesce(current_setting('trellis.bulk', true), '') = 'on' OR p_data IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO change_log (entity, op, data, action, old_row) VALUES (p_entity, p_op, p_data, p_action, p_old);
END $$;

-- trellis_action is the event action of a row trigger's operation.
CREATE FUNCTION trellis_action(p_op text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_op WHEN 'INSERT' THEN 'created' WHEN 'DELETE' THEN 'deleted' ELSE 'updated' END
$$;

CREATE OR REPLACE FUNCTION trellis_log_organization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('organization', 'delete', jsonb_build_object('id', OLD.id), 'deleted', to_jsonb(OLD));
    ELSIF TG_OP = 'INSERT' OR NEW IS DISTINCT FROM OLD THEN
        PERFORM trellis_log('organization', 'upsert', jsonb_build_object(
            'id', NEW.id, 'name', NEW.name,
            -- Empty when derived, as in snapshots (model.RootResourceID).
            'root_resource_id', CASE WHEN NEW.root_resource_id = 'authz_resource_root_' || NEW.id
                                     THEN '' ELSE NEW.root_resource_id END), trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION trellis_log_resource_type() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.slug <> 'organization' THEN
            PERFORM trellis_log('resource_type', 'delete', jsonb_build_object('slug', OLD.slug), 'deleted', to_jsonb(OLD));
        END IF;
    ELSIF TG_OP = 'INSERT' OR NEW IS DISTINCT FROM OLD THEN
        PERFORM trellis_log('resource_type', 'upsert', trellis_resource_type_json(NEW.slug), trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION trellis_log_resource_type_parent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM trellis_log('resource_type', 'upsert',
        trellis_resource_type_json(CASE WHEN TG_OP = 'DELETE' THEN OLD.resource_type ELSE NEW.resource_type END), 'updated');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION trellis_log_permission() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('permission', 'delete', jsonb_build_object('slug', OLD.slug), 'deleted', to_jsonb(OLD));
    ELSIF TG_OP = 'INSERT' OR NEW IS DISTINCT FROM OLD THEN
        PERFORM trellis_log('permission', 'upsert', jsonb_build_object(
            'slug', NEW.slug, 'name', NEW.name, 'description', NEW.description, 'resource_type', NEW.resource_type),
            trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION trellis_log_role() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('role', 'delete', jsonb_build_object(
            'slug', OLD.slug, 'organization_id', coalesce(OLD.organization_id, '')), 'deleted', to_jsonb(OLD));
    ELSIF TG_OP = 'INSERT' OR NEW IS DISTINCT FROM OLD THEN
        PERFORM trellis_log('role', 'upsert', trellis_role_json(NEW.id), trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION trellis_log_role_permission() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- NULL (not logged) when the role itself is being deleted.
    PERFORM trellis_log('role', 'upsert',
        trellis_role_json(CASE WHEN TG_OP = 'DELETE' THEN OLD.role_id ELSE NEW.role_id END), 'updated');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION trellis_log_membership() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('membership', 'delete', jsonb_build_object('id', OLD.id), 'deleted', to_jsonb(OLD));
    ELSIF TG_OP = 'INSERT' OR NEW IS DISTINCT FROM OLD THEN
        PERFORM trellis_log('membership', 'upsert', trellis_membership_json(NEW.id), trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION trellis_log_membership_role() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM trellis_log('membership', 'upsert',
        trellis_membership_json(CASE WHEN TG_OP = 'DELETE' THEN OLD.membership_id ELSE NEW.membership_id END), 'updated');
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
            'parent_id', NEW.parent_id), trellis_action(TG_OP));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION trellis_log_assignment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved boolean := TG_OP = 'UPDATE' AND (NEW.membership_id, NEW.role_id, NEW.resource_id) IS DISTINCT FROM
                                          (OLD.membership_id, OLD.role_id, OLD.resource_id);
BEGIN
    -- Deletes carry the whole old state: the index needs the membership,
    -- role and resource to find the grant to drop. An update that moves an
    -- assignment is logged as the old one's delete and the new one's upsert
    -- (one trellis.role_assignment.updated event).
    IF TG_OP = 'DELETE' OR moved THEN
        PERFORM trellis_log('assignment', 'delete', jsonb_build_object(
            'id', OLD.id, 'membership_id', OLD.membership_id, 'role', OLD.role_slug, 'resource_id', OLD.resource_id),
            'deleted', to_jsonb(OLD));
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

-- ---- event data: the WorkOS wire objects ----

-- The builders are PL/pgSQL, not SQL functions, so that their plans are
-- cached per connection (a SQL function that is not inlined is planned at
-- every call, which made the commit path several times slower).

-- trellis_event_ts formats a timestamp of a row's JSON as WorkOS does: ISO
-- 8601 in UTC with milliseconds.
CREATE FUNCTION trellis_event_ts(t jsonb) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char((t #>> '{}')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- trellis_event_text is a text field, JSON null when empty.
CREATE FUNCTION trellis_event_text(t jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN t IS NULL OR t = 'null' OR t = '""' THEN 'null'::jsonb ELSE t END
$$;

CREATE FUNCTION trellis_event_organization(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object('object', 'organization', 'id', r->'id', 'name', r->'name',
        'allow_profiles_outside_organization', false, 'domains', '[]'::jsonb,
        'external_id', trellis_event_text(r->'external_id'),
        'metadata', coalesce(r->'metadata', '{}'::jsonb),
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at')));
END $$;

CREATE FUNCTION trellis_event_membership(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    WITH roles AS (
        SELECT coalesce(jsonb_agg(jsonb_build_object('slug', ro.slug) ORDER BY mr.position, ro.slug), '[]'::jsonb) AS list
        FROM membership_roles mr JOIN roles ro ON ro.id = mr.role_id WHERE mr.membership_id = r->>'id')
    SELECT jsonb_build_object('object', 'organization_membership', 'id', r->'id', 'user_id', r->'user_id',
        'organization_id', r->'organization_id',
        'organization_name', (SELECT o.name FROM organizations o WHERE o.id = r->>'organization_id'),
        'status', r->'status', 'role', roles.list->0, 'roles', roles.list,
        'directory_managed', false, 'custom_attributes', '{}'::jsonb,
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at'))
    FROM roles);
END $$;

CREATE FUNCTION trellis_event_permission(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object('object', 'permission', 'id', r->'id', 'slug', r->'slug', 'name', r->'name',
        'description', trellis_event_text(r->'description'), 'resource_type_slug', r->'resource_type',
        'system', false,
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at')));
END $$;

CREATE FUNCTION trellis_event_role(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object('object', CASE WHEN r->>'organization_id' IS NULL THEN 'role' ELSE 'organization_role' END,
        'id', r->'id', 'slug', r->'slug', 'name', r->'name',
        'description', trellis_event_text(r->'description'),
        'permissions', (SELECT coalesce(jsonb_agg(p.slug ORDER BY rp.position, p.slug), '[]'::jsonb)
                        FROM role_permissions rp JOIN permissions p ON p.id = rp.permission_id WHERE rp.role_id = r->>'id'),
        'resource_type_slug', r->'resource_type',
        'type', CASE WHEN r->>'organization_id' IS NULL THEN 'EnvironmentRole' ELSE 'OrganizationRole' END,
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at'))
        || CASE WHEN r->>'organization_id' IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('organization_id', r->'organization_id') END);
END $$;

CREATE FUNCTION trellis_event_resource(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
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
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at')));
END $$;

CREATE FUNCTION trellis_event_assignment(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object('object', 'role_assignment', 'id', r->'id',
        'organization_membership_id', r->'membership_id',
        'role', jsonb_build_object('slug', r->'role_slug'),
        'resource', jsonb_build_object('id', r->'resource_id',
            'external_id', (SELECT x.external_id FROM resources x WHERE x.id = r->>'resource_id'),
            'resource_type_slug', (SELECT x.type FROM resources x WHERE x.id = r->>'resource_id')),
        'source', jsonb_build_object('type', 'direct', 'group_role_assignment_id', null),
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at')));
END $$;

CREATE FUNCTION trellis_event_resource_type(r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT jsonb_build_object('object', 'resource_type', 'slug', r->'slug', 'name', r->'name',
        'description', trellis_event_text(r->'description'),
        'parent_type_slugs', (SELECT coalesce(jsonb_agg(p.parent_type ORDER BY p.parent_type), '[]'::jsonb)
                              FROM resource_type_parents p WHERE p.resource_type = r->>'slug'),
        'created_at', trellis_event_ts(r->'created_at'), 'updated_at', trellis_event_ts(r->'updated_at')));
END $$;

-- trellis_event_key is the key of a change_log row's entity.
CREATE FUNCTION trellis_event_key(p_entity text, d jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_entity
        WHEN 'permission' THEN d->>'slug'
        WHEN 'resource_type' THEN d->>'slug'
        WHEN 'role' THEN (d->>'organization_id') || '/' || (d->>'slug')
        ELSE d->>'id' END
$$;

-- trellis_event_row is the entity's row now (NULL if it is gone), as JSON.
CREATE FUNCTION trellis_event_row(p_entity text, d jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
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
        END);
END $$;

CREATE FUNCTION trellis_event_data(p_entity text, r jsonb) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
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
        END);
END $$;

-- trellis_event_type names the event: WorkOS's names where WorkOS has the
-- entity, trellis.… otherwise (see internal/events).
CREATE FUNCTION trellis_event_type(p_entity text, r jsonb, p_action text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_entity
        WHEN 'organization' THEN 'organization'
        WHEN 'membership' THEN 'organization_membership'
        WHEN 'permission' THEN 'permission'
        WHEN 'role' THEN CASE WHEN r->>'organization_id' IS NULL THEN 'role' ELSE 'organization_role' END
        WHEN 'resource' THEN 'trellis.authorization_resource'
        WHEN 'assignment' THEN 'trellis.role_assignment'
        WHEN 'resource_type' THEN 'trellis.resource_type'
        END || '.' || p_action
$$;

CREATE FUNCTION trellis_event_organization_id(p_entity text, r jsonb) RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT CASE p_entity
        WHEN 'organization' THEN r->>'id'
        WHEN 'membership' THEN r->>'organization_id'
        WHEN 'role' THEN r->>'organization_id'
        WHEN 'resource' THEN r->>'organization_id'
        WHEN 'assignment' THEN coalesce(
            (SELECT m.organization_id FROM organization_memberships m WHERE m.id = r->>'membership_id'),
            (SELECT x.organization_id FROM resources x WHERE x.id = r->>'resource_id'))
        END);
END $$;

-- trellis_emit_events writes the events of the current transaction at
-- revision p_revision. It runs at commit under the revision lock (see
-- trellis_allocate_revision). trellis.events = off skips it (a session
-- setting, for measuring the write path without the event log).
CREATE FUNCTION trellis_emit_events(p_revision bigint) RETURNS void LANGUAGE plpgsql AS $$
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
                coalesce(r->>'id', r->>'slug'), trellis_event_organization_id(g.entity, r),
                trellis_event_data(g.entity, r), now_);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION trellis_allocate_revision() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7234100);
    r := nextval('change_revision_seq');
    INSERT INTO change_revisions (revision, txid) VALUES (r, pg_current_xact_id());
    PERFORM set_config('trellis.revision', r::text, true);
    PERFORM trellis_emit_events(r);
    PERFORM pg_notify('trellis_changes', r::text);
    RETURN r;
END $$;
