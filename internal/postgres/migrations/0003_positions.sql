-- The order of a membership's organization roles (the first is its primary
-- role, "role" in the WorkOS API) and of a role's permissions (the order
-- they were added) is part of the WorkOS objects, so it is stored. Rows
-- written before this migration, and bulk imports, have position 0 and are
-- ordered by slug after the positioned ones' ties.
ALTER TABLE membership_roles ADD COLUMN position integer NOT NULL DEFAULT 0;
ALTER TABLE role_permissions ADD COLUMN position integer NOT NULL DEFAULT 0;
