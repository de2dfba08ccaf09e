package model_test

import (
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/model"
)

func TestNewIDIncreases(t *testing.T) {
	prev := ""
	for range 10_000 {
		id := model.NewID("role_")
		ulid, ok := strings.CutPrefix(id, "role_")
		if !ok || len(ulid) != 26 || strings.Trim(ulid, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != "" {
			t.Fatalf("id %q is not role_ and a 26-character ULID", id)
		}
		if id <= prev {
			t.Fatalf("id %q does not sort after %q", id, prev)
		}
		prev = id
	}
}
