-- Trellis relationship data (DESIGN.md §1) in the WorkOS Authorization API's
-- shapes: WorkOS-style ids (org_…, om_…, authz_resource_…, perm_…, role_…,
-- role_assignment_…) and created_at/updated_at on every object, so the
-- WorkOS-compatible API can serve these rows as they are.
--
-- The database enforces what it can (keys, uniqueness, one parent per
-- resource in the same organization, cascades); Trellis's write path checks
-- the rest (parent type allowed, no cycles, depth, role type rules).

CREATE TABLE organizations (
    id               text PRIMARY KEY,
    name             text NOT NULL,
    -- The id of the organization's root resource (a row of resources of type
    -- 'organization', created with the organization by a trigger).
    root_resource_id text NOT NULL UNIQUE,
    external_id      text UNIQUE,
    metadata         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE resource_types (
    slug        text PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The implicit root type, so that resources, permissions and roles of the
-- organization type can reference it like any other.
INSERT INTO resource_types (slug, name, description)
VALUES ('organization', 'Organization', 'The implicit root type of every resource tree.');

CREATE TABLE resource_type_parents (
    resource_type text NOT NULL REFERENCES resource_types (slug) ON DELETE CASCADE,
    parent_type   text NOT NULL REFERENCES resource_types (slug),
    PRIMARY KEY (resource_type, parent_type),
    CHECK (resource_type <> 'organization')
);
CREATE INDEX resource_type_parents_parent ON resource_type_parents (parent_type);

CREATE TABLE permissions (
    id            text PRIMARY KEY,
    slug          text NOT NULL UNIQUE,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    resource_type text NOT NULL REFERENCES resource_types (slug),
    system        boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE roles (
    id              text PRIMARY KEY,
    slug            text NOT NULL,
    -- NULL for an environment role (every organization).
    organization_id text REFERENCES organizations (id) ON DELETE CASCADE,
    resource_type   text NOT NULL REFERENCES resource_types (slug),
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    priority        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (organization_id, slug)
);
CREATE INDEX roles_slug ON roles (slug);

CREATE TABLE role_permissions (
    role_id       text NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission_id text NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role_id, permission_id)
);
CREATE INDEX role_permissions_permission ON role_permissions (permission_id);

CREATE TABLE organization_memberships (
    id                text PRIMARY KEY,
    user_id           text NOT NULL,
    organization_id   text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    status            text NOT NULL CHECK (status IN ('active', 'inactive', 'pending')),
    directory_managed boolean NOT NULL DEFAULT false,
    custom_attributes jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, organization_id)
);
CREATE INDEX organization_memberships_org ON organization_memberships (organization_id);
CREATE INDEX organization_memberships_user ON organization_memberships (user_id);

-- A membership's organization roles (roles of the organization type).
CREATE TABLE membership_roles (
    membership_id text NOT NULL REFERENCES organization_memberships (id) ON DELETE CASCADE,
    role_id       text NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (membership_id, role_id)
);
CREATE INDEX membership_roles_role ON membership_roles (role_id);

CREATE TABLE resources (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    type            text NOT NULL REFERENCES resource_types (slug),
    external_id     text NOT NULL,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    -- NULL only for an organization's root. The composite key keeps every
    -- parent in the resource's organization. Deleting a parent with children
    -- fails: the write path deletes subtrees explicitly (cascade_delete).
    parent_id       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, type, external_id),
    UNIQUE (id, organization_id),
    FOREIGN KEY (parent_id, organization_id) REFERENCES resources (id, organization_id),
    CHECK ((type = 'organization') = (parent_id IS NULL))
);
CREATE INDEX resources_parent ON resources (parent_id);

CREATE TABLE role_assignments (
    id            text PRIMARY KEY,
    membership_id text NOT NULL REFERENCES organization_memberships (id) ON DELETE CASCADE,
    role_id       text NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    -- The role's slug (immutable), kept here by a trigger so that the
    -- change feed can describe an assignment deleted with its role.
    role_slug     text NOT NULL DEFAULT '',
    resource_id   text NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (membership_id, role_id, resource_id)
);
CREATE INDEX role_assignments_resource ON role_assignments (resource_id);
CREATE INDEX role_assignments_role ON role_assignments (role_id);

-- Every organization gets its root resource with it.
CREATE FUNCTION trellis_organization_root() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO resources (id, organization_id, type, external_id, name, parent_id)
        VALUES (NEW.root_resource_id, NEW.id, 'organization', NEW.id, NEW.name, NULL);
    ELSIF NEW.name IS DISTINCT FROM OLD.name THEN
        UPDATE resources SET name = NEW.name, updated_at = now() WHERE id = NEW.root_resource_id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION trellis_organization_default_root() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.root_resource_id IS NULL OR NEW.root_resource_id = '' THEN
        NEW.root_resource_id := 'authz_resource_root_' || NEW.id;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER organizations_default_root BEFORE INSERT ON organizations
    FOR EACH ROW EXECUTE FUNCTION trellis_organization_default_root();
CREATE TRIGGER organizations_root AFTER INSERT OR UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION trellis_organization_root();

CREATE FUNCTION trellis_assignment_role_slug() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.role_slug := (SELECT slug FROM roles WHERE id = NEW.role_id);
    RETURN NEW;
END $$;

CREATE TRIGGER role_assignments_role_slug BEFORE INSERT OR UPDATE OF role_id ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION trellis_assignment_role_slug();
