// Package model reads model manifests: the model.yaml committed in each
// folder under models/ that says which .tflite file and labels make up a
// model, their sha256, and how images must be prepared for it.
//
// A model can also be given as a bare .tflite file; Load then returns a
// manifest with defaults, and the engine's view of the input tensor decides
// the rest (see Resolve).
package model

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ManifestName is the file Load looks for when given a directory.
const ManifestName = "model.yaml"

// Tasks a manifest may declare.
const (
	TaskClassification = "classification"
	TaskDetection      = "detection"
)

// Colour modes for Input.Color.
const (
	ColorRGB       = "rgb"
	ColorGrayscale = "grayscale"
)

// ErrChecksum reports a model or labels file whose sha256 differs from the
// manifest's: a partial download, or the wrong file.
var ErrChecksum = errors.New("checksum mismatch")

// Manifest describes one model. Paths are relative to the manifest's folder
// until Load makes them absolute.
type Manifest struct {
	Name        string `yaml:"name"`
	Version     string `yaml:"version"`
	Description string `yaml:"description"`
	Task        string `yaml:"task"`
	File        string `yaml:"file"`
	SHA256      string `yaml:"sha256"`
	Labels      string `yaml:"labels"`
	LabelsSHA   string `yaml:"labels_sha256"`
	// LabelOffset is added to an output index to find its label, for models
	// whose labels file has entries the output lacks (or the reverse).
	LabelOffset int    `yaml:"label_offset"`
	Input       Input  `yaml:"input"`
	Output      Output `yaml:"output"`
	// Source says where `make models` fetches the files from.
	Source Source `yaml:"source"`
	// Samples are images with the label the model must give them: the
	// model's self-test, and the demo that `make run` shows.
	Samples []Sample `yaml:"samples"`

	// Dir is the folder holding the manifest (or the bare model file).
	Dir string `yaml:"-"`
}

// Input says how an image becomes the model's input tensor.
type Input struct {
	// Color is "rgb" or "grayscale"; empty means: from the tensor's channel
	// count (1 -> grayscale, 3 -> rgb, a flat [1,N] input -> grayscale).
	Color string `yaml:"color"`
	// Mean and Std normalise a pixel p (0..255) to (p-Mean)/Std. They are
	// required for float inputs (defaults 0 and 255: values in [0,1]) and
	// optional for quantised inputs, which otherwise take the raw pixels
	// (uint8) or pixels-128 (int8) as TensorFlow Lite's own tools do.
	Mean *float64 `yaml:"mean"`
	Std  *float64 `yaml:"std"`
}

// Output says how to read scores from the model.
type Output struct {
	// Softmax applies a softmax to the scores, for models that end in
	// logits rather than probabilities.
	Softmax bool `yaml:"softmax"`
}

// Source locates the model's files inside a Go module, so that fetching
// them needs only the Go module proxy.
type Source struct {
	Module string `yaml:"module"`
	File   string `yaml:"file"`
	Labels string `yaml:"labels"`
}

// Sample is an image and the top-1 label the model must give it.
type Sample struct {
	// File is the image's path inside the model folder.
	File  string `yaml:"file"`
	Label string `yaml:"label"`
	// Source is the image's path inside Source.Module, for `make models`.
	Source string `yaml:"source"`
}

// SamplePath is the absolute path of a sample image.
func (m *Manifest) SamplePath(s Sample) string { return filepath.Join(m.Dir, s.File) }

// Load reads a model given as a directory holding model.yaml, a manifest
// file, or a bare .tflite file. It checks that the model (and labels) exist
// but does not hash them: see Verify.
func Load(path string) (*Manifest, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if fi.IsDir() {
		path = filepath.Join(path, ManifestName)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("model: %s has no %s: %w", filepath.Dir(path), ManifestName, err)
		}
	}
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".yaml" && ext != ".yml" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
		name := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
		return &Manifest{Name: name, File: filepath.Base(abs), Dir: filepath.Dir(abs), Task: TaskClassification}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	if m.Dir, err = filepath.Abs(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if _, err := os.Stat(m.ModelPath()); err != nil {
		return nil, fmt.Errorf("model: %s: model file missing (run `make models`?): %w", m.Name, err)
	}
	if m.Labels != "" {
		if _, err := os.Stat(m.LabelsPath()); err != nil {
			return nil, fmt.Errorf("model: %s: labels file missing: %w", m.Name, err)
		}
	}
	return m, nil
}

