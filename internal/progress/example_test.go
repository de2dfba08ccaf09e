package progress_test

import (
	"log/slog"
	"os"

	"github.com/trellis-authz/trellis/internal/progress"
)

// A stage that ends within a few seconds shows nothing, on a terminal or
// in the log.
func ExampleStart() {
	rows := []string{"a", "b", "c"}
	p := progress.Start(os.Stderr, slog.Default(), "import", int64(len(rows)), "table", "resources")
	defer p.Done()
	for range rows {
		// copy the row …
		p.Add(1)
	}
	// Output:
}
