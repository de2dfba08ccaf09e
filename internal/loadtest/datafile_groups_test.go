package loadtest_test

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trellis-authz/trellis/internal/datafile"
	"github.com/trellis-authz/trellis/internal/gen"
	"github.com/trellis-authz/trellis/internal/loadtest"
)

// TestWriteDataFileGroups: a generated dataset with groups reads back from
// its data file with its groups, members and group role assignments.
func TestWriteDataFileGroups(t *testing.T) {
	ds := gen.Generate(gen.Spec{Seed: 3, Organizations: 3, Resources: 60, Assignments: 80, GroupsPerOrg: 2, GroupAssignmentRatio: 0.3})
	if len(ds.Groups) == 0 || len(ds.GroupMembers) == 0 {
		t.Fatal("the generated dataset has no groups or members")
	}
	var buf bytes.Buffer
	if err := loadtest.WriteDataFile(&buf, ds); err != nil {
		t.Fatal(err)
	}
	back, err := datafile.Parse(buf.Bytes(), datafile.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{back.Groups, back.GroupMembers, back.Assignments}
	want := []any{ds.Groups, ds.GroupMembers, ds.Assignments}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("read back (-got +want):\n%s", diff)
	}
}
