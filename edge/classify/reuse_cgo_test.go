//go:build cgo

package classify

import (
	"context"
	"runtime"
	"testing"

	"github.com/edgeinfer/edgeinfer/edge/imageio"
)

// TestClassifyReusesDecodeMemory: with libjpeg-turbo, classifying camera
// frames reuses the worker's Preprocessor: no decoded image is allocated
// per frame (decoding a 640x480 JPEG into a fresh image, the path before,
// costs 300 KB at half scale).
func TestClassifyReusesDecodeMemory(t *testing.T) {
	data := patternJPEG(t, 640, 480, 7)
	l := imageio.Layout{Width: 224, Height: 224, Channels: 3}
	c, err := New(echoEngine{n: 10}, Config{Layout: l, TopK: 1})
	if err != nil {
		t.Fatal(err)
	}
	classify := func() {
		if _, err := c.Classify(context.Background(), data); err != nil {
			t.Fatal(err)
		}
	}
	classify() // sizes the pooled buffers
	const n = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		classify()
	}
	runtime.ReadMemStats(&after)
	// A GC emptying the sync.Pool costs one new set of buffers (~200 KB)
	// over the n frames; a decoded image per frame costs 300 KB each.
	if perFrame := (after.TotalAlloc - before.TotalAlloc) / n; perFrame > 64<<10 {
		t.Errorf("%d bytes allocated per frame, want < 64 KB", perFrame)
	}
}
