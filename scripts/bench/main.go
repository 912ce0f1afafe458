// Command bench measures edgeinfer's speed and memory in one run and prints
// the figures the issues ask for: raw Invoke with 1 and 2 threads, the
// end-to-end cost of classifying a 640x480 JPEG split by stage, the
// overhead over Invoke, process start to first result, and peak RSS.
//
//	make bench        (or: EDGEINFER_BIN=bin/edgeinfer go run ./scripts/bench)
//
// Figures are medians; compare ratios taken in the same run, since these
// machines are noisy.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/image/draw"

	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/imageio"
	"github.com/edgeinfer/edgeinfer/edge/model"
	"github.com/edgeinfer/edgeinfer/tflite"
)

func main() {
	modelDir := flag.String("model", "models/mobilenet-v1-quant", "classification model folder")
	n := flag.Int("n", 100, "iterations per measurement")
	bin := flag.String("bin", os.Getenv("EDGEINFER_BIN"), "edgeinfer binary for the process measurements")
	flag.Parse()
	if err := run(*modelDir, *bin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(modelDir, bin string, n int) error {
	man, err := model.Load(modelDir)
	if err != nil {
		return err
	}
	m, err := tflite.LoadFile(man.ModelPath(), 0)
	if err != nil {
		return err
	}
	defer m.Close()
	info, err := m.Inspect()
	if err != nil {
		return err
	}
	layout, err := classify.LayoutFor(info.Inputs[0].Shape, man.Input.Color)
	if err != nil {
		return err
	}
	fmt.Printf("edgeinfer bench: model %s, engine tensorflow-lite %s, %d iterations, medians\n\n", man.Name, tflite.Version(), n)

	invoke := map[int]time.Duration{}
	for _, threads := range []int{1, 2} {
		d, err := benchInvoke(m, layout, threads, n)
		if err != nil {
			return err
		}
		invoke[threads] = d
		fmt.Printf("raw Invoke, %d thread(s):              %7.2f ms\n", threads, ms(d))
	}

	jpg, err := makeJPEG(man, 640, 480)
	if err != nil {
		return err
	}
	st, err := benchClassify(m, man, layout, jpg, 2, n)
	if err != nil {
		return err
	}
	over := st.decode + st.pre + st.post
	fmt.Printf("\nclassify 640x480 JPEG (%d KB), 2 threads:\n", len(jpg)>>10)
	fmt.Printf("  decode                               %7.2f ms\n", ms(st.decode))
	fmt.Printf("  resize + tensor fill                 %7.2f ms\n", ms(st.pre))
	fmt.Printf("  invoke                               %7.2f ms\n", ms(st.invoke))
	fmt.Printf("  postprocess (dequantise + top-k)     %7.2f ms\n", ms(st.post))
	fmt.Printf("  total                                %7.2f ms\n", ms(st.total))
	fmt.Printf("  overhead / invoke                    %7.1f %%   (goal <= 20 %%)\n", 100*float64(over)/float64(st.invoke))

	if bin == "" {
		fmt.Println("\n(set EDGEINFER_BIN for the process figures)")
		return nil
	}
	dir, err := os.MkdirTemp("", "edgeinfer-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "frame640x480.jpg")
	if err := os.WriteFile(img, jpg, 0o644); err != nil {
		return err
	}
	first, rss, err := benchStart(bin, modelDir, img, 10)
	if err != nil {
		return err
	}
	fmt.Printf("\nprocess start to first result (CLI):  %7.1f ms   (goal <= 300 ms)\n", ms(first))
	fmt.Printf("peak RSS, CLI classify 640x480:       %7.1f MB   (goal <= 60 MB)\n", float64(rss)/1024)

	fps, hwm, shape, err := benchDaemonCamera(bin, modelDir, dir, 10*time.Second)
	if err != nil {
		return err
	}
	rate := 1000 / ms(invoke[2])
	fmt.Printf("\ndaemon, camera 640x480 MJPEG at unlimited fps (recorded stream), %s:\n", shape)
	fmt.Printf("  frames classified per second         %7.1f /s\n", fps)
	fmt.Printf("  raw Invoke rate, 2 threads           %7.1f /s\n", rate)
	fmt.Printf("  pipeline / Invoke                    %7.1f %%   (goal >= 90 %%)\n", 100*fps/rate)
	fmt.Printf("  daemon peak RSS (VmHWM)              %7.1f MB   (goal <= 80 MB)\n", float64(hwm)/1024)
	return nil
}

// benchDaemonCamera runs `edgeinfer run` with a camera whose capture
// command replays a recorded 640x480 MJPEG stream at 60 fps (ffmpeg -re,
// stream copy: producing frames costs next to nothing), faster than the
// model can take them, with no fps limit in the daemon; it measures the
// classified frames per second over d, and the daemon's peak RSS. (A pipe
// from `cat` would be a firehose of thousands of frames per second whose
// parsing alone takes a core: not a camera.)
func benchDaemonCamera(bin, modelDir, dir string, d time.Duration) (fps float64, hwmKB int64, shape string, err error) {
	stream := filepath.Join(dir, "stream.mjpeg")
	rec := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
		"-i", "testsrc=size=640x480:rate=60", "-frames:v", "300", "-c:v", "mjpeg", "-q:v", "5", "-f", "mjpeg", "-y", stream)
	if out, err := rec.CombinedOutput(); err != nil {
		return 0, 0, "", fmt.Errorf("recording a stream with ffmpeg: %w: %s", err, out)
	}
	abs, err := filepath.Abs(modelDir)
	if err != nil {
		return 0, 0, "", err
	}
	cfg := fmt.Sprintf(`model: %s
http:
  listen: 127.0.0.1:0
cameras:
  - name: bench
    preset: command
    command: [ffmpeg, -hide_banner, -loglevel, error, -nostdin, -re, -stream_loop, "-1", -f, mjpeg, -framerate, "60", -i, %s, -c, copy, -f, mjpeg, "-"]
`, abs, stream)
	cfgPath := filepath.Join(dir, "bench.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return 0, 0, "", err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	logs, err := cmd.StderrPipe()
	if err != nil {
		return 0, 0, "", err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, "", err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), " http="); i >= 0 && strings.Contains(sc.Text(), "edgeinfer ready") {
				addr <- strings.Fields(sc.Text()[i+6:])[0]
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(30 * time.Second):
		return 0, 0, "", errors.New("daemon not ready after 30 s")
	}
	const sample = `edgeinfer_frames_total{kind="camera",outcome="classified",source="bench"}`
	time.Sleep(2 * time.Second) // warm up
	n0, err := scrape(base, sample)
	if err != nil {
		return 0, 0, "", err
	}
	t0 := time.Now()
	time.Sleep(d)
	n1, err := scrape(base, sample)
	if err != nil {
		return 0, 0, "", err
	}
	fps = (n1 - n0) / time.Since(t0).Seconds()
	shape, err = engineShapeOf(base)
	if err != nil {
		return 0, 0, "", err
	}
	hwmKB, err = vmHWM(cmd.Process.Pid)
	return fps, hwmKB, shape, err
}

// engineShapeOf reads "N interpreter(s) x M thread(s)" from the status.
func engineShapeOf(base string) (string, error) {
	resp, err := http.Get(base + "/api/v1/status")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var st struct {
		Model struct{ Threads, Interpreters int }
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d interpreter(s) x %d thread(s)", st.Model.Interpreters, st.Model.Threads), nil
}

func scrape(base, sample string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", sample)
}

// vmHWM is a process's peak resident set size in KB.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func benchInvoke(m *tflite.Model, l imageio.Layout, threads, n int) (time.Duration, error) {
	it, err := m.NewInterpreter(tflite.Options{Threads: threads})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	pixels := make([]byte, l.Len())
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

// makeJPEG scales the model's first sample image to w x h and encodes it
// as a camera would (quality 90, 4:2:0).
func makeJPEG(man *model.Manifest, w, h int) ([]byte, error) {
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
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, dst, &jpeg.Options{Quality: 90}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type stages struct{ decode, pre, invoke, post, total time.Duration }

func benchClassify(m *tflite.Model, man *model.Manifest, l imageio.Layout, jpg []byte, threads, n int) (stages, error) {
	pool, err := tflite.NewPool(m, 1, tflite.Options{Threads: threads})
	if err != nil {
		return stages{}, err
	}
	defer pool.Close()
	c, err := classify.New(&tflite.Engine{Pool: pool}, classify.Config{Layout: l, TopK: 5})
	if err != nil {
		return stages{}, err
	}
	var all [5][]time.Duration
	for i := range n + 5 {
		res, err := c.Classify(context.Background(), jpg)
		if err != nil {
			return stages{}, err
		}
		if i < 5 {
			continue
		}
		t := res.Timings
		for k, d := range []time.Duration{t.Decode.Duration(), t.Preprocess.Duration(), t.Inference.Duration(), t.Postprocess.Duration(), t.Total.Duration()} {
			all[k] = append(all[k], d)
		}
	}
	return stages{median(all[0]), median(all[1]), median(all[2]), median(all[3]), median(all[4])}, nil
}

// benchStart runs the CLI on one image several times and returns the
// median time from starting the process to its first line of output, and
// the largest peak RSS (KB) seen.
func benchStart(bin, modelDir, img string, runs int) (time.Duration, int64, error) {
	var times []time.Duration
	var peak int64
	for range runs {
		cmd := exec.Command(bin, "classify", "--json", "--model", modelDir, img)
		out, err := cmd.StdoutPipe()
		if err != nil {
			return 0, 0, err
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			return 0, 0, err
		}
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		if !sc.Scan() {
			cmd.Wait()
			return 0, 0, fmt.Errorf("no result from %s: %s", bin, stderr.String())
		}
		times = append(times, time.Since(t0))
		for sc.Scan() {
		}
		if err := cmd.Wait(); err != nil {
			return 0, 0, fmt.Errorf("%s: %w: %s", bin, err, stderr.String())
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peak = max(peak, ru.Maxrss)
		}
	}
	return median(times), peak, nil
}
