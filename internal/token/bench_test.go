package token_test

import (
	"context"
	"testing"
)

func benchmarkVerify(b *testing.B, cacheSize int) {
	e := testEnv(b)
	cfg := baseConfig(b, e)
	cfg.CacheSize = cacheSize
	v := newVerifier(b, cfg)
	raw := sign(b, e.rs, validClaims(nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached measures the hit path: hash, map lookup, copy.
func BenchmarkVerifyCached(b *testing.B) { benchmarkVerify(b, 0) }

// BenchmarkVerifyUncached measures a full RS256 verification.
func BenchmarkVerifyUncached(b *testing.B) { benchmarkVerify(b, -1) }

// BenchmarkVerifyCachedParallel measures lock contention on the hit path.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	e := testEnv(b)
	v := newVerifier(b, baseConfig(b, e))
	raw := sign(b, e.rs, validClaims(nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(context.Background(), raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
