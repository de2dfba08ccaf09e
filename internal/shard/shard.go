// Package shard splits the organizations among decision nodes: node K of
// N (trellis serve --shard K/N) holds the organizations whose id hashes to
// K, and answers a request about any other with 421 Misdirected Request
// naming the right shard, never with a deny that looks like an answer.
//
// The hash is CRC-32 (IEEE) of the organization id, modulo N, plus one:
// what HAProxy computes with `crc32,mod(N),add(1)` (its crc32 converter is
// the same CRC as Ethernet's, gzip's and Go's crc32.ChecksumIEEE), so a
// proxy routes each request to its shard without a table.
package shard

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Header is the request header that names the organization a request is
// about: its routing key.
const Header = "X-Trellis-Organization"

// ShardHeader is the response header of a 421 answer: the shard ("K/N")
// that holds the request's organization.
const ShardHeader = "X-Trellis-Shard"

// Shard is shard K of N (1 ≤ K ≤ N). The zero value is the whole: every
// organization, no routing.
type Shard struct {
	K, N int
}

// Parse reads "K/N"; "" is the whole.
func Parse(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	ks, ns, ok := strings.Cut(s, "/")
	k, kerr := strconv.Atoi(ks)
	n, nerr := strconv.Atoi(ns)
	if !ok || kerr != nil || nerr != nil || n < 1 || k < 1 || k > n {
		return Shard{}, fmt.Errorf("shard %q: want K/N with 1 ≤ K ≤ N, e.g. 1/4", s)
	}
	return Shard{K: k, N: n}, nil
}

// Of is the shard, 1 to n, of organization org.
func Of(org string, n int) int {
	return int(crc32.ChecksumIEEE([]byte(org))%uint32(n)) + 1
}

// Whole reports whether s holds every organization.
func (s Shard) Whole() bool { return s.N == 0 }

// Holds reports whether s holds organization org.
func (s Shard) Holds(org string) bool { return s.Whole() || Of(org, s.N) == s.K }

// String is "K/N", or "" for the whole.
func (s Shard) String() string {
	if s.Whole() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.K, s.N)
}

// Routes are the requests that read the shard's data: decisions, lists,
// data queries and one organization's bundle. Every other request (the
// WorkOS-compatible and admin reads and writes, which go to PostgreSQL;
// health, readiness, metrics; the data's revision, which is the node's
// own, Unrouted) any node serves.
var Routes = []string{
	"POST /v1/check",
	"POST /v1/check/batch",
	"POST /v1/list-resources",
	"POST /v1/list-memberships",
	"POST /v1/effective-permissions",
	"POST /v1/data/",
	"POST /authorization/organization_memberships/{om}/check",
	"GET /authorization/organization_memberships/{om}/resources",
	"GET /authorization/organization_memberships/{om}/resources/{type}/{external_id}/permissions",
	"GET /authorization/resources/{id}/organization_memberships",
	"GET /authorization/resources/{id}/organization_memberships/{om}/permissions",
	"GET /bundles/orgs/{file}",
}

// Unrouted is the one data query of Routes' that needs no routing key:
// the revision of the node's data.
const Unrouted = "POST /v1/data/trellis_data/revision"

// Handler serves next, but on a shard (not the whole) it first finds the
// organization of every request of Routes (Key): one of another shard is
// answered 421 misdirected_request naming that shard (ShardHeader too),
// one without a key 421 routing_key_required. maxBody bounds the body it
// reads for the key; next reads the same body.
func Handler(next http.Handler, s Shard, maxBody int64) http.Handler {
	if s.Whole() {
		return next
	}
	check := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		org, err := Key(r, maxBody)
		switch {
		case err != nil:
			writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		case org == "":
			writeError(w, http.StatusMisdirectedRequest, "routing_key_required", fmt.Sprintf(
				"this node serves shard %s of the organizations: name the organization of the request in the %s header (or pass a session token with org_id)", s, Header))
		case !s.Holds(org):
			right := Shard{K: Of(org, s.N), N: s.N}
			w.Header().Set(ShardHeader, right.String())
			writeError(w, http.StatusMisdirectedRequest, "misdirected_request", fmt.Sprintf(
				"organization %q is on shard %s; this node serves shard %s", org, right, s))
		default:
			next.ServeHTTP(w, r)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.Handle(Unrouted, next)
	for _, p := range Routes {
		mux.Handle(p, check)
	}
	return mux
}

// Key is the organization request r is about, "" if it does not say: the
// Header; else, for one organization's bundle, the organization in the
// path; else, in a JSON body, the org_id claim of the session token
// ("token"), or the organization_id of the resource ("resource"). The
// token is not verified here — only routed: the decision verifies it. The
// body, read up to maxBody bytes, is left for the next handler.
func Key(r *http.Request, maxBody int64) (string, error) {
	if org := r.Header.Get(Header); org != "" {
		return org, nil
	}
	if file := r.PathValue("file"); file != "" {
		return strings.TrimSuffix(file, ".tar.gz"), nil
	}
	if r.Body == nil || r.Method != http.MethodPost {
		return "", nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return "", fmt.Errorf("reading the request body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		Token    string `json:"token"`
		Resource struct {
			OrganizationID string `json:"organization_id"`
		} `json:"resource"`
	}
	if json.Unmarshal(body, &req) != nil {
		return "", nil // the handler answers what is wrong with it
	}
	if org := tokenOrganization(req.Token); org != "" {
		return org, nil
	}
	return req.Resource.OrganizationID, nil
}

// tokenOrganization is the org_id claim of a JWT's payload, unverified;
// "" when there is none or tok is not a JWT.
func tokenOrganization(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		OrgID string `json:"org_id"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.OrgID
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}
