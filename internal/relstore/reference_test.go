package relstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/trellis-authz/trellis/internal/index"
	"github.com/trellis-authz/trellis/internal/model"
	"github.com/trellis-authz/trellis/internal/relstore"
)

// The reference every test compares the compact store with: OPA's
// in-memory store, configured as the engine configures it, holding
// index.Build's document and patched by index.Patch.

type reference struct {
	store storage.Store
}

func newReference(tb testing.TB, ds *model.Dataset) *reference {
	tb.Helper()
	doc, err := index.Build(ds)
	if err != nil {
		tb.Fatalf("index.Build: %v", err)
	}
	store := inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(false))
	ctx := context.Background()
	err = storage.Txn(ctx, store, storage.WriteParams, func(txn storage.Transaction) error {
		return store.Write(ctx, txn, storage.AddOp, storage.Path{index.Root}, doc)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &reference{store: store}
}

// apply patches the document with changes in one transaction, as the
// engine does: on error nothing is applied.
func (r *reference) apply(rev int64, changes []model.Change) error {
	ctx := context.Background()
	return storage.Txn(ctx, r.store, storage.WriteParams, func(txn storage.Transaction) error {
		s := index.TxnStore{Ctx: ctx, Store: r.store, Txn: txn}
		for i, ch := range changes {
			if err := index.Patch(s, ch); err != nil {
				return fmt.Errorf("change %d of %d: %w", i+1, len(changes), err)
			}
		}
		return index.SetRevision(s, rev)
	})
}

func (r *reference) read(path storage.Path) (any, error) {
	return storage.ReadOne(context.Background(), r.store, path)
}

// document returns the reference's whole document (the store's own
// value: read only).
func (r *reference) document(tb testing.TB) map[string]any {
	tb.Helper()
	v, err := r.read(storage.Path{index.Root})
	if err != nil {
		tb.Fatal(err)
	}
	return v.(map[string]any)
}

// loaded returns a compact store loaded with ds.
func loaded(tb testing.TB, ds *model.Dataset, opts relstore.Options) *relstore.Store {
	tb.Helper()
	s := relstore.New(opts)
	ctx := context.Background()
	if err := storage.Txn(ctx, s, storage.WriteParams, func(txn storage.Transaction) error { return s.Load(ctx, txn, ds) }); err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return s
}

func apply(s *relstore.Store, rev int64, changes []model.Change) error {
	ctx := context.Background()
	return storage.Txn(ctx, s, storage.WriteParams, func(txn storage.Transaction) error {
		return s.Apply(ctx, txn, rev, changes)
	})
}

// probePaths returns every path the policies read, for every entity of the
// reference document, and for names that do not exist: each kind of key,
// the fields and elements below it, and malformed array indexes.
func probePaths(doc map[string]any) []storage.Path {
	p := func(parts ...string) storage.Path { return append(storage.Path{index.Root}, parts...) }
	keys := func(name string) []string {
		m, _ := doc[name].(map[string]any)
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	const nope = "no_such_key"
	paths := []storage.Path{p("revision"), p("revision", "x"), p("max_depth"), p("max_depth", "x"), p("permissions"), p(nope), p(nope, nope)}
	orgs, resources, memberships, roles, perms := keys("orgs"), keys("resources"), keys("memberships"), keys("roles"), keys("permissions")
	// The quarantine entries, and the live names, which have none.
	for _, org := range append(append(keys("quarantined"), orgs...), nope) {
		paths = append(paths, p("quarantined", org), p("quarantined", org, nope))
	}
	for _, rid := range append(append(keys("quarantined_resources"), resources...), nope) {
		paths = append(paths, p("quarantined_resources", rid), p("quarantined_resources", rid, "0"))
	}
	for _, om := range append(append(keys("quarantined_memberships"), memberships...), nope) {
		paths = append(paths, p("quarantined_memberships", om), p("quarantined_memberships", om, nope))
	}
	for _, org := range append(orgs, nope) {
		paths = append(paths, p("orgs", org), p("orgs", org, "root"), p("orgs", org, nope), p("lookup", org), p("lookup", org, nope), p("lookup", org, nope, nope),
			p("org_attributes", org), p("org_attributes", org, "networks"), p("org_attributes", org, "networks", "0"), p("org_attributes", org, nope))
	}
	types := map[string]bool{model.OrganizationType: true}
	for _, rid := range append(resources, nope) {
		paths = append(paths,
			p("resources", rid), p("resources", rid, "0"), p("resources", rid, "1"), p("resources", rid, "2"), p("resources", rid, "1", "0"), p("resources", rid, "3"), p("resources", rid, "3", "0"),
			p("resources", rid, "x"), p("resources", rid, "4"), p("resources", rid, "-1"),
			p("children", rid), p("children", rid, "0"), p("grants", rid), p("grants", rid, nope),
			p("attributes", rid), p("attributes", rid, "confidential"), p("attributes", rid, "tags", "1"), p("attributes", rid, nope))
		if entry, ok := doc["resources"].(map[string]any)[rid].([]any); ok {
			org, typ, ext := entry[0].(string), entry[1].(string), entry[2].(string)
			types[typ] = true
			paths = append(paths, p("lookup", org, typ, ext), p("lookup", org, typ, ext, "x"), p("lookup", org, typ, nope))
		}
		if held, ok := doc["grants"].(map[string]any)[rid].(map[string]any); ok {
			for om := range held {
				paths = append(paths, p("grants", rid, om), p("grants", rid, om, "0"))
			}
		}
	}
	for _, org := range orgs {
		for typ := range types {
			paths = append(paths, p("lookup", org, typ))
		}
	}
	for _, om := range append(memberships, nope) {
		paths = append(paths, p("memberships", om), p("memberships", om, "org"), p("memberships", om, "active"),
			p("memberships", om, "anchors"), p("memberships", om, "anchors", "0"), p("memberships", om, nope),
			p("org_roles", om), p("org_roles", om, "0"))
	}
	groups := keys("groups")
	for _, id := range append(append(groups, memberships...), nope) {
		paths = append(paths, p("groups", id), p("groups", id, "org"), p("groups", id, "name"), p("groups", id, "anchors"),
			p("groups", id, "members"), p("groups", id, "members", "0"), p("groups", id, nope),
			p("member_groups", id), p("member_groups", id, "0"), p("memberships", id), p("org_roles", id))
	}
	for _, key := range append(roles, nope) {
		paths = append(paths, p("roles", key), p("roles", key, "slug"), p("roles", key, "type"), p("roles", key, "permissions"), p("roles", key, nope))
		for _, perm := range append(perms, nope) {
			paths = append(paths, p("roles", key, "permissions", perm), p("roles", key, "permissions", perm, nope))
		}
	}
	for _, perm := range append(perms, nope) {
		paths = append(paths, p("permissions", perm), p("permissions", perm, "type"))
	}
	for _, typ := range append(keys("resource_types"), nope) {
		paths = append(paths, p("resource_types", typ), p("resource_types", typ, nope))
	}
	return append(paths, p("resource_types"))
}

// wholePaths are the collections Read refuses without Options.WholeReads.
var wholePaths = []storage.Path{
	{index.Root}, {index.Root, "orgs"}, {index.Root, "resources"}, {index.Root, "lookup"}, {index.Root, "children"},
	{index.Root, "grants"}, {index.Root, "memberships"}, {index.Root, "org_roles"}, {index.Root, "roles"},
	{index.Root, "groups"}, {index.Root, "member_groups"}, {index.Root, "attributes"}, {index.Root, "org_attributes"},
	{index.Root, "quarantined"}, {index.Root, "quarantined_resources"}, {index.Root, "quarantined_memberships"},
}

// sameRead compares one read of s with the reference's: the same value, or
// the same storage error.
func sameRead(s *relstore.Store, ref *reference, path storage.Path) string {
	want, wantErr := ref.read(path)
	got, gotErr := storage.ReadOne(context.Background(), s, path)
	if wantErr != nil || gotErr != nil {
		if reflect.DeepEqual(storageError(gotErr), storageError(wantErr)) {
			return ""
		}
		if diff := cmp.Diff(storageError(gotErr), storageError(wantErr)); diff != "" {
			return fmt.Sprintf("%v: error (-got +want):\n%s", path, diff)
		}
		return ""
	}
	// DeepEqual first, as cmp.Diff does (a nil slice is not an empty one),
	// for speed: cmp only explains a difference.
	if reflect.DeepEqual(got, want) {
		return ""
	}
	if diff := cmp.Diff(got, want); diff != "" {
		return fmt.Sprintf("%v (-got +want):\n%s", path, diff)
	}
	return ""
}

func storageError(err error) any {
	var se *storage.Error
	if errors.As(err, &se) {
		return *se
	}
	if err != nil {
		return err.Error()
	}
	return nil
}

// sameReads compares every probe path, and the descendants of every
// resource with the reference's children, reporting at most a few
// differences.
func sameReads(tb testing.TB, s *relstore.Store, ref *reference) {
	tb.Helper()
	doc := ref.document(tb)
	n := 0
	for _, path := range probePaths(doc) {
		if msg := sameRead(s, ref, path); msg != "" {
			tb.Error(msg)
			if n++; n == 10 {
				tb.Fatal("too many differences")
			}
		}
	}
	sameTreePages(tb, s, doc)
	sameMemberPages(tb, s, doc)
}

// sameMemberPages compares pages of member_page with the reference's
// memberships found by brute force: for every resource, and random
// permissions, direct or not, in both orders, from the start and after a
// random id (a membership's, or one between).
func sameMemberPages(tb testing.TB, s *relstore.Store, doc map[string]any) {
	tb.Helper()
	resources := doc["resources"].(map[string]any)
	grants, _ := doc["grants"].(map[string]any)
	roles, _ := doc["roles"].(map[string]any)
	groups, _ := doc["groups"].(map[string]any)
	mems, _ := doc["memberships"].(map[string]any)
	var rids, perms, omIDs []string
	for rid := range resources {
		rids = append(rids, rid)
	}
	for p := range doc["permissions"].(map[string]any) {
		perms = append(perms, p)
	}
	for om := range mems {
		omIDs = append(omIDs, om)
	}
	slices.Sort(rids)
	slices.Sort(perms)
	slices.Sort(omIDs)
	if len(perms) == 0 {
		return
	}
	rng := rand.New(rand.NewPCG(uint64(len(rids)), 11))
	// members is the brute force: the active memberships of rid's
	// organization with perm through a grant on an anchor, theirs or a
	// group's, each with where its grants are ("principal anchor").
	members := func(rid, perm string, direct bool) (ids []string, grantsOf map[string][]string) {
		e := resources[rid].([]any)
		anchors := e[3].([]any)
		if direct {
			anchors = anchors[:1]
		}
		grantsOf = map[string][]string{}
		for _, om := range omIDs {
			m := mems[om].(map[string]any)
			if m["active"] != true || m["org"] != e[0] {
				continue
			}
			whos := []string{om}
			for g, v := range groups {
				if slices.Contains(v.(map[string]any)["members"].([]any), any(om)) {
					whos = append(whos, g)
				}
			}
			for _, a := range anchors {
				on, _ := grants[a.(string)].(map[string]any)
				for _, who := range whos {
					keys, _ := on[who].([]any)
					if slices.ContainsFunc(keys, func(k any) bool {
						role, _ := roles[k.(string)].(map[string]any)
						has, _ := role["permissions"].(map[string]any)
						return has[perm] == true
					}) {
						grantsOf[om] = append(grantsOf[om], who+" "+a.(string))
					}
				}
			}
			if len(grantsOf[om]) > 0 {
				ids = append(ids, om)
			}
		}
		return ids, grantsOf
	}
	for i := range min(2*len(rids)+20, 300) {
		if len(rids) == 0 {
			return
		}
		rid := rids[i%len(rids)]
		q := map[string]any{"resource": rid, "permission": perms[rng.IntN(len(perms))], "direct": rng.IntN(3) == 0,
			"desc": rng.IntN(2) == 0, "limit": 1 + rng.IntN(8)}
		all, grantsOf := members(rid, q["permission"].(string), q["direct"].(bool))
		after := ""
		switch rng.IntN(3) {
		case 0:
			if len(omIDs) > 0 {
				after = omIDs[rng.IntN(len(omIDs))]
			}
		case 1:
			after = "om_" + strconv.Itoa(rng.IntN(100))
		}
		if after != "" {
			q["after"] = after
		}
		if q["desc"].(bool) {
			slices.Reverse(all)
		}
		want := []any{}
		for _, om := range all {
			c := strings.Compare(om, after)
			if after == "" || (q["desc"].(bool) && c < 0) || (!q["desc"].(bool) && c > 0) {
				if len(want) < q["limit"].(int) {
					want = append(want, om)
				}
			}
		}
		key, _ := json.Marshal(q)
		v, err := storage.ReadOne(context.Background(), s, storage.Path{index.Root, "member_page", string(key)})
		if err != nil {
			tb.Fatalf("member_page %s: %v", key, err)
		}
		got := v.(map[string]any)
		if diff := cmp.Diff(got["ids"], want); diff != "" {
			tb.Fatalf("member_page %s (-got +want):\n%s", key, diff)
		}
		for i, om := range want {
			where := got["principals"].([]any)[i].(string) + " " + got["anchors"].([]any)[i].(string)
			if !slices.Contains(grantsOf[om.(string)], where) {
				tb.Fatalf("member_page %s: %s's grant is not %q but one of %q", key, om, where, grantsOf[om.(string)])
			}
		}
	}
}

// sameTreePages compares pages of tree_page with the reference's
// resources sorted by path: for every resource as an anchor, and for
// random sets of anchors, of every type or one, in both orders, from the
// start and after a random position (a resource's path, or one between).
func sameTreePages(tb testing.TB, s *relstore.Store, doc map[string]any) {
	tb.Helper()
	type entry struct {
		id, org, typ string
		path         []string
	}
	var all []entry
	for rid, v := range doc["resources"].(map[string]any) {
		e := v.([]any)
		var path []string
		for _, a := range e[3].([]any) {
			path = append(path, a.(string))
		}
		slices.Reverse(path)
		all = append(all, entry{rid, e[0].(string), e[1].(string), path})
	}
	slices.SortFunc(all, func(a, b entry) int { return slices.Compare(a.path, b.path) })
	rng := rand.New(rand.NewPCG(uint64(len(all)), 7))
	pick := func() entry { return all[rng.IntN(len(all))] }
	for i := range min(2*len(all)+20, 300) {
		if len(all) == 0 {
			return
		}
		q := map[string]any{"desc": rng.IntN(2) == 0, "limit": 1 + rng.IntN(8)}
		starts := []string{all[i%len(all)].id}
		for range rng.IntN(4) {
			if e := pick(); e.org == all[i%len(all)].org {
				starts = append(starts, e.id)
			}
		}
		q["starts"] = starts
		if rng.IntN(2) == 0 {
			q["type"] = pick().typ
		}
		var after []string
		switch rng.IntN(3) {
		case 0:
			after = pick().path
		case 1:
			after = append(slices.Clone(pick().path[:1]), pick().id+"_x")
		}
		if after != nil {
			q["after"] = after
		}
		if rng.IntN(3) == 0 {
			q["exclude"] = starts[0]
		}
		want := []any{}
		order := slices.Clone(all)
		if q["desc"].(bool) {
			slices.Reverse(order)
		}
		for _, e := range order {
			in := slices.ContainsFunc(starts, func(a string) bool { return slices.Contains(e.path, a) })
			c := slices.Compare(e.path, after)
			if !in || (q["type"] != nil && q["type"] != e.typ) || e.id == q["exclude"] ||
				(after != nil && (q["desc"].(bool) && c >= 0 || !q["desc"].(bool) && c <= 0)) {
				continue
			}
			if len(want) < q["limit"].(int) {
				path := make([]any, len(e.path))
				for i, id := range e.path {
					path[i] = id
				}
				want = append(want, path)
			}
		}
		key, _ := json.Marshal(q)
		v, err := storage.ReadOne(context.Background(), s, storage.Path{index.Root, "tree_page", string(key)})
		if err != nil {
			tb.Fatalf("tree_page %s: %v", key, err)
		}
		got := v.(map[string]any)
		if diff := cmp.Diff(got["paths"], want); diff != "" {
			tb.Fatalf("tree_page %s (-got +want):\n%s", key, diff)
		}
		for i, path := range want {
			if at := got["starts"].([]any)[i].(int); !slices.Contains(starts, path.([]any)[at].(string)) {
				tb.Fatalf("tree_page %s: start %d of %v is no start", key, at, path)
			}
		}
	}
}
