// Package topology holds the end-to-end test of the reference deployment
// beyond one machine (DESIGN.md §6, README "Replicas"): a PostgreSQL primary
// and a streaming standby, a `trellis serve` process on each, and HAProxy in
// front with the README's configuration, health-checking /ready. The test
// runs a decision and write workload through HAProxy, checks every answer
// against an oracle at the revision the answer names, kills the standby's
// node, stops the standby, and measures the standby node's lag.
//
// It needs the haproxy binary (Debian: apt-get install haproxy) besides the
// PostgreSQL server binaries; without haproxy it skips, and make test says
// so in one line.
package topology
