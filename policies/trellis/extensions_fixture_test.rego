# A test extension: edits only from the office network; a malformed
# denial; and a denial that fires only when its input is the check's.
package trellis.ext.network

deny contains {"code": "outside_network", "message": "edits need the office network"} if {
	input.permission == "project:edit"
	not input.context.network == "office"
}

deny contains "not a denial object" if input.context.malformed == true

deny contains {"code": "saw_the_check", "message": "the input was the check's"} if {
	input.context.probe == true
	input.resource.external_id == "api"
	input.resource.organization_id == "org_acme"
	input.subject.organization_membership_id == "om_bob"
	input.decision.decided_by == "assignment"
	input.token == {}
	not input.checks
}
