package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/edgeinfer/edgeinfer/edge"
)

// binPath is the edgeinfer binary under test: $EDGEINFER_BIN (set by
// `make test`), or one built by TestMain. rusagePath is the helper that
// reports a child's peak RSS (testdata/rusage).
var binPath, rusagePath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgeinfer-test")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		build := func(out, pkg string, env ...string) bool {
			cmd := exec.Command("go", "build", "-o", out, pkg)
			cmd.Env = append(os.Environ(), env...)
			if b, err := cmd.CombinedOutput(); err != nil {
				os.Stderr.Write(b)
				return false
			}
			return true
		}
		rusagePath = filepath.Join(dir, "rusage")
		if !build(rusagePath, "./testdata/rusage", "CGO_ENABLED=0", "GOFLAGS=") {
			return 2
		}
		if binPath = os.Getenv("EDGEINFER_BIN"); binPath == "" {
			binPath = filepath.Join(dir, "edgeinfer")
			if !build(binPath, ".") {
				return 2
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

const (
	mobilenetDir = "../../models/mobilenet-v1-quant"
	mnistDir     = "../../models/mnist"
	ssdDir       = "../../models/ssd-mobilenet-v1-quant"
	peacockPNG   = mobilenetDir + "/samples/peacock.png"
	exampleJPG   = ssdDir + "/samples/example.jpg"
	edgeTPUModel = "../../tflite/testdata/fizzbuzz_model_quant_edgetpu.tflite"
)

// cliRun is the outcome of one edgeinfer process.
type cliRun struct {
	stdout, stderr string
	code           int
	signaled       bool
	maxRSSKB       int64
}

func runCLI(t *testing.T, args ...string) cliRun {
	t.Helper()
	return runCLIEnv(t, nil, args...)
}

func runCLIEnv(t *testing.T, env []string, args ...string) cliRun {
	t.Helper()
	report := filepath.Join(t.TempDir(), "rusage")
	cmd := exec.Command(rusagePath, append([]string{report, binPath}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("rusage helper: %v: %s", err, stderr.String())
	}
	r := cliRun{stdout: stdout.String(), stderr: stderr.String()}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(string(data), &r.maxRSSKB, &r.code, &r.signaled); err != nil {
		t.Fatalf("rusage report %q: %v", data, err)
	}
	return r
}

func decodeResults(t *testing.T, stdout string) []edge.Result {
	t.Helper()
	var out []edge.Result
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var r edge.Result
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("stdout is not JSON lines: %v\n%s", err, stdout)
		}
		out = append(out, r)
	}
	return out
}

func TestClassifyPeacockJSON(t *testing.T) {
	r := runCLI(t, "classify", "--json", "--model", mobilenetDir, peacockPNG)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// The contract: every key present, by name.
	var raw map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"device_id", "source", "request_id", "frame_id", "captured_at", "model", "predictions", "timings_ms"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("result lacks %q", k)
		}
	}
	timings, _ := raw["timings_ms"].(map[string]any)
	for _, k := range []string{"decode", "preprocess", "inference", "total"} {
		if _, ok := timings[k].(float64); !ok {
			t.Errorf("timings_ms lacks %q", k)
		}
	}
	res := decodeResults(t, r.stdout)
	if len(res) != 1 || len(res[0].Predictions) == 0 {
		t.Fatalf("results: %+v", res)
	}
	top := res[0].Predictions[0]
	if top.Label != "peacock" || top.Index != 85 || top.Score < 0.9 || top.Score > 1 {
		t.Errorf("top-1 = %+v, want peacock (85) with score >= 0.9", top)
	}
	if res[0].Model.Name != "mobilenet-v1-quant" || len(res[0].Model.SHA256) != 64 {
		t.Errorf("model = %+v", res[0].Model)
	}
	if res[0].Timings.Inference <= 0 || res[0].Timings.Total < res[0].Timings.Inference {
		t.Errorf("timings = %+v", res[0].Timings)
	}
}

