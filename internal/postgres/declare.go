package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
)

// Schema is the declared part of the relationship data: resource types,
// permissions and environment roles (`trellis schema apply`).
type Schema struct {
	ResourceTypes []model.ResourceType
	Permissions   []model.Permission
	Roles         []model.Role // environment roles: OrganizationID must be ""
	// DefaultRole, if not "", is made the environment's default role (one
	// of the environment roles, of type organization).
	DefaultRole string
}

// SchemaReport says what ApplySchema changed, one line per entity, e.g.
// "created resource type workspace".
type SchemaReport struct {
	Changes []string
	// Revision is the revision the changes produced; 0 when nothing
	// changed.
	Revision int64
}

// ApplySchema makes the database's resource types, permissions and
// environment roles match sc, in one transaction through the validated
// write path: what sc names is created or updated (an entity already as
// declared is left alone, so applying the same schema twice changes
// nothing), and with prune, the types, permissions and environment roles sc
// does not name are deleted (organizations' own roles are never pruned).
// A rule broken on the way (e.g. pruning a type that still has resources)
// is a *ValidationError and nothing is written.
func (s *Store) ApplySchema(ctx context.Context, sc Schema, prune bool) (SchemaReport, error) {
	for _, r := range sc.Roles {
		if r.OrganizationID != "" {
			return SchemaReport{}, fmt.Errorf("role %q of organization %q: a schema declares environment roles only; manage an organization's own roles through the API", r.Slug, r.OrganizationID)
		}
	}
	var report SchemaReport
	rev, err := s.WriteTx(ctx, func(tx *Tx) error {
		report.Changes = nil
		cur, err := readSchema(ctx, tx)
		if err != nil {
			return err
		}
		var ups, dels []model.Change
		note := func(verb, kind, key string) { report.Changes = append(report.Changes, verb+" "+kind+" "+key) }

		types := map[string]model.ResourceType{}
		for _, t := range cur.ResourceTypes {
			types[t.Slug] = t
		}
		for _, t := range parentsFirst(sc.ResourceTypes) {
			old, ok := types[t.Slug]
			switch {
			case !ok:
				note("created", "resource type", t.Slug)
			case old.Name != t.Name || old.Description != t.Description || !sameSet(old.ParentTypes, t.ParentTypes):
				note("updated", "resource type", t.Slug)
			default:
				continue
			}
			ups = append(ups, model.Change{Op: model.OpUpsert, ResourceType: &t})
		}
		perms := map[string]model.Permission{}
		for _, p := range cur.Permissions {
			perms[p.Slug] = p
		}
		for _, p := range sc.Permissions {
			old, ok := perms[p.Slug]
			switch {
			case !ok:
				note("created", "permission", p.Slug)
			case old != p:
				note("updated", "permission", p.Slug)
			default:
				continue
			}
			ups = append(ups, model.Change{Op: model.OpUpsert, Permission: &p})
		}
		roles := map[string]model.Role{}
		for _, r := range cur.Roles {
			roles[r.Slug] = r
		}
		for _, r := range sc.Roles {
			r.Permissions = nonNilSlice(r.Permissions)
			old, ok := roles[r.Slug]
			switch {
			case !ok:
				note("created", "role", r.Slug)
			case old.Name != r.Name || old.Description != r.Description || old.ResourceType != r.ResourceType ||
				!slices.Equal(old.Permissions, r.Permissions):
				note("updated", "role", r.Slug)
			default:
				continue
			}
			ups = append(ups, model.Change{Op: model.OpUpsert, Role: &r})
		}
		if prune {
			// Roles before the permissions they hold, types children first.
			for _, r := range cur.Roles {
				if !slices.ContainsFunc(sc.Roles, func(d model.Role) bool { return d.Slug == r.Slug }) {
					note("deleted", "role", r.Slug)
					dels = append(dels, model.Change{Op: model.OpDelete, Role: &model.Role{Slug: r.Slug}})
				}
			}
			for _, p := range cur.Permissions {
				if !slices.ContainsFunc(sc.Permissions, func(d model.Permission) bool { return d.Slug == p.Slug }) {
					note("deleted", "permission", p.Slug)
					dels = append(dels, model.Change{Op: model.OpDelete, Permission: &model.Permission{Slug: p.Slug}})
				}
			}
			gone := parentsFirst(cur.ResourceTypes)
			slices.Reverse(gone)
			for _, t := range gone {
				if !slices.ContainsFunc(sc.ResourceTypes, func(d model.ResourceType) bool { return d.Slug == t.Slug }) {
					note("deleted", "resource type", t.Slug)
					dels = append(dels, model.Change{Op: model.OpDelete, ResourceType: &model.ResourceType{Slug: t.Slug}})
				}
			}
		}
		if err := tx.Apply(append(ups, dels...)); err != nil || sc.DefaultRole == "" {
			return err
		}
		switch cur, err := defaultRole(ctx, tx.SQL()); {
		case err != nil:
			return fmt.Errorf("read the default role: %w", err)
		case cur == sc.DefaultRole:
			return nil
		}
		note("set", "default role", sc.DefaultRole)
		return tx.SetDefaultRole(ctx, sc.DefaultRole)
	})
	if err != nil {
		return SchemaReport{}, err
	}
	if len(report.Changes) > 0 {
		report.Revision = rev
	}
	return report, nil
}

