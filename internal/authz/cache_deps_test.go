package authz

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trellis-authz/trellis/internal/token"
)

// TestDependsOn: the organizations an answer is stamped with, per shape of
// subject and reference (see decisionCache).
func TestDependsOn(t *testing.T) {
	member := subject{membershipID: "om_1"}
	tok := func(org, om string) subject {
		return subject{claims: &token.Claims{OrganizationID: org, MembershipID: om}}
	}
	byID := ResourceRef{ID: "r_1"}
	byExt := ResourceRef{Type: "project", ExternalID: "p1"}
	byExtIn := ResourceRef{Type: "project", ExternalID: "p1", OrganizationID: "org_r"}
	tests := []struct {
		name                   string
		v                      subject
		r                      ResourceRef
		memberOrg, resourceOrg string
		wantOrgs               []string
		wantAnyChange          bool
	}{
		{"membership and resource by id", member, byID, "org_m", "org_r", []string{"org_m", "org_r"}, false},
		{"unknown resource", member, byID, "org_m", "", nil, true},
		{"unknown membership", member, byID, "", "org_r", nil, true},
		{"token without a membership", tok("org_t", ""), byID, "", "org_r", []string{"org_r"}, false},
		{"token's membership", tok("org_t", "om_1"), byID, "org_m", "org_r", []string{"org_m", "org_r"}, false},
		{"token naming an unknown membership", tok("org_t", "om_1"), byID, "", "org_r", nil, true},
		{"external id in the membership's organization", member, byExt, "org_m", "", []string{"org_m"}, false},
		{"external id in a named organization", member, byExtIn, "org_m", "", []string{"org_m", "org_r"}, false},
		{"external id in the token's organization", tok("org_t", "om_1"), byExt, "org_m", "", []string{"org_m", "org_t"}, false},
		{"external id, token of no organization", tok("", ""), byExt, "", "", []string{""}, false},
		{"external id, every candidate", tok("org_t", "om_1"), byExtIn, "org_m", "", []string{"org_m", "org_r", "org_t"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orgs, anyChange := dependsOn(tt.v, tt.r, tt.v.membership(), tt.memberOrg, tt.resourceOrg)
			if anyChange != tt.wantAnyChange {
				t.Errorf("anyChange = %v, want %v", anyChange, tt.wantAnyChange)
			}
			if !anyChange {
				if d := cmp.Diff(orgs, tt.wantOrgs, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("organizations (-got +want):\n%s", d)
				}
			}
		})
	}
}
