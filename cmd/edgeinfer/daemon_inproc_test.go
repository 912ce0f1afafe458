package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeinfer/edgeinfer/edge/config"
	"github.com/edgeinfer/edgeinfer/edge/daemon"
	"github.com/edgeinfer/edgeinfer/systemd"
	"github.com/edgeinfer/edgeinfer/tflite"
)

// notifyListener is a real sd_notify socket, as systemd provides one.
type notifyListener struct {
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []notifyMsg
}

type notifyMsg struct {
	at   time.Time
	text string
}

func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	n := &notifyListener{conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, notifyMsg{time.Now(), string(buf[:k])})
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

// count returns how many messages containing s arrived after since.
func (n *notifyListener) count(s string, since time.Time) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, m := range n.msgs {
		if m.at.After(since) && strings.Contains(m.text, s) {
			c++
		}
	}
	return c
}

// TestDaemonInProcess runs the daemon in this process against a real
// sd_notify socket and checks READY, WATCHDOG only while frames flow (none
// once the pipeline stalls), RELOADING around a reload, an orderly stop
// within 5 s, and that no goroutine is left behind.
func TestDaemonInProcess(t *testing.T) {
	// Registered first, so it runs after every other cleanup: the notify
	// socket's reader and idle client connections are gone by then.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, ignore)
	})
	n := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "300000") // keep-alive every 150 ms

	cfgPath := filepath.Join(t.TempDir(), "edgeinfer.yaml")
	cfg := fmt.Sprintf(`model: %s
http:
  listen: 127.0.0.1:0
watchdog:
  stall_timeout: 1s
engine:
  interpreters: 1
replays:
  - name: digits
    path: %s
    fps: 30
`, absPath(t, mnistDir), absPath(t, filepath.Join(mnistDir, "samples")))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var models []*loadedModel
	loader := func(ctx context.Context, c *config.Config) (daemon.Model, error) {
		m, err := loadTFLite(ctx, c)
		if err == nil {
			mu.Lock()
			models = append(models, m.(*loadedModel))
			mu.Unlock()
		}
		return m, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := daemon.New(ctx, daemon.Options{
		ConfigPath: cfgPath, Loader: loader, Notifier: systemd.NewNotifier(nil),
		Version: "test", Engine: tflite.EngineName(),
	})
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{})
	runDone := make(chan error, 1)
	start := time.Now() // before Run: READY=1 may arrive at once
	go func() { runDone <- d.Run(ctx, reload) }()
	base := "http://" + d.Addr().String()

	eventually(t, 10*time.Second, "READY=1", func() bool { return n.count("READY=1", start) >= 1 })
	eventually(t, 10*time.Second, "WATCHDOG=1 while frames flow", func() bool { return n.count("WATCHDOG=1", start) >= 3 })

	// Stall: hold the only interpreter, so frames wait and the
	// classification in progress cannot finish.
	mu.Lock()
	lm := models[0]
	mu.Unlock()
	release := make(chan struct{})
	held := make(chan struct{})
	go lm.Pool.Do(context.Background(), func(*tflite.Interpreter) error {
		close(held)
		<-release
		return nil
	})
	<-held
	time.Sleep(2 * time.Second) // stall_timeout (1s) plus keep-alive periods
	quiet := time.Now()
	time.Sleep(time.Second)
	if c := n.count("WATCHDOG=1", quiet); c != 0 {
		t.Errorf("%d WATCHDOG=1 while the pipeline was stalled", c)
	}
	if resp, err := http.Get(base + "/readyz"); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz while stalled: %d", resp.StatusCode)
		}
	}
	close(release)
	resumed := time.Now()
	eventually(t, 10*time.Second, "WATCHDOG=1 after the stall", func() bool { return n.count("WATCHDOG=1", resumed) >= 2 })

	// Reload to another model: RELOADING=1, then READY=1 again with a
	// status line naming the new model.
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(cfg, absPath(t, mnistDir), absPath(t, mobilenetDir), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	reload <- struct{}{}
	eventually(t, 20*time.Second, "RELOADING=1 then READY=1", func() bool {
		return n.count("RELOADING=1", before) == 1 && n.count("READY=1", before) >= 1
	})
	if n.count("STATUS=serving mobilenet-v1-quant", before) == 0 { // (the watchdog may repeat it after a stall)
		t.Error("the status line after the reload does not name the new model")
	}

	stopAt := time.Now()
	cancel()
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of cancellation")
	}
	t.Logf("stopped in %s", time.Since(stopAt))
	// Sent before Run returned; the test's socket reader may not have
	// read it yet.
	eventually(t, 5*time.Second, "STOPPING=1", func() bool { return n.count("STOPPING=1", stopAt) == 1 })
}

// TestStatusPageInChromium loads the page in Debian's headless Chromium
// and checks what the DOM shows; the screenshot is kept as a test
// artefact. The page carries no script at all (it refreshes with a meta
// tag), so it works the same with JavaScript off; that is checked on the
// HTML, since Chromium's --dump-dom itself needs scripting.
func TestStatusPageInChromium(t *testing.T) {
	requireTool(t, "chromium")
	d := startDaemon(t, httpConfig(absPath(t, mobilenetDir), fmt.Sprintf("replays:\n  - name: demo\n    path: %s\n    fps: 5\n", absPath(t, filepath.Join(mobilenetDir, "samples")))))
	eventually(t, 30*time.Second, "a classified frame", func() bool { return d.status(t).Stats.Last != nil })

	artifacts := os.Getenv("EDGEINFER_ARTIFACTS")
	if artifacts == "" {
		artifacts = absPath(t, "../../bin/artifacts")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "status-page.png")
	chromium := func(args ...string) []byte {
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--window-size=1280,1100",
			// Less than the page's 2 s refresh: capture it before it reloads.
			"--virtual-time-budget=1000"}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "chromium", append(base, args...)...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return out
	}
	dom := string(chromium("--dump-dom", d.base+"/"))
	for _, want := range []string{`<span id="device-id">test-dev</span>`, `<td id="model-name">mobilenet-v1-quant</td>`, "<b>peacock</b>"} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %s", want)
		}
	}
	resp, err := http.Get(d.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(strings.ToLower(string(html)), "<script") || !strings.Contains(string(html), `http-equiv="refresh"`) {
		t.Error("the page needs JavaScript or does not refresh itself")
	}
	chromium("--screenshot="+shot, d.base+"/")
	fi, err := os.Stat(shot)
	if err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, fi.Size())
}
