-- The change feed (DESIGN.md §3). Row triggers on every relationship table
-- append the changed entity's whole state after the change (model JSON) to
-- change_log, in the writing transaction. At commit, a deferred constraint
-- trigger gives the transaction its revision:
--
--   * it takes a transaction-scoped advisory lock, so at most one writing
--     transaction at a time is between "revision allocated" and "committed";
--   * allocates the next revision from a sequence and records (revision,
--     txid) in change_revisions;
--   * NOTIFYs trellis_changes with the revision (delivered at commit).
--
-- PostgreSQL makes a transaction visible before it releases its locks, so a
-- revision is only allocated once every lower revision is committed (visible
-- to any later snapshot) or aborted (never visible). Hence revisions become
-- visible in revision order, and a follower that reads "revisions after the
-- last one I applied" can never skip one that commits late. The lock is held
-- only from the start of COMMIT to its end, not for the transaction's life,
-- so long transactions do not serialize each other. Revisions are per
-- transaction: a cascade or a batch is one revision, applied atomically.

CREATE TABLE change_log (
    seq    bigserial PRIMARY KEY,
    txid   xid8 NOT NULL DEFAULT pg_current_xact_id(),
    entity text NOT NULL,
    op     text NOT NULL CHECK (op IN ('upsert', 'delete')),
    data   jsonb NOT NULL
);
CREATE INDEX change_log_txid ON change_log (txid);

CREATE SEQUENCE change_revision_seq;

CREATE TABLE change_revisions (
    revision     bigint PRIMARY KEY,
    txid         xid8 NOT NULL UNIQUE,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE change_feed_state (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- A follower whose applied revision is below this must load a new
    -- snapshot: the log before it was pruned, or data was bulk-loaded
    -- without being logged.
    resync_revision bigint NOT NULL DEFAULT 0
);
INSERT INTO change_feed_state DEFAULT VALUES;

-- 7234100 is an arbitrary key, used only here.
CREATE FUNCTION trellis_allocate_revision() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7234100);
    r := nextval('change_revision_seq');
    INSERT INTO change_revisions (revision, txid) VALUES (r, pg_current_xact_id());
    PERFORM set_config('trellis.revision', r::text, true);
    PERFORM pg_notify('trellis_changes', r::text);
    RETURN r;
END $$;

CREATE FUNCTION trellis_assign_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Fired once per logged row; the first firing does the work.
    IF coalesce(current_setting('trellis.revision', true), '') = '' THEN
        PERFORM trellis_allocate_revision();
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER change_log_revision AFTER INSERT ON change_log
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION trellis_assign_revision();

-- trellis_mark_resync gives the current transaction a revision that every
-- follower behind it must reach by a full snapshot (bulk loads that skip
-- the log).
CREATE FUNCTION trellis_mark_resync() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    r bigint;
BEGIN
    r := trellis_allocate_revision();
    UPDATE change_feed_state SET resync_revision = greatest(resync_revision, r);
    RETURN r;
END $$;

CREATE FUNCTION trellis_log(p_entity text, p_op text, p_data jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Bulk loads set trellis.bulk and call trellis_mark_resync instead.
    IF coalesce(current_setting('trellis.bulk', true), '') = 'on' OR p_data IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO change_log (entity, op, data) VALUES (p_entity, p_op, p_data);
END $$;

-- Whole-state JSON of the aggregate entities, in model's JSON field names.

CREATE FUNCTION trellis_resource_type_json(p_slug text) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'slug', t.slug, 'name', t.name, 'description', t.description,
        'parent_types', coalesce((SELECT jsonb_agg(p.parent_type ORDER BY p.parent_type)
                                  FROM resource_type_parents p WHERE p.resource_type = t.slug), '[]'))
    FROM resource_types t WHERE t.slug = p_slug AND t.slug <> 'organization'
$$;

CREATE FUNCTION trellis_role_json(p_id text) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'slug', r.slug, 'name', r.name, 'description', r.description,
        'resource_type', r.resource_type, 'organization_id', coalesce(r.organization_id, ''),
        'permissions', coalesce((SELECT jsonb_agg(p.slug ORDER BY p.slug)
                                 FROM role_permissions rp JOIN permissions p ON p.id = rp.permission_id
                                 WHERE rp.role_id = r.id), '[]'))
    FROM roles r WHERE r.id = p_id
$$;

