package tflite

import (
	"os"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load and, when TensorFlow Lite accepts
// them, to Inspect and NewInterpreter: a model file comes from outside
// (fleet pushes, users), so no byte sequence may crash the process.
func FuzzLoad(f *testing.F) {
	for _, path := range []string{
		"testdata/xor_model.tflite",
		"testdata/fizzbuzz_model.tflite",
		edgeTPUPath,
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
		f.Add(data[:16])
	}
	f.Add([]byte{})
	f.Add([]byte("not a model at all\n"))
	f.Add([]byte{0x18, 0, 0, 0, 'T', 'F', 'L', '3', 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(data)
		if err != nil {
			return
		}
		defer m.Close()
		if _, err := m.Inspect(); err != nil {
			return
		}
		if it, err := m.NewInterpreter(Options{Threads: 1}); err == nil {
			it.Close()
		}
	})
}
