# Example extension (README "Extensions"): deploys only on weekdays,
# 09:00–18:00 UTC. The time is the request's context.time (RFC 3339) when
# the application passes one, else the clock.
package trellis.ext.business_hours

deny contains {"code": "outside_business_hours", "message": "deploys are allowed on weekdays, 09:00-18:00 UTC"} if {
	endswith(input.permission, ":deploy")
	not within_hours
}

now_ns := time.parse_rfc3339_ns(input.context.time) if {
	input.context.time
} else := time.now_ns()

within_hours if {
	[hour, _, _] := time.clock(now_ns)
	hour >= 9
	hour < 18
	not time.weekday(now_ns) in {"Saturday", "Sunday"}
}
