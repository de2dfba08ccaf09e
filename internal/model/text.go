package model

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Why a string cannot be stored as text. PostgreSQL's text holds neither a
// NUL byte nor invalid UTF-8, and Trellis never stores a replacement in
// their place, so every data source and API rejects both, naming the field.
var (
	ErrNUL         = errors.New("contains a NUL byte")
	ErrInvalidUTF8 = errors.New("is not valid UTF-8")
)

// CheckText returns nil when s is valid UTF-8 without a NUL byte, else
// ErrNUL or ErrInvalidUTF8 (NUL first). Its messages read after a field
// name: "name contains a NUL byte".
func CheckText(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return ErrNUL
	}
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8
	}
	return nil
}

// texts reports every string field of every entity that CheckText
// rejects, under the field's JSON name. An entity whose own id or slug is
// rejected is named by its index, so no message repeats the bad bytes.
// Of a dataset known to be text (ValidateKnownText) it checks only the
// attributes' other rules.
func (v *validator) texts() {
	d := v.d
	if v.knownText { // nothing to report but the attributes' other rules
		for i, o := range d.Organizations {
			v.attributes(KindOrganization, o.ID, i, o.Attributes)
		}
		for i, r := range d.Resources {
			v.attributes(KindResource, r.ID, i, r.Attributes)
		}
		return
	}
	for i, o := range d.Organizations {
		v.text(KindOrganization, o.ID, i, "id", o.ID, "name", o.Name, "root_resource_id", o.RootResourceID)
		v.attributes(KindOrganization, o.ID, i, o.Attributes)
	}
	for i, t := range d.ResourceTypes {
		v.text(KindResourceType, t.Slug, i, "slug", t.Slug, "name", t.Name, "description", t.Description)
		v.textList(KindResourceType, t.Slug, i, "parent_types", t.ParentTypes)
	}
	for i, p := range d.Permissions {
		v.text(KindPermission, p.Slug, i, "slug", p.Slug, "name", p.Name, "description", p.Description, "resource_type", p.ResourceType)
	}
	for i, r := range d.Roles {
		key := r.Key()
		v.text(KindRole, key, i, "slug", r.Slug, "name", r.Name, "description", r.Description,
			"resource_type", r.ResourceType, "organization_id", r.OrganizationID)
		v.textList(KindRole, key, i, "permissions", r.Permissions)
	}
	for i, m := range d.Memberships {
		v.text(KindMembership, m.ID, i, "id", m.ID, "user_id", m.UserID, "organization_id", m.OrganizationID, "status", m.Status)
		v.textList(KindMembership, m.ID, i, "role_slugs", m.RoleSlugs)
	}
	for i, r := range d.Resources {
		v.text(KindResource, r.ID, i, "id", r.ID, "organization_id", r.OrganizationID, "type", r.Type,
			"external_id", r.ExternalID, "name", r.Name, "description", r.Description, "parent_id", r.ParentID)
		v.attributes(KindResource, r.ID, i, r.Attributes)
	}
	for i, a := range d.Assignments {
		v.text(KindAssignment, a.ID, i, "id", a.ID, "membership_id", a.MembershipID, "role", a.RoleSlug, "resource_id", a.ResourceID)
	}
}

// text checks fields, given as name, value pairs, of the entity kind id.
func (v *validator) text(kind, id string, index int, fields ...string) {
	if CheckText(id) != nil {
		id = ""
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if err := CheckText(fields[i+1]); err != nil {
			v.add(kind, id, index, fields[i], CodeInvalid, "%s %s", fields[i], err)
		}
	}
}

// textList checks each value of the list field of the entity kind id.
func (v *validator) textList(kind, id string, index int, field string, values []string) {
	if CheckText(id) != nil {
		id = ""
	}
	for _, s := range values {
		if err := CheckText(s); err != nil {
			v.add(kind, id, index, field, CodeInvalid, "a value of %s %s", field, err)
			return
		}
	}
}

// attributes checks the attributes of the entity kind id (CheckAttributes).
func (v *validator) attributes(kind, id string, index int, a Attributes) {
	if CheckText(id) != nil {
		id = ""
	}
	if err := CheckAttributes(a); err != nil {
		v.add(kind, id, index, "attributes", CodeInvalid, "attributes%s", err)
	}
}
