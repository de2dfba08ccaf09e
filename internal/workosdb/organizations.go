package workosdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/workos"
)

// ---- organizations ----

const selectOrganization = `SELECT id, name, root_resource_id, external_id, metadata, domains, stripe_customer_id,
	attributes, created_at, updated_at FROM organizations`

type orgRow struct {
	ID               string                    `db:"id"`
	Name             string                    `db:"name"`
	RootResourceID   string                    `db:"root_resource_id"`
	ExternalID       sql.NullString            `db:"external_id"`
	Metadata         []byte                    `db:"metadata"`
	Domains          []byte                    `db:"domains"`
	StripeCustomerID sql.NullString            `db:"stripe_customer_id"`
	Attributes       postgres.AttributesColumn `db:"attributes"`
	CreatedAt        time.Time                 `db:"created_at"`
	UpdatedAt        time.Time                 `db:"updated_at"`
}

// domainRow is a domain as the organizations.domains column keeps it
// (0012_organization_domains.sql).
type domainRow struct {
	ID        string    `json:"id"`
	Domain    string    `json:"domain"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (r orgRow) organization() (workos.Organization, error) {
	md, err := metadata(r.Metadata)
	if err != nil {
		return workos.Organization{}, err
	}
	var rows []domainRow
	if err := json.Unmarshal(r.Domains, &rows); err != nil {
		return workos.Organization{}, fmt.Errorf("decode organization domains: %w", err)
	}
	var domains []workos.Domain
	for _, d := range rows {
		domains = append(domains, workos.Domain(d))
	}
	return workos.Organization{ID: r.ID, Name: r.Name, ExternalID: r.ExternalID.String, Metadata: md,
		Domains: domains, StripeCustomerID: r.StripeCustomerID.String, Attributes: model.Attributes(r.Attributes),
		RootResourceID: r.RootResourceID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}, nil
}

// setExtras writes the organization columns the data model does not carry:
// external id, metadata, domains and Stripe customer id. A domain of
// another organization is a conflict (see claim).
func setExtras(ctx context.Context, tx *postgres.Tx, id, ext string, md map[string]string, domains []workos.Domain, stripe string) error {
	if err := externalIDFree(ctx, tx, ext, id); err != nil {
		return err
	}
	names := make([]string, len(domains))
	probes := make([]string, len(domains)) // [{"domain": name}], for the gin index
	rows := make([]domainRow, len(domains))
	for i, d := range domains {
		names[i], rows[i] = d.Domain, domainRow(d)
		probe, _ := json.Marshal([]map[string]string{{"domain": d.Domain}}) // strings: cannot fail
		probes[i] = string(probe)
	}
	var taken string
	found, err := getOne(ctx, tx.SQL(), &taken, `SELECT d->>'domain' FROM organizations o, jsonb_array_elements(o.domains) d
		WHERE o.domains @> ANY($1::jsonb[]) AND o.id <> $2 AND d->>'domain' = ANY($3) LIMIT 1`,
		pq.Array(probes), id, pq.Array(names))
	if err != nil {
		return err
	}
	if found {
		return workos.Conflict("domain %q belongs to another organization", taken)
	}
	mdJSON, err := metadataJSON(md)
	if err != nil {
		return err
	}
	domainsJSON, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	_, err = tx.SQL().ExecContext(ctx, `UPDATE organizations SET external_id = nullif($2, ''), metadata = $3, domains = $4,
		stripe_customer_id = nullif($5, ''), updated_at = CASE WHEN created_at = now() THEN updated_at ELSE now() END WHERE id = $1`,
		id, ext, mdJSON, domainsJSON, stripe)
	return err
}

func getOrganization(ctx context.Context, q sqlx.QueryerContext, where string, arg string) (workos.Organization, bool, error) {
	var row orgRow
	found, err := getOne(ctx, q, &row, selectOrganization+" WHERE "+where, arg)
	if !found || err != nil {
		return workos.Organization{}, false, err
	}
	o, err := row.organization()
	return o, err == nil, err
}

func organization(ctx context.Context, q sqlx.QueryerContext, id string) (workos.Organization, error) {
	o, found, err := getOrganization(ctx, q, "id = $1", id)
	if err == nil && !found {
		err = workos.NotFound("organization", id)
	}
	return o, err
}

// externalIDFree fails with a conflict when another organization than id
// uses ext (see claim).
func externalIDFree(ctx context.Context, tx *postgres.Tx, ext, id string) error {
	if ext == "" {
		return nil
	}
	return claim(ctx, tx, workos.Conflict("external_id %q is used by another organization", ext),
		"SELECT 1 FROM organizations WHERE external_id = $1 AND id <> $2", ext, id)
}

func metadataJSON(m map[string]string) ([]byte, error) {
	if m == nil {
		m = map[string]string{}
	}
	return json.Marshal(m)
}

// CreateOrganization creates an organization and its root resource.
func (s *Store) CreateOrganization(ctx context.Context, in workos.OrganizationInput) (o workos.Organization, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		id := model.NewID(workos.PrefixOrganization)
		if err := apply(tx, model.Change{Op: model.OpUpsert, Organization: &model.Organization{
			ID: id, Name: in.Name, RootResourceID: model.NewID(workos.PrefixResource), Attributes: in.Attributes}}); err != nil {
			return err
		}
		domains := workos.SetDomains(nil, in.Domains, time.Now().UTC())
		if err := setExtras(ctx, tx, id, in.ExternalID, in.Metadata, domains, in.StripeCustomerID); err != nil {
			return err
		}
		var err error
		o, err = organization(ctx, tx.SQL(), id)
		return err
	})
	return o, rev, err
}

// GetOrganization returns organization id.
func (s *Store) GetOrganization(ctx context.Context, id string) (workos.Organization, error) {
	return readOne(ctx, s, organization, id)
}

// GetOrganizationByExternalID returns the organization with external id ext.
func (s *Store) GetOrganizationByExternalID(ctx context.Context, ext string) (o workos.Organization, err error) {
	err = s.read(ctx, func(q *sqlx.Tx) error {
		var found bool
		o, found, err = getOrganization(ctx, q, "external_id = $1", ext)
		if err == nil && !found {
			err = workos.NotFound("organization with external_id", ext)
		}
		return err
	})
	return o, err
}

// ListOrganizations returns one page of organizations by id.
func (s *Store) ListOrganizations(ctx context.Context, f workos.OrganizationFilter, opts workos.ListOptions) ([]workos.Organization, error) {
	var q listQuery
	if len(f.Domains) > 0 {
		q.and("EXISTS (SELECT 1 FROM jsonb_array_elements(domains) d WHERE d->>'domain' = ANY(" + q.arg(pq.Array(f.Domains)) + "))")
	}
	query := q.sql(selectOrganization, "id", opts)
	var rows []orgRow
	if err := s.read(ctx, func(tx *sqlx.Tx) error { return sqlx.SelectContext(ctx, tx, &rows, query, q.args...) }); err != nil {
		return nil, err
	}
	out := make([]workos.Organization, len(rows))
	for i, r := range rows {
		var err error
		if out[i], err = r.organization(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// UpdateOrganization changes organization id.
func (s *Store) UpdateOrganization(ctx context.Context, id string, u workos.OrganizationUpdate) (o workos.Organization, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		cur, err := organization(ctx, tx.SQL(), id)
		if err != nil {
			return err
		}
		// The model's organization: its name and attributes (an upsert
		// carries both; the write path changes nothing when neither differs).
		if u.Name != nil || u.Attributes != nil {
			next := model.Organization{ID: id, Name: cur.Name, RootResourceID: cur.RootResourceID, Attributes: cur.Attributes}
			if u.Name != nil {
				next.Name = *u.Name
			}
			if u.Attributes != nil {
				next.Attributes = *u.Attributes
			}
			if err := apply(tx, model.Change{Op: model.OpUpsert, Organization: &next}); err != nil {
				return err
			}
		}
		ext, md, domains, stripe := cur.ExternalID, cur.Metadata, cur.Domains, cur.StripeCustomerID
		if u.ExternalID != nil {
			ext = *u.ExternalID
		}
		if u.SetMetadata {
			md = u.Metadata
		}
		if u.Domains != nil {
			domains = workos.SetDomains(cur.Domains, *u.Domains, time.Now().UTC())
		}
		if u.StripeCustomerID != nil {
			stripe = *u.StripeCustomerID
		}
		if err := setExtras(ctx, tx, id, ext, md, domains, stripe); err != nil {
			return err
		}
		o, err = organization(ctx, tx.SQL(), id)
		return err
	})
	return o, rev, err
}

// DeleteOrganization deletes organization id; the schema's cascades remove
// its memberships, custom roles, resources and role assignments.
func (s *Store) DeleteOrganization(ctx context.Context, id string) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		if _, err := organization(ctx, tx.SQL(), id); err != nil {
			return err
		}
		return apply(tx, model.Change{Op: model.OpDelete, Organization: &model.Organization{ID: id}})
	})
}

// ---- memberships ----

const selectMembership = `SELECT m.id, m.user_id, m.organization_id, o.name AS organization_name, m.status, m.created_at, m.updated_at,
	coalesce((SELECT array_agg(r.slug ORDER BY r.organization_id IS NOT NULL, r.priority, r.slug) FROM membership_roles mr JOIN roles r ON r.id = mr.role_id
	          WHERE mr.membership_id = m.id), '{}') AS role_slugs
FROM organization_memberships m JOIN organizations o ON o.id = m.organization_id`

type membershipRow struct {
	ID               string         `db:"id"`
	UserID           string         `db:"user_id"`
	OrganizationID   string         `db:"organization_id"`
	OrganizationName string         `db:"organization_name"`
	Status           string         `db:"status"`
	RoleSlugs        pq.StringArray `db:"role_slugs"`
	CreatedAt        time.Time      `db:"created_at"`
	UpdatedAt        time.Time      `db:"updated_at"`
}

func (r membershipRow) membership() workos.Membership {
	return workos.Membership{ID: r.ID, UserID: r.UserID, OrganizationID: r.OrganizationID, OrganizationName: r.OrganizationName,
		Status: r.Status, RoleSlugs: []string(r.RoleSlugs), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func membership(ctx context.Context, q sqlx.QueryerContext, id string) (workos.Membership, error) {
	var row membershipRow
	found, err := getOne(ctx, q, &row, selectMembership+" WHERE m.id = $1", id)
	if err == nil && !found {
		err = workos.NotFound("organization membership", id)
	}
	return row.membership(), err
}

// CreateMembership creates an active membership.
func (s *Store) CreateMembership(ctx context.Context, in workos.MembershipInput) (m workos.Membership, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		if err := orgReferenced(ctx, tx.SQL(), in.OrganizationID); err != nil {
			return err
		}
		var other string
		found, err := getOne(ctx, tx.SQL(), &other, "SELECT id FROM organization_memberships WHERE organization_id = $1 AND user_id = $2 LIMIT 1",
			in.OrganizationID, in.UserID)
		if err != nil {
			return err
		}
		if found {
			return workos.Conflict("user %q already has membership %q in organization %q", in.UserID, other, in.OrganizationID)
		}
		id := model.NewID(workos.PrefixMembership)
		if err := apply(tx, model.Change{Op: model.OpUpsert, Membership: &model.Membership{ID: id, UserID: in.UserID,
			OrganizationID: in.OrganizationID, Status: model.StatusActive, RoleSlugs: nonNil(in.RoleSlugs)}}); err != nil {
			return err
		}
		m, err = membership(ctx, tx.SQL(), id)
		return err
	})
	return m, rev, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GetMembership returns membership id.
func (s *Store) GetMembership(ctx context.Context, id string) (workos.Membership, error) {
	return readOne(ctx, s, membership, id)
}

// GetMemberships returns the memberships among ids that exist, in the
// order of ids.
func (s *Store) GetMemberships(ctx context.Context, ids []string) ([]workos.Membership, error) {
	return readInOrder(ctx, s, membershipRow.membership, selectMembership+" WHERE m.id = ANY($1)", ids, func(m workos.Membership) string { return m.ID })
}

// ListMemberships returns one page of memberships by id.
func (s *Store) ListMemberships(ctx context.Context, f workos.MembershipFilter, opts workos.ListOptions) ([]workos.Membership, error) {
	var q listQuery
	if f.OrganizationID != "" {
		q.and("m.organization_id = " + q.arg(f.OrganizationID))
	}
	if f.UserID != "" {
		q.and("m.user_id = " + q.arg(f.UserID))
	}
	if len(f.Statuses) > 0 {
		q.and("m.status = ANY(" + q.arg(pq.Array(f.Statuses)) + ")")
	}
	return readAll(ctx, s, membershipRow.membership, q.sql(selectMembership, "m.id", opts), q.args...)
}

// UpdateMembership changes membership id's roles or status.
func (s *Store) UpdateMembership(ctx context.Context, id string, u workos.MembershipUpdate) (m workos.Membership, rev int64, err error) {
	rev, err = s.write(ctx, func(tx *postgres.Tx) error {
		cur, err := membership(ctx, tx.SQL(), id)
		if err != nil {
			return err
		}
		next := model.Membership{ID: id, UserID: cur.UserID, OrganizationID: cur.OrganizationID, Status: cur.Status, RoleSlugs: nonNil(cur.RoleSlugs)}
		if u.RoleSlugs != nil {
			next.RoleSlugs = nonNil(*u.RoleSlugs)
		}
		if u.Status != nil {
			next.Status = *u.Status
		}
		if err := update(ctx, tx, model.Change{Op: model.OpUpsert, Membership: &next}, "organization_memberships", "id", id); err != nil {
			return err
		}
		m, err = membership(ctx, tx.SQL(), id)
		return err
	})
	return m, rev, err
}

// DeleteMembership deletes membership id; its role assignments go with it.
func (s *Store) DeleteMembership(ctx context.Context, id string) (int64, error) {
	return s.write(ctx, func(tx *postgres.Tx) error {
		if _, err := membership(ctx, tx.SQL(), id); err != nil {
			return err
		}
		return apply(tx, model.Change{Op: model.OpDelete, Membership: &model.Membership{ID: id}})
	})
}
