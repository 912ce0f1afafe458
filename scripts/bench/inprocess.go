package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/image/draw"

	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/imageio"
	"github.com/edgeinfer/edgeinfer/edge/model"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/tflite"
)

// shape is an engine shape: interpreters in parallel x threads each.
type shape struct{ interpreters, threads int }

func (s shape) String() string { return fmt.Sprintf("%dx%d", s.interpreters, s.threads) }

// benchCores is the core count engine shapes are made for: the daemon's
// default shape uses at most 4 (cmd/edgeinfer's engineShape).
func benchCores() int { return min(max(runtime.NumCPU(), 1), 4) }

// shapes are the engine shapes compared for throughput: one interpreter
// with a thread per core, and one single-threaded interpreter per core
// (the daemon's default).
func shapes() []shape {
	c := benchCores()
	if c == 1 {
		return []shape{{1, 1}}
	}
	return []shape{{1, c}, {c, 1}}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// loadModel loads a model folder's manifest and model.
func loadModel(dir string) (*model.Manifest, *tflite.Model, error) {
	man, err := model.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	m, err := tflite.LoadFile(man.ModelPath(), 0)
	if err != nil {
		return nil, nil, err
	}
	return man, m, nil
}

func benchInvoke(dir string, opts tflite.Options, n int) (time.Duration, error) {
	_, m, err := loadModel(dir)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	it, err := m.NewInterpreter(opts)
	if err != nil {
		return 0, err
	}
	defer it.Close()
	pixels := make([]byte, it.Input().Shape[1]*it.Input().Shape[2]*it.Input().Shape[3])
	for i := range pixels {
		pixels[i] = byte(i * 31)
	}
	if err := it.SetPixels(pixels, tflite.Normalization{}); err != nil {
		return 0, err
	}
	times := make([]time.Duration, 0, n)
	for i := range n + 5 {
		t0 := time.Now()
		if err := it.Invoke(); err != nil {
			return 0, err
		}
		if i >= 5 { // warm-up
			times = append(times, time.Since(t0))
		}
	}
	return median(times), nil
}

type jpegCase struct {
	name string
	data []byte
}

// benchJPEGs scales the model's first sample image to 640x480 and
// 1920x1080 and encodes both as a camera would (quality 90, 4:2:0).
func benchJPEGs(modelDir string) ([]jpegCase, error) {
	man, err := model.Load(modelDir)
	if err != nil {
		return nil, err
	}
	if len(man.Samples) == 0 {
		return nil, fmt.Errorf("model %s has no sample image", man.Name)
	}
	data, err := os.ReadFile(man.SamplePath(man.Samples[0]))
	if err != nil {
		return nil, err
	}
	src, _, err := imageio.Decode(data, imageio.Limits{})
	if err != nil {
		return nil, err
	}
	var out []jpegCase
	for _, sz := range []image.Point{{640, 480}, {1920, 1080}} {
		dst := image.NewRGBA(image.Rect(0, 0, sz.X, sz.Y))
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
		var b bytes.Buffer
		if err := jpeg.Encode(&b, dst, &jpeg.Options{Quality: 90}); err != nil {
			return nil, err
		}
		out = append(out, jpegCase{fmt.Sprintf("%dx%d", sz.X, sz.Y), b.Bytes()})
	}
	return out, nil
}

// printPreprocess times decode + resize + tensor fill with Go's image/jpeg
// and with edgeinfer's Preprocessor, into a real input tensor.
func printPreprocess(modelDir string, jpegs []jpegCase, n int) error {
	man, m, err := loadModel(modelDir)
	if err != nil {
		return err
	}
	defer m.Close()
	it, err := m.NewInterpreter(tflite.Options{Threads: 1})
	if err != nil {
		return err
	}
	defer it.Close()
	l, err := classify.LayoutFor(it.Input().Shape, man.Input.Color)
	if err != nil {
		return err
	}
	pixels := make([]byte, l.Len())
	fmt.Printf("\ndecode + resize + tensor fill into %dx%dx%d, ms (median), allocations per frame:\n", l.Width, l.Height, l.Channels)
	fmt.Printf("  %-12s %16s %22s %8s\n", "JPEG", "Go image/jpeg", "edgeinfer (turbo)", "ratio")
	goals := map[string]string{"640x480": "goal <= 1 ms", "1920x1080": "goal <= 4 ms"}
	for _, jc := range jpegs {
		var r imageio.Resizer
		goPath := func() error {
			img, err := jpeg.Decode(bytes.NewReader(jc.data))
			if err != nil {
				return err
			}
			if err := r.Resize(pixels, img, l); err != nil {
				return err
			}
			return it.SetPixels(pixels, tflite.Normalization{})
		}
		p := imageio.Preprocessor{Layout: l}
		ours := func() error {
			if _, err := p.Preprocess(pixels, jc.data); err != nil {
				return err
			}
			return it.SetPixels(pixels, tflite.Normalization{})
		}
		dg, ag, err := timeIt(goPath, n)
		if err != nil {
			return err
		}
		do, ao, err := timeIt(ours, n)
		p.Close()
		if err != nil {
			return err
		}
		fmt.Printf("  %-12s %9.2f (%3.0f) %15.2f (%3.0f) %7.1fx   %s\n", jc.name, ms(dg), ag, ms(do), ao, float64(dg)/float64(do), goals[jc.name])
	}
	return nil
}

// timeIt returns fn's median time over n runs (after warm-up) and its
// allocations per run.
func timeIt(fn func() error, n int) (time.Duration, float64, error) {
	for range 5 {
		if err := fn(); err != nil {
			return 0, 0, err
		}
	}
	times := make([]time.Duration, 0, n)
	var ms0, ms1 runtimeMem
	ms0.read()
	for range n {
		t0 := time.Now()
		if err := fn(); err != nil {
			return 0, 0, err
		}
		times = append(times, time.Since(t0))
	}
	ms1.read()
	return median(times), float64(ms1.mallocs-ms0.mallocs) / float64(n), nil
}

// printInProcess prints one classification split by stage, then
// classifications per second with each engine shape, and returns the raw
// Invoke rate of each shape (the ceiling frames can be classified at).
func printInProcess(modelDir string, jpg []byte, n int, window time.Duration) (map[shape]float64, error) {
	man, m, err := loadModel(modelDir)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	newClassifier := func(s shape) (*classify.Classifier, *tflite.Pool, error) {
		pool, err := tflite.NewPool(m, s.interpreters, tflite.Options{Threads: s.threads})
		if err != nil {
			return nil, nil, err
		}
		l, err := classify.LayoutFor(pool.Info().Inputs[0].Shape, man.Input.Color)
		if err != nil {
			pool.Close()
			return nil, nil, err
		}
		c, err := classify.New(&tflite.Engine{Pool: pool}, classify.Config{Layout: l, TopK: 5})
		if err != nil {
			pool.Close()
			return nil, nil, err
		}
		return c, pool, nil
	}

	single := shape{1, benchCores()}
	c, pool, err := newClassifier(single)
	if err != nil {
		return nil, err
	}
	var all [5][]time.Duration
	for i := range n + 5 {
		res, err := c.Classify(context.Background(), jpg)
		if err != nil {
			pool.Close()
			return nil, err
		}
		if i < 5 {
			continue
		}
		t := res.Timings
		for k, d := range []time.Duration{t.Decode.Duration(), t.Preprocess.Duration(), t.Inference.Duration(), t.Postprocess.Duration(), t.Total.Duration()} {
			all[k] = append(all[k], d)
		}
	}
	pool.Close()
	st := [5]time.Duration{}
	for k := range st {
		st[k] = median(all[k])
	}
	fmt.Printf("\none classification of a 640x480 JPEG (%d KB), %v, ms (median):\n", len(jpg)>>10, single)
	fmt.Printf("  decode %.2f + resize and fill %.2f + invoke %.2f + postprocess %.2f = total %.2f; overhead / invoke %.1f %%\n",
		ms(st[0]), ms(st[1]), ms(st[2]), ms(st[3]), ms(st[4]), 100*float64(st[0]+st[1]+st[3])/float64(st[2]))

	fmt.Printf("\nin-process throughput, 640x480 JPEGs, %v each:\n", window)
	fmt.Printf("  %-28s %16s %16s %8s\n", "interpreters x threads", "classified /s", "raw Invoke /s", "ratio")
	bound := map[shape]float64{}
	for _, s := range shapes() {
		c, pool, err := newClassifier(s)
		if err != nil {
			return nil, err
		}
		// As many workers as the daemon's pipeline runs.
		workers := pipeline.WorkersFor(s.interpreters, s.threads, runtime.NumCPU())
		rate, err := throughput(workers, window, func() error {
			_, err := c.Classify(context.Background(), jpg)
			return err
		})
		if err != nil {
			pool.Close()
			return nil, err
		}
		raw, err := throughput(s.interpreters, window, func() error {
			return pool.Do(context.Background(), func(it *tflite.Interpreter) error { return it.Invoke() })
		})
		pool.Close()
		if err != nil {
			return nil, err
		}
		bound[s] = raw
		fmt.Printf("  %-28s %16.1f %16.1f %7.1f%%   (goal >= 120 /s)\n", s, rate, raw, 100*rate/raw)
	}
	return bound, nil
}

// throughput runs fn from workers goroutines for d and returns calls per
// second.
func throughput(workers int, d time.Duration, fn func() error) (float64, error) {
	var (
		count    atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	stop := time.Now().Add(d)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if err := fn(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(count.Load()) / time.Since(start).Seconds(), firstErr
}
