package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/httpapi"
	"github.com/edgeinfer/edgeinfer/edge/imageio"
	"github.com/edgeinfer/edgeinfer/edge/model"
	"github.com/edgeinfer/edgeinfer/tflite"
)

// engineOptions say how to load a model for classification.
type engineOptions struct {
	Model        string // folder with model.yaml, a manifest, or a .tflite file
	Labels       string // overrides the manifest's labels
	Threads      int    // per interpreter; 0: see engineShape
	Interpreters int    // 0: see engineShape
	NoXNNPACK    bool   // keep the XNNPACK delegate out
	TopK         int
	Threshold    float32
	Limits       imageio.Limits
}

// loadedModel is a model ready to classify, with everything that must be
// closed, in order, when done.
type loadedModel struct {
	Manifest   *model.Manifest
	Model      *tflite.Model
	Pool       *tflite.Pool
	Classifier *classify.Classifier
	Info       tflite.Info
	Threads    int
	LoadedAt   time.Time
}

// openModel loads, checks and warms up a model for classification.
func openModel(opts engineOptions) (*loadedModel, error) {
	man, err := model.Load(opts.Model)
	if err != nil {
		return nil, err
	}
	if opts.Labels != "" {
		man.Labels = opts.Labels
		man.LabelsSHA = ""
	}
	if man.Task != model.TaskClassification {
		return nil, fmt.Errorf("model %s: task %q: only classification models can classify (detection comes later)", man.Name, man.Task)
	}
	m, err := tflite.LoadFile(man.ModelPath(), 0)
	if err != nil {
		return nil, err
	}
	lm := &loadedModel{Manifest: man, Model: m}
	if err := lm.init(opts); err != nil {
		lm.Close()
		return nil, err
	}
	return lm, nil
}

func (lm *loadedModel) init(opts engineOptions) error {
	man, m := lm.Manifest, lm.Model
	if err := man.CheckModelSHA256(m.SHA256()); err != nil {
		return err
	}
	// The labels file is read once, hashed and parsed together.
	labels, err := man.LoadLabels()
	if err != nil {
		return err
	}
	if m.NeedsEdgeTPU() {
		return fmt.Errorf("model %s: %w", man.Name, tflite.ErrEdgeTPU)
	}
	interpreters, threads := engineShape(opts.Interpreters, opts.Threads, runtime.NumCPU())
	lm.Threads = threads
	lm.LoadedAt = time.Now()
	if lm.Pool, err = tflite.NewPool(m, interpreters, tflite.Options{Threads: threads, NoXNNPACK: opts.NoXNNPACK}); err != nil {
		return err
	}
	// The pool's interpreters have their tensors allocated: describe the
	// model from one of them instead of building another to inspect.
	lm.Info = lm.Pool.Info()
	if lm.Info.Task != tflite.TaskClassification {
		return fmt.Errorf("model %s: outputs %s do not look like a classifier", man.Name, shapes(lm.Info.Outputs))
	}
	layout, err := classify.LayoutFor(lm.Info.Inputs[0].Shape, man.Input.Color)
	if err != nil {
		return fmt.Errorf("model %s: %w", man.Name, err)
	}
	var norm tflite.Normalization
	if man.Input.Std != nil {
		norm.Std = *man.Input.Std
		if man.Input.Mean != nil {
			norm.Mean = *man.Input.Mean
		}
	}
	lm.Classifier, err = classify.New(&tflite.Engine{Pool: lm.Pool, Norm: norm}, classify.Config{
		Model:       edge.ModelRef{Name: man.Name, SHA256: m.SHA256()},
		Layout:      layout,
		Limits:      opts.Limits,
		Labels:      labels,
		LabelOffset: man.LabelOffset,
		TopK:        opts.TopK,
		Threshold:   opts.Threshold,
		Softmax:     man.Output.Softmax,
	})
	if err != nil {
		return err
	}
	return lm.warmUp()
}

// warmUp runs one inference on a blank input so that the first real image
// does not pay for lazy initialisation, and so that a model that cannot run
// fails at load time rather than on the first request.
func (lm *loadedModel) warmUp() error {
	blank := make([]byte, lm.Classifier.Config().Layout.Len())
	eng := lm.Classifier.Engine()
	if _, err := eng.Run(context.Background(), blank, nil); err != nil {
		return fmt.Errorf("model %s: self-test: %w", lm.Manifest.Name, err)
	}
	return nil
}

// selfTest classifies the manifest's labelled samples and fails if one
// gets another top-1 label: a model that loads but answers wrongly (wrong
// labels file, wrong preprocessing) must not go into service. Samples
// missing on disk are skipped: a deployment may leave them out.
func (lm *loadedModel) selfTest(ctx context.Context) error {
	for _, s := range lm.Manifest.Samples {
		if s.Label == "" {
			continue
		}
		data, err := os.ReadFile(lm.Manifest.SamplePath(s))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("model %s: self-test: %w", lm.Manifest.Name, err)
		}
		res, err := lm.Classifier.Classify(ctx, data)
		if err != nil {
			return fmt.Errorf("model %s: self-test on %s: %w", lm.Manifest.Name, s.File, err)
		}
		if len(res.Predictions) == 0 || res.Predictions[0].Label != s.Label {
			return fmt.Errorf("model %s: self-test: %s should be %q, got %v", lm.Manifest.Name, s.File, s.Label, res.Predictions)
		}
	}
	return nil
}

// Classify implements daemon.Model.
func (lm *loadedModel) Classify(ctx context.Context, data []byte) (edge.Result, error) {
	return lm.Classifier.Classify(ctx, data)
}

// Status implements daemon.Model.
func (lm *loadedModel) Status() httpapi.ModelStatus {
	in := lm.Info.Inputs[0]
	return httpapi.ModelStatus{
		Name:         lm.Manifest.Name,
		SHA256:       lm.Model.SHA256(),
		Path:         lm.Manifest.ModelPath(),
		Input:        fmt.Sprintf("%s %v", in.Type, in.Shape),
		Delegate:     lm.Pool.Delegation().String(),
		Threads:      lm.Threads,
		Interpreters: lm.Pool.Size(),
		LoadedAt:     lm.LoadedAt,
	}
}

// Close releases the interpreters, then the model.
func (lm *loadedModel) Close() error {
	var errs []error
	if lm.Pool != nil {
		errs = append(errs, lm.Pool.Close())
	}
	if lm.Model != nil {
		errs = append(errs, lm.Model.Close())
	}
	return errors.Join(errs...)
}

func shapes(ts []tflite.TensorInfo) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s%v", t.Type, t.Shape)
	}
	return s
}
