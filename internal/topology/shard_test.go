package topology_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/pgtest"
	"github.com/trellis-authz/trellis/internal/postgres"
	"github.com/trellis-authz/trellis/internal/shard"
	"github.com/trellis-authz/trellis/internal/token"
)

const (
	shardOrgs   = 8
	shardIssuer = "https://issuer.shard.test"
)

func shardOrg(i int) string        { return fmt.Sprintf("org_shard_%d", i) }
func shardMember(i int) string     { return fmt.Sprintf("om_shard_%d", i) }
func shardWorkspace(i int) string  { return fmt.Sprintf("authz_resource_shard_ws_%d", i) }
func shardAssignment(i int) string { return fmt.Sprintf("role_assignment_shard_%d", i) }

// TestShards runs two organization shards of one PostgreSQL behind HAProxy
// with the README's shard configuration, and a node holding every
// organization as the oracle: every check of every membership on every
// organization's workspace through HAProxy — routed by the
// X-Trellis-Organization header, or by the org_id of a session token in the
// body — lands on its shard and answers what the whole node answers; a
// write reaches the right shard; a request sent to the wrong shard is 421
// naming the right one, one without a routing key 421 routing_key_required.
func TestShards(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("SKIP internal/topology: haproxy not found (apt-get install haproxy)")
	}
	if testing.Short() {
		t.Skip("the shard test starts four processes")
	}
	bin := buildTrellis(t)
	dsn := pgtest.URL(t)
	if out, err := exec.Command(bin, "load", "--database-url", dsn).CombinedOutput(); err != nil {
		t.Fatalf("trellis load: %v\n%s", err, out)
	}
	signer, err := token.NewSigner(token.RS256, "shard-key")
	if err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, signer.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := []string{"--jwks-file", jwks, "--issuer", shardIssuer}

	front, addrW, addr1, addr2 := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	whole := startNode(t, bin, "whole", addrW, dsn, tokens...)
	waitReady(t, whole.url, 60*time.Second)
	var setup []postgres.WireChange
	for i := range shardOrgs {
		setup = append(setup,
			postgres.WireChange{Op: model.OpUpsert, Organization: &model.Organization{ID: shardOrg(i), Name: fmt.Sprint("Shard test ", i)}},
			postgres.WireChange{Op: model.OpUpsert, Resource: &model.Resource{ID: shardWorkspace(i), OrganizationID: shardOrg(i), Type: "workspace", ExternalID: "ws", Name: "WS"}},
			postgres.WireChange{Op: model.OpUpsert, Membership: &model.Membership{ID: shardMember(i), UserID: fmt.Sprint("user_shard_", i), OrganizationID: shardOrg(i), Status: "active", RoleSlugs: []string{}}},
			postgres.WireChange{Op: model.OpUpsert, Assignment: &model.Assignment{ID: shardAssignment(i), MembershipID: shardMember(i), RoleSlug: role, ResourceID: shardWorkspace(i)}})
	}
	ctx := context.Background()
	if _, err := write(ctx, http.DefaultClient, whole.url, setup); err != nil {
		t.Fatal(err)
	}
	nodes := map[int]*node{
		1: startNode(t, bin, "shard-1", addr1, dsn, append(tokens, "--shard", "1/2", "--bundles=true")...),
		2: startNode(t, bin, "shard-2", addr2, dsn, append(tokens, "--shard", "2/2", "--bundles=true")...),
	}
	held := map[int]int{}
	for k, n := range nodes {
		waitReady(t, n.url, 60*time.Second)
		if _, body := ready(n.url); body["shard"] != fmt.Sprintf("%d/2", k) {
			t.Errorf("shard %d's /ready: %v", k, body)
		}
	}
	for i := range shardOrgs {
		held[shard.Of(shardOrg(i), 2)]++
	}
	if held[1] == 0 || held[2] == 0 {
		t.Fatalf("the test's organizations all hash to one shard: %v", held)
	}
	startHAProxyWith(t, haproxy, "# organization shards", front, map[string]string{"127.0.0.1:8090": front, "127.0.0.1:8091": addr1, "127.0.0.1:8092": addr2})
	lb := "http://" + front
	time.Sleep(1500 * time.Millisecond) // two health checks of each server

	mint := func(i int) string {
		now := time.Now()
		raw, err := signer.Sign(map[string]any{"iss": shardIssuer, "sub": fmt.Sprint("user_shard_", i), "org_id": shardOrg(i),
			"role": "org-member", "permissions": []string{}, "organization_membership_id": shardMember(i),
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// decide posts a check of membership m (or its token) on org o's
	// workspace to base, routed by header when byHeader.
	decide := func(base string, m, o int, byToken bool, header string, atLeast int64) (int, http.Header, map[string]any) {
		t.Helper()
		req := map[string]any{"permission": permission, "resource": map[string]string{"id": shardWorkspace(o)}}
		if byToken {
			req["token"] = mint(m)
		} else {
			req["subject"] = map[string]string{"organization_membership_id": shardMember(m)}
		}
		if atLeast > 0 {
			req["consistency"] = map[string]int64{"at_least_revision": atLeast}
		}
		body, _ := json.Marshal(req)
		r, _ := http.NewRequest(http.MethodPost, base+"/v1/check", strings.NewReader(string(body)))
		r.Header.Set("Authorization", "Bearer "+apiKey)
		if header != "" {
			r.Header.Set(shard.Header, header)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&ans)
		return resp.StatusCode, resp.Header, ans
	}
	verdict := func(ans map[string]any) string {
		reason, _ := ans["reason"].(map[string]any)
		return fmt.Sprint(ans["allowed"], " ", ans["decided_by"], " ", reason["code"])
	}

	// Every membership on every organization's workspace: by header (the
	// workspace's organization) and by token (the membership's).
	allows, checks := 0, 0
	for m := range shardOrgs {
		for o := range shardOrgs {
			for _, byToken := range []bool{false, true} {
				header := shardOrg(o)
				if byToken {
					header = ""
				}
				status, _, want := decide(whole.url, m, o, byToken, "", 0)
				if status != http.StatusOK {
					t.Fatalf("the whole node: %d %v", status, want)
				}
				status, _, got := decide(lb, m, o, byToken, header, 0)
				checks++
				if m != o && verdict(got) == "false none unknown_membership" {
					// Routed to the workspace's shard, which does not hold
					// the membership of another organization: denied there
					// too, as unknown.
					want = got
				}
				if status != http.StatusOK || verdict(got) != verdict(want) {
					t.Errorf("membership %d on organization %d's workspace (token %t) through HAProxy: %d %s, the whole node %s",
						m, o, byToken, status, verdict(got), verdict(want))
				}
				if got["allowed"] == true {
					allows++
				}
			}
		}
	}
	if allows != 2*shardOrgs {
		t.Errorf("%d allows of %d checks, want %d (each membership on its own workspace)", allows, checks, 2*shardOrgs)
	}

	// A write reaches the shard that holds its organization.
	rev, err := write(ctx, http.DefaultClient, whole.url, []postgres.WireChange{{Op: model.OpDelete, Assignment: &model.Assignment{ID: shardAssignment(5)}}})
	if err != nil {
		t.Fatal(err)
	}
	if status, _, got := decide(lb, 5, 5, false, shardOrg(5), rev); status != http.StatusOK || got["allowed"] != false {
		t.Errorf("after revoking membership 5's role, through HAProxy at revision %d: %d %v", rev, status, got)
	}

	// Each organization's bundle through HAProxy (routed by its path)
	// holds that organization.
	for i := range shardOrgs {
		r, _ := http.NewRequest(http.MethodGet, lb+"/bundles/orgs/"+shardOrg(i)+".tar.gz", nil)
		r.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bundleHolds(t, b, shardWorkspace(i)) {
			t.Errorf("organization %d's bundle through HAProxy: %d (%d bytes), want it holding its workspace", i, resp.StatusCode, len(b))
		}
	}

	// Sent to the wrong shard, or without a routing key.
	for i := range shardOrgs {
		right := shard.Of(shardOrg(i), 2)
		status, h, got := decide(nodes[3-right].url, i, i, false, shardOrg(i), 0)
		if status != http.StatusMisdirectedRequest || got["code"] != "misdirected_request" || h.Get(shard.ShardHeader) != fmt.Sprintf("%d/2", right) {
			t.Errorf("organization %d on shard %d's node: %d %s %v", i, 3-right, status, h.Get(shard.ShardHeader), got)
		}
		status, _, got = decide(nodes[3-right].url, i, i, true, "", 0)
		if status != http.StatusMisdirectedRequest || got["code"] != "misdirected_request" {
			t.Errorf("organization %d's token on shard %d's node: %d %v", i, 3-right, status, got)
		}
	}
	if status, _, got := decide(lb, 0, 0, false, "", 0); status != http.StatusMisdirectedRequest || got["code"] != "routing_key_required" {
		t.Errorf("a membership subject without a routing key: %d %v", status, got)
	}
	t.Logf("%d checks through HAProxy over %d organizations (%d on shard 1, %d on shard 2), each as the whole node answered", checks, shardOrgs, held[1], held[2])
}

// bundleHolds reports whether the gzipped tar b has a data.json naming id.
func bundleHolds(t *testing.T, b []byte, id string) bool {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return false
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		if strings.HasSuffix(h.Name, "data.json") {
			data, _ := io.ReadAll(tr)
			return bytes.Contains(data, []byte(`"`+id+`"`))
		}
	}
}
