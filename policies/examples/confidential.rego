# Example extension (README "Extensions"): a resource whose attributes mark
# it confidential ({"confidential": true}) needs, for any permission on it,
# <type>:view-confidential as well (document:view-confidential on a
# document), held as any permission is: by the token, or by a role on the
# resource or above it.
package trellis.ext.confidential

import data.trellis

deny contains {"code": "confidential", "message": sprintf("%s:%s is confidential: it needs %s as well", [input.resource.type, input.resource.external_id, needed])} if {
	input.resource.attributes.confidential == true
	needed := concat(":", [input.resource.type, "view-confidential"])
	input.permission != needed
	not trellis.core_allows(needed)
}
