package gen

import (
	"strconv"

	"github.com/trellis-authz/trellis/internal/model"
)

// The wide organization (Spec.Wide): one organization of WideResources
// resources over depth 5, for lists whose pages must not cost the rest.
const (
	WideOrganization = "org_wide"
	// WideResources is its number of resources, its root excluded: 10
	// workspaces of 1,000 projects, each with 3 folders of 2 documents.
	WideResources = wideWorkspaces * (1 + wideProjects*(1+wideFolders*(1+wideDocuments)))
	// WideOrgMember holds org-admin on the root: it sees every resource.
	WideOrgMember = "om_wide_org"
	// WideWorkspaceMember holds workspace-viewer on the first workspace:
	// it sees a tenth of them (10,001).
	WideWorkspaceMember = "om_wide_workspace"
	// WideScatteredMember holds project-viewer on WideScatteredProjects
	// projects spread over every workspace: it sees 500.
	WideScatteredMember = "om_wide_scattered"
	// WideMembers memberships hold workspace-viewer on the second
	// workspace, for lists of memberships; WideCrowdedResource is a
	// document below it, which each of them (and WideOrgMember) can view.
	WideMembers = 10_000

	WideScatteredProjects = 50

	wideWorkspaces, wideProjects, wideFolders, wideDocuments = 10, 1_000, 3, 2
)

// WideResource returns the id of the wide organization's resource at the
// given indexes (-1: above that level): e.g. WideResource(0, -1, -1, -1)
// is the first workspace.
func WideResource(ws, prj, folder, doc int) string {
	id := "authz_resource_wide_w" + strconv.Itoa(ws)
	for _, p := range []struct {
		tag string
		i   int
	}{{"p", prj}, {"f", folder}, {"d", doc}} {
		if p.i < 0 {
			return id
		}
		id += p.tag + strconv.Itoa(p.i)
	}
	return id
}

// WideCrowdedResource is a document every WideMembers membership can view.
var WideCrowdedResource = WideResource(1, 0, 0, 0)

// wide adds the wide organization to the dataset of a depth-5 tier.
func (g *generator) wide() {
	ds := g.ds
	org := WideOrganization
	ds.Organizations = append(ds.Organizations, model.Organization{ID: org, Name: "Wide"})
	add := func(id, typ, parent string) {
		ds.Resources = append(ds.Resources, model.Resource{ID: id, OrganizationID: org, Type: typ, ExternalID: id, Name: id, ParentID: parent})
	}
	for w := range wideWorkspaces {
		ws := WideResource(w, -1, -1, -1)
		add(ws, "workspace", "")
		for p := range wideProjects {
			prj := WideResource(w, p, -1, -1)
			add(prj, "project", ws)
			for f := range wideFolders {
				folder := WideResource(w, p, f, -1)
				add(folder, "folder", prj)
				for d := range wideDocuments {
					add(WideResource(w, p, f, d), "document", folder)
				}
			}
		}
	}
	member := func(id string) {
		ds.Memberships = append(ds.Memberships, model.Membership{ID: id, UserID: "user_" + id, OrganizationID: org, Status: model.StatusActive})
	}
	assign := func(om, role, rid string) {
		ds.Assignments = append(ds.Assignments, model.Assignment{
			ID: "role_assignment_wide_" + strconv.Itoa(len(ds.Assignments)+1), MembershipID: om, RoleSlug: role, ResourceID: rid,
		})
	}
	member(WideOrgMember)
	assign(WideOrgMember, "org-admin", model.RootResourceID(org))
	member(WideWorkspaceMember)
	assign(WideWorkspaceMember, "workspace-viewer", WideResource(0, -1, -1, -1))
	member(WideScatteredMember)
	for i := range WideScatteredProjects {
		// Spread over the workspaces and their projects, deterministically.
		assign(WideScatteredMember, "project-viewer", WideResource(i%wideWorkspaces, (i*397)%wideProjects, -1, -1))
	}
	for i := range WideMembers {
		om := "om_wide_m" + strconv.Itoa(i)
		member(om)
		assign(om, "workspace-viewer", WideResource(1, -1, -1, -1))
	}
}
