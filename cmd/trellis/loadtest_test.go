package main

import (
	"io"
	"testing"
	"time"
)

func TestParseLoadtest(t *testing.T) {
	c, err := parseLoadtest(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tier != "S" || c.Connections != 32 || c.Duration != 10*time.Second || c.Out != "bench-results" || c.Systems != "trellis,opa,ceiling" {
		t.Errorf("defaults: %+v", c)
	}
	for _, args := range [][]string{{"--tier", "XL"}, {"--connections", "0"}, {"--systems", "trellis,nginx"}, {"--duration", "0s"}} {
		if _, err := parseLoadtest(args, io.Discard); err == nil {
			t.Errorf("parseLoadtest(%q): no error", args)
		}
	}
}
