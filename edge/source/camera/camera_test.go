package camera

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/edge/source/sourcetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a source.Output that keeps every frame offered.
type recorder struct {
	mu     sync.Mutex
	frames []source.Frame
}

func (r *recorder) Offer(f source.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, f)
}

func (r *recorder) Submit(context.Context, source.Frame) error {
	return errors.New("a camera must not submit")
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

func (r *recorder) all() []source.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]source.Frame(nil), r.frames...)
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      *sync.Mutex
	records *[]slog.Record
}

func newLogRecorder() logRecorder { return logRecorder{&sync.Mutex{}, &[]slog.Record{}} }

func (h logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h logRecorder) WithGroup(string) slog.Handler            { return h }
func (h logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, r.Clone())
	return nil
}

// backoffs returns the backoff of every "capture command failed" record.
func (h logRecorder) backoffs() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ds []time.Duration
	for _, r := range *h.records {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "backoff" {
				ds = append(ds, a.Value.Duration())
			}
			return true
		})
	}
	return ds
}

// run is a Camera running in the background.
type run struct {
	cam    *Camera
	out    *recorder
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config, log *slog.Logger) *run {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "cam0"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cam, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cam: cam, out: &recorder{}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- cam.Run(ctx, r.out) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run, waits for it and returns how long that took.
func (r *run) stop(t *testing.T) time.Duration {
	t.Helper()
	if r.done == nil {
		return 0
	}
	begin := time.Now()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	r.done = nil
	if got := r.cam.State().Condition; got != source.Stopped {
		t.Errorf("condition after Run = %q, want %q", got, source.Stopped)
	}
	return time.Since(begin)
}

// gone checks that the capture command pid has been reaped and that no
// process of its group is left. kill(2) succeeds on a zombie, so ESRCH
// means reaped. Killed members of the group other than the leader are
// reaped by init, so the check on the group waits a little.
func gone(t *testing.T, pid int) {
	t.Helper()
	if pid <= 1 {
		t.Fatalf("bad pid %d", pid)
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Errorf("kill(%d, 0) = %v, want ESRCH: process not reaped", pid, err)
	}
	sourcetest.Eventually(t, 5*time.Second, "the process group to go", func() bool {
		return syscall.Kill(-pid, 0) == syscall.ESRCH
	})
}

// testsrc returns a command writing MJPEG frames of a test pattern at
// fps in real time.
func testsrc(t *testing.T, fps int) []string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	return []string{"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=" + strconv.Itoa(fps),
		"-c:v", "mjpeg", "-q:v", "5", "-f", "mjpeg", "-"}
}

func TestFrames(t *testing.T) {
	defer goleak.VerifyNone(t)
	r := start(t, Config{Preset: PresetCommand, Command: testsrc(t, 10)}, nil)
	sourcetest.Eventually(t, 10*time.Second, "5 frames", func() bool { return r.out.count() >= 5 })
	pid := r.cam.Pid()
	if st := r.cam.State(); st.Condition != source.Running || st.Frames < 5 || st.Kind != source.KindCamera {
		t.Errorf("State() = %+v, want running with >= 5 frames", st)
	}
	r.stop(t)
	gone(t, pid)

	frames := r.out.all()
	for i, f := range frames {
		if f.Source != "cam0" || f.Kind != source.KindCamera {
			t.Errorf("frame %d: source %q kind %q", i, f.Source, f.Kind)
		}
		if want := uint64(i + 1); f.ID != want {
			t.Errorf("frame %d: ID %d, want %d", i, f.ID, want)
		}
		if f.CapturedAt.IsZero() {
			t.Errorf("frame %d: no CapturedAt", i)
		}
		// Decoding every frame after the run also shows that each owns
		// its bytes rather than sharing the scanner's buffer.
		img, err := jpeg.Decode(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
			t.Errorf("frame %d: %v, want 320x240", i, b)
		}
	}
	if r.cam.Skipped() != 0 {
		t.Errorf("Skipped() = %d without an fps limit", r.cam.Skipped())
	}
}

func TestFPSLimit(t *testing.T) {
	defer goleak.VerifyNone(t)
	r := start(t, Config{Preset: PresetCommand, Command: testsrc(t, 25), FPS: 5}, nil)
	sourcetest.Eventually(t, 10*time.Second, "a first frame", func() bool { return r.out.count() >= 1 })
	const secs = 3
	time.Sleep(secs * time.Second)
	offered := r.out.count() - 1
	r.stop(t)

	if offered < 2*secs || offered > 8*secs {
		t.Errorf("%d frames offered in %ds at fps 5, want %d..%d", offered, secs, 2*secs, 8*secs)
	}
	if r.cam.Skipped() == 0 {
		t.Error("Skipped() = 0, want frames skipped")
	}
	// IDs count parsed frames, so they have gaps where frames were skipped.
	frames := r.out.all()
	n, last := uint64(len(frames)), frames[len(frames)-1].ID
	if last <= n || last > n+r.cam.Skipped() {
		t.Errorf("last ID %d, want in (%d, %d]: offered plus skipped", last, n, n+r.cam.Skipped())
	}
}

