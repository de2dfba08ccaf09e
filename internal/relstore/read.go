package relstore

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/util"
)

// WholeCollectionErr is the storage.Error code of a refused read of a
// whole collection (see Store.Read). IsWholeCollection tests for it.
const WholeCollectionErr = "relstore_whole_collection_error"

// BadPageQueryErr is the storage.Error code of a read of tree_page/<query>
// or member_page/<query> whose query does not decode.
const BadPageQueryErr = "relstore_bad_page_query"

// IsWholeCollection reports whether err is a refused read of a whole
// collection.
func IsWholeCollection(err error) bool {
	var se *storage.Error
	return errors.As(err, &se) && se.Code == WholeCollectionErr
}

func wholeCollection(full storage.Path) error {
	return &storage.Error{
		Code: WholeCollectionErr,
		Message: full.String() + ": a whole collection of the compact store is not materialized; " +
			"read one entry (e.g. " + Root + "/resources/<id>) or enable Options.WholeReads",
	}
}

// The not-found errors of OPA's in-memory store, word for word.
var errNotFound = &storage.Error{Code: storage.NotFoundErr, Message: "document does not exist"}

func notFoundHint(full storage.Path, hint string) error {
	return &storage.Error{Code: storage.NotFoundErr, Message: full.String() + ": " + hint}
}

// read returns the value at path p below Root (full is the whole path, for
// error messages): only that value, materialized.
func (st *state) read(p, full storage.Path, wholeReads bool) (any, error) {
	if len(p) == 0 {
		if !wholeReads {
			return nil, wholeCollection(full)
		}
		return st.document(), nil
	}
	name, rest := p[0], p[1:]
	if len(rest) == 0 {
		switch name {
		case keyRevision, keyMaxDepth, keyPermissions, keyResourceTypes:
			// Small: the revision, max_depth, the permissions (a few per
			// type) and the resource types.
		case keyTreePage, keyMemberPage:
			return nil, wholeCollection(full)
		default:
			if !wholeReads && slices.Contains(documentKeys, name) {
				return nil, wholeCollection(full)
			}
		}
		v, ok := st.collection(name)
		if !ok {
			return nil, errNotFound
		}
		return v, nil
	}
	key := rest[0]
	var v any
	switch name {
	case keyRevision:
		return descend(st.revisionValue(), rest, full)
	case keyMaxDepth:
		return descend(st.maxDepthValue(), rest, full)
	case keyQuarantined:
		if st.heldOrgNamed(key) == 0 {
			return nil, errNotFound
		}
		v = true
	case keyQuarantinedResources:
		row := st.heldResNamed(key)
		if row == 0 {
			return nil, errNotFound
		}
		v = st.heldValue(&st.heldRes)(row)
	case keyQuarantinedMemberships:
		row := st.heldMemNamed(key)
		if row == 0 {
			return nil, errNotFound
		}
		v = st.heldValue(&st.heldMems)(row)
	case keyOrgs:
		row := st.orgNamed(key)
		if row == 0 {
			return nil, errNotFound
		}
		v = st.orgValue(row)
	case keyResources:
		row := st.resourceNamed(key)
		if row == 0 {
			return nil, errNotFound
		}
		// resources/<id>/0, 1 or 2 (organization, type, external id), as
		// the policies read them: the string alone.
		if len(rest) > 1 {
			if f, ok := resourceFields[rest[1]]; ok {
				return descend(st.str.str(st.res.at(row, f)), rest[2:], full)
			}
		}
		v = st.resourceValue(row)
	case keyLookup:
		return st.readLookup(rest, full)
	case keyAttributes, keyOrgAttributes:
		t, f, row := &st.res, resAttrs, st.resourceNamed(key)
		if name == keyOrgAttributes {
			t, f, row = &st.orgs, orgAttrs, st.orgNamed(key)
		}
		a := t.at(row, f)
		if row == 0 || a == 0 {
			return nil, errNotFound
		}
		var err error
		if v, err = st.attributesValue(a); err != nil {
			return nil, err
		}
	case keyChildren:
		kids, ok := st.childrenValue(st.resourceNamed(key))
		if !ok {
			return nil, errNotFound
		}
		v = kids
	case keyTreePage:
		var q pageQuery
		if err := decodePageQuery(key, &q, full); err != nil {
			return nil, err
		}
		v = st.treePage(q)
	case keyMemberPage:
		var q memberQuery
		if err := decodePageQuery(key, &q, full); err != nil {
			return nil, err
		}
		v = st.memberPage(q)
	case keyGrants:
		return st.readGrants(rest, full)
	case keyMemberships:
		return st.readMembership(rest, full)
	case keyGroups:
		v, more, ok := st.readGroup(rest)
		if !ok {
			return nil, errNotFound
		}
		return descend(v, more, full)
	case keyMemberGroups:
		gs, ok := st.memberGroupsValue(st.membershipNamed(key))
		if !ok {
			return nil, errNotFound
		}
		v = gs
	case keyOrgRoles:
		row := st.membershipNamed(key)
		if row == 0 {
			return nil, errNotFound
		}
		v = st.orgRolesValue(row)
	case keyRoles:
		return st.readRole(rest, full)
	case keyPermissions:
		row := st.permNamed(key)
		if row == 0 {
			return nil, errNotFound
		}
		v = st.permValue(row)
	case keyResourceTypes:
		if st.typeNamed(key) == 0 {
			return nil, errNotFound
		}
		v = true
	default:
		return nil, errNotFound
	}
	return descend(v, rest[1:], full)
}