// Parse decodes and validates a manifest. Unknown keys are errors, so a
// typo cannot silently change how a model is fed.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty manifest")
		}
		// yaml.v3 lists problems on indented lines; keep errors one line.
		return nil, fmt.Errorf("manifest: %s", strings.Join(strings.Fields(err.Error()), " "))
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	var errs []error
	if m.Name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if m.File == "" {
		errs = append(errs, errors.New("file: required"))
	} else if filepath.IsAbs(m.File) || strings.Contains(filepath.ToSlash(m.File), "../") {
		errs = append(errs, fmt.Errorf("file: %q must be a path inside the model folder", m.File))
	}
	if m.Labels != "" && (filepath.IsAbs(m.Labels) || strings.Contains(filepath.ToSlash(m.Labels), "../")) {
		errs = append(errs, fmt.Errorf("labels: %q must be a path inside the model folder", m.Labels))
	}
	for i, smp := range m.Samples {
		if smp.File == "" || filepath.IsAbs(smp.File) || strings.Contains(filepath.ToSlash(smp.File), "../") {
			errs = append(errs, fmt.Errorf("samples[%d].file: %q must be a path inside the model folder", i, smp.File))
		}
	}
	switch m.Task {
	case "":
		m.Task = TaskClassification
	case TaskClassification, TaskDetection:
	default:
		errs = append(errs, fmt.Errorf("task: %q is not %s or %s", m.Task, TaskClassification, TaskDetection))
	}
	for _, h := range []struct{ key, v string }{{"sha256", m.SHA256}, {"labels_sha256", m.LabelsSHA}} {
		if h.v == "" {
			continue
		}
		if b, err := hex.DecodeString(h.v); err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("%s: %q is not 64 hex digits", h.key, h.v))
		}
	}
	switch m.Input.Color {
	case "", ColorRGB, ColorGrayscale:
	default:
		errs = append(errs, fmt.Errorf("input.color: %q is not %s or %s", m.Input.Color, ColorRGB, ColorGrayscale))
	}
	if m.Input.Std != nil && *m.Input.Std == 0 {
		errs = append(errs, errors.New("input.std: must not be 0"))
	}
	return errors.Join(errs...)
}

// ModelPath is the absolute path of the .tflite file.
func (m *Manifest) ModelPath() string { return filepath.Join(m.Dir, m.File) }

// LabelsPath is the absolute path of the labels file, or "" if none.
func (m *Manifest) LabelsPath() string {
	if m.Labels == "" {
		return ""
	}
	if filepath.IsAbs(m.Labels) {
		return m.Labels
	}
	return filepath.Join(m.Dir, m.Labels)
}

// Verify checks the model and labels files against the manifest's sha256
// values, where the manifest has them.
func (m *Manifest) Verify() error {
	if m.SHA256 != "" {
		sum, err := FileSHA256(m.ModelPath())
		if err != nil {
			return fmt.Errorf("model: %w", err)
		}
		if err := m.CheckModelSHA256(sum); err != nil {
			return err
		}
	}
	return m.VerifyLabels()
}

// CheckModelSHA256 compares the sha256 of the model's bytes, computed by
// whoever read them, with the manifest's, so that the file is not read
// twice.
func (m *Manifest) CheckModelSHA256(sum string) error {
	return checkSum(m.ModelPath(), sum, m.SHA256)
}

// VerifyLabels checks the labels file against labels_sha256, if both are
// set.
func (m *Manifest) VerifyLabels() error {
	p := m.LabelsPath()
	if p == "" || m.LabelsSHA == "" {
		return nil
	}
	sum, err := FileSHA256(p)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return checkSum(p, sum, m.LabelsSHA)
}

func checkSum(path, got, want string) error {
	if want != "" && !strings.EqualFold(got, want) {
		return fmt.Errorf("model: %s: %w: sha256 %s, manifest says %s", path, ErrChecksum, got, want)
	}
	return nil
}

// FileSHA256 returns the hex sha256 of a file's contents.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// maxLabelsBytes bounds a labels file: 1001 ImageNet labels take 10 KB.
const maxLabelsBytes = 16 << 20

// ReadLabels reads a labels file: one label per line, surrounding space
// trimmed. Lines of the form "<index> <label>" (as in some detection label
// maps) are not special: the whole line is the label.
func ReadLabels(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	return scanLabels(path, f)
}

// LoadLabels reads the manifest's labels file once: it checks it against
// labels_sha256, if set (the errors of VerifyLabels), and parses it (those
// of ReadLabels; a checksum mismatch is reported first). It returns nil
// labels if the manifest has no labels file.
func (m *Manifest) LoadLabels() ([]string, error) {
	p := m.LabelsPath()
	if p == "" {
		return nil, nil
	}
	if m.LabelsSHA == "" {
		return ReadLabels(p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer f.Close()
	// The scanner's bytes go through the hash on their way; what it leaves
	// (past a bad line or past maxLabelsBytes) is hashed after it, so the
	// sum covers the whole file, as FileSHA256's does.
	h := sha256.New()
	labels, parseErr := scanLabels(p, io.TeeReader(f, h))
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("model: hash %s: %w", p, err)
	}
	if err := checkSum(p, hex.EncodeToString(h.Sum(nil)), m.LabelsSHA); err != nil {
		return nil, err
	}
	return labels, parseErr
}

// scanLabels parses the labels read from r (at most maxLabelsBytes of it);
// path names the file in errors.
func scanLabels(path string, r io.Reader) ([]string, error) {
	var labels []string
	sc := bufio.NewScanner(io.LimitReader(r, maxLabelsBytes))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		labels = append(labels, strings.TrimSpace(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("labels: %s: %w", path, err)
	}
	for len(labels) > 0 && labels[len(labels)-1] == "" {
		labels = labels[:len(labels)-1]
	}
	return labels, nil
}