CREATE FUNCTION trellis_membership_json(p_id text) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', m.id, 'user_id', m.user_id, 'organization_id', m.organization_id, 'status', m.status,
        'role_slugs', coalesce((SELECT jsonb_agg(r.slug ORDER BY r.slug)
                                FROM membership_roles mr JOIN roles r ON r.id = mr.role_id
                                WHERE mr.membership_id = m.id), '[]'))
    FROM organization_memberships m WHERE m.id = p_id
$$;

-- Columns that identify an entity in the data document may not change in
-- place (delete and recreate instead): TG_ARGV names them.
CREATE FUNCTION trellis_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    col text;
BEGIN
    FOREACH col IN ARRAY TG_ARGV LOOP
        IF to_jsonb(OLD) -> col IS DISTINCT FROM to_jsonb(NEW) -> col THEN
            RAISE EXCEPTION '%.% is immutable', TG_TABLE_NAME, col
                USING ERRCODE = 'check_violation', CONSTRAINT = 'trellis_immutable_' || col;
        END IF;
    END LOOP;
    RETURN NEW;
END $$;

CREATE TRIGGER organizations_immutable BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION trellis_immutable('id', 'root_resource_id');
CREATE TRIGGER resource_types_immutable BEFORE UPDATE ON resource_types
    FOR EACH ROW EXECUTE FUNCTION trellis_immutable('slug');
CREATE TRIGGER permissions_immutable BEFORE UPDATE ON permissions
    FOR EACH ROW EXECUTE FUNCTION trellis_immutable('id', 'slug', 'resource_type');
CREATE TRIGGER roles_immutable BEFORE UPDATE ON roles
    FOR EACH ROW EXECUTE FUNCTION trellis_immutable('id', 'slug', 'organization_id', 'resource_type');
CREATE TRIGGER organization_memberships_immutable BEFORE UPDATE ON organization_memberships
    FOR EACH ROW EXECUTE FUNCTION trellis_immutable('id', 'organization_id');
CREATE TRIGGER resources_immutable BEFORE UPDATE ON resources
    FOR EACH ROW EXECUTE FUNCTION trellis_immutable('id', 'organization_id', 'type');
CREATE TRIGGER role_assignments_immutable BEFORE UPDATE ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION trellis_immutable('id');

-- Row triggers: one change_log row per row change, carrying the entity's
-- whole state after it.

