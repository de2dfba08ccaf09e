-- Bulk imports (trellis load, Store.Import) set trellis.bulk and log nothing
-- row by row: followers load a fresh snapshot at the import's resync
-- revision instead (0002). trellis_log returned early for them, but only
-- after the trigger had computed the row's whole-state JSON — for
-- membership_roles a join per row, planned against statistics of tables
-- still empty in the importing transaction. The log triggers now skip bulk
-- rows in their WHEN condition, before any work.
--
-- Numbered to be renumbered freely: it depends on 0002 only.

DROP TRIGGER organizations_log ON organizations;
DROP TRIGGER resource_types_log ON resource_types;
DROP TRIGGER resource_type_parents_log ON resource_type_parents;
DROP TRIGGER permissions_log ON permissions;
DROP TRIGGER roles_log ON roles;
DROP TRIGGER role_permissions_log ON role_permissions;
DROP TRIGGER organization_memberships_log ON organization_memberships;
DROP TRIGGER membership_roles_log ON membership_roles;
DROP TRIGGER resources_log ON resources;
DROP TRIGGER role_assignments_log ON role_assignments;

CREATE TRIGGER organizations_log AFTER INSERT OR UPDATE OR DELETE ON organizations
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_organization();
CREATE TRIGGER resource_types_log AFTER INSERT OR UPDATE OR DELETE ON resource_types
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_resource_type();
CREATE TRIGGER resource_type_parents_log AFTER INSERT OR UPDATE OR DELETE ON resource_type_parents
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_resource_type_parent();
CREATE TRIGGER permissions_log AFTER INSERT OR UPDATE OR DELETE ON permissions
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_permission();
CREATE TRIGGER roles_log AFTER INSERT OR UPDATE OR DELETE ON roles
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_role();
CREATE TRIGGER role_permissions_log AFTER INSERT OR UPDATE OR DELETE ON role_permissions
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_role_permission();
CREATE TRIGGER organization_memberships_log AFTER INSERT OR UPDATE OR DELETE ON organization_memberships
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_membership();
CREATE TRIGGER membership_roles_log AFTER INSERT OR UPDATE OR DELETE ON membership_roles
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_membership_role();
CREATE TRIGGER resources_log AFTER INSERT OR UPDATE OR DELETE ON resources
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_resource();
CREATE TRIGGER role_assignments_log AFTER INSERT OR UPDATE OR DELETE ON role_assignments
    FOR EACH ROW WHEN (coalesce(current_setting('trellis.bulk', true), '') <> 'on')
    EXECUTE FUNCTION trellis_log_assignment();
