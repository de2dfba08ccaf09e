package model

import (
	"hash/maphash"
	"slices"
	"testing"
)

// TestRepeats: each entry whose key an earlier included entry has is
// flagged, with the real hash and with one under which every key
// collides (so that equal alone decides).
func TestRepeats(t *testing.T) {
	keys := []string{"a", "b", "a", "", "c", "b", "a", "x", "x"}
	include := func(i int) bool { return keys[i] != "x" || i == 8 } // the first "x" is left out
	want := []bool{false, false, true, false, false, true, true, false, false}
	equal := func(i, j int) bool { return keys[i] == keys[j] }
	for name, hash := range map[string]func(*maphash.Hash, int){
		"hash":       func(h *maphash.Hash, i int) { h.WriteString(keys[i]) },
		"collisions": func(h *maphash.Hash, i int) {},
	} {
		if got := repeats(len(keys), include, hash, equal); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	// Many entries of one key under one hash: each compared with one first.
	n, calls := 100_000, 0
	got := repeats(n, nil, func(*maphash.Hash, int) {}, func(i, j int) bool { calls++; return true })
	if got[0] || slices.Contains(got[1:], false) || calls != n-1 {
		t.Errorf("one key: %d flagged of %d, %d comparisons", len(got)-slices.Index(got, true), n, calls)
	}
}
