-- Group members' events take WorkOS's names (issue 17): a member added is
-- group.member_added, a member removed group.member_removed, as
-- @workos-inc/node 11.0.0 deserializes them ({group_id,
-- organization_membership_id}), instead of trellis.group_member.created
-- and .deleted (0008). A member is never updated (group_members is
-- immutable). Events already logged and webhook endpoints subscribed to
-- the old names are renamed.

CREATE OR REPLACE FUNCTION trellis_event_type(p_entity text, r jsonb, p_action text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_entity
        WHEN 'group_member' THEN CASE p_action WHEN 'created' THEN 'group.member_added'
                                               WHEN 'deleted' THEN 'group.member_removed' END
        ELSE CASE p_entity
            WHEN 'organization' THEN 'organization'
            WHEN 'membership' THEN 'organization_membership'
            WHEN 'permission' THEN 'permission'
            WHEN 'role' THEN CASE WHEN r->>'organization_id' IS NULL THEN 'role' ELSE 'organization_role' END
            WHEN 'resource' THEN 'trellis.authorization_resource'
            WHEN 'assignment' THEN 'trellis.role_assignment'
            WHEN 'resource_type' THEN 'trellis.resource_type'
            WHEN 'group' THEN 'group'
            WHEN 'group_assignment' THEN 'trellis.group_role_assignment'
            END || '.' || p_action
        END
$$;

UPDATE events SET type = CASE type WHEN 'trellis.group_member.created' THEN 'group.member_added'
                                   ELSE 'group.member_removed' END
WHERE type IN ('trellis.group_member.created', 'trellis.group_member.deleted');

UPDATE webhook_endpoints SET events = array_replace(array_replace(events,
    'trellis.group_member.created', 'group.member_added'),
    'trellis.group_member.deleted', 'group.member_removed')
WHERE events && ARRAY['trellis.group_member.created', 'trellis.group_member.deleted'];
