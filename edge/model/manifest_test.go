package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseStrict(t *testing.T) {
	good := "name: m\nfile: m.tflite\ninput:\n  color: rgb\n  mean: 127.5\n  std: 127.5\n"
	m, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if m.Task != TaskClassification || *m.Input.Std != 127.5 {
		t.Errorf("parsed %+v", m)
	}
	for name, c := range map[string]struct{ yaml, want string }{
		"unknown key":     {"name: m\nfile: m.tflite\nlabel: x\n", "label"},
		"nested unknown":  {"name: m\nfile: m.tflite\ninput:\n  colour: rgb\n", "colour"},
		"missing name":    {"file: m.tflite\n", "name: required"},
		"missing file":    {"name: m\n", "file: required"},
		"escaping file":   {"name: m\nfile: ../../etc/passwd\n", "inside the model folder"},
		"bad sha":         {"name: m\nfile: m.tflite\nsha256: xyz\n", "sha256"},
		"bad task":        {"name: m\nfile: m.tflite\ntask: segmentation\n", "task"},
		"bad color":       {"name: m\nfile: m.tflite\ninput:\n  color: cmyk\n", "input.color"},
		"zero std":        {"name: m\nfile: m.tflite\ninput:\n  std: 0\n", "input.std"},
		"wrong type":      {"name: m\nfile: m.tflite\nlabel_offset: one\n", "line 3: cannot unmarshal"},
		"empty":           {"", "empty"},
		"escaping sample": {"name: m\nfile: m.tflite\nsamples:\n  - file: /etc/passwd\n", "samples[0].file"},
	} {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestLoadAndVerify(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.tflite"), []byte("model bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "labels.txt"), []byte("a\n b \n\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := FileSHA256(filepath.Join(dir, "m.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := "name: m\nfile: m.tflite\nlabels: labels.txt\nsha256: " + sum + "\n"
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(); err != nil {
		t.Fatal(err)
	}
	labels, err := ReadLabels(m.LabelsPath())
	if err != nil || len(labels) != 2 || labels[1] != "b" {
		t.Errorf("labels %q %v", labels, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "m.tflite"), []byte("other bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(); !errors.Is(err, ErrChecksum) {
		t.Errorf("Verify after change = %v", err)
	}
	// A bare model file.
	bare, err := Load(filepath.Join(dir, "m.tflite"))
	if err != nil || bare.Name != "m" || bare.ModelPath() != filepath.Join(dir, "m.tflite") {
		t.Errorf("bare: %+v %v", bare, err)
	}
	// A folder without a manifest, a missing model file.
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("folder without model.yaml accepted")
	}
	os.Remove(filepath.Join(dir, "m.tflite"))
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "make models") {
		t.Errorf("missing model file: %v", err)
	}
}

// TestLoadLabels: the labels file, read once, is checked against
// labels_sha256 before it is parsed, with the errors of VerifyLabels and
// ReadLabels.
func TestLoadLabels(t *testing.T) {
	dir := t.TempDir()
	write := func(data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "labels.txt"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &Manifest{Name: "m", File: "m.tflite", Labels: "labels.txt", Dir: dir}
	path := m.LabelsPath()

	if labels, err := (&Manifest{Dir: dir}).LoadLabels(); labels != nil || err != nil {
		t.Errorf("no labels file: %q %v", labels, err)
	}
	write("a\n b \n\n\n")
	sum, err := FileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"", sum, strings.ToUpper(sum)} {
		m.LabelsSHA = want
		labels, err := m.LoadLabels()
		if err != nil || len(labels) != 2 || labels[0] != "a" || labels[1] != "b" {
			t.Errorf("labels_sha256 %q: %q %v", want, labels, err)
		}
	}

	// Changed after the manifest was written: the same error as Verify's.
	write("a\nc\n")
	m.LabelsSHA = sum
	_, err = m.LoadLabels()
	other, _ := FileSHA256(path)
	if want := "model: " + path + ": checksum mismatch: sha256 " + other + ", manifest says " + sum; !errors.Is(err, ErrChecksum) || err.Error() != want {
		t.Errorf("checksum mismatch: %v, want %s", err, want)
	}
	if verr := m.VerifyLabels(); verr == nil || verr.Error() != err.Error() {
		t.Errorf("VerifyLabels = %v, LoadLabels = %v", verr, err)
	}

	// A line longer than the scanner takes: ReadLabels' error once the sum
	// matches (the hash covers the bytes past the bad line), the checksum
	// mismatch while it does not.
	write("a\n" + strings.Repeat("x", 70<<10) + "\nb\n")
	if m.LabelsSHA, err = FileSHA256(path); err != nil {
		t.Fatal(err)
	}
	_, err = m.LoadLabels()
	_, rerr := ReadLabels(path)
	if err == nil || rerr == nil || err.Error() != rerr.Error() || !strings.Contains(err.Error(), "token too long") {
		t.Errorf("long line: LoadLabels = %v, ReadLabels = %v", err, rerr)
	}
	m.LabelsSHA = sum
	if _, err := m.LoadLabels(); !errors.Is(err, ErrChecksum) {
		t.Errorf("long line and mismatch: %v", err)
	}

	// A missing file: VerifyLabels' error with a sum, ReadLabels' without.
	os.Remove(path)
	if _, err := m.LoadLabels(); err == nil || err.Error() != m.VerifyLabels().Error() || !strings.HasPrefix(err.Error(), "model: open ") {
		t.Errorf("missing file, labels_sha256 set: %v", err)
	}
	m.LabelsSHA = ""
	if _, err := m.LoadLabels(); err == nil || !strings.HasPrefix(err.Error(), "labels: open ") {
		t.Errorf("missing file: %v", err)
	}
}
