# Example extension (README "Extensions"): organizations that are reached
# only from their own networks, listed in the organization's attributes
# ({"networks": ["10.20.0.0/16", …]}); an organization without them is
# reached from anywhere. The application passes the client's address as
# context.ip; a request without one is denied for those organizations.
package trellis.ext.ip_allowlist

deny contains {"code": "network_not_allowed", "message": sprintf("organization %s is reached only from its networks", [input.organization.id])} if {
	cidrs := input.organization.attributes.networks
	not from_inside(cidrs)
}

from_inside(cidrs) if {
	some cidr in cidrs
	net.cidr_contains(cidr, input.context.ip)
}
