package tflite

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkInvoke times one Invoke of the shipped quantized models with 1
// and 2 threads, on the library's own kernels and, when the library has it,
// through the XNNPACK delegate. The goals for it (mobilenet <= 8 ms,
// SSD <= 12 ms at 2 threads) are read from make bench, which prints the
// prebuilt engine beside these.
func BenchmarkInvoke(b *testing.B) {
	for _, path := range []string{mobilenetPath, ssdPath} {
		m := loadFile(b, path)
		name := strings.TrimSuffix(filepath.Base(path), ".tflite")
		for _, threads := range []int{1, 2} {
			for _, xnn := range []bool{false, true} {
				engine := "builtin"
				if xnn {
					engine = "xnnpack"
				}
				b.Run(fmt.Sprintf("%s/%s/threads=%d", name, engine, threads), func(b *testing.B) {
					if xnn && !XNNPACK() {
						b.Skip("built without XNNPACK")
					}
					it, err := m.NewInterpreter(Options{Threads: threads, NoXNNPACK: !xnn})
					if err != nil {
						b.Fatal(err)
					}
					defer it.Close()
					if xnn && it.Delegation().Nodes == 0 {
						b.Fatalf("XNNPACK took no node: %+v", it.Delegation())
					}
					in := it.Input()
					pixels := make([]byte, in.Shape[1]*in.Shape[2]*in.Shape[3])
					for i := range pixels {
						pixels[i] = byte(i * 31)
					}
					if err := it.SetPixels(pixels, Normalization{}); err != nil {
						b.Fatal(err)
					}
					for range 3 { // warm-up: the first run packs weights
						if err := it.Invoke(); err != nil {
							b.Fatal(err)
						}
					}
					for b.Loop() {
						if err := it.Invoke(); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkInvokeSmall is dominated by the cost of one call (the MNIST
// network computes in well under 0.1 ms): the hand-over to the
// interpreter's inference thread and back.
func BenchmarkInvokeSmall(b *testing.B) {
	it := interpreter(b, mnistPath, Options{Threads: 1})
	for b.Loop() {
		if err := it.Invoke(); err != nil {
			b.Fatal(err)
		}
	}
}