func TestClassifyMNISTDigits(t *testing.T) {
	var args []string
	for d := range 10 {
		args = append(args, filepath.Join(mnistDir, "samples", string(rune('0'+d))+".png"))
	}
	r := runCLI(t, append([]string{"classify", "--json", "--model", mnistDir}, args...)...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	res := decodeResults(t, r.stdout)
	if len(res) != 10 {
		t.Fatalf("%d results", len(res))
	}
	for d, rr := range res {
		if got := rr.Predictions[0].Label; got != string(rune('0'+d)) {
			t.Errorf("%d.png classified as %s (%v)", d, got, rr.Predictions)
		}
	}
}

func TestInspectSSDJSON(t *testing.T) {
	r := runCLI(t, "model", "inspect", "--json", ssdDir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep struct {
		Inputs []struct {
			Type         string
			Shape        []int
			Quantization *struct {
				Scale     float64
				ZeroPoint int `json:"zero_point"`
			}
		}
		Outputs []struct{ Type string }
		Task    string
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Inputs) != 1 {
		t.Fatalf("inputs %+v", rep.Inputs)
	}
	in := rep.Inputs[0]
	if in.Type != "uint8" || len(in.Shape) != 4 || in.Shape[1] != 300 || in.Shape[2] != 300 || in.Shape[3] != 3 ||
		in.Quantization == nil || in.Quantization.Scale != 0.0078125 || in.Quantization.ZeroPoint != 128 {
		t.Errorf("input %+v %+v", in, in.Quantization)
	}
	if len(rep.Outputs) != 4 {
		t.Fatalf("outputs %+v", rep.Outputs)
	}
	for _, o := range rep.Outputs {
		if o.Type != "float32" {
			t.Errorf("output type %s", o.Type)
		}
	}
	if rep.Task != "detection" {
		t.Errorf("task %s", rep.Task)
	}
}

func TestEdgeTPUModelRefused(t *testing.T) {
	r := runCLI(t, "classify", "--model", edgeTPUModel, peacockPNG)
	if r.code != 1 || r.signaled {
		t.Fatalf("exit %d signaled=%v", r.code, r.signaled)
	}
	assertOneErrorLine(t, r.stderr)
	if !strings.Contains(r.stderr, "Edge TPU") {
		t.Errorf("stderr does not name the Edge TPU: %q", r.stderr)
	}
	r = runCLI(t, "model", "inspect", edgeTPUModel)
	if r.code != 0 || !strings.Contains(r.stdout, "Edge TPU") {
		t.Errorf("inspect of an Edge TPU model: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func assertOneErrorLine(t *testing.T, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") {
		t.Errorf("stderr is not one 'error: ' line:\n%s", stderr)
	}
	for _, bad := range []string{"panic", "goroutine ", "SIGSEGV", "ERROR:"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr contains %q:\n%s", bad, stderr)
		}
	}
}

// hugePNG is a valid PNG of a few dozen bytes whose header declares
// w x h pixels: decoding it naively would allocate w*h*4 bytes.
func hugePNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

func TestBadInputsGiveOneLineErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jpg, err := os.ReadFile(exampleJPG)
	if err != nil {
		t.Fatal(err)
	}
	model, err := os.ReadFile(filepath.Join(mobilenetDir, "mobilenet_quant_v1_224.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(i*2654435761>>13) ^ byte(i>>7)
	}
	images := map[string]string{
		"truncated JPEG":      write("truncated.jpg", jpg[:len(jpg)/2]),
		"50000x50000 PNG":     write("huge.png", hugePNG(50000, 50000)),
		"empty file":          write("empty.png", nil),
		"text file":           write("notes.txt", []byte("hello, I am not an image\n")),
		"directory":           dir,
		"missing file":        filepath.Join(dir, "missing.jpg"),
		"random bytes as JPG": write("random.jpg", random[:4096]),
	}
	for name, path := range images {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, "classify", "--model", mobilenetDir, path)
			if r.code != 1 || r.signaled {
				t.Fatalf("exit %d signaled=%v\n%s", r.code, r.signaled, r.stderr)
			}
			assertOneErrorLine(t, r.stderr)
			if r.maxRSSKB > 100<<10 {
				t.Errorf("peak RSS %d MB, want < 100 MB", r.maxRSSKB>>10)
			}
		})
	}
	models := map[string]string{
		"truncated model":    write("truncated.tflite", model[:len(model)/3]),
		"random-bytes model": write("random.tflite", random),
		"empty model":        write("empty.tflite", nil),
		"text model":         write("text.tflite", []byte("not a model")),
		"model directory":    t.TempDir(),
	}
	for name, path := range models {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, "classify", "--model", path, peacockPNG)
			if r.code != 1 || r.signaled {
				t.Fatalf("exit %d signaled=%v\n%s", r.code, r.signaled, r.stderr)
			}
			assertOneErrorLine(t, r.stderr)
		})
	}
}

func TestPartialFailureStillClassifiesTheRest(t *testing.T) {
	r := runCLI(t, "classify", "--json", "--model", mobilenetDir, peacockPNG, "/nonexistent.png", peacockPNG)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	res := decodeResults(t, r.stdout)
	if len(res) != 2 {
		t.Fatalf("%d results, want 2", len(res))
	}
	if res[0].FrameID == res[1].FrameID {
		t.Error("frame ids repeat")
	}
	assertOneErrorLine(t, r.stderr)
	if !strings.Contains(r.stderr, "/nonexistent.png") {
		t.Errorf("error does not name the file: %s", r.stderr)
	}
}

