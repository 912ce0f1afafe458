// Package classify turns image bytes into an edge.Result: decode with
// limits, resize into the model's input layout, run the engine, and pick
// the top classes. It is the one path every source (CLI, HTTP, MQTT,
// camera) goes through, so they all give the same numbers.
package classify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/imageio"
)

// ErrBadImage wraps every error caused by the image itself (undecodable,
// truncated, too large): the caller's fault, not the engine's.
var ErrBadImage = errors.New("bad image")

// Engine runs the model. It is implemented over TensorFlow Lite by
// cmd/edgeinfer's wiring; it must be safe for concurrent use.
type Engine interface {
	// Run fills the model input with pixels (laid out as the Layout the
	// classifier was configured with), invokes the model and writes the
	// real-valued scores of the classification output into scores[:0],
	// growing it if needed.
	Run(ctx context.Context, pixels []byte, scores []float32) (EngineRun, error)
}

// EngineRun is the outcome of one Engine.Run.
type EngineRun struct {
	Scores []float32
	// Fill is the time spent converting pixels into the input tensor,
	// Invoke the model itself, Read dequantising the output.
	Fill, Invoke, Read time.Duration
}

// Config configures a Classifier.
type Config struct {
	Model  edge.ModelRef
	Layout imageio.Layout
	Limits imageio.Limits
	// Labels name the classes; output index i has label Labels[i+LabelOffset].
	Labels      []string
	LabelOffset int
	// TopK is how many predictions to report (default 5); predictions
	// scoring below Threshold are left out.
	TopK      int
	Threshold float32
	// Softmax turns logits into probabilities before ranking.
	Softmax bool
}

// Classifier classifies images. It is safe for concurrent use.
type Classifier struct {
	cfg    Config
	engine Engine
	bufs   sync.Pool // *buffers, so that steady state allocates little
}

// buffers is one classification's working memory: the model input, the
// scores, and the preprocessor with its decoder state.
type buffers struct {
	pixels []byte
	scores []float32
	prep   imageio.Preprocessor
}

// New returns a Classifier running engine with cfg.
func New(engine Engine, cfg Config) (*Classifier, error) {
	if engine == nil {
		return nil, errors.New("classify: nil engine")
	}
	if cfg.Layout.Len() <= 0 || (cfg.Layout.Channels != 1 && cfg.Layout.Channels != 3) {
		return nil, fmt.Errorf("classify: unusable input layout %+v", cfg.Layout)
	}
	if cfg.TopK <= 0 {
		cfg.TopK = 5
	}
	c := &Classifier{cfg: cfg, engine: engine}
	c.bufs.New = func() any {
		return &buffers{
			pixels: make([]byte, cfg.Layout.Len()),
			prep:   imageio.Preprocessor{Layout: cfg.Layout, Limits: cfg.Limits},
		}
	}
	return c, nil
}

// Config returns the classifier's configuration.
func (c *Classifier) Config() Config { return c.cfg }

// Classify classifies one encoded image. The result has the model,
// predictions and timings set; the caller fills in where the image came
// from. Errors caused by the image wrap ErrBadImage.
func (c *Classifier) Classify(ctx context.Context, data []byte) (edge.Result, error) {
	start := time.Now()
	res := edge.Result{Model: c.cfg.Model, CapturedAt: start.UTC()}
	b := c.bufs.Get().(*buffers)
	defer c.bufs.Put(b)
	prep, err := b.prep.Preprocess(b.pixels, data)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrBadImage, err)
	}
	run, err := c.engine.Run(ctx, b.pixels, b.scores[:0])
	if err != nil {
		return res, fmt.Errorf("classify: %w", err)
	}
	b.scores = run.Scores
	post := time.Now()
	res.Predictions = c.predictions(run.Scores)
	end := time.Now()

	res.Timings = edge.Timings{
		Decode:      edge.Millis(prep.Decode),
		Preprocess:  edge.Millis(prep.Resize + run.Fill),
		Inference:   edge.Millis(run.Invoke),
		Postprocess: edge.Millis(run.Read + end.Sub(post)),
		Total:       edge.Millis(end.Sub(start)),
	}
	return res, nil
}

