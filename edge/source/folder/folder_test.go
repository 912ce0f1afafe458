package folder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/edge/source/sourcetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a source.Output that records submitted frames. onSubmit, if
// set, decides what Submit returns.
type recorder struct {
	t        *testing.T
	mu       sync.Mutex
	frames   []source.Frame
	onSubmit func(ctx context.Context, f source.Frame) error
}

func (r *recorder) Offer(f source.Frame) { r.t.Errorf("folder source called Offer(%s)", f.RequestID) }

func (r *recorder) Submit(ctx context.Context, f source.Frame) error {
	r.mu.Lock()
	r.frames = append(r.frames, f)
	hook := r.onSubmit
	r.mu.Unlock()
	if hook != nil {
		return hook(ctx, f)
	}
	return nil
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, f := range r.frames {
		names = append(names, f.RequestID)
	}
	return names
}

func testConfig(t *testing.T) Config {
	cfg := Config{
		Name:   "inbox",
		Path:   t.TempDir(),
		Poll:   10 * time.Millisecond,
		Settle: 20 * time.Millisecond,
	}
	cfg.SetDefaults() // for StateFile
	return cfg
}

// testLogger logs into the test's output, shown when it fails.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start runs a new source over cfg until the test ends or stop is called.
func start(t *testing.T, cfg Config, rec *recorder) (s *Source, stop func()) {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, rec) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
			if c := s.State().Condition; c != source.Stopped {
				t.Errorf("condition after Run = %s, want %s", c, source.Stopped)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// waitIdle waits until s has done every file present and rec has n frames.
func waitIdle(t *testing.T, s *Source, rec *recorder, n int) {
	t.Helper()
	sourcetest.WaitFor(t, fmt.Sprintf("idle with %d frames", n), func() bool {
		return s.State().Condition == source.Idle && len(rec.names()) >= n
	})
	if got := rec.names(); len(got) != n {
		t.Fatalf("got %d frames %q, want %d", len(got), got, n)
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeImages(t *testing.T, dir string, from, to int) (names []string) {
	for i := from; i < to; i++ {
		name := fmt.Sprintf("img%03d.jpg", i)
		writeFile(t, dir, name, "image "+name)
		names = append(names, name)
	}
	return names
}

func TestEachFileOnceAcrossRestarts(t *testing.T) {
	cfg := testConfig(t)
	want := writeImages(t, cfg.Path, 0, 50)

	rec := &recorder{t: t}
	s, stop := start(t, cfg, rec)
	waitIdle(t, s, rec, 50)
	stop()
	if got := rec.names(); !slices.Equal(got, want) {
		t.Fatalf("submitted %q, want each of %q once, in name order", got, want)
	}
	for i, f := range rec.frames {
		if f.Source != "inbox" || f.Kind != source.KindFolder || f.ID != uint64(i+1) {
			t.Errorf("frame %d = {Source %q Kind %q ID %d}", i, f.Source, f.Kind, f.ID)
		}
		if string(f.Data) != "image "+f.RequestID {
			t.Errorf("frame %s has data %q", f.RequestID, f.Data)
		}
		if f.CapturedAt.IsZero() {
			t.Errorf("frame %s has no CapturedAt", f.RequestID)
		}
	}
	if st := s.State(); st.Frames != 50 || st.LastError != "" {
		t.Errorf("state = %+v", st)
	}

	// A restart over the same directory and state file does nothing...
	rec = &recorder{t: t}
	s, _ = start(t, cfg, rec)
	waitIdle(t, s, rec, 0)

	// ...but takes the files added since.
	want = writeImages(t, cfg.Path, 50, 55)
	waitIdle(t, s, rec, 5)
	if got := rec.names(); !slices.Equal(got, want) {
		t.Fatalf("after restart submitted %q, want %q", got, want)
	}
}

func TestHalfWrittenFileWaitsUntilSettled(t *testing.T) {
	cfg := testConfig(t)
	cfg.Settle = 500 * time.Millisecond // far above the 20ms between writes, even on a loaded machine
	rec := &recorder{t: t}
	s, _ := start(t, cfg, rec)
	waitIdle(t, s, rec, 0)

	f, err := os.Create(filepath.Join(cfg.Path, "slow.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var content bytes.Buffer
	for i := range 20 { // 20 writes 20ms apart: never still for Settle
		chunk := fmt.Sprintf("chunk %02d\n", i)
		content.WriteString(chunk)
		if _, err := f.WriteString(chunk); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if got := rec.names(); len(got) != 0 {
			t.Fatalf("file taken while being written (after %d writes)", i+1)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, s, rec, 1)
	if got := rec.frames[0].Data; !bytes.Equal(got, content.Bytes()) {
		t.Errorf("submitted %d bytes, want the whole %d", len(got), content.Len())
	}
}

func TestIgnoredNames(t *testing.T) {
	cfg := testConfig(t)
	for _, name := range []string{".hidden.jpg", "a.jpg.tmp", "b.jpg.part", "notes.txt", "noext"} {
		writeFile(t, cfg.Path, name, "x")
	}
	if err := os.Mkdir(filepath.Join(cfg.Path, "sub.jpg"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg.Path, "UPPER.JPG", "x")
	writeFile(t, cfg.Path, "z.webp", "x")
	rec := &recorder{t: t}
	s, _ := start(t, cfg, rec)
	waitIdle(t, s, rec, 2)
	if got, want := rec.names(), []string{"UPPER.JPG", "z.webp"}; !slices.Equal(got, want) {
		t.Errorf("submitted %q, want %q", got, want)
	}
}

func TestAfterMove(t *testing.T) {
	cfg := testConfig(t)
	cfg.After = AfterMove
	cfg.MoveTo = filepath.Join(t.TempDir(), "done", "nested")
	names := writeImages(t, cfg.Path, 0, 3)
	if _, err := New(cfg, nil); err != nil { // creates MoveTo
		t.Fatal(err)
	}
	// A file of the same name already in MoveTo must not be overwritten.
	writeFile(t, cfg.MoveTo, names[0], "older")

	rec := &recorder{t: t}
	s, _ := start(t, cfg, rec)
	waitIdle(t, s, rec, 3)
	if left := listDir(t, cfg.Path); len(left) != 0 {
		t.Errorf("left in path: %q", left)
	}
	moved := listDir(t, cfg.MoveTo)
	if len(moved) != 4 {
		t.Fatalf("move_to has %q, want the 3 files and the older one", moved)
	}
	if b, _ := os.ReadFile(filepath.Join(cfg.MoveTo, names[0])); string(b) != "older" {
		t.Errorf("existing %s overwritten with %q", names[0], b)
	}
	for _, name := range names[1:] {
		if b, err := os.ReadFile(filepath.Join(cfg.MoveTo, name)); err != nil || string(b) != "image "+name {
			t.Errorf("moved %s: %q, %v", name, b, err)
		}
	}
	// Files moved away need no record.
	if b, err := os.ReadFile(cfg.StateFile); len(b) != 0 {
		t.Errorf("state file = %q, %v; want none", b, err)
	}
}

func TestAfterDeleteKeepsFailures(t *testing.T) {
	cfg := testConfig(t)
	cfg.After = AfterDelete
	writeImages(t, cfg.Path, 0, 3)
	writeFile(t, cfg.Path, "bad.jpg", "not an image")
	rec := &recorder{t: t, onSubmit: failBad}
	s, stop := start(t, cfg, rec)
	waitIdle(t, s, rec, 4)
	stop()
	// A file that could not be classified is left to look at.
	if left := listDir(t, cfg.Path); !slices.Equal(left, []string{"bad.jpg"}) {
		t.Errorf("left in path: %q, want only bad.jpg", left)
	}
	rec = &recorder{t: t}
	s, _ = start(t, cfg, rec)
	waitIdle(t, s, rec, 0)
}

// failBad fails bad.jpg as a bad image.
func failBad(_ context.Context, f source.Frame) error {
	if f.RequestID == "bad.jpg" {
		return fmt.Errorf("decode: %w", classify.ErrBadImage)
	}
	return nil
}

func TestBadImageRecordedNotRetried(t *testing.T) {
	cfg := testConfig(t)
	writeFile(t, cfg.Path, "bad.jpg", "not an image")
	writeFile(t, cfg.Path, "good.jpg", "fine")
	rec := &recorder{t: t, onSubmit: failBad}
	s, stop := start(t, cfg, rec)
	waitIdle(t, s, rec, 2)
	// Idle means nothing is left to do; a few more polls must not retry.
	time.Sleep(5 * cfg.Poll)
	if got := rec.names(); !slices.Equal(got, []string{"bad.jpg", "good.jpg"}) {
		t.Errorf("submitted %q", got)
	}
	st := s.State()
	if !strings.Contains(st.LastError, "bad.jpg") || !strings.Contains(st.LastError, "bad image") {
		t.Errorf("LastError = %q, want it to name bad.jpg", st.LastError)
	}
	stop()

	rec = &recorder{t: t}
	s, _ = start(t, cfg, rec)
	waitIdle(t, s, rec, 0)
}

func TestPipelineErrorRetried(t *testing.T) {
	cfg := testConfig(t)
	writeFile(t, cfg.Path, "a.jpg", "a")
	calls := 0
	rec := &recorder{t: t, onSubmit: func(context.Context, source.Frame) error {
		calls++ // only the Run goroutine calls Submit
		if calls == 1 {
			return errors.New("engine exploded")
		}
		return nil
	}}
	s, _ := start(t, cfg, rec)
	waitIdle(t, s, rec, 2)
	if st := s.State(); !strings.Contains(st.LastError, "engine exploded") || st.Frames != 1 {
		t.Errorf("state = %+v, want 1 frame and the engine error", st)
	}
}

func TestCancelledSubmitNotRecorded(t *testing.T) {
	cfg := testConfig(t)
	writeFile(t, cfg.Path, "a.jpg", "a")
	submitting := make(chan struct{})
	rec := &recorder{t: t, onSubmit: func(ctx context.Context, _ source.Frame) error {
		close(submitting)
		<-ctx.Done()
		return fmt.Errorf("pipeline: %w", ctx.Err())
	}}
	_, stop := start(t, cfg, rec)
	<-submitting
	stop()

	rec = &recorder{t: t}
	s, _ := start(t, cfg, rec)
	waitIdle(t, s, rec, 1)
}

func TestReplacedFileClassifiedAgain(t *testing.T) {
	cfg := testConfig(t)
	writeFile(t, cfg.Path, "a.jpg", "first")
	rec := &recorder{t: t}
	s, _ := start(t, cfg, rec)
	waitIdle(t, s, rec, 1)
	writeFile(t, cfg.Path, "a.jpg", "second, longer")
	waitIdle(t, s, rec, 2)
	if got := string(rec.frames[1].Data); got != "second, longer" {
		t.Errorf("second frame = %q", got)
	}
}

func TestTooLargeRecordedNotRetried(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 10
	writeFile(t, cfg.Path, "big.jpg", "eleven byte")
	writeFile(t, cfg.Path, "small.jpg", "ten bytes!")
	rec := &recorder{t: t}
	s, stop := start(t, cfg, rec)
	waitIdle(t, s, rec, 1)
	if st := s.State(); !strings.Contains(st.LastError, "big.jpg") || !strings.Contains(st.LastError, "too large") {
		t.Errorf("LastError = %q", st.LastError)
	}
	stop()
	rec = &recorder{t: t}
	s, _ = start(t, cfg, rec)
	waitIdle(t, s, rec, 0)
}

func TestStateCompaction(t *testing.T) {
	cfg := testConfig(t)
	names := writeImages(t, cfg.Path, 0, 3)
	rec := &recorder{t: t}
	s, stop := start(t, cfg, rec)
	waitIdle(t, s, rec, 3)
	stop()

	for _, name := range names[:2] {
		if err := os.Remove(filepath.Join(cfg.Path, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A record torn by a power cut.
	f, err := os.OpenFile(cfg.StateFile, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("12 34")
	f.Close()

	rec = &recorder{t: t}
	s, stop = start(t, cfg, rec)
	waitIdle(t, s, rec, 0)
	stop()
	b, err := os.ReadFile(cfg.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 || !strings.HasSuffix(lines[0], `"`+names[2]+`"`) {
		t.Errorf("compacted state file =\n%s\nwant only %s", b, names[2])
	}
	if left := listDir(t, cfg.Path); !slices.Equal(left, []string{names[2]}) {
		t.Errorf("path has %q, want no temporary files", left)
	}
}

func TestDirectoryRemovedThenBack(t *testing.T) {
	cfg := testConfig(t)
	writeFile(t, cfg.Path, "a.jpg", "a")
	rec := &recorder{t: t}
	s, _ := start(t, cfg, rec)
	waitIdle(t, s, rec, 1)

	if err := os.RemoveAll(cfg.Path); err != nil {
		t.Fatal(err)
	}
	sourcetest.WaitFor(t, "backoff", func() bool {
		st := s.State()
		return st.Condition == source.Backoff && st.LastError != ""
	})
	if err := os.Mkdir(cfg.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg.Path, "b.jpg", "b")
	waitIdle(t, s, rec, 2)
	if _, err := os.Stat(cfg.StateFile); err != nil {
		t.Errorf("state file not recreated: %v", err)
	}
}

func TestCopyFileKeepsContentAndTime(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.jpg"), filepath.Join(dir, "dst.jpg")
	writeFile(t, dir, "src.jpg", "content")
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(src, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(src, dst); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "content" || !fi.ModTime().Equal(mtime) {
		t.Errorf("copy = %q, mtime %v", b, fi.ModTime())
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"dst.jpg", "src.jpg"}) {
		t.Errorf("dir has %q", got)
	}
}

func TestNewErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, filepath.Dir(file), "f", "")
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{}, []string{"name: must not be empty", "path: must not be empty"}},
		{Config{Name: "a/b", Path: t.TempDir()}, []string{`name: "a/b"`}},
		{Config{Name: "x", Path: t.TempDir(), After: "shred"}, []string{`after: "shred" is not one of`}},
		{Config{Name: "x", Path: t.TempDir(), After: AfterMove}, []string{"move_to: required"}},
		{Config{Name: "x", Path: t.TempDir(), Poll: -1, Settle: -1, MaxBytes: -1}, []string{"poll: must be > 0", "settle: must be >= 0", "max_bytes: must be > 0"}},
		{Config{Name: "x", Path: filepath.Join(t.TempDir(), "missing")}, []string{"path:", "no such file"}},
		{Config{Name: "x", Path: file}, []string{"is not a directory"}},
	} {
		_, err := New(tc.cfg, nil)
		if err == nil {
			t.Errorf("New(%+v) = nil error", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("New(%+v) = %q, want it to contain %q", tc.cfg, err, w)
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg := Config{Name: "x", Path: "/data/in"}
	cfg.SetDefaults()
	if cfg.StateFile != "/data/in/.edgeinfer-x.state" || cfg.After != AfterKeep ||
		cfg.Poll != time.Second || cfg.Settle != time.Second || cfg.MaxBytes != 32<<20 || len(cfg.Extensions) != 6 {
		t.Errorf("defaults = %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, name := range []string{"a.jpg", "with space.jpg", "new\nline.jpg", `quo"te.jpg`, "ünï.jpg"} {
		st := stamp{size: 123, mtime: 1700000000123456789}
		got, gotSt, ok := parseRecord(strings.TrimSuffix(formatRecord(name, st), "\n"))
		if !ok || got != name || gotSt != st {
			t.Errorf("round trip of %q = %q %v %v", name, got, gotSt, ok)
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".edgeinfer-") { // the state file
			names = append(names, e.Name())
		}
	}
	return names
}
