package classify

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/edgeinfer/edgeinfer/edge/imageio"
)

func TestTopK(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		scores []float32
		k      int
		want   []int
	}{
		{[]float32{0.1, 0.7, 0.2}, 2, []int{1, 2}},
		{[]float32{0.1, 0.7, 0.2}, 5, []int{1, 2, 0}},
		{[]float32{0.5, 0.5, 0.5}, 2, []int{0, 1}}, // ties: lower index first
		{[]float32{nan, 0.1, nan, 0.2}, 3, []int{3, 1, 0}},
		{[]float32{-1, -3, -2}, 1, []int{0}},
		{nil, 3, nil},
		{[]float32{1}, 0, nil},
	}
	for _, c := range cases {
		if got := TopK(c.scores, c.k); !slices.Equal(got, c.want) {
			t.Errorf("TopK(%v, %d) = %v, want %v", c.scores, c.k, got, c.want)
		}
	}
}

func TestTopKMatchesSort(t *testing.T) {
	scores := make([]float32, 1001)
	for i := range scores {
		scores[i] = float32((i*7919)%1009) / 1009
	}
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return 0
	})
	if got := TopK(scores, 10); !slices.Equal(got, idx[:10]) {
		t.Errorf("TopK = %v, sort gives %v", got, idx[:10])
	}
}

func TestSoftmax(t *testing.T) {
	v := []float32{1, 2, 3, 1000}
	softmax(v)
	var sum float32
	for _, x := range v {
		sum += x
	}
	if math.Abs(float64(sum-1)) > 1e-5 || v[3] < 0.99 || math.IsNaN(float64(v[0])) {
		t.Errorf("softmax = %v", v)
	}
}

func TestLayoutFor(t *testing.T) {
	cases := []struct {
		shape []int
		color string
		want  imageio.Layout
		err   bool
	}{
		{[]int{1, 224, 224, 3}, "", imageio.Layout{Width: 224, Height: 224, Channels: 3}, false},
		{[]int{1, 300, 200, 3}, "rgb", imageio.Layout{Width: 200, Height: 300, Channels: 3}, false},
		{[]int{1, 28, 28, 1}, "grayscale", imageio.Layout{Width: 28, Height: 28, Channels: 1}, false},
		{[]int{1, 28, 28}, "", imageio.Layout{Width: 28, Height: 28, Channels: 1}, false},
		{[]int{1, 784}, "", imageio.Layout{Width: 28, Height: 28, Channels: 1}, false},
		{[]int{784}, "", imageio.Layout{Width: 28, Height: 28, Channels: 1}, false},
		{[]int{1, 785}, "", imageio.Layout{}, true},
		{[]int{1, 224, 224, 4}, "", imageio.Layout{}, true},
		{[]int{1, 224, 224, 3}, "grayscale", imageio.Layout{}, true},
		{[]int{1, 2, 3, 4, 5}, "", imageio.Layout{}, true},
		{[]int{1, 0, 224, 3}, "", imageio.Layout{}, true},
	}
	for _, c := range cases {
		got, err := LayoutFor(c.shape, c.color)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("LayoutFor(%v, %q) = %+v, %v", c.shape, c.color, got, err)
		}
	}
}

// echoEngine returns the first pixels as scores: a deterministic engine
// for testing the classifier's own logic (labels, offsets, threshold).
// The real engine is tested in tflite and cmd/edgeinfer.
type echoEngine struct{ n int }

func (e echoEngine) Run(_ context.Context, pixels []byte, scores []float32) (EngineRun, error) {
	scores = scores[:0]
	for _, p := range pixels[:e.n] {
		scores = append(scores, float32(p)/255)
	}
	return EngineRun{Scores: scores}, nil
}

func TestClassifierLabelsAndThreshold(t *testing.T) {
	// A 1x3 grayscale "image" whose pixels become the scores.
	c, err := New(echoEngine{n: 3}, Config{
		Layout:      imageio.Layout{Width: 3, Height: 1, Channels: 1},
		Labels:      []string{"background", "cat", "dog", "bird"},
		LabelOffset: 1,
		TopK:        3,
		Threshold:   0.1,
	})
	if err != nil {
		t.Fatal(err)
	}
	png := grayPNG(t, []byte{10, 200, 100})
	res, err := c.Classify(context.Background(), png)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, p := range res.Predictions {
		labels = append(labels, p.Label)
	}
	// Scores 10/255 (below threshold), 200/255 -> "dog", 100/255 -> "bird".
	if !slices.Equal(labels, []string{"dog", "bird"}) {
		t.Errorf("labels %v (%+v)", labels, res.Predictions)
	}
	if _, err := c.Classify(context.Background(), []byte("nope")); !errors.Is(err, ErrBadImage) {
		t.Errorf("bad image: %v", err)
	}
}

func TestNewRejectsBadLayout(t *testing.T) {
	if _, err := New(echoEngine{}, Config{Layout: imageio.Layout{Width: 2, Height: 2, Channels: 2}}); err == nil {
		t.Error("2-channel layout accepted")
	}
	if _, err := New(nil, Config{Layout: imageio.Layout{Width: 2, Height: 2, Channels: 3}}); err == nil {
		t.Error("nil engine accepted")
	}
}

// TestClassifyJPEG: a JPEG goes through the Preprocessor's fast path (one
// pooled per worker); the engine gets exactly Preprocess's pixels, every
// time, and the result reports decode time.
func TestClassifyJPEG(t *testing.T) {
	data := patternJPEG(t, 64, 48, 13)
	l := imageio.Layout{Width: 8, Height: 6, Channels: 3}
	c, err := New(echoEngine{n: l.Len()}, Config{Layout: l, TopK: l.Len()})
	if err != nil {
		t.Fatal(err)
	}
	p := imageio.Preprocessor{Layout: l}
	defer p.Close()
	want := make([]byte, l.Len())
	if _, err := p.Preprocess(want, data); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		res, err := c.Classify(context.Background(), data)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Predictions) != l.Len() {
			t.Fatalf("%d predictions, want %d", len(res.Predictions), l.Len())
		}
		for _, pr := range res.Predictions {
			if pr.Score != float32(want[pr.Index])/255 {
				t.Fatalf("score of input %d is %v, Preprocess gave %d", pr.Index, pr.Score, want[pr.Index])
			}
		}
		if res.Timings.Decode <= 0 {
			t.Errorf("decode time %v", res.Timings.Decode)
		}
	}
}
