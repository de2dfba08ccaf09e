# Example extension (README "Extensions"): organizations that are reached
# only from their own networks. The application passes the client's address
# as context.ip; a request without one is denied for those organizations.
package trellis.ext.ip_allowlist

# networks maps an organization id to the CIDRs it allows.
networks := {"org_globex": ["10.20.0.0/16", "192.0.2.0/24"]}

deny contains {"code": "network_not_allowed", "message": sprintf("organization %s is reached only from its networks", [org])} if {
	org := input.resource.organization_id
	cidrs := networks[org]
	not from_inside(cidrs)
}

from_inside(cidrs) if {
	some cidr in cidrs
	net.cidr_contains(cidr, input.context.ip)
}
