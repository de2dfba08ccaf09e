package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/model"
)

func TestParseBenchGen(t *testing.T) {
	t.Setenv("TRELLIS_DATABASE_URL", "")
	t.Setenv("TRELLIS_OUT", "")
	c, err := parseBenchGen([]string{"--out", "x.json"}, io.Discard)
	if err != nil || c.Tier != "S" || c.Seed != 1 || c.Out != "x.json" {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"nowhere to write", nil, "give --out FILE or --database-url URL"},
		{"both", []string{"--out", "x.json", "--database-url", "postgres://localhost/x"}, "not both"},
		{"unknown tier", []string{"--tier", "XL", "--out", "x.json"}, "use S, M or L"},
		{"yaml", []string{"--out", "x.yaml"}, "name it .json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseBenchGen(tt.args, io.Discard); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseBenchGen(%q): error %v, want one containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

// counts are the sizes of a dataset that a data file round trip keeps.
func counts(ds *model.Dataset) [7]int {
	return [7]int{len(ds.Organizations), len(ds.ResourceTypes), len(ds.Permissions), len(ds.Roles), len(ds.Memberships), len(ds.Resources), len(ds.Assignments)}
}

func TestWriteGenFile(t *testing.T) {
	spec := gen.Spec{Seed: 5, Organizations: 4, Resources: 300, Assignments: 300, MembershipsPerOrg: 5, Depth: 6, Skew: 1.1, InactiveRatio: 0.1}
	want := gen.Generate(spec)
	path := filepath.Join(t.TempDir(), "data.json")
	if err := writeGenFile(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := datafile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if counts(got) != counts(want) || got.MaxDepth != want.MaxDepth {
		t.Errorf("read back %v (max depth %d), wrote %v (max depth %d)", counts(got), got.MaxDepth, counts(want), want.MaxDepth)
	}
}

// TestBenchGenTierS runs the command as a user would; reading the 27 MB
// file back takes a few seconds.
func TestBenchGenTierS(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads back tier S")
	}
	t.Setenv("TRELLIS_DATABASE_URL", "")
	path := filepath.Join(t.TempDir(), "s.json")
	var out strings.Builder
	if err := run(t.Context(), []string{"bench", "gen", "--tier", "S", "--seed", "2", "--out", path}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, err := datafile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := gen.Spec{Seed: 2}.Tier("S")
	if want := gen.Generate(spec); counts(got) != counts(want) {
		t.Errorf("read back %v, want %v", counts(got), counts(want))
	}
	if !strings.Contains(out.String(), "wrote tier S seed 2 to "+path) {
		t.Errorf("output %q", out.String())
	}
}
