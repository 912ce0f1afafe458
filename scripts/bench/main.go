// Command bench measures edgeinfer's speed and memory in one run and prints
// the figures the issues ask for, side by side:
//   - raw Invoke for mobilenet and SSD with 1 and 2 threads: Debian's
//     prebuilt TensorFlow Lite (through a second build of this command,
//     -prebuilt), this library's own kernels, and the XNNPACK delegate;
//   - decode + resize + tensor fill of a 640x480 and a 1920x1080 JPEG, with
//     Go's image/jpeg and with edgeinfer's path (libjpeg-turbo, DCT-scaled,
//     reused buffers);
//   - one classification split by stage; in-process classifications per
//     second on 640x480 JPEGs;
//   - the CLI's start-to-first-result time and peak RSS;
//   - the daemon: HTTP classify requests per second at concurrency 2, and a
//     camera fed by a recorded 640x480 MJPEG stream against the rate Invoke
//     alone allows, with its peak RSS.
//
// Run it with make bench (or: EDGEINFER_BIN=bin/edgeinfer go run
// ./scripts/bench). Figures are medians or rates over a fixed time; compare
// ratios taken in the same run, since these machines are noisy.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/edgeinfer/edgeinfer/tflite"
)

// invokeModels are the models whose raw Invoke is compared across engines.
var invokeModels = []string{"models/mobilenet-v1-quant", "models/ssd-mobilenet-v1-quant"}

func main() {
	modelDir := flag.String("model", "models/mobilenet-v1-quant", "classification model folder")
	n := flag.Int("n", 100, "iterations per latency measurement")
	window := flag.Duration("window", 8*time.Second, "measuring time per throughput figure")
	bin := flag.String("bin", os.Getenv("EDGEINFER_BIN"), "edgeinfer binary for the process measurements")
	rusage := flag.String("rusage", "bin/rusage", "the rusage helper (cmd/edgeinfer/testdata/rusage), for the CLI's peak RSS")
	prebuilt := flag.String("prebuilt", "", "this command built against Debian's prebuilt TensorFlow Lite, for the engine comparison")
	invokeOnly := flag.Bool("invoke-json", false, "only measure raw Invoke and print it as JSON (used through -prebuilt)")
	flag.Parse()
	var err error
	if *invokeOnly {
		err = printInvokeJSON(*n)
	} else {
		err = run(*modelDir, *bin, *rusage, *prebuilt, *n, *window)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(modelDir, bin, rusage, prebuilt string, n int, window time.Duration) error {
	fmt.Printf("edgeinfer bench: engine %s, %d CPUs, %d iterations per latency (medians), %v per rate\n",
		tflite.EngineName(), runtime.NumCPU(), n, window)

	// Engines side by side.
	here, err := measureInvoke(n)
	if err != nil {
		return err
	}
	var pre *invokeReport
	if prebuilt != "" {
		if pre, err = runPrebuilt(prebuilt, n); err != nil {
			return err
		}
	}
	printInvoke(here, pre)

	jpegs, err := benchJPEGs(modelDir)
	if err != nil {
		return err
	}
	if err := printPreprocess(modelDir, jpegs, n); err != nil {
		return err
	}
	invokeBound, err := printInProcess(modelDir, jpegs[0].data, n, window)
	if err != nil {
		return err
	}

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
	if err := os.WriteFile(img, jpegs[0].data, 0o644); err != nil {
		return err
	}
	first, rss, err := benchStart(bin, rusage, modelDir, img, 10)
	if err != nil {
		return err
	}
	fmt.Printf("\nCLI (edgeinfer classify, one 640x480 JPEG):\n")
	fmt.Printf("  process start to first result       %7.1f ms   (goal <= 300 ms)\n", ms(first))
	fmt.Printf("  peak RSS                             %7.1f MB   (goal <= 60 MB)\n", float64(rss)/1024)

	if err := printHTTP(bin, modelDir, dir, jpegs[0].data, window); err != nil {
		return err
	}
	return printCamera(bin, modelDir, dir, invokeBound, window)
}

// invokeReport is raw Invoke in ms per "model/engine/threads".
type invokeReport struct {
	Engine string             `json:"engine"`
	Ms     map[string]float64 `json:"ms"`
}

func invokeKey(model, engine string, threads int) string {
	return fmt.Sprintf("%s/%s/%d", filepath.Base(model), engine, threads)
}

// measureInvoke times raw Invoke for each model with 1 and 2 threads, with
// the library's own kernels and, when the library has it, with XNNPACK.
func measureInvoke(n int) (invokeReport, error) {
	r := invokeReport{Engine: tflite.EngineName(), Ms: map[string]float64{}}
	engines := []string{"builtin"}
	if tflite.XNNPACK() {
		engines = append(engines, "xnnpack")
	}
	for _, dir := range invokeModels {
		for _, threads := range []int{1, 2} {
			for _, eng := range engines {
				d, err := benchInvoke(dir, tflite.Options{Threads: threads, NoXNNPACK: eng == "builtin"}, n)
				if err != nil {
					return r, fmt.Errorf("%s: %w", dir, err)
				}
				r.Ms[invokeKey(dir, eng, threads)] = ms(d)
			}
		}
	}
	return r, nil
}

func printInvokeJSON(n int) error {
	r, err := measureInvoke(n)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func runPrebuilt(bin string, n int) (*invokeReport, error) {
	out, err := exec.Command(bin, "-invoke-json", "-n", fmt.Sprint(n)).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("%s: %w: %s", bin, err, ee.Stderr)
		}
		return nil, err
	}
	var r invokeReport
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	return &r, nil
}

func printInvoke(here invokeReport, pre *invokeReport) {
	fmt.Printf("\nraw Invoke, ms (median):\n")
	fmt.Printf("  %-26s %10s %10s %10s %9s\n", "model, threads", "prebuilt", "built-in", "xnnpack", "speed-up")
	goals := map[string]string{"mobilenet-v1-quant/2": "goal <= 8", "ssd-mobilenet-v1-quant/2": "goal <= 12"}
	for _, dir := range invokeModels {
		for _, threads := range []int{1, 2} {
			name := filepath.Base(dir)
			cell := func(r *invokeReport, eng string) (string, float64) {
				if r == nil {
					return "-", 0
				}
				v, ok := r.Ms[invokeKey(dir, eng, threads)]
				if !ok {
					return "-", 0
				}
				return fmt.Sprintf("%.2f", v), v
			}
			p, pv := cell(pre, "builtin")
			b, bv := cell(&here, "builtin")
			x, xv := cell(&here, "xnnpack")
			speedup := "-"
			base := pv
			if base == 0 {
				base = bv
			}
			if xv > 0 && base > 0 {
				speedup = fmt.Sprintf("%.1fx", base/xv)
			}
			fmt.Printf("  %-26s %10s %10s %10s %9s   %s\n", fmt.Sprintf("%s, %d", name, threads), p, b, x, speedup,
				goals[fmt.Sprintf("%s/%d", name, threads)])
		}
	}
	if pre != nil {
		fmt.Printf("  (prebuilt: %s; built-in: this library without the delegate)\n", pre.Engine)
	} else {
		fmt.Printf("  (prebuilt: not measured; make bench builds it with -prebuilt)\n")
	}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