// resourceFields are the fields of a resource entry's first elements.
var resourceFields = map[string]int{"0": resOrg, "1": resTyp, "2": resExt}

// decodePageQuery decodes the key of a tree_page or member_page read.
func decodePageQuery(key string, q any, full storage.Path) error {
	d := json.NewDecoder(strings.NewReader(key))
	d.DisallowUnknownFields()
	if err := d.Decode(q); err != nil {
		return &storage.Error{Code: BadPageQueryErr, Message: full.String() + ": not a page query: " + err.Error()}
	}
	return nil
}

// readLookup reads lookup/<org>[/<type>[/<ext>]...]: one organization's
// external ids at most.
func (st *state) readLookup(p, full storage.Path) (any, error) {
	orow := st.orgNamed(p[0])
	if orow == 0 {
		return nil, errNotFound
	}
	switch len(p) {
	case 1:
		v, _ := st.lookupValue(orow, 0)
		return v, nil
	case 2:
		typ := st.str.lookup(p[1])
		if typ == 0 {
			return nil, errNotFound
		}
		v, ok := st.lookupValue(orow, typ)
		if !ok {
			return nil, errNotFound
		}
		return v, nil
	}
	row := st.resourceByExtNamed(p[0], p[1], p[2])
	if row == 0 {
		return nil, errNotFound
	}
	return descend(st.str.str(st.res.at(row, resID)), p[3:], full)
}

// readGrants reads grants/<rid>[/<om>...].
func (st *state) readGrants(p, full storage.Path) (any, error) {
	res := st.resourceNamed(p[0])
	if len(p) == 1 {
		v, ok := st.grantsValue(res)
		if !ok {
			return nil, errNotFound
		}
		return v, nil
	}
	gr := st.grant(res, st.principalNamed(p[1]))
	if gr == 0 {
		return nil, errNotFound
	}
	return descend(st.strs(st.lists.get(st.grants.at(gr, grKeys))), p[2:], full)
}

// readMembership reads memberships/<om>[/<field>...], materializing only
// the field asked for: a membership's anchors may be many.
func (st *state) readMembership(p, full storage.Path) (any, error) {
	row := st.membershipNamed(p[0])
	if row == 0 {
		return nil, errNotFound
	}
	if len(p) == 1 {
		return st.membershipValue(row), nil
	}
	var v any
	switch p[1] {
	case "org":
		v = st.str.str(st.mems.at(row, memOrg))
	case "active":
		v = st.mems.at(row, memActive) == 1
	case "anchors":
		v = st.anchors(row)
	default:
		return nil, errNotFound
	}
	return descend(v, p[2:], full)
}

// readRole reads roles/<key>[/<field>...]; roles/<key>/permissions/<p>, the
// policies' test of a permission, materializes nothing but the answer.
func (st *state) readRole(p, full storage.Path) (any, error) {
	row := st.roleNamed(p[0])
	if row == 0 {
		return nil, errNotFound
	}
	if len(p) == 1 {
		return st.roleValue(row), nil
	}
	var v any
	switch p[1] {
	case "slug":
		v = st.str.str(st.roles.at(row, roleSlug))
	case "type":
		v = st.str.str(st.roles.at(row, roleTyp))
	case "permissions":
		if len(p) == 2 {
			return st.rolePermissions(row), nil
		}
		if !st.roleHas(row, p[2]) {
			return nil, errNotFound
		}
		v = true
		p = p[1:]
	default:
		return nil, errNotFound
	}
	return descend(v, p[2:], full)
}

// descend follows path into v as OPA's in-memory store follows a path
// into its data, with the same errors.
func descend(v any, path, full storage.Path) (any, error) {
	for _, key := range path {
		switch cur := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = cur[key]; !ok {
				return nil, errNotFound
			}
		case []any:
			i, ok := util.Atoi(key)
			if !ok {
				return nil, notFoundHint(full, "array index must be integer")
			}
			if i < 0 || i >= len(cur) {
				return nil, notFoundHint(full, "array index out of range")
			}
			v = cur[i]
		default:
			return nil, errNotFound
		}
	}
	return v, nil
}
