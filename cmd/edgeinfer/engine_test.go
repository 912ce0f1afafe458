package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/config"
	"github.com/edgeinfer/edgeinfer/edge/model"
	"github.com/edgeinfer/edgeinfer/edge/source/replay"
	"github.com/edgeinfer/edgeinfer/tflite"
)

func openForTest(t *testing.T, opts engineOptions) *loadedModel {
	t.Helper()
	lm, err := openModel(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lm.Close(); err != nil {
			t.Error(err)
		}
	})
	return lm
}

// TestModelSamples classifies every labelled sample of every shipped model
// through the same path the CLI and daemon use.
func TestModelSamples(t *testing.T) {
	dirs, err := filepath.Glob("../../models/*/model.yaml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	checked := 0
	for _, path := range dirs {
		man, err := model.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if man.Task != model.TaskClassification {
			continue
		}
		lm := openForTest(t, engineOptions{Model: filepath.Dir(path), Threads: 1})
		for _, s := range man.Samples {
			data, err := os.ReadFile(man.SamplePath(s))
			if err != nil {
				t.Fatal(err)
			}
			res, err := lm.Classifier.Classify(context.Background(), data)
			if err != nil {
				t.Fatalf("%s %s: %v", man.Name, s.File, err)
			}
			if got := res.Predictions[0].Label; got != s.Label {
				t.Errorf("%s %s: top-1 %q, want %q (%v)", man.Name, s.File, got, s.Label, res.Predictions)
			}
			checked++
		}
	}
	if checked < 11 {
		t.Errorf("only %d samples checked", checked)
	}
}

// TestConcurrentClassify runs 8 goroutines through one classifier (two
// interpreters); under -race this shows nothing is shared unsafely, and
// every answer must equal the one computed alone.
func TestConcurrentClassify(t *testing.T) {
	lm := openForTest(t, engineOptions{Model: mobilenetDir, Threads: 1, Interpreters: 2})
	images := []string{peacockPNG, exampleJPG}
	want := make([]string, len(images))
	data := make([][]byte, len(images))
	for i, p := range images {
		var err error
		if data[i], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
		res, err := lm.Classifier.Classify(context.Background(), data[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res.Predictions[0].Label
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 5 {
				i := (g + n) % len(images)
				res, err := lm.Classifier.Classify(context.Background(), data[i])
				if err != nil {
					errs <- err
					return
				}
				if res.Predictions[0].Label != want[i] {
					errs <- errors.New("concurrent result differs: " + res.Predictions[0].Label + " != " + want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestOpenModelErrors(t *testing.T) {
	dir := t.TempDir()
	// A manifest whose sha256 does not match its model file.
	bad := filepath.Join(dir, "model.yaml")
	modelBytes, err := os.ReadFile(filepath.Join(mnistDir, "mnist_model.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "m.tflite"), modelBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("name: x\nfile: m.tflite\nsha256: "+string(make64('a'))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openModel(engineOptions{Model: dir}); !errors.Is(err, model.ErrChecksum) {
		t.Errorf("checksum mismatch: %v", err)
	}
	if _, err := openModel(engineOptions{Model: ssdDir}); err == nil {
		t.Error("a detection model opened for classification")
	}
	if _, err := openModel(engineOptions{Model: edgeTPUModel}); !errors.Is(err, tflite.ErrEdgeTPU) {
		t.Errorf("Edge TPU model: %v", err)
	}
	lm := openForTest(t, engineOptions{Model: mobilenetDir, Threads: 1})
	if _, err := lm.Classifier.Classify(context.Background(), []byte("text")); !errors.Is(err, classify.ErrBadImage) {
		t.Errorf("bad image: %v", err)
	}
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestEngineShape(t *testing.T) {
	live := config.Config{Replays: make([]replay.Config, 1)}
	cases := []struct {
		cfg                 config.Config
		cores, interp, thrd int
	}{
		{config.Config{}, 2, 2, 1},
		{config.Config{}, 8, 4, 1},
		{live, 2, 2, 1},
		{live, 1, 1, 1},
		{config.Config{Engine: config.Engine{Interpreters: 2}}, 4, 2, 2},
		{config.Config{Engine: config.Engine{Threads: 3}}, 4, 1, 3},
		{config.Config{Engine: config.Engine{Threads: 2}}, 4, 2, 2},
		{config.Config{Engine: config.Engine{Interpreters: 1}}, 2, 1, 2}, // the CLI's request
		{config.Config{Engine: config.Engine{Interpreters: 1}}, 8, 1, 4},
		{config.Config{Engine: config.Engine{Interpreters: 3, Threads: 2}}, 2, 3, 2},
	}
	for _, c := range cases {
		i, th := engineShape(c.cfg.Engine.Interpreters, c.cfg.Engine.Threads, c.cores)
		if i != c.interp || th != c.thrd {
			t.Errorf("engineShape(%+v, %d cores) = %d x %d, want %d x %d", c.cfg.Engine, c.cores, i, th, c.interp, c.thrd)
		}
	}
}