// TestRSSFlat classifies many images in one process and compares its peak
// RSS with a run ten times shorter: a leak of even a few hundred bytes per
// image (an unfreed C buffer, a growing cache) shows up as the difference.
func TestRSSFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	for _, c := range []struct {
		model, image string
		n            int
	}{
		{mnistDir, filepath.Join(mnistDir, "samples", "7.png"), 10000},
		{mobilenetDir, peacockPNG, 500},
	} {
		peak := func(n int) int64 {
			args := []string{"classify", "--json", "--model", c.model}
			for range n {
				args = append(args, c.image)
			}
			// A tight GC keeps Go's peak heap near the live heap, so that
			// the peak RSS follows what is retained (a leak grows with
			// the count) rather than when the collector happened to run
			// on a busy machine.
			r := runCLIEnv(t, []string{"GOGC=20"}, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if got := strings.Count(r.stdout, "\n"); got != n {
				t.Fatalf("%d results, want %d", got, n)
			}
			return r.maxRSSKB
		}
		short, long := peak(c.n/10), peak(c.n)
		t.Logf("%s: peak RSS %d KB after %d images, %d KB after %d", filepath.Base(c.model), short, c.n/10, long, c.n)
		if growth := long - short; growth > 4<<10 {
			t.Errorf("%s: RSS grew %d KB between %d and %d classifications", c.model, growth, c.n/10, c.n)
		}
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, "version")
	if r.code != 0 || !strings.Contains(r.stdout, "tensorflow-lite 2.") || !strings.Contains(r.stdout, runtime.GOARCH) {
		t.Errorf("version: exit %d %q", r.code, r.stdout)
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	r := runCLIEnv(t, []string{"EDGEINFER_MODEL=" + mnistDir, "EDGEINFER_TOP=2", "EDGEINFER_JSON=true", "EDGEINFER_DEVICE_ID=bench-7"},
		"classify", filepath.Join(mnistDir, "samples", "3.png"))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	res := decodeResults(t, r.stdout)
	if len(res) != 1 || len(res[0].Predictions) != 2 || res[0].Predictions[0].Label != "3" || res[0].DeviceID != "bench-7" {
		t.Errorf("results %+v", res)
	}
	// A flag on the command line wins over the environment.
	r = runCLIEnv(t, []string{"EDGEINFER_MODEL=/nonexistent"}, "classify", "--json", "--model", mnistDir, filepath.Join(mnistDir, "samples", "3.png"))
	if r.code != 0 {
		t.Errorf("flag did not override the environment: %s", r.stderr)
	}
	// The daemon's names for the same settings work too; the CLI's own
	// name wins over them, and a flag over both.
	img := filepath.Join(mnistDir, "samples", "3.png")
	for _, tc := range []struct {
		env  []string
		args []string
		want int
	}{
		{[]string{"EDGEINFER_CLASSIFY_TOP=3"}, nil, 3},
		{[]string{"EDGEINFER_CLASSIFY_TOP=3", "EDGEINFER_TOP=1"}, nil, 1},
		{[]string{"EDGEINFER_CLASSIFY_TOP=3"}, []string{"--top", "4"}, 4},
	} {
		args := append([]string{"classify", "--json", "--model", mnistDir}, tc.args...)
		r = runCLIEnv(t, tc.env, append(args, img)...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.env, r.code, r.stderr)
		}
		if res := decodeResults(t, r.stdout); len(res) != 1 || len(res[0].Predictions) != tc.want {
			t.Errorf("%v %v: %d predictions, want %d", tc.env, tc.args, len(res[0].Predictions), tc.want)
		}
	}
	r = runCLIEnv(t, []string{"EDGEINFER_LIMITS_MAX_IMAGE_BYTES=100"}, "classify", "--model", mnistDir, img)
	if r.code == 0 || !strings.Contains(r.stderr, "100") {
		t.Errorf("EDGEINFER_LIMITS_MAX_IMAGE_BYTES=100 did not limit the image: exit %d %q", r.code, r.stderr)
	}
	// A value that does not parse is an error naming the variable, as a
	// bad flag would be, never a silent zero or false.
	for _, env := range []string{"EDGEINFER_ENGINE_XNNPACK=yes", "EDGEINFER_THREADS=two", "EDGEINFER_CLASSIFY_THRESHOLD=abc"} {
		r = runCLIEnv(t, []string{env}, "classify", "--model", mnistDir, img)
		name := env[:strings.Index(env, "=")]
		if r.code == 0 || !strings.Contains(r.stderr, name) {
			t.Errorf("%s: exit %d %q, want an error naming %s", env, r.code, r.stderr, name)
		}
	}
}
