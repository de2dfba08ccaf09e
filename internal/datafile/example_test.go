package datafile_test

import (
	"fmt"

	"github.com/trellis-authz/trellis/internal/datafile"
)

func ExampleParse() {
	const data = `
organizations:
  - {id: org_acme, name: Acme Corp}
resource_types:
  - {slug: workspace, name: Workspace}
  - {slug: project, name: Project, parent_types: [workspace]}
resources:
  - {organization_id: org_acme, type: workspace, external_id: eng, name: Engineering}
  - {organization_id: org_acme, type: project, external_id: api, name: API, parent: "workspace:eng"}
`
	d, err := datafile.Parse([]byte(data), "")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range d.Resources {
		fmt.Printf("%s %s:%s parent=%q\n", r.ID, r.Type, r.ExternalID, r.ParentID)
	}
	// Output:
	// authz_resource_31b7d089f6775b96 workspace:eng parent=""
	// authz_resource_ff82d82a5b6c0f6e project:api parent="authz_resource_31b7d089f6775b96"
}

func ExampleParse_problems() {
	const data = `
organizations:
  - {id: org_acme, name: Acme Corp}
resource_types:
  - {slug: workspace, name: Workspace}
resources:
  - {organization_id: org_acme, type: workspace, external_id: eng}
  - {organization_id: org_acme, type: project, external_id: api, parent: "workspace:sales"}
memberships:
  - {id: om_1, user_id: user_1, organization_id: org_acme, roles: [admin], status: away}
`
	_, err := datafile.Parse([]byte(data), "yaml")
	fmt.Println(err)
	// Output:
	// invalid dataset: 4 problems:
	//	line 8: resource authz_resource_ff82d82a5b6c0f6e: parent: no resource of type "workspace" with external_id "sales" in organization "org_acme" (unknown_reference)
	//	line 8: resource authz_resource_ff82d82a5b6c0f6e: type: unknown resource type "project" (unknown_reference)
	//	line 10: membership om_1: status: status "away" is not one of "active", "inactive", "pending" (invalid)
	//	line 10: membership om_1: roles: unknown role "admin" in organization "org_acme" (unknown_reference)
}