// predictions ranks scores and keeps the top K above the threshold.
func (c *Classifier) predictions(scores []float32) []edge.Prediction {
	if c.cfg.Softmax {
		softmax(scores)
	}
	top := TopK(scores, c.cfg.TopK)
	preds := make([]edge.Prediction, 0, len(top))
	for _, i := range top {
		s := scores[i]
		if s < c.cfg.Threshold || math.IsNaN(float64(s)) {
			continue
		}
		preds = append(preds, edge.Prediction{Label: c.label(i), Index: i, Score: s})
	}
	return preds
}

func (c *Classifier) label(i int) string {
	j := i + c.cfg.LabelOffset
	if j >= 0 && j < len(c.cfg.Labels) {
		return c.cfg.Labels[j]
	}
	return fmt.Sprint(i)
}

// TopK returns the indices of the k largest scores, best first; ties go
// to the lower index. NaN scores rank last.
func TopK(scores []float32, k int) []int {
	k = min(k, len(scores))
	if k <= 0 {
		return nil
	}
	key := func(i int) float32 {
		if s := scores[i]; s == s {
			return s
		}
		return float32(math.Inf(-1)) // NaN
	}
	better := func(a, b int) bool {
		if ka, kb := key(a), key(b); ka != kb {
			return ka > kb
		}
		return a < b
	}
	// A sorted window of k indices: O(n*k), and k is small.
	top := make([]int, 0, k)
	for i := range scores {
		if len(top) == k && !better(i, top[k-1]) {
			continue
		}
		pos := sort.Search(len(top), func(j int) bool { return better(i, top[j]) })
		if len(top) < k {
			top = append(top, 0)
		}
		copy(top[pos+1:], top[pos:len(top)-1])
		top[pos] = i
	}
	return top
}

func softmax(v []float32) {
	m := float32(math.Inf(-1))
	for _, x := range v {
		m = max(m, x)
	}
	var sum float64
	for i, x := range v {
		e := math.Exp(float64(x - m))
		v[i] = float32(e)
		sum += e
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / sum)
	}
}

// LayoutFor derives the image layout a model input of the given shape
// wants: [1,H,W,C] or [H,W,C] with C 1 or 3, [1,H,W] (grayscale), or a flat
// [1,N] / [N] vector with N a square (a flattened grayscale image, as the
// classic Keras MNIST network takes). color ("rgb", "grayscale" or "")
// must agree with the channel count when given.
func LayoutFor(shape []int, color string) (imageio.Layout, error) {
	s := shape
	if len(s) > 0 && s[0] == 1 && len(s) >= 2 {
		s = s[1:]
	}
	var l imageio.Layout
	switch len(s) {
	case 3:
		l = imageio.Layout{Height: s[0], Width: s[1], Channels: s[2]}
	case 2:
		l = imageio.Layout{Height: s[0], Width: s[1], Channels: 1}
	case 1:
		side := int(math.Round(math.Sqrt(float64(s[0]))))
		if side*side != s[0] {
			return l, fmt.Errorf("classify: flat input of %d values is not a square image", s[0])
		}
		l = imageio.Layout{Height: side, Width: side, Channels: 1}
	default:
		return l, fmt.Errorf("classify: input shape %v is not an image", shape)
	}
	if l.Width <= 0 || l.Height <= 0 || (l.Channels != 1 && l.Channels != 3) {
		return l, fmt.Errorf("classify: input shape %v is not an image (need 1 or 3 channels)", shape)
	}
	switch {
	case color == "grayscale" && l.Channels != 1, color == "rgb" && l.Channels != 3:
		return l, fmt.Errorf("classify: manifest says %s but the input shape %v has %d channels", color, shape, l.Channels)
	}
	return l, nil
}

// Engine returns the engine the classifier runs.
func (c *Classifier) Engine() Engine { return c.engine }
