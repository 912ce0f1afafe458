package tflite

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgeinfer/edgeinfer/edge/imageio"
)

// requireXNNPACK skips unless the library has XNNPACK. With
// EDGEINFER_REQUIRE_XNNPACK=1 (set by .ci/run once it has built the fast
// engine) a library without it fails instead, so the fast path cannot
// silently go untested.
func requireXNNPACK(t *testing.T) {
	t.Helper()
	if XNNPACK() {
		return
	}
	if os.Getenv("EDGEINFER_REQUIRE_XNNPACK") == "1" {
		t.Fatalf("EDGEINFER_REQUIRE_XNNPACK=1 but %s has no XNNPACK delegate", EngineName())
	}
	t.Skipf("%s: built without XNNPACK", EngineName())
}

func TestEngineName(t *testing.T) {
	name := EngineName()
	if !regexp.MustCompile(`^tensorflow-lite \d+\.\d+\.\d+( \+xnnpack)?$`).MatchString(name) {
		t.Errorf("EngineName() = %q", name)
	}
	if XNNPACK() != strings.HasSuffix(name, " +xnnpack") {
		t.Errorf("EngineName() = %q but XNNPACK() = %v", name, XNNPACK())
	}
	if os.Getenv("EDGEINFER_REQUIRE_XNNPACK") == "1" && !XNNPACK() {
		t.Errorf("EDGEINFER_REQUIRE_XNNPACK=1 but the engine is %q", name)
	}
}

