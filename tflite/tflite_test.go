package tflite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	gotflite "github.com/mattn/go-tflite"
)

const (
	mobilenetPath = "../models/mobilenet-v1-quant/mobilenet_quant_v1_224.tflite"
	ssdPath       = "../models/ssd-mobilenet-v1-quant/detect.tflite"
	mnistPath     = "../models/mnist/mnist_model.tflite"
	edgeTPUPath   = "testdata/fizzbuzz_model_quant_edgetpu.tflite"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `make models` first)", err)
	}
	return data
}

func loadFile(t testing.TB, path string) *Model {
	t.Helper()
	m, err := LoadFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// interpreter makes an interpreter of the model at path; both are closed
// when the test ends.
func interpreter(t testing.TB, path string, opts Options) *Interpreter {
	t.Helper()
	it, err := loadFile(t, path).NewInterpreter(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(it.Close)
	return it
}

// runScores feeds pixels to it, runs it, and returns output k's scores.
func runScores(t testing.TB, it *Interpreter, pixels []byte, norm Normalization, k int) []float32 {
	t.Helper()
	if err := it.SetPixels(pixels, norm); err != nil {
		t.Fatal(err)
	}
	if err := it.Invoke(); err != nil {
		t.Fatal(err)
	}
	s, err := it.Scores(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadRejectsBadModels(t *testing.T) {
	mobilenet := readFile(t, mobilenetPath)
	random := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	withIdent := append([]byte{0x18, 0, 0, 0, 'T', 'F', 'L', '3'}, random[:1000]...)
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrEmptyModel},
		{"text", []byte("this is not a model\n"), ErrInvalidModel},
		{"random bytes", random, ErrInvalidModel},
		{"random bytes after a TFL3 header", withIdent, ErrInvalidModel},
		{"truncated to half", mobilenet[:len(mobilenet)/2], ErrInvalidModel},
		{"truncated to 100 bytes", mobilenet[:100], ErrInvalidModel},
		{"four bytes", []byte("TFL3"), ErrInvalidModel},
		// A valid flatbuffer holding only a version: TensorFlow Lite's
		// verifier accepts it and TfLiteInterpreterCreate then segfaults.
		{"no subgraphs", versionOnlyModel, ErrInvalidModel},
		// Mobilenet with its operator's opcode index pointed past the
		// operator codes (see corruptOpcode).
		{"opcode index out of range", corruptOpcode(t, mobilenet), ErrInvalidModel},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Load(c.data)
			if err == nil {
				m.Close()
				t.Fatal("Load accepted a bad model")
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %q is not %v", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.tflite")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want error
	}{
		{empty, ErrEmptyModel},
		{dir, ErrInvalidModel},
		{filepath.Join(dir, "missing.tflite"), os.ErrNotExist},
	} {
		_, err := LoadFile(c.path, 0)
		if !errors.Is(err, c.want) {
			t.Errorf("LoadFile(%s) = %v, want %v", c.path, err, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), filepath.Base(c.path)) {
			t.Errorf("error %q does not name the file", err)
		}
	}
	if _, err := LoadFile(mobilenetPath, 1000); !errors.Is(err, ErrModelTooLarge) {
		t.Errorf("size limit: %v", err)
	}
}

func TestEdgeTPUModel(t *testing.T) {
	m := loadFile(t, edgeTPUPath)
	if !m.NeedsEdgeTPU() {
		t.Fatal("NeedsEdgeTPU = false for an Edge TPU model")
	}
	_, err := m.NewInterpreter(Options{})
	if !errors.Is(err, ErrEdgeTPU) || !strings.Contains(err.Error(), "Edge TPU") {
		t.Fatalf("NewInterpreter: %v, want ErrEdgeTPU", err)
	}
	info, err := m.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	if !info.NeedsEdgeTPU || len(info.Inputs) != 1 {
		t.Errorf("Inspect = %+v", info)
	}
	plain := loadFile(t, "testdata/fizzbuzz_model.tflite")
	if plain.NeedsEdgeTPU() {
		t.Error("a CPU model claims to need the Edge TPU")
	}
}

func TestInspectSSD(t *testing.T) {
	info, err := loadFile(t, ssdPath).Inspect()
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Inputs) != 1 {
		t.Fatalf("%d inputs", len(info.Inputs))
	}
	in := info.Inputs[0]
	if in.Type != "uint8" || !equalInts(in.Shape, []int{1, 300, 300, 3}) {
		t.Errorf("input %s %v", in.Type, in.Shape)
	}
	if q := in.Quantization; q == nil || q.Scale != 0.0078125 || q.ZeroPoint != 128 {
		t.Errorf("input quantisation %+v", in.Quantization)
	}
	if len(info.Outputs) != 4 {
		t.Fatalf("%d outputs", len(info.Outputs))
	}
	for _, o := range info.Outputs {
		if o.Type != "float32" {
			t.Errorf("output %s is %s", o.Name, o.Type)
		}
	}
	if info.Task != TaskDetection {
		t.Errorf("task %q", info.Task)
	}
}

func TestInspectClassifiers(t *testing.T) {
	for path, want := range map[string]TensorInfo{
		mobilenetPath: {Type: "uint8", Shape: []int{1, 224, 224, 3}},
		mnistPath:     {Type: "float32", Shape: []int{1, 784}},
	} {
		info, err := loadFile(t, path).Inspect()
		if err != nil {
			t.Fatal(err)
		}
		in := info.Inputs[0]
		if in.Type != want.Type || !equalInts(in.Shape, want.Shape) || info.Task != TaskClassification {
			t.Errorf("%s: input %s %v task %s", path, in.Type, in.Shape, info.Task)
		}
	}
}

func TestModelOutlivesInterpreters(t *testing.T) {
	m, err := LoadFile("testdata/xor_model.tflite", 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(m, 2, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); !errors.Is(err, ErrModelInUse) {
		t.Fatalf("Close with live interpreters = %v, want ErrModelInUse", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal("second pool Close:", err)
	}
	if err := p.Do(context.Background(), func(*Interpreter) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Do on closed pool = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal("second model Close:", err)
	}
	if _, err := m.NewInterpreter(Options{}); !errors.Is(err, ErrClosed) {
		t.Errorf("NewInterpreter on closed model = %v", err)
	}
}

func TestSetPixelsChecksLength(t *testing.T) {
	it := interpreter(t, mobilenetPath, Options{Threads: 1})
	for _, n := range []int{0, 1, 224*224*3 - 1, 224*224*3 + 1, 1 << 20} {
		if err := it.SetPixels(make([]byte, n), Normalization{}); !errors.Is(err, ErrInput) {
			t.Errorf("SetPixels(%d bytes) = %v, want ErrInput", n, err)
		}
	}
	if err := it.SetPixels(make([]byte, 224*224*3), Normalization{}); err != nil {
		t.Fatal(err)
	}
}

// TestXOR checks float input, float output and the whole cgo round trip
// on a network whose answers are known.
func TestXOR(t *testing.T) {
	it := interpreter(t, "testdata/xor_model.tflite", Options{Threads: 1})
	// Normalization maps pixel 0 -> 0 and 255 -> 1.
	norm := Normalization{Mean: 0, Std: 255}
	for _, c := range []struct {
		in   []byte
		want bool
	}{{[]byte{0, 0}, false}, {[]byte{0, 255}, true}, {[]byte{255, 0}, true}, {[]byte{255, 255}, false}} {
		s := runScores(t, it, c.in, norm, 0)
		if got := s[0] > 0.5; got != c.want {
			t.Errorf("xor%v = %v", c.in, s[0])
		}
	}
}

// TestDequantisedScores checks that uint8 outputs are dequantised with the
// tensor's scale and zero point: mobilenet's softmax output then sums to
// about 1, which q/255 happens to match only because its zero point is 0;
// the per-value check below catches any other formula.
func TestDequantisedScores(t *testing.T) {
	m := loadFile(t, mobilenetPath)
	it, err := m.NewInterpreter(Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	pixels := make([]byte, 224*224*3)
	for i := range pixels {
		pixels[i] = byte(i * 7)
	}
	if err := it.SetPixels(pixels, Normalization{}); err != nil {
		t.Fatal(err)
	}
	if err := it.Invoke(); err != nil {
		t.Fatal(err)
	}
	scores, err := it.Scores(0, make([]float32, 3))
	if err != nil {
		t.Fatal(err)
	}
	if len(scores) != 1001 {
		t.Fatalf("%d scores", len(scores))
	}
	raw := it.outs[0].UInt8s()
	q := it.outs[0].QuantizationParams()
	var sum float64
	for i, s := range scores {
		want := float32(q.Scale) * float32(int(raw[i])-q.ZeroPoint)
		if s != want {
			t.Fatalf("score[%d] = %v, want %v", i, s, want)
		}
		sum += float64(s)
	}
	if sum < 0.8 || sum > 1.2 {
		t.Errorf("scores sum to %v", sum)
	}
}

func TestQuantizeLUT(t *testing.T) {
	// int8 input without normalisation: p-128.
	lut, err := newPixelLUT(9 /* Int8 */, quantParams(0.5, -3), Normalization{})
	if err != nil {
		t.Fatal(err)
	}
	if int8(lut.q[0]) != -128 || int8(lut.q[255]) != 127 || int8(lut.q[128]) != 0 {
		t.Errorf("int8 raw: %d %d %d", int8(lut.q[0]), int8(lut.q[255]), int8(lut.q[128]))
	}
	// uint8 with normalisation to [-1,1] and scale 1/128, zero point 128.
	lut, err = newPixelLUT(3 /* UInt8 */, quantParams(1.0/128, 128), Normalization{Mean: 127.5, Std: 127.5})
	if err != nil {
		t.Fatal(err)
	}
	if lut.q[0] != 0 || lut.q[255] != 255 || lut.q[64] != 64 {
		t.Errorf("uint8 normalised: %d %d %d", lut.q[0], lut.q[255], lut.q[64])
	}
	// Values beyond the representable range clamp.
	lut, err = newPixelLUT(3, quantParams(1.0/255, 0), Normalization{Mean: 127.5, Std: 127.5})
	if err != nil {
		t.Fatal(err)
	}
	if lut.q[0] != 0 || lut.q[255] != 255 {
		t.Errorf("clamp: %d %d", lut.q[0], lut.q[255])
	}
	lut, err = newPixelLUT(1 /* Float32 */, quantParams(0, 0), Normalization{})
	if err != nil {
		t.Fatal(err)
	}
	if lut.f[0] != 0 || lut.f[255] != 1 {
		t.Errorf("float default: %v %v", lut.f[0], lut.f[255])
	}
	if _, err := newPixelLUT(4 /* Int64 */, quantParams(0, 0), Normalization{}); !errors.Is(err, ErrInput) {
		t.Errorf("int64 input: %v", err)
	}
}

// TestPoolConcurrent runs many goroutines through a small pool; with -race
// it proves no interpreter is shared, and every result must equal the one
// computed alone.
func TestPoolConcurrent(t *testing.T) {
	m := loadFile(t, mobilenetPath)
	p, err := NewPool(m, 2, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	inputs := make([][]byte, 4)
	want := make([][]float32, len(inputs))
	for k := range inputs {
		inputs[k] = make([]byte, 224*224*3)
		for i := range inputs[k] {
			inputs[k][i] = byte(i*(k+3) + k)
		}
		if err := p.Do(context.Background(), func(it *Interpreter) error {
			if err := it.SetPixels(inputs[k], Normalization{}); err != nil {
				return err
			}
			if err := it.Invoke(); err != nil {
				return err
			}
			want[k], err = it.Scores(0, nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scores []float32
			for n := range 6 {
				k := (g + n) % len(inputs)
				err := p.Do(context.Background(), func(it *Interpreter) error {
					if err := it.SetPixels(inputs[k], Normalization{}); err != nil {
						return err
					}
					if err := it.Invoke(); err != nil {
						return err
					}
					var err error
					scores, err = it.Scores(0, scores)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if !equalFloats(scores, want[k]) {
					errs <- errors.New("concurrent result differs from the reference")
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

func TestPoolDoHonoursContext(t *testing.T) {
	m := loadFile(t, "testdata/xor_model.tflite")
	p, err := NewPool(m, 1, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	err = p.Do(ctx, func(*Interpreter) error {
		cancel() // the only interpreter is lent: a second Do must give up
		return p.Do(ctx, func(*Interpreter) error { return nil })
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("nested Do = %v, want context.Canceled", err)
	}
}

func TestVersion(t *testing.T) {
	if v := Version(); !strings.HasPrefix(v, "2.") {
		t.Errorf("Version() = %q", v)
	}
}

func TestSHA256(t *testing.T) {
	m := loadFile(t, mobilenetPath)
	if m.SHA256() != "c4149e63f56056d9a564ceed1d96a84d7a50d90b0ff1da01f72afabe752ef097" {
		t.Errorf("sha256 %s", m.SHA256())
	}
	if !bytes.Equal([]byte(m.SHA256()), []byte(strings.ToLower(m.SHA256()))) {
		t.Error("sha256 not lower-case hex")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func quantParams(scale float64, zero int) gotflite.QuantizationParams {
	return gotflite.QuantizationParams{Scale: scale, ZeroPoint: zero}
}

// versionOnlyModel is the FuzzLoad crasher: a root table with a version
// and nothing else.
var versionOnlyModel = []byte("\x18\x00\x00\x00TFL3\x04\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\b\x00\x00\x00\x04\x00\x00\x00\x03\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x04\x00\x04\x00\x04\x00\x00\x00\x03\x00\x00\x00\x14\x00\x00\x00\b\x00\x00\x00\x18\x00\x00\x00\xe6\xff\xff\xff\x00\x00\x00\x0e\xfa\xff\xff\xff\x00\t\x06\x00\x06\x00\x05\x00\x06\x00\x00\x00\x00\x1c\x06\x00\b\x00\a\x00")

// corruptOpcode returns a copy of model whose first operator names an
// opcode index beyond the model's operator codes.
func corruptOpcode(t *testing.T, model []byte) []byte {
	t.Helper()
	fb := flatbuf(append([]byte(nil), model...))
	root, err := fb.root()
	if err != nil {
		t.Fatal(err)
	}
	subgraphs, err := fb.tables(root, 2)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := fb.tables(subgraphs[0], 3)
	if err != nil || len(ops) == 0 {
		t.Fatalf("operators: %v", err)
	}
	at, err := fb.field(ops[0], 0)
	if err != nil || at == 0 {
		t.Fatalf("opcode_index field: %v", err)
	}
	binary.LittleEndian.PutUint32(fb[at:], 1000)
	if err := validateStructure(model); err != nil {
		t.Fatalf("the original model fails validation: %v", err)
	}
	return fb
}

// TestPixelLUTIdentity: raw pixels into a uint8 input are copied, every
// other conversion goes through the table.
func TestPixelLUTIdentity(t *testing.T) {
	for _, tc := range []struct {
		typ  gotflite.TensorType
		qp   gotflite.QuantizationParams
		norm Normalization
		want bool
	}{
		{gotflite.UInt8, quantParams(0.0078125, 128), Normalization{}, true},
		{gotflite.UInt8, quantParams(1, 0), Normalization{Mean: 0, Std: 1}, true},
		{gotflite.UInt8, quantParams(0.0078125, 128), Normalization{Mean: 127.5, Std: 127.5}, false},
		{gotflite.Int8, quantParams(0.0078125, 0), Normalization{}, false},
		{gotflite.Float32, gotflite.QuantizationParams{}, Normalization{}, false},
	} {
		lut, err := newPixelLUT(tc.typ, tc.qp, tc.norm)
		if err != nil {
			t.Fatal(err)
		}
		if lut.identity != tc.want {
			t.Errorf("%v %+v %+v: identity = %v, want %v", tc.typ, tc.qp, tc.norm, lut.identity, tc.want)
		}
	}
}

// TestPoolDescribesAfterClose: what a pool reports about its model (asked
// by status requests at any time) is fixed when it is made and still there
// after Close, which empties the pool.
func TestPoolDescribesAfterClose(t *testing.T) {
	m := loadFile(t, mobilenetPath)
	p, err := NewPool(m, 2, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	info, dg := p.Info(), p.Delegation()
	if p.Size() != 2 || len(info.Inputs) != 1 || info.Task != TaskClassification || dg.Delegate == "" {
		t.Fatalf("pool: size %d, info %+v, delegation %+v", p.Size(), info, dg)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Size() != 2 || p.Info().Task != info.Task || p.Delegation() != dg {
		t.Errorf("after Close: size %d, info %+v, delegation %+v", p.Size(), p.Info(), p.Delegation())
	}
}
