package authz

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trellis-authz/trellis/internal/engine"
	"github.com/trellis-authz/trellis/internal/token"
)

// TestDependsOn: what an answer is stamped with, per shape of subject and
// reference (see decisionCache).
func TestDependsOn(t *testing.T) {
	member := subject{membershipID: "om_1"}
	tok := func(org, om string) subject {
		return subject{claims: &token.Claims{OrganizationID: org, MembershipID: om}}
	}
	byID := ResourceRef{ID: "r_1"}
	byExt := ResourceRef{Type: "project", ExternalID: "p1"}
	byExtIn := ResourceRef{Type: "project", ExternalID: "p1", OrganizationID: "org_r"}
	om1 := []string{"om_1"}
	tests := []struct {
		name                   string
		v                      subject
		r                      ResourceRef
		memberOrg, resourceOrg string
		want                   engine.Deps
	}{
		{"membership and resource by id", member, byID, "org_m", "org_r", engine.Deps{Orgs: []string{"org_r"}, Memberships: om1}},
		{"unknown resource", member, byID, "org_m", "", engine.Deps{Memberships: om1, AnyChange: true}},
		{"unknown membership", member, byID, "", "org_r", engine.Deps{Orgs: []string{"org_r"}, Memberships: om1}},
		{"token without a membership", tok("org_t", ""), byID, "", "org_r", engine.Deps{Orgs: []string{"org_r"}}},
		{"token's membership", tok("org_t", "om_1"), byID, "org_m", "org_r", engine.Deps{Orgs: []string{"org_r"}, Memberships: om1}},
		{"external id in the membership's organization", member, byExt, "org_m", "", engine.Deps{Orgs: []string{"org_m"}, Memberships: om1}},
		{"external id, unknown membership", member, byExt, "", "", engine.Deps{Memberships: om1}},
		{"external id in a named organization", member, byExtIn, "org_m", "", engine.Deps{Orgs: []string{"org_r", "org_m"}, Memberships: om1}},
		{"external id in the token's organization", tok("org_t", ""), byExt, "", "", engine.Deps{Orgs: []string{"org_t"}}},
		{"external id, token of no organization", tok("", ""), byExt, "", "", engine.Deps{Orgs: []string{""}}},
		{"external id, every candidate", tok("org_t", "om_1"), byExtIn, "org_m", "", engine.Deps{Orgs: []string{"org_r", "org_t", "org_m"}, Memberships: om1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dependsOn(tt.v, tt.r, tt.v.membership(), tt.memberOrg, tt.resourceOrg)
			if d := cmp.Diff(got, tt.want, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("dependsOn (-got +want):\n%s", d)
			}
		})
	}
}