// TestDelegation: XNNPACK takes most of mobilenet's 31 operators (all but
// the two it has no quantised kernel for), NoXNNPACK leaves them all to
// TensorFlow Lite, and the interpreters of a pool agree.
func TestDelegation(t *testing.T) {
	m := loadFile(t, mobilenetPath)
	it, err := m.NewInterpreter(Options{Threads: 1, NoXNNPACK: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := it.Delegation(); d.Delegate != "cpu" || d.String() != "cpu" {
		t.Errorf("NoXNNPACK: delegation %+v", d)
	}
	it.Close()

	requireXNNPACK(t)
	p, err := NewPool(m, 2, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d := p.Delegation()
	if d.Delegate != "xnnpack" || d.Total != 31 || d.Nodes < 20 || d.Nodes > d.Total {
		t.Errorf("mobilenet delegation %+v (%s), want xnnpack taking most of 31 nodes", d, d)
	}
	if d2 := p.all[1].Delegation(); d2 != d {
		t.Errorf("second interpreter: %+v, first %+v", d2, d)
	}
}

// classifyTop1 runs an image file through one interpreter and returns the
// index of the top score.
func classifyTop1(t *testing.T, it *Interpreter, path string, l imageio.Layout, norm Normalization) int {
	t.Helper()
	scores := runScores(t, it, preprocess(t, path, l), norm, 0)
	best := 0
	for i, s := range scores {
		if s > scores[best] {
			best = i
		}
	}
	return best
}

func preprocess(t *testing.T, path string, l imageio.Layout) []byte {
	t.Helper()
	p := imageio.Preprocessor{Layout: l}
	defer p.Close()
	pixels := make([]byte, l.Len())
	if _, err := p.Preprocess(pixels, readFile(t, path)); err != nil {
		t.Fatal(err)
	}
	return pixels
}

// TestXNNPACKSameAnswers: with and without the delegate, the same top-1 on
// peacock and on the ten MNIST digits, and the same SSD detections on
// example.jpg (classes equal, scores and boxes within 0.02).
func TestXNNPACKSameAnswers(t *testing.T) {
	requireXNNPACK(t)
	both := func(t *testing.T, path string, threads int) (xnn, cpu *Interpreter) {
		m := loadFile(t, path)
		var err error
		if xnn, err = m.NewInterpreter(Options{Threads: threads}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(xnn.Close)
		if cpu, err = m.NewInterpreter(Options{Threads: threads, NoXNNPACK: true}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cpu.Close)
		if xnn.Delegation().Nodes == 0 {
			t.Fatalf("%s: XNNPACK took no node", path)
		}
		return xnn, cpu
	}

	t.Run("mobilenet", func(t *testing.T) {
		xnn, cpu := both(t, mobilenetPath, 2)
		l := imageio.Layout{Width: 224, Height: 224, Channels: 3}
		img := "../models/mobilenet-v1-quant/samples/peacock.png"
		a, b := classifyTop1(t, xnn, img, l, Normalization{}), classifyTop1(t, cpu, img, l, Normalization{})
		if a != 85 || b != 85 {
			t.Errorf("peacock: top-1 %d with XNNPACK, %d without, want 85", a, b)
		}
	})
	t.Run("mnist", func(t *testing.T) {
		xnn, cpu := both(t, mnistPath, 1)
		l := imageio.Layout{Width: 28, Height: 28, Channels: 1}
		norm := Normalization{Mean: 0, Std: 255}
		for d := range 10 {
			img := filepath.Join("../models/mnist/samples", string(rune('0'+d))+".png")
			a, b := classifyTop1(t, xnn, img, l, norm), classifyTop1(t, cpu, img, l, norm)
			if a != d || b != d {
				t.Errorf("digit %d: top-1 %d with XNNPACK, %d without", d, a, b)
			}
		}
	})
	t.Run("ssd", func(t *testing.T) {
		xnn, cpu := both(t, ssdPath, 2)
		pixels := preprocess(t, "../models/ssd-mobilenet-v1-quant/samples/example.jpg", imageio.Layout{Width: 300, Height: 300, Channels: 3})
		run := func(it *Interpreter) (boxes, classes, scores []float32, n int) {
			if err := it.SetPixels(pixels, Normalization{}); err != nil {
				t.Fatal(err)
			}
			if err := it.Invoke(); err != nil {
				t.Fatal(err)
			}
			out := make([][]float32, 4)
			for k := range out {
				var err error
				if out[k], err = it.Scores(k, nil); err != nil {
					t.Fatal(err)
				}
			}
			return out[0], out[1], out[2], int(out[3][0])
		}
		bx, cx, sx, nx := run(xnn)
		bc, cc, sc, nc := run(cpu)
		// Equal scores may come out in either order: match each confident
		// detection of one engine with one of the same class, score and box
		// (within 0.02) from the other.
		matches := func(i int, b, c, s []float32, j int, b2, c2, s2 []float32) bool {
			if c[i] != c2[j] || math.Abs(float64(s[i]-s2[j])) > 0.02 {
				return false
			}
			for k := range 4 {
				if math.Abs(float64(b[4*i+k]-b2[4*j+k])) > 0.02 {
					return false
				}
			}
			return true
		}
		kept := 0
		check := func(name string, b, c, s []float32, n int, b2, c2, s2 []float32, n2 int) {
			for i := 0; i < n && s[i] >= 0.3; i++ {
				kept++
				found := false
				for j := 0; j < n2 && !found; j++ {
					found = matches(i, b, c, s, j, b2, c2, s2)
				}
				if !found {
					t.Errorf("%s detection %d (class %v, score %.3f, box %v) has no match", name, i, c[i], s[i], b[4*i:4*i+4])
				}
			}
		}
		check("XNNPACK", bx, cx, sx, nx, bc, cc, sc, nc)
		check("built-in", bc, cc, sc, nc, bx, cx, sx, nx)
		if kept == 0 {
			t.Errorf("no detection above 0.3 on example.jpg (scores %v / %v)", sx[:3], sc[:3])
		}
		t.Logf("%d detections compared", kept)
	})
}

// TestPoolSharesWeights: a pool's interpreters share one XNNPACK weights
// cache, and each answers exactly as an interpreter with its own weights.
func TestPoolSharesWeights(t *testing.T) {
	requireXNNPACK(t)
	m := loadFile(t, mobilenetPath)
	l := imageio.Layout{Width: 224, Height: 224, Channels: 3}
	pixels := preprocess(t, "../models/mobilenet-v1-quant/samples/peacock.png", l)
	scores := func(it *Interpreter) []float32 { return runScores(t, it, pixels, Normalization{}, 0) }
	alone, err := m.NewInterpreter(Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := scores(alone)
	alone.Close()

	p, err := NewPool(m, 3, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p.weights.c == nil {
		t.Error("the pool has no shared weights cache")
	}
	for i, it := range p.all {
		if got := scores(it); !equalFloats(got, want) {
			t.Errorf("interpreter %d of the pool answers differently from one with its own weights", i)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.weights.c != nil {
		t.Error("weights cache not freed by Close")
	}
}

// TestXNNPACKRefusedFallsBack: when the delegate fails on a model, the
// interpreter runs on TensorFlow Lite's own kernels instead of failing,
// and says why. The failure is a real one of the library: XNNPACK cannot
// pack a second model's weights into a weights cache already finalized
// for a first model.
func TestXNNPACKRefusedFallsBack(t *testing.T) {
	requireXNNPACK(t)
	mobilenet, ssd := loadFile(t, mobilenetPath), loadFile(t, ssdPath)
	wc := newWeightsCache()
	defer wc.free()
	first, err := mobilenet.newAllocated(Options{Threads: 1}, wc)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := wc.finalize(); err != nil {
		t.Fatal(err)
	}

	it, err := ssd.newAllocated(Options{Threads: 1}, wc)
	if err != nil {
		t.Fatalf("no fallback to TensorFlow Lite's kernels: %v", err)
	}
	defer it.Close()
	d := it.Delegation()
	if d.Delegate != "cpu" || !strings.Contains(d.Refused, "XNNPACK") ||
		!strings.HasPrefix(d.String(), "cpu (xnnpack refused the model: ") {
		t.Errorf("delegation %+v, String %q", d, d)
	}

	// It answers exactly like an interpreter made without the delegate.
	plain := interpreter(t, ssdPath, Options{Threads: 1, NoXNNPACK: true})
	if d := plain.Delegation(); d.Refused != "" || d.String() != "cpu" {
		t.Errorf("without the delegate: %+v", d)
	}
	l := imageio.Layout{Width: 300, Height: 300, Channels: 3}
	pixels := preprocess(t, "../models/ssd-mobilenet-v1-quant/samples/example.jpg", l)
	for k := range it.outs {
		if a, b := runScores(t, it, pixels, Normalization{}, k), runScores(t, plain, pixels, Normalization{}, k); !equalFloats(a, b) {
			t.Errorf("output %d differs from the plain interpreter's", k)
		}
	}
}

// TestXNNPACKRefusedPool: a pool whose first interpreter the delegate
// refuses makes the others without it, drops the weights cache nothing
// uses, and serves on TensorFlow Lite's own kernels.
func TestXNNPACKRefusedPool(t *testing.T) {
	requireXNNPACK(t)
	mobilenet, ssd := loadFile(t, mobilenetPath), loadFile(t, ssdPath)
	wc := newWeightsCache() // the pool's from newPool on
	first, err := mobilenet.newAllocated(Options{Threads: 1}, wc)
	if err != nil {
		wc.free()
		t.Fatal(err)
	}
	if err := wc.finalize(); err != nil {
		t.Fatal(err)
	}
	first.Close()

	p, err := newPool(ssd, 2, Options{Threads: 1}, wc)
	if err != nil {
		t.Fatalf("no fallback to TensorFlow Lite's kernels: %v", err)
	}
	defer p.Close()
	if d := p.Delegation(); d.Delegate != "cpu" || d.Refused == "" || p.Size() != 2 {
		t.Errorf("pool of %d, delegation %+v", p.Size(), d)
	}
	if p.weights.c != nil {
		t.Error("the refused pool kept its weights cache")
	}
	for _, it := range p.all {
		if d := it.Delegation(); d.Delegate != "cpu" {
			t.Errorf("an interpreter of the refused pool runs on %v", d)
		}
	}
	for range 4 {
		if err := p.Do(context.Background(), func(it *Interpreter) error { return it.Invoke() }); err != nil {
			t.Fatal(err)
		}
	}
}
