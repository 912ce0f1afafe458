package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestFlagsFromEnvOrder: a flag set on the command line is kept; a blank
// own variable counts as unset (the daemon's then applies); a bad own
// variable is an error even when the daemon's is good, never a fallback.
func TestFlagsFromEnvOrder(t *testing.T) {
	newFlags := func(args ...string) *pflag.FlagSet {
		fs := pflag.NewFlagSet("classify", pflag.ContinueOnError)
		fs.Int("top", 5, "")
		fs.Bool("xnnpack", true, "")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return fs
	}
	top := func(fs *pflag.FlagSet) int {
		n, err := fs.GetInt("top")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Setenv("EDGEINFER_TOP", "  ")
	t.Setenv("EDGEINFER_CLASSIFY_TOP", "3")
	fs := newFlags()
	if err := flagsFromEnv(fs); err != nil || top(fs) != 3 {
		t.Errorf("blank EDGEINFER_TOP: top %d, err %v; want the daemon's 3", top(fs), err)
	}
	fs = newFlags("--top", "7")
	if err := flagsFromEnv(fs); err != nil || top(fs) != 7 {
		t.Errorf("--top 7: top %d, err %v", top(fs), err)
	}

	t.Setenv("EDGEINFER_TOP", "x")
	if err := flagsFromEnv(newFlags()); err == nil || !strings.Contains(err.Error(), "EDGEINFER_TOP") {
		t.Errorf("bad EDGEINFER_TOP: %v, want an error naming it", err)
	}

	t.Setenv("EDGEINFER_ENGINE_XNNPACK", "false")
	fs = newFlags()
	if err := flagsFromEnv(fs); err == nil {
		t.Error("the bad EDGEINFER_TOP went unnoticed")
	}
	if x, _ := fs.GetBool("xnnpack"); x {
		t.Error("EDGEINFER_ENGINE_XNNPACK=false left XNNPACK on")
	}
}