CREATE FUNCTION trellis_log_organization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('organization', 'delete', jsonb_build_object('id', OLD.id));
    ELSIF TG_OP = 'INSERT' OR NEW.name IS DISTINCT FROM OLD.name THEN
        PERFORM trellis_log('organization', 'upsert', jsonb_build_object(
            'id', NEW.id, 'name', NEW.name,
            -- Empty when derived, as in snapshots (model.RootResourceID).
            'root_resource_id', CASE WHEN NEW.root_resource_id = 'authz_resource_root_' || NEW.id
                                     THEN '' ELSE NEW.root_resource_id END));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_resource_type() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.slug <> 'organization' THEN
            PERFORM trellis_log('resource_type', 'delete', jsonb_build_object('slug', OLD.slug));
        END IF;
    ELSIF TG_OP = 'INSERT' OR (NEW.name, NEW.description) IS DISTINCT FROM (OLD.name, OLD.description) THEN
        PERFORM trellis_log('resource_type', 'upsert', trellis_resource_type_json(NEW.slug));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_resource_type_parent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM trellis_log('resource_type', 'upsert',
        trellis_resource_type_json(CASE WHEN TG_OP = 'DELETE' THEN OLD.resource_type ELSE NEW.resource_type END));
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_permission() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('permission', 'delete', jsonb_build_object('slug', OLD.slug));
    ELSIF TG_OP = 'INSERT' OR (NEW.name, NEW.description) IS DISTINCT FROM (OLD.name, OLD.description) THEN
        PERFORM trellis_log('permission', 'upsert', jsonb_build_object(
            'slug', NEW.slug, 'name', NEW.name, 'description', NEW.description, 'resource_type', NEW.resource_type));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_role() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('role', 'delete', jsonb_build_object(
            'slug', OLD.slug, 'organization_id', coalesce(OLD.organization_id, '')));
    ELSIF TG_OP = 'INSERT' OR (NEW.name, NEW.description) IS DISTINCT FROM (OLD.name, OLD.description) THEN
        PERFORM trellis_log('role', 'upsert', trellis_role_json(NEW.id));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_role_permission() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- NULL (not logged) when the role itself is being deleted.
    PERFORM trellis_log('role', 'upsert',
        trellis_role_json(CASE WHEN TG_OP = 'DELETE' THEN OLD.role_id ELSE NEW.role_id END));
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_membership() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM trellis_log('membership', 'delete', jsonb_build_object('id', OLD.id));
    ELSIF TG_OP = 'INSERT' OR (NEW.user_id, NEW.status) IS DISTINCT FROM (OLD.user_id, OLD.status) THEN
        PERFORM trellis_log('membership', 'upsert', trellis_membership_json(NEW.id));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_membership_role() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM trellis_log('membership', 'upsert',
        trellis_membership_json(CASE WHEN TG_OP = 'DELETE' THEN OLD.membership_id ELSE NEW.membership_id END));
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_resource() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Organization roots are implied by organizations.
    IF TG_OP = 'DELETE' THEN
        IF OLD.type <> 'organization' THEN
            PERFORM trellis_log('resource', 'delete', jsonb_build_object(
                'id', OLD.id, 'organization_id', OLD.organization_id));
        END IF;
    ELSIF NEW.type <> 'organization' AND (TG_OP = 'INSERT' OR
            (NEW.external_id, NEW.name, NEW.description, NEW.parent_id) IS DISTINCT FROM
            (OLD.external_id, OLD.name, OLD.description, OLD.parent_id)) THEN
        PERFORM trellis_log('resource', 'upsert', jsonb_build_object(
            'id', NEW.id, 'organization_id', NEW.organization_id, 'type', NEW.type,
            'external_id', NEW.external_id, 'name', NEW.name, 'description', NEW.description,
            'parent_id', NEW.parent_id));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_log_assignment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Deletes carry the whole old state: the index needs the membership,
    -- role and resource to find the grant to drop. An update that moves an
    -- assignment is logged as the old one's delete and the new one's upsert.
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (NEW.membership_id, NEW.role_id, NEW.resource_id) IS DISTINCT FROM
                                                 (OLD.membership_id, OLD.role_id, OLD.resource_id)) THEN
        PERFORM trellis_log('assignment', 'delete', jsonb_build_object(
            'id', OLD.id, 'membership_id', OLD.membership_id, 'role', OLD.role_slug, 'resource_id', OLD.resource_id));
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (NEW.membership_id, NEW.role_id, NEW.resource_id) IS DISTINCT FROM
                                                (OLD.membership_id, OLD.role_id, OLD.resource_id)) THEN
        PERFORM trellis_log('assignment', 'upsert', jsonb_build_object(
            'id', NEW.id, 'membership_id', NEW.membership_id, 'role', NEW.role_slug, 'resource_id', NEW.resource_id));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER organizations_log AFTER INSERT OR UPDATE OR DELETE ON organizations
    FOR EACH ROW EXECUTE FUNCTION trellis_log_organization();
CREATE TRIGGER resource_types_log AFTER INSERT OR UPDATE OR DELETE ON resource_types
    FOR EACH ROW EXECUTE FUNCTION trellis_log_resource_type();
CREATE TRIGGER resource_type_parents_log AFTER INSERT OR UPDATE OR DELETE ON resource_type_parents
    FOR EACH ROW EXECUTE FUNCTION trellis_log_resource_type_parent();
CREATE TRIGGER permissions_log AFTER INSERT OR UPDATE OR DELETE ON permissions
    FOR EACH ROW EXECUTE FUNCTION trellis_log_permission();
CREATE TRIGGER roles_log AFTER INSERT OR UPDATE OR DELETE ON roles
    FOR EACH ROW EXECUTE FUNCTION trellis_log_role();
CREATE TRIGGER role_permissions_log AFTER INSERT OR UPDATE OR DELETE ON role_permissions
    FOR EACH ROW EXECUTE FUNCTION trellis_log_role_permission();
CREATE TRIGGER organization_memberships_log AFTER INSERT OR UPDATE OR DELETE ON organization_memberships
    FOR EACH ROW EXECUTE FUNCTION trellis_log_membership();
CREATE TRIGGER membership_roles_log AFTER INSERT OR UPDATE OR DELETE ON membership_roles
    FOR EACH ROW EXECUTE FUNCTION trellis_log_membership_role();
CREATE TRIGGER resources_log AFTER INSERT OR UPDATE OR DELETE ON resources
    FOR EACH ROW EXECUTE FUNCTION trellis_log_resource();
CREATE TRIGGER role_assignments_log AFTER INSERT OR UPDATE OR DELETE ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION trellis_log_assignment();
