package main

import (
	"io"
	"text/template"
	"time"

	"github.com/trellis-authz/trellis/internal/token"
)

// devToken describes a token --dev mints for a demo membership. The claims
// mirror what AuthKit puts in a session token for that membership's
// organization role, plus the organization_membership_id template claim.
type devToken struct {
	Membership, Organization, User, Role string
	Permissions                          []string
}

// The demo's org-member role grants org:view and workspace:view.
var (
	bobToken   = devToken{"om_bob", "org_acme", "user_bob", "org-member", []string{"org:view", "workspace:view"}}
	carolToken = devToken{"om_carol", "org_acme", "user_carol", "org-member", []string{"org:view", "workspace:view"}}
)

func (d devToken) mint(s *token.Signer, ttl time.Duration) (string, error) {
	now := time.Now()
	return s.Sign(map[string]any{
		"iss":                        devIssuer,
		"sub":                        d.User,
		"sid":                        "session_dev_" + d.User,
		"org_id":                     d.Organization,
		"role":                       d.Role,
		"roles":                      []string{d.Role},
		"permissions":                d.Permissions,
		"organization_membership_id": d.Membership,
		"iat":                        now.Unix(),
		"exp":                        now.Add(ttl).Unix(),
	})
}

var devHelp = template.Must(template.New("dev").Parse(`
Trellis is running in development mode on {{.URL}} with the embedded demo data.
Tokens below are valid for {{.TTL}}. API key: {{.APIKey}}

# Allowed by the token: bob's session token carries workspace:view for org_acme.
curl -s {{.URL}}/v1/check -d '{"token": "{{.Bob}}", "permission": "workspace:view", "resource": {"type": "workspace", "external_id": "acme-sales"}}'

# Allowed by inheritance: bob is workspace-admin on workspace acme-eng, which holds project api.
curl -s {{.URL}}/v1/check -d '{"token": "{{.Bob}}", "permission": "project:edit", "resource": {"type": "project", "external_id": "api"}}'

# Denied: carol edits project web only, not api.
curl -s {{.URL}}/v1/check -d '{"token": "{{.Carol}}", "permission": "project:edit", "resource": {"type": "project", "external_id": "api"}}'

# A membership subject needs the API key; effective permissions and listing work the same way.
curl -s {{.URL}}/v1/effective-permissions -H 'Authorization: Bearer {{.APIKey}}' -d '{"subject": {"organization_membership_id": "om_bob"}, "resource": {"type": "project", "external_id": "api", "organization_id": "org_acme"}}'
curl -s {{.URL}}/v1/list-resources -d '{"token": "{{.Bob}}", "permission": "project:edit", "resource_type": "project"}'
`))

// printDevHelp prints ready-to-paste requests against the demo data.
func printDevHelp(w io.Writer, url string, s *token.Signer, apiKey string) error {
	const ttl = 12 * time.Hour
	bob, err := bobToken.mint(s, ttl)
	if err != nil {
		return err
	}
	carol, err := carolToken.mint(s, ttl)
	if err != nil {
		return err
	}
	return devHelp.Execute(w, map[string]any{"URL": url, "TTL": ttl, "APIKey": apiKey, "Bob": bob, "Carol": carol})
}
