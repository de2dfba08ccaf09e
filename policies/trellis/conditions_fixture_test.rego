# A test extension with a grant condition: project-editor's grants hold
# only from the office network; other roles' always.
package trellis.ext.office_editors

deny_grant contains {"code": "editor_outside_office", "message": "project-editor applies from the office only"} if {
	input.grant.role == "project-editor"
	input.context.network != "office"
}
