package tflite

import (
	"context"
	"time"

	"github.com/edgeinfer/edgeinfer/edge/classify"
)

// Engine runs classifications on a pool of interpreters; it implements
// classify.Engine.
type Engine struct {
	Pool *Pool
	// Norm converts pixels to the input's real values (see Normalization).
	Norm Normalization
}

// Run fills the input, invokes the model and dequantises output 0 into
// scores, timing each step, on whichever interpreter is free first.
func (e *Engine) Run(ctx context.Context, pixels []byte, scores []float32) (classify.EngineRun, error) {
	var run classify.EngineRun
	err := e.Pool.Do(ctx, func(it *Interpreter) error {
		t0 := time.Now()
		if err := it.SetPixels(pixels, e.Norm); err != nil {
			return err
		}
		t1 := time.Now()
		if err := it.Invoke(); err != nil {
			return err
		}
		t2 := time.Now()
		s, err := it.Scores(0, scores)
		run = classify.EngineRun{Scores: s, Fill: t1.Sub(t0), Invoke: t2.Sub(t1), Read: time.Since(t2)}
		return err
	})
	return run, err
}
