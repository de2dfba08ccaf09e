package datafile

import (
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add(demoYAML, "")
	f.Add(readFile(f, "testdata/small.yaml"), "yaml")
	f.Add(readFile(f, "testdata/small.json"), "json")
	for _, broken := range []string{
		"",
		"{",
		"- a\n",
		"resources:\n  - {id: x, parent: x}\n",
		"resources:\n  - parnet: x\n",
		"max_depth: -1\n",
		"resource_types:\n  - {slug: a, parent_types: [b]}\n  - {slug: b, parent_types: [a]}\n",
		"organizations: [{id: o}]\nresource_types: [{slug: t}]\nresources:\n  - {organization_id: o, type: t, external_id: a, parent: \"t:b\"}\n  - {organization_id: o, type: t, external_id: b, parent: \"t:a\"}\n",
		"assignments:\n  - {membership: om, role: r, resource: organization}\n",
		`{"resources": [{"id": "x", "id": "y"}]}`,
		"a: &a [*a]\n",
		"organizations: [{id: \"org_\\0\"}]\n",
		"organizations: [{id: org_a, name: \"\xff\"}]\n",
		"organizations: [{id: org_a, name: \x00}]\n",
		`{"organizations": [{"id": "org_a", "name": "\u0000"}]}`,
		`{"organizations": [{"id": "org_a", "name": "\ud800"}]}`,
		"{\"organizations\": [{\"id\": \"org_a\", \"name\": \"\xed\xa0\x80\"}]}",
	} {
		f.Add([]byte(broken), "")
	}
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		d, err := Parse(data, format)
		if err != nil {
			if d != nil {
				t.Fatalf("Parse() returned a dataset with error %v", err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("Parse() succeeded on a dataset that Validate rejects: %v", err)
		}
	})
}