func TestAllow(t *testing.T) {
	c := &Camera{interval: 200 * time.Millisecond}
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// Frames every 40ms, odd ones 3ms late: one in five gets through, and
	// the late ones do not push the grid back.
	var got []int
	for i := range 26 {
		at := i * 40
		if i%2 == 1 {
			at += 3
		}
		if c.allow(ms(at)) {
			got = append(got, at)
		}
	}
	want := []int{0, 203, 400, 603, 800, 1003}
	if !slices.Equal(got, want) {
		t.Errorf("offered at %v ms, want %v", got, want)
	}
	// After a gap, the next frame passes and starts a new grid.
	if !c.allow(ms(5000)) || c.allow(ms(5100)) || !c.allow(ms(5200)) {
		t.Error("after a gap, want frames at 5000ms and 5200ms but not 5100ms")
	}
}

func TestRestartAfterKill(t *testing.T) {
	defer goleak.VerifyNone(t)
	r := start(t, Config{Preset: PresetCommand, Command: testsrc(t, 10), RestartMin: 50 * time.Millisecond}, nil)
	sourcetest.Eventually(t, 10*time.Second, "3 frames", func() bool { return r.out.count() >= 3 })
	pid := r.cam.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	n := r.out.count()
	sourcetest.Eventually(t, 10*time.Second, "a restart", func() bool { return r.cam.State().Restarts >= 1 })
	sourcetest.Eventually(t, 10*time.Second, "frames after the restart", func() bool { return r.out.count() >= n+3 })
	if p := r.cam.Pid(); p == pid || p == 0 {
		t.Errorf("Pid() = %d after restart, was %d", p, pid)
	}
	st := r.cam.State()
	if !strings.Contains(st.LastError, "signal: killed") {
		t.Errorf("LastError = %q, want the kill", st.LastError)
	}
	r.stop(t)
	gone(t, pid)

	frames := r.out.all()
	for i := 1; i < len(frames); i++ {
		if frames[i].ID <= frames[i-1].ID {
			t.Fatalf("frame IDs %d then %d across the restart", frames[i-1].ID, frames[i].ID)
		}
	}
}

func TestExitImmediately(t *testing.T) {
	defer goleak.VerifyNone(t)
	logs := newLogRecorder()
	r := start(t, Config{
		Preset:     PresetCommand,
		Command:    []string{"sh", "-c", "echo first >&2; echo oops >&2; exit 3"},
		RestartMin: 50 * time.Millisecond,
		RestartMax: 200 * time.Millisecond,
	}, slog.New(logs))
	sourcetest.Eventually(t, 10*time.Second, "4 restarts", func() bool { return r.cam.State().Restarts >= 4 })
	st := r.cam.State()
	r.stop(t)

	if st.Condition != source.Backoff && st.Condition != source.Starting {
		t.Errorf("condition %q, want backoff or starting", st.Condition)
	}
	for _, want := range []string{"camera cam0: sh exited: exit status 3", "stderr: first | oops"} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("LastError = %q, want it to contain %q", st.LastError, want)
		}
	}
	want := []time.Duration{50, 100, 200, 200}
	got := logs.backoffs()
	if len(got) < len(want) {
		t.Fatalf("backoffs %v, want at least %d", got, len(want))
	}
	for i, w := range want {
		if got[i] != w*time.Millisecond {
			t.Errorf("backoffs %v, want %v ms first", got, want)
			break
		}
	}
}

func TestStartError(t *testing.T) {
	defer goleak.VerifyNone(t)
	r := start(t, Config{Preset: PresetCommand, Command: []string{"/nonexistent/capture"}, RestartMin: 10 * time.Millisecond}, nil)
	sourcetest.Eventually(t, 10*time.Second, "a restart", func() bool { return r.cam.State().Restarts >= 1 })
	if st := r.cam.State(); !strings.Contains(st.LastError, "start /nonexistent/capture") {
		t.Errorf("LastError = %q, want the start failure", st.LastError)
	}
	r.stop(t)
}

