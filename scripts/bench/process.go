package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runtimeMem is the part of runtime.MemStats timeIt needs.
type runtimeMem struct{ mallocs uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.mallocs = s.Mallocs
}

// benchStart runs the CLI on one image several times and returns the
// median time from starting the process to its first line of output, and
// the largest peak RSS (KB) seen. The CLI is started through rusage (the
// tests' helper, cmd/edgeinfer/testdata/rusage): a child's ru_maxrss
// includes the RSS of the process that forked it, and this one has loaded
// models by now.
func benchStart(bin, rusage, modelDir, img string, runs int) (time.Duration, int64, error) {
	var times []time.Duration
	var peak int64
	report := filepath.Join(filepath.Dir(img), "rusage.out")
	for range runs {
		cmd := exec.Command(rusage, report, bin, "classify", "--json", "--model", modelDir, img)
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
		var kb int64
		b, err := os.ReadFile(report)
		if err != nil {
			return 0, 0, err
		}
		if _, err := fmt.Sscan(string(b), &kb); err != nil {
			return 0, 0, fmt.Errorf("rusage report %q: %w", b, err)
		}
		peak = max(peak, kb)
	}
	return median(times), peak, nil
}

// daemon is a running `edgeinfer run`.
type daemon struct {
	cmd  *exec.Cmd
	base string // http://host:port
}

// startDaemon writes cfg into dir and runs the daemon on it until ready.
func startDaemon(bin, dir, name, cfg string) (*daemon, error) {
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", path)
	logs, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), " http="); i >= 0 && strings.Contains(sc.Text(), "edgeinfer ready") {
				addr <- strings.Fields(sc.Text()[i+6:])[0]
			}
		}
	}()
	select {
	case a := <-addr:
		d.base = "http://" + a
		return d, nil
	case <-time.After(60 * time.Second):
		d.stop()
		return nil, errors.New("daemon not ready after 60 s")
	}
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
}

// shape reads the engine shape and delegate from the status.
func (d *daemon) shape() (shape, string, error) {
	resp, err := http.Get(d.base + "/api/v1/status")
	if err != nil {
		return shape{}, "", err
	}
	defer resp.Body.Close()
	var st struct {
		Model struct {
			Threads, Interpreters int
			Delegate              string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return shape{}, "", err
	}
	return shape{st.Model.Interpreters, st.Model.Threads}, st.Model.Delegate, nil
}

// daemonEngines are the engine settings the daemon is measured with: its
// default, and one interpreter with a thread per core.
func daemonEngines() []string {
	return []string{"", fmt.Sprintf("engine: {interpreters: 1, threads: %d}\n", benchCores())}
}

// shapeLabel names a measured daemon by the shape it reported.
func shapeLabel(engine string, s shape) string {
	if engine == "" {
		return "default, " + s.String()
	}
	return s.String()
}

// printHTTP measures POST /api/v1/classify at concurrency 2 with each of
// daemonEngines.
func printHTTP(bin, modelDir, dir string, jpg []byte, window time.Duration) error {
	abs, err := filepath.Abs(modelDir)
	if err != nil {
		return err
	}
	fmt.Printf("\ndaemon, HTTP POST /api/v1/classify (640x480 JPEG), concurrency 2, %v:\n", window)
	for _, engine := range daemonEngines() {
		d, err := startDaemon(bin, dir, "http", fmt.Sprintf("model: %s\nhttp:\n  listen: 127.0.0.1:0\n%s", abs, engine))
		if err != nil {
			return err
		}
		s, delegate, err := d.shape()
		if err != nil {
			d.stop()
			return err
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		rate, err := throughput(2, window, func() error {
			resp, err := client.Post(d.base+"/api/v1/classify", "image/jpeg", bytes.NewReader(jpg))
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("classify: HTTP %d", resp.StatusCode)
			}
			return nil
		})
		d.stop()
		if err != nil {
			return err
		}
		fmt.Printf("  %-28s %10.1f req/s   (goal >= 100 /s; %s)\n", shapeLabel(engine, s), rate, delegate)
	}
	return nil
}

// printCamera runs the daemon with a camera whose capture command replays
// a recorded 640x480 MJPEG stream (ffmpeg -re, stream copy: producing
// frames costs next to nothing) at 1.5 times the fastest raw Invoke rate,
// faster than the model can take frames, with no fps limit in the daemon.
// It compares the frames classified per second with the raw Invoke rate of
// the same engine shape, measured in-process, and reports the daemon's
// peak RSS.
func printCamera(bin, modelDir, dir string, invokeBound map[shape]float64, window time.Duration) error {
	stream := filepath.Join(dir, "stream.mjpeg")
	rec := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
		"-i", "testsrc=size=640x480:rate=60", "-frames:v", "300", "-c:v", "mjpeg", "-q:v", "5", "-f", "mjpeg", "-y", stream)
	if out, err := rec.CombinedOutput(); err != nil {
		return fmt.Errorf("recording a stream with ffmpeg: %w: %s", err, out)
	}
	abs, err := filepath.Abs(modelDir)
	if err != nil {
		return err
	}
	fast := 0.0
	for _, r := range invokeBound {
		fast = max(fast, r)
	}
	feed := int(math.Ceil(1.5*fast/10)) * 10
	fmt.Printf("\ndaemon, camera: recorded 640x480 MJPEG replayed at %d fps, no fps limit, %v:\n", feed, window)
	fmt.Printf("  %-28s %16s %16s %8s %12s\n", "interpreters x threads", "classified /s", "raw Invoke /s", "ratio", "peak RSS")
	for _, engine := range daemonEngines() {
		cfg := fmt.Sprintf(`model: %s
http:
  listen: 127.0.0.1:0
%scameras:
  - name: bench
    preset: command
    command: [ffmpeg, -hide_banner, -loglevel, error, -nostdin, -re, -stream_loop, "-1", -f, mjpeg, -framerate, "%d", -i, %s, -c, copy, -f, mjpeg, "-"]
`, abs, engine, feed, stream)
		d, err := startDaemon(bin, dir, "camera", cfg)
		if err != nil {
			return err
		}
		fps, hwm, s, err := measureCamera(d, window)
		d.stop()
		if err != nil {
			return err
		}
		raw := invokeBound[s]
		ratio := "-"
		if raw > 0 {
			ratio = fmt.Sprintf("%.1f%%", 100*fps/raw)
		}
		fmt.Printf("  %-28s %16.1f %16.1f %8s %9.1f MB   (goal >= 95 %%)\n", shapeLabel(engine, s), fps, raw, ratio, float64(hwm)/1024)
	}
	return nil
}

func measureCamera(d *daemon, window time.Duration) (fps float64, hwmKB int64, s shape, err error) {
	const sample = `edgeinfer_frames_total{kind="camera",outcome="classified",source="bench"}`
	time.Sleep(2 * time.Second) // warm up
	n0, err := scrape(d.base, sample)
	if err != nil {
		return 0, 0, s, err
	}
	t0 := time.Now()
	time.Sleep(window)
	n1, err := scrape(d.base, sample)
	if err != nil {
		return 0, 0, s, err
	}
	fps = (n1 - n0) / time.Since(t0).Seconds()
	if s, _, err = d.shape(); err != nil {
		return 0, 0, s, err
	}
	hwmKB, err = vmHWM(d.cmd.Process.Pid)
	return fps, hwmKB, s, err
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
