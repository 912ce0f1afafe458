package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// unitForAnalysis copies the unit file into a temporary folder with
// ExecStart pointing at an executable that exists here, so that
// systemd-analyze judges the unit and not the machine.
func unitForAnalysis(t *testing.T) (analyze, path string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd)")
	}
	unit, err := os.ReadFile("edgeinfer.service")
	if err != nil {
		t.Fatal(err)
	}
	trueBin, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(unit), "/usr/local/bin/edgeinfer", trueBin, 1)
	path = filepath.Join(t.TempDir(), "edgeinfer.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return analyze, path
}

// TestUnitVerifies: systemd-analyze verify prints nothing for the unit (an
// unknown or misspelt directive is only a warning, so any output fails).
func TestUnitVerifies(t *testing.T) {
	analyze, path := unitForAnalysis(t)
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitHardening keeps the sandboxing from eroding: systemd's own
// exposure score (0 best, 10 worst) stays at most 2.5 ("OK").
func TestUnitHardening(t *testing.T) {
	analyze, path := unitForAnalysis(t)
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	if score > 2.5 {
		t.Errorf("exposure level %.1f, want <= 2.5:\n%s", score, out)
	}
}