// readSchema reads the current resource types, permissions and environment
// roles.
func readSchema(ctx context.Context, tx *Tx) (Schema, error) {
	var sc Schema
	var types []struct {
		Slug        string         `db:"slug"`
		Name        string         `db:"name"`
		Description string         `db:"description"`
		Parents     pq.StringArray `db:"parents"`
	}
	if err := tx.SQL().SelectContext(ctx, &types, `SELECT t.slug, t.name, t.description,
			coalesce((SELECT array_agg(p.parent_type) FROM resource_type_parents p WHERE p.resource_type = t.slug), '{}') AS parents
		FROM resource_types t WHERE t.slug <> $1 ORDER BY t.slug`, model.OrganizationType); err != nil {
		return sc, fmt.Errorf("read resource types: %w", err)
	}
	for _, t := range types {
		sc.ResourceTypes = append(sc.ResourceTypes, model.ResourceType{Slug: t.Slug, Name: t.Name, Description: t.Description, ParentTypes: t.Parents})
	}
	var perms []struct {
		Slug         string `db:"slug"`
		Name         string `db:"name"`
		Description  string `db:"description"`
		ResourceType string `db:"resource_type"`
	}
	if err := tx.SQL().SelectContext(ctx, &perms, `SELECT slug, name, description, resource_type FROM permissions ORDER BY slug`); err != nil {
		return sc, fmt.Errorf("read permissions: %w", err)
	}
	for _, p := range perms {
		sc.Permissions = append(sc.Permissions, model.Permission{Slug: p.Slug, Name: p.Name, Description: p.Description, ResourceType: p.ResourceType})
	}
	var roles []struct {
		Slug         string         `db:"slug"`
		Name         string         `db:"name"`
		Description  string         `db:"description"`
		ResourceType string         `db:"resource_type"`
		Permissions  pq.StringArray `db:"permissions"`
	}
	if err := tx.SQL().SelectContext(ctx, &roles, `SELECT r.slug, r.name, r.description, r.resource_type,
			coalesce((SELECT array_agg(p.slug ORDER BY rp.position, p.slug) FROM role_permissions rp
			          JOIN permissions p ON p.id = rp.permission_id WHERE rp.role_id = r.id), '{}') AS permissions
		FROM roles r WHERE r.organization_id IS NULL ORDER BY r.slug`); err != nil {
		return sc, fmt.Errorf("read roles: %w", err)
	}
	for _, r := range roles {
		sc.Roles = append(sc.Roles, model.Role{Slug: r.Slug, Name: r.Name, Description: r.Description, ResourceType: r.ResourceType,
			Permissions: []string(r.Permissions)})
	}
	return sc, nil
}

// parentsFirst orders types so that every type comes after those of its
// parent types that are in the list (the write path needs a parent type to
// exist). The list must not loop; a loop is left to the write path to
// report.
func parentsFirst(types []model.ResourceType) []model.ResourceType {
	bySlug := map[string]model.ResourceType{}
	for _, t := range types {
		bySlug[t.Slug] = t
	}
	done := map[string]bool{}
	out := make([]model.ResourceType, 0, len(types))
	var visit func(t model.ResourceType)
	visit = func(t model.ResourceType) {
		if done[t.Slug] {
			return
		}
		done[t.Slug] = true
		for _, p := range t.ParentTypes {
			if pt, ok := bySlug[p]; ok {
				visit(pt)
			}
		}
		out = append(out, t)
	}
	for _, t := range types {
		visit(t)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