func TestStall(t *testing.T) {
	defer goleak.VerifyNone(t)
	r := start(t, Config{
		Preset:       PresetCommand,
		Command:      []string{"sh", "-c", "echo garbage; sleep 60; echo done"},
		StallTimeout: 300 * time.Millisecond,
		RestartMin:   50 * time.Millisecond,
	}, nil)
	var pid int
	sourcetest.Eventually(t, 10*time.Second, "the command", func() bool { pid = r.cam.Pid(); return pid != 0 })
	sourcetest.Eventually(t, 10*time.Second, "a restart", func() bool { return r.cam.State().Restarts >= 1 })
	// The first command, sleep included, was killed when it stalled.
	gone(t, pid)
	if st := r.cam.State(); !strings.Contains(st.LastError, "no frame for 300ms") {
		t.Errorf("LastError = %q, want the stall", st.LastError)
	}
	if took := r.stop(t); took > 5*time.Second {
		t.Errorf("Run took %v to stop", took)
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name    string
		cmd     func(*testing.T) []string
		ready   func(*run) bool
		minStop time.Duration
	}{
		{"running", func(t *testing.T) []string { return testsrc(t, 10) },
			func(r *run) bool { return r.out.count() > 0 }, 0},
		{"starting", func(t *testing.T) []string { return []string{"sleep", "60"} },
			func(r *run) bool { return r.cam.Pid() != 0 }, 0},
		// SIGTERM is ignored, so Run must resort to SIGKILL.
		{"ignoring SIGTERM", func(t *testing.T) []string { return []string{"sh", "-c", `trap "" TERM; sleep 60; sleep 60`} },
			func(r *run) bool { return r.cam.Pid() != 0 }, killDelay},
		{"in backoff", func(t *testing.T) []string { return []string{"false"} },
			func(r *run) bool { return r.cam.State().Condition == source.Backoff }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			r := start(t, Config{Preset: PresetCommand, Command: tt.cmd(t), RestartMin: time.Minute}, nil)
			sourcetest.Eventually(t, 10*time.Second, "the command", func() bool { return tt.ready(r) })
			pid := r.cam.Pid()
			if tt.name == "ignoring SIGTERM" {
				time.Sleep(100 * time.Millisecond) // let sh set its trap
			}
			took := r.stop(t)
			if took < tt.minStop || took > tt.minStop+5*time.Second {
				t.Errorf("Run took %v to stop, want %v plus a little", took, tt.minStop)
			}
			if pid != 0 {
				gone(t, pid)
			}
			if r.cam.Pid() != 0 {
				t.Errorf("Pid() = %d after Run", r.cam.Pid())
			}
		})
	}
}

func TestTail(t *testing.T) {
	tl := newTail(64)
	for i := range 1000 {
		if _, err := tl.Write([]byte(strings.Repeat("x", i%7) + "line\n")); err != nil {
			t.Fatal(err)
		}
	}
	tl.Write([]byte("last\r\n"))
	if len(tl.buf) > 64 || cap(tl.buf) != 64 {
		t.Errorf("tail holds %d bytes with capacity %d, want at most 64", len(tl.buf), cap(tl.buf))
	}
	if got := tl.lines(2); got != "xxxxxline | last" {
		t.Errorf("lines(2) = %q", got)
	}
	tl.Write(bytes.Repeat([]byte("y"), 1000))
	if got := tl.lines(5); got != strings.Repeat("y", 64) {
		t.Errorf("after a long write, lines(5) = %q", got)
	}
	if got := newTail(8).lines(3); got != "" {
		t.Errorf("empty tail: lines = %q", got)
	}
}

func TestScrub(t *testing.T) {
	cam, err := New(Config{Name: "door", Preset: PresetRTSP, URL: "rtsp://admin:hunter2@10.0.0.9/live"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cam.State().Detail; strings.Contains(d, "hunter2") || !strings.Contains(d, "rtsp://admin:xxxxx@10.0.0.9/live") {
		t.Errorf("Detail = %q, want the password hidden", d)
	}
	if got := cam.scrub("rtsp://admin:hunter2@10.0.0.9/live: 401 Unauthorized (hunter2)"); strings.Contains(got, "hunter2") {
		t.Errorf("scrub left the password: %q", got)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Config{Name: "cam9", Preset: "nope"}, nil); err == nil || !strings.HasPrefix(err.Error(), "camera cam9: preset: unknown") {
		t.Errorf("New with a bad preset: %v", err)
	}
	cam, err := New(Config{Name: "cam0", FPS: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cam.Name() != "cam0" || cam.Kind() != source.KindCamera || cam.interval != 250*time.Millisecond {
		t.Errorf("New: name %q kind %q interval %v", cam.Name(), cam.Kind(), cam.interval)
	}
	if st := cam.State(); st.Condition != source.Starting || st.Detail == "" {
		t.Errorf("State() = %+v before Run", st)
	}
}
