package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// metric returns the value of one sample of /metrics, 0 if absent.
func metric(t *testing.T, base, sample string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, sample+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(sample):]), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed (.ci/run installs it): %v", name, err)
	}
}

// childPIDs lists the pids whose parent is pid.
func childPIDs(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

func TestDaemonCameraFFmpeg(t *testing.T) {
	requireTool(t, "ffmpeg")
	cfg := httpConfig(absPath(t, mobilenetDir), `cameras:
  - name: cam0
    preset: command
    command: [ffmpeg, -hide_banner, -loglevel, error, -nostdin, -re, -f, lavfi, -i, "testsrc=size=640x480:rate=10", -c:v, mjpeg, -q:v, "5", -f, mjpeg, "-"]
    restart_min: 200ms
`)
	d := startDaemon(t, cfg)
	classified := `edgeinfer_frames_total{kind="camera",outcome="classified",source="cam0"}`
	eventually(t, 30*time.Second, "camera frames classified", func() bool { return metric(t, d.base, classified) >= 5 })
	st := d.status(t)
	if len(st.Sources) != 1 || st.Sources[0].Condition != "running" || st.Stats.Last == nil || st.Stats.Last.Source != "camera" {
		t.Fatalf("status: %+v", st.Sources)
	}
	page, err := http.Get(d.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	for _, want := range []string{"test-dev", "mobilenet-v1-quant", "cam0", `id="last-label"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q", want)
		}
	}

	// Kill the capture command: the source must restart it.
	kids := childPIDs(d.cmd.Process.Pid)
	if len(kids) == 0 {
		t.Fatal("no capture process found")
	}
	for _, k := range kids {
		syscall.Kill(k, syscall.SIGKILL)
	}
	eventually(t, 30*time.Second, "capture restarted", func() bool {
		s := d.status(t)
		return s.Sources[0].Restarts >= 1 && s.Sources[0].Condition == "running"
	})
	before := metric(t, d.base, classified)
	eventually(t, 30*time.Second, "frames after the restart", func() bool { return metric(t, d.base, classified) > before+3 })
	if r := metric(t, d.base, `edgeinfer_source_restarts_total{kind="camera",source="cam0"}`); r < 1 {
		t.Errorf("restarts metric %v", r)
	}
	// The source names itself once per log line (a repeated key is a
	// duplicate field in JSON logs).
	for _, line := range strings.Split(d.log(), "\n") {
		if strings.Contains(line, "capture command started") && strings.Count(line, " source=") != 1 {
			t.Errorf("log line names the source %d times: %s", strings.Count(line, " source="), line)
		}
	}
}

func TestDaemonFolderExactlyOnceAcrossRestart(t *testing.T) {
	inbox := t.TempDir()
	state := filepath.Join(t.TempDir(), "inbox.state")
	cfg := httpConfig(absPath(t, mnistDir), fmt.Sprintf(`folders:
  - name: inbox
    path: %s
    state_file: %s
    poll: 100ms
    settle: 200ms
`, inbox, state))
	path := filepath.Join(t.TempDir(), "edgeinfer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	drop := func(from, n int) {
		for i := from; i < from+n; i++ {
			src, err := os.ReadFile(filepath.Join(mnistDir, "samples", strconv.Itoa(i%10)+".png"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(inbox, fmt.Sprintf("img-%03d.png", i)), src, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	const sample = `edgeinfer_frames_total{kind="folder",outcome="classified",source="inbox"}`
	drop(0, 50)
	d := startDaemonFile(t, path)
	eventually(t, 60*time.Second, "50 folder results", func() bool { return metric(t, d.base, sample) >= 50 })
	time.Sleep(time.Second) // a few more polls: nothing may come twice
	if n := metric(t, d.base, sample); n != 50 {
		t.Fatalf("%v results for 50 files", n)
	}
	d.stop(5 * time.Second)

	// After a restart the same files are not classified again; new ones are.
	d2 := startDaemonFile(t, path)
	drop(50, 7)
	eventually(t, 60*time.Second, "7 new results", func() bool { return metric(t, d2.base, sample) >= 7 })
	time.Sleep(time.Second)
	if n := metric(t, d2.base, sample); n != 7 {
		t.Fatalf("%v results after the restart, want 7 (the new files only)", n)
	}
	// Every digit came out right: the recent results name their files.
	for _, r := range d2.status(t).Stats.Recent {
		var i int
		fmt.Sscanf(r.RequestID, "img-%03d.png", &i)
		if r.Predictions[0].Label != strconv.Itoa(i%10) {
			t.Errorf("%s classified as %s", r.RequestID, r.Predictions[0].Label)
		}
	}
}

var labelRE = regexp.MustCompile(`"name":"([^"]+)"`)

func TestDaemonReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "edgeinfer.yaml")
	write := func(model string) {
		if err := os.WriteFile(path, []byte(httpConfig(model, "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(absPath(t, mobilenetDir))
	d := startDaemonFile(t, path)
	peacock, _ := os.ReadFile(peacockPNG)

	// Steady load from 4 clients while the model is swapped.
	stop := make(chan struct{})
	type outcome struct {
		code  int
		model string
		err   error
	}
	results := make(chan outcome, 100000)
	var load sync.WaitGroup
	for range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := postImage(d.base, peacock, "", "")
				m := labelRE.FindSubmatch(body)
				o := outcome{code: code, err: err}
				if m != nil {
					o.model = string(m[1])
				}
				results <- o
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	write(absPath(t, mnistDir))
	d.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 30*time.Second, "model swapped", func() bool { return d.status(t).Model.Name == "mnist" })
	time.Sleep(500 * time.Millisecond)

	// A reload to a corrupt model keeps mnist serving and shows the error.
	bad := filepath.Join(dir, "corrupt.tflite")
	if err := os.WriteFile(bad, []byte("TFL3 is not enough to be a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	write(bad)
	resp, err := http.Post(d.base+"/api/v1/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("reload to a corrupt model: %d %s", resp.StatusCode, body)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	load.Wait()
	close(results)

	seen := map[string]int{}
	failed := 0
	for o := range results {
		if o.err != nil || o.code != 200 {
			failed++
			continue
		}
		seen[o.model]++
	}
	t.Logf("requests during the reloads: %v, failed %d", seen, failed)
	if failed != 0 {
		t.Errorf("%d requests failed during the reloads", failed)
	}
	if seen["mobilenet-v1-quant"] == 0 || seen["mnist"] == 0 {
		t.Errorf("requests did not see both models: %v", seen)
	}
	st := d.status(t)
	if st.Model.Name != "mnist" || !strings.Contains(st.Reload.LastError, "corrupt.tflite") || st.Reload.Count != 1 {
		t.Errorf("after the failed reload: model %s, reload %+v", st.Model.Name, st.Reload)
	}
	page, _ := http.Get(d.base + "/")
	pb, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(pb), `id="reload-error"`) {
		t.Error("the status page does not show the reload error")
	}
}
