package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/httpapi"
)

// daemonProc is a real `edgeinfer run` process started by a test.
type daemonProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
}

// lockedWriter collects the daemon's log.
type lockedWriter struct{ d *daemonProc }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.stderr.Write(p)
}

func (d *daemonProc) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

var readyAddrRE = regexp.MustCompile(`msg="edgeinfer ready".* http=(\S+)`)

// startDaemon writes cfg to a file and runs `edgeinfer run --config` on
// it, waiting until it logs that it is ready. The daemon is stopped when
// the test ends.
func startDaemon(t *testing.T, cfg string, env ...string) *daemonProc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edgeinfer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return startDaemonFile(t, path, env...)
}

func startDaemonFile(t *testing.T, path string, env ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{t: t, exited: make(chan struct{})}
	d.cmd = exec.Command(binPath, "run", "--config", path, "--log-level", "debug")
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stderr = lockedWriter{d}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.stop(5 * time.Second) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := readyAddrRE.FindStringSubmatch(d.log()); m != nil {
			d.base = "http://" + m[1]
			return d
		}
		select {
		case <-d.exited:
			t.Fatalf("daemon exited before ready:\n%s", d.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready after 30 s:\n%s", d.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns how long the daemon took to exit.
func (d *daemonProc) stop(limit time.Duration) time.Duration {
	select {
	case <-d.exited:
		return 0
	default:
	}
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return time.Since(start)
	case <-time.After(limit):
		d.cmd.Process.Kill()
		<-d.exited
		d.t.Errorf("daemon did not exit within %s after SIGTERM:\n%s", limit, d.log())
		return limit
	}
}

func (d *daemonProc) status(t *testing.T) httpapi.Status {
	t.Helper()
	var st httpapi.Status
	resp, err := http.Get(d.base + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond every 50 ms for up to limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func absPath(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func postImage(base string, body []byte, multipartField string, token string) (int, []byte, error) {
	var req *http.Request
	var err error
	if multipartField != "" {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile(multipartField, "image.png")
		fw.Write(body)
		mw.Close()
		req, err = http.NewRequest("POST", base+"/api/v1/classify", &b)
		if err == nil {
			req.Header.Set("Content-Type", mw.FormDataContentType())
		}
	} else {
		req, err = http.NewRequest("POST", base+"/api/v1/classify", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "image/png")
		}
	}
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

func topLabel(t *testing.T, body []byte) string {
	t.Helper()
	var r edge.Result
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("not a result: %v: %s", err, body)
	}
	if len(r.Predictions) == 0 {
		return ""
	}
	return r.Predictions[0].Label
}

func httpConfig(model string, extra string) string {
	return fmt.Sprintf("model: %s\ndevice_id: test-dev\nhttp:\n  listen: 127.0.0.1:0\n%s", model, extra)
}

func TestDaemonHTTPClassify(t *testing.T) {
	d := startDaemon(t, httpConfig(absPath(t, mobilenetDir), "  max_queue: 4\nlimits:\n  max_image_bytes: 1000000\n"))
	peacock, err := os.ReadFile(peacockPNG)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"", "image"} {
		code, body, err := postImage(d.base, peacock, field, "")
		if err != nil || code != 200 || topLabel(t, body) != "peacock" {
			t.Errorf("multipart=%q: %d %v %s", field, code, err, body)
		}
	}
	var r edge.Result
	_, body, _ := postImage(d.base, peacock, "", "")
	json.Unmarshal(body, &r)
	if r.Source != "http" || r.DeviceID != "test-dev" || !strings.HasPrefix(r.RequestID, "http-") {
		t.Errorf("result fields: %+v", r)
	}
	// A caller's X-Request-ID comes back; frame ids still differ.
	req, _ := http.NewRequest("POST", d.base+"/api/v1/classify", bytes.NewReader(peacock))
	req.Header.Set("X-Request-ID", "caller-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var r2 edge.Result
	json.NewDecoder(resp.Body).Decode(&r2)
	resp.Body.Close()
	if r2.RequestID != "caller-42" || r2.FrameID == r.FrameID || r2.FrameID == 0 {
		t.Errorf("X-Request-ID: request %q frame %d (previous frame %d)", r2.RequestID, r2.FrameID, r.FrameID)
	}

	// Bad inputs: the right code each, and the daemon keeps serving.
	bad := []struct {
		name string
		body []byte
		want int
	}{
		{"oversized", make([]byte, 2_000_000), http.StatusRequestEntityTooLarge},
		{"undecodable", []byte("not an image"), http.StatusUnprocessableEntity},
		{"50000x50000 header", hugePNG(50000, 50000), http.StatusUnprocessableEntity},
		{"empty", nil, http.StatusUnprocessableEntity},
	}
	for _, b := range bad {
		code, body, err := postImage(d.base, b.body, "", "")
		if err != nil || code != b.want {
			t.Errorf("%s: %d %v %s, want %d", b.name, code, err, body, b.want)
		}
		var eb httpapi.ErrorBody
		if json.Unmarshal(body, &eb) != nil || eb.Error == "" {
			t.Errorf("%s: error body %s", b.name, body)
		}
	}
	if code, _, _ := postImage(d.base, []byte("x"), "file", ""); code != http.StatusBadRequest {
		t.Errorf("multipart without an image field: %d", code)
	}

	// 200 requests at concurrency 16: each answered 200 or 429.
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				code, body, err := postImage(d.base, peacock, "", "")
				mu.Lock()
				if err != nil {
					codes[-1]++
				} else {
					codes[code]++
					if code == 200 && topLabel(t, body) != "peacock" {
						codes[-2]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range 200 {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("200 requests at concurrency 16: %v", codes)
	if codes[200]+codes[429] != 200 || codes[200] == 0 || codes[429] == 0 {
		t.Errorf("codes %v: want only 200 and 429", codes)
	}
	if resp, err := http.Get(d.base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the load: %v", err)
	}
	st := d.status(t)
	if st.Stats.Counts.Classified < uint64(codes[200]) || st.Stats.Counts.Rejected < 2 {
		t.Errorf("status counts %+v", st.Stats.Counts)
	}
	for _, p := range []string{"/", "/metrics", "/readyz", "/api/v1/frame.jpg"} {
		resp, err := http.Get(d.base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", p, err, resp)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if p == "/metrics" && !bytes.Contains(body, []byte(`edgeinfer_frames_total{kind="http",outcome="classified",source="http"}`)) {
			t.Errorf("metrics lack the classified frames:\n%s", body)
		}
	}
}

func TestDaemonToken(t *testing.T) {
	d := startDaemon(t, httpConfig(absPath(t, mnistDir), "  token: s3cret\n"))
	img, _ := os.ReadFile(filepath.Join(mnistDir, "samples", "4.png"))
	if code, _, _ := postImage(d.base, img, "", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	if code, _, _ := postImage(d.base, img, "", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	if code, body, _ := postImage(d.base, img, "", "s3cret"); code != 200 || topLabel(t, body) != "4" {
		t.Errorf("right token: %d %s", code, body)
	}
	for _, p := range []string{"/api/v1/status", "/metrics", "/healthz", "/"} {
		if resp, err := http.Get(d.base + p); err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s without token: %v", p, resp)
		}
	}
	resp, err := http.Post(d.base+"/api/v1/reload", "", nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("reload without token: %v", resp)
	}
}

func TestDaemonSIGTERM(t *testing.T) {
	d := startDaemon(t, httpConfig(absPath(t, mnistDir), fmt.Sprintf("replays:\n  - name: r\n    path: %s\n    fps: 50\n", absPath(t, filepath.Join(mnistDir, "samples")))))
	eventually(t, 10*time.Second, "replayed frames classified", func() bool { return d.status(t).Stats.Counts.Classified > 5 })
	took := d.stop(5 * time.Second)
	t.Logf("exited %s after SIGTERM", took)
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d:\n%s", code, d.log())
	}
	if !strings.Contains(d.log(), `msg=stopped`) {
		t.Errorf("no orderly stop in the log:\n%s", d.log())
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	model := absPath(t, mnistDir)
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", "model: " + model + "\nengine:\n  thread: 2\n", "engine.thread: unknown key"},
		{"unknown top-level key", "modle: " + model + "\n", "modle: unknown key"},
		{"wrong type", "model: " + model + "\nengine:\n  threads: many\n", "engine.threads"},
		{"wrong type bool", "model: " + model + "\nhttp:\n  max_queue: true\n", "http.max_queue"},
		{"missing model", "http:\n  listen: :8080\n", "model: required"},
		{"model path missing", "model: /nonexistent/model\n", "model:"},
		{"malformed URL", "model: " + model + "\nsnapshots:\n  - name: s\n    url: \"ht!tp://x y\"\n", "snapshots[0].url"},
		{"bad listen", "model: " + model + "\nhttp:\n  listen: nope\n", "http.listen"},
		{"duplicate names", "model: " + model + "\nreplays:\n  - name: a\n    path: " + model + "/samples\n  - name: a\n    path: " + model + "/samples\n", "replays[1].name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strconv.Itoa(len(c.name))+".yaml")
			os.WriteFile(path, []byte(c.yaml), 0o644)
			r := runCLI(t, "config", "check", path)
			if r.code != 1 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want it to contain %q", r.code, r.stderr, c.want)
			}
		})
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("model: "+model+"\n"), 0o644)
	if r := runCLI(t, "config", "check", good); r.code != 0 {
		t.Errorf("a file with only model: exit %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "config", "check", "../../systemd/edgeinfer.yaml"); r.code != 1 || !strings.Contains(r.stderr, "model:") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		// The installed default names a model under /var/lib that does
		// not exist here: that must be its only complaint.
		t.Errorf("default config: exit %d %q", r.code, r.stderr)
	}
}

// TestEngineReported: `version` and /api/v1/status say whether XNNPACK is
// in use; engine.xnnpack: false turns it off; the default engine shape is
// one single-threaded interpreter per core.
func TestEngineReported(t *testing.T) {
	r := runCLI(t, "version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 {
		t.Fatalf("version --json: exit %d, %q: %v", r.code, r.stdout, err)
	}
	if v.XNNPACK != strings.HasSuffix(v.Engine, " +xnnpack") {
		t.Errorf("version: engine %q but xnnpack %v", v.Engine, v.XNNPACK)
	}
	if os.Getenv("EDGEINFER_REQUIRE_XNNPACK") == "1" && !v.XNNPACK {
		t.Fatalf("EDGEINFER_REQUIRE_XNNPACK=1 but the binary runs %s", v.Engine)
	}

	d := startDaemon(t, httpConfig(absPath(t, mobilenetDir), ""))
	st := d.status(t)
	if st.Engine != v.Engine {
		t.Errorf("status engine %q, version says %q", st.Engine, v.Engine)
	}
	cores := min(runtime.NumCPU(), 4)
	if st.Model.Interpreters != cores || st.Model.Threads != 1 {
		t.Errorf("default shape %d x %d, want %d x 1", st.Model.Interpreters, st.Model.Threads, cores)
	}
	wantDelegate := "cpu"
	if v.XNNPACK {
		wantDelegate = "xnnpack (29 of 31 nodes)"
	}
	if st.Model.Delegate != wantDelegate {
		t.Errorf("delegate %q, want %q", st.Model.Delegate, wantDelegate)
	}
	d.stop(5 * time.Second)

	off := startDaemon(t, httpConfig(absPath(t, mobilenetDir), "engine:\n  xnnpack: false\n"))
	if got := off.status(t).Model.Delegate; got != "cpu" {
		t.Errorf("engine.xnnpack: false: delegate %q, want cpu", got)
	}
	peacock, err := os.ReadFile(filepath.Join(mobilenetDir, "samples", "peacock.png"))
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := postImage(off.base, peacock, "", "")
	if err != nil || code != 200 || topLabel(t, body) != "peacock" {
		t.Errorf("classify without XNNPACK: %d %s %v", code, body, err)
	}
}
