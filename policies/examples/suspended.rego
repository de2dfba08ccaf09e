# Example extension (README "Extensions"): while an organization's
# subscription is suspended, its members may still read but not change
# anything. Which organizations are suspended comes from the token's
# entitlements claim (AuthKit's), so billing needs no change to Trellis.
package trellis.ext.suspended

read_only := {"view", "read", "list"}

deny contains {"code": "subscription_suspended", "message": "the organization's subscription is suspended: read-only access"} if {
	"subscription-suspended" in input.token.entitlements
	[_, action] := split(input.permission, ":")
	not action in read_only
}
