package datafile

import (
	"bytes"
	"fmt"
	"testing"
)

// generated returns a data file with n projects under n/10 workspaces in
// one organization, with an assignment per workspace.
func generated(n int, format string) []byte {
	var b bytes.Buffer
	if format == FormatJSON {
		b.WriteString(`{"organizations": [{"id": "org_a"}],
"resource_types": [{"slug": "workspace"}, {"slug": "project", "parent_types": ["workspace"]}],
"roles": [{"slug": "admin", "resource_type": "workspace"}],
"memberships": [{"id": "om_1", "user_id": "user_1", "organization_id": "org_a"}],
"resources": [`)
		for i := range n / 10 {
			fmt.Fprintf(&b, "\n{\"organization_id\": \"org_a\", \"type\": \"workspace\", \"external_id\": \"w%d\"},", i)
		}
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "\n{\"organization_id\": \"org_a\", \"type\": \"project\", \"external_id\": \"p%d\", \"parent\": \"workspace:w%d\"}", i, i/10)
		}
		b.WriteString("],\n\"assignments\": [")
		for i := range n / 10 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "\n{\"membership\": \"om_1\", \"role\": \"admin\", \"resource\": \"workspace:w%d\"}", i)
		}
		b.WriteString("]}\n")
		return b.Bytes()
	}
	b.WriteString(`organizations: [{id: org_a}]
resource_types: [{slug: workspace}, {slug: project, parent_types: [workspace]}]
roles: [{slug: admin, resource_type: workspace}]
memberships: [{id: om_1, user_id: user_1, organization_id: org_a}]
resources:
`)
	for i := range n / 10 {
		fmt.Fprintf(&b, "  - {organization_id: org_a, type: workspace, external_id: w%d}\n", i)
	}
	for i := range n {
		fmt.Fprintf(&b, "  - {organization_id: org_a, type: project, external_id: p%d, parent: \"workspace:w%d\"}\n", i, i/10)
	}
	b.WriteString("assignments:\n")
	for i := range n / 10 {
		fmt.Fprintf(&b, "  - {membership: om_1, role: admin, resource: \"workspace:w%d\"}\n", i)
	}
	return b.Bytes()
}

func BenchmarkParse(b *testing.B) {
	for _, format := range []string{FormatYAML, FormatJSON} {
		data := generated(10_000, format)
		b.Run(format, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse(data, format); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
