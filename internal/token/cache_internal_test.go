package token

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var now0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func cacheKey(i int) [32]byte { return sha256.Sum256(fmt.Appendf(nil, "token-%d", i)) }

func TestClaimsCacheBounded(t *testing.T) {
	tests := []struct {
		name string
		max  int
	}{
		{"one entry", 1},
		{"small", 7},
		{"default-like", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClaimsCache(tt.max)
			for i := range 5 * tt.max {
				c.put(cacheKey(i), Claims{Subject: fmt.Sprint(i)}, now0.Add(time.Hour), 1, now0)
				if got := c.len(); got > tt.max {
					t.Fatalf("after %d inserts len = %d, want <= %d", i+1, got, tt.max)
				}
			}
			// The newest entry always survives its own insert.
			last := 5*tt.max - 1
			got, ok := c.get(cacheKey(last), now0, 1)
			if !ok || got.Subject != fmt.Sprint(last) {
				t.Errorf("get(newest) = %+v, %v; want subject %d", got, ok, last)
			}
		})
	}
}

func TestClaimsCacheEvictsExpiredAndStaleFirst(t *testing.T) {
	c := newClaimsCache(10)
	for i := range 5 {
		c.put(cacheKey(i), Claims{}, now0.Add(time.Second), 1, now0) // will expire
	}
	for i := 5; i < 10; i++ {
		c.put(cacheKey(i), Claims{}, now0.Add(time.Hour), 1, now0) // key set gen 1, will be stale
	}
	later := now0.Add(time.Minute)
	c.put(cacheKey(10), Claims{}, now0.Add(time.Hour), 2, later)
	if got := c.len(); got != 1 {
		t.Errorf("len after inserting into a full cache of expired and stale entries = %d, want 1", got)
	}
}

func TestClaimsCacheGet(t *testing.T) {
	exp := now0.Add(time.Minute)
	tests := []struct {
		name   string
		at     time.Time
		gen    uint64
		wantOK bool
	}{
		{"hit", now0, 1, true},
		{"just before exp", exp.Add(-time.Nanosecond), 1, true},
		{"at exp", exp, 1, false},
		{"after exp", exp.Add(time.Hour), 1, false},
		{"key set changed", now0, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClaimsCache(10)
			want := Claims{Subject: "user_01", Expiry: exp}
			c.put(cacheKey(0), want, exp, 1, now0)
			got, ok := c.get(cacheKey(0), tt.at, tt.gen)
			if ok != tt.wantOK {
				t.Fatalf("get ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				if c.len() != 0 {
					t.Errorf("a dead entry was left in the cache")
				}
				return
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("get mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("put after exp is ignored", func(t *testing.T) {
		c := newClaimsCache(10)
		c.put(cacheKey(0), Claims{}, now0, 1, now0)
		if c.len() != 0 {
			t.Errorf("len = %d, want 0", c.len())
		}
	})
}

// TestVerifyServesFromCache proves the hit path: once a token is cached,
// it verifies even with every key removed from the current key set (same
// generation), while other tokens fail. Failures are never cached.
func TestVerifyServesFromCache(t *testing.T) {
	s, err := NewSigner(RS256, "k1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, s.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := New(context.Background(), Config{JWKSFile: path, Issuer: "iss", Now: func() time.Time { return now0 }})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(sub string) map[string]any {
		return map[string]any{"iss": "iss", "sub": sub, "exp": now0.Add(time.Minute).Unix()}
	}
	good, err := s.Sign(claims("cached"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Sign(claims("other"))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := s.Sign(map[string]any{"iss": "iss", "exp": now0.Add(-time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if _, err := v.Verify(ctx, expired); err == nil {
		t.Fatal("Verify(expired) succeeded")
	}
	if _, err := v.Verify(ctx, "a.b.c"); err == nil {
		t.Fatal("Verify(a.b.c) succeeded")
	}
	if got := v.cache.len(); got != 0 {
		t.Fatalf("cache len after failures = %d, want 0", got)
	}
	first, err := v.Verify(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.cache.len(); got != 1 {
		t.Fatalf("cache len after success = %d, want 1", got)
	}

	emptied := *v.keys.snap.Load()
	emptied.byKID, emptied.sole = nil, nil
	v.keys.snap.Store(&emptied)

	second, err := v.Verify(ctx, good)
	if err != nil {
		t.Fatalf("Verify(cached token) with no keys = %v, want a cache hit", err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("cached claims differ (-first +second):\n%s", diff)
	}
	if _, err := v.Verify(ctx, other); err == nil {
		t.Errorf("Verify(uncached token) with no keys succeeded")
	}
}
