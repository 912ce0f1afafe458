package replay

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/edge/source/sourcetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// imageDir returns a directory holding files, mapping names to contents.
func imageDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// abc returns three images and two files a replay must skip.
func abc() map[string]string {
	return map[string]string{
		"c.png":       "image c",
		"a.jpg":       "image a",
		"b.JPEG":      "image b",
		".hidden.jpg": "hidden",
		"notes.txt":   "not an image",
	}
}

// run runs s until stop is called (or the test ends) and checks that Run
// returns nil.
func run(t *testing.T, s *Source, rec *sourcetest.LiveRecorder) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, rec) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
			if c := s.State().Condition; c != source.Stopped {
				t.Errorf("condition after Run = %s", c)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newSource(t *testing.T, cfg Config) *Source {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "demo"
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCyclesInNameOrder(t *testing.T) {
	files := abc()
	s := newSource(t, Config{Path: imageDir(t, files), FPS: 1000})
	rec := sourcetest.NewLiveRecorder(t)
	stop := run(t, s, rec)
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.Frames()) < 7 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	frames := rec.Frames()
	if len(frames) < 7 {
		t.Fatalf("%d frames in 10s at 1000 fps", len(frames))
	}
	want := []string{"a.jpg", "b.JPEG", "c.png"}
	for i, f := range frames {
		name := want[i%3]
		if f.RequestID != name || string(f.Data) != files[name] || f.ID != uint64(i+1) ||
			f.Source != "demo" || f.Kind != source.KindReplay || f.CapturedAt.IsZero() {
			t.Errorf("frame %d = {RequestID %q Data %q ID %d Source %q Kind %q}, want %s",
				i, f.RequestID, f.Data, f.ID, f.Source, f.Kind, name)
		}
	}
}

func TestRate(t *testing.T) {
	// In a synctest bubble time is virtual, so the count is exact.
	dir := imageDir(t, abc())
	synctest.Test(t, func(t *testing.T) {
		s := newSource(t, Config{Path: dir, FPS: 5})
		rec := sourcetest.NewLiveRecorder(t)
		stop := run(t, s, rec)
		time.Sleep(9900 * time.Millisecond)
		synctest.Wait()
		// One at once, then one every 200ms: 0, 0.2, ... 9.8s.
		if n := len(rec.Frames()); n != 50 {
			t.Errorf("%d frames in 9.9s at 5 fps, want 50", n)
		}
		if st := s.State(); st.Condition != source.Running || st.Frames != 50 {
			t.Errorf("state = %+v", st)
		}
		stop()
	})
}

func TestRateWallClock(t *testing.T) {
	s := newSource(t, Config{Path: imageDir(t, abc()), FPS: 100})
	rec := sourcetest.NewLiveRecorder(t)
	stop := run(t, s, rec)
	time.Sleep(300 * time.Millisecond)
	stop()
	// About 31; the bounds only catch a rate that is off by far.
	if n := len(rec.Frames()); n < 3 || n > 60 {
		t.Errorf("%d frames in 300ms at 100 fps", n)
	}
}

func TestPlayOnce(t *testing.T) {
	dir := imageDir(t, abc())
	synctest.Test(t, func(t *testing.T) {
		s := newSource(t, Config{Path: dir, FPS: 10, Loop: new(false)})
		rec := sourcetest.NewLiveRecorder(t)
		stop := run(t, s, rec)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(rec.Frames()); n != 3 {
			t.Errorf("%d frames, want each of the 3 images once", n)
		}
		if c := s.State().Condition; c != source.Idle {
			t.Errorf("condition after playing once = %s, want %s", c, source.Idle)
		}
		stop()
	})
}

func TestSingleFile(t *testing.T) {
	dir := imageDir(t, map[string]string{"frame.raw": "bytes"})
	s := newSource(t, Config{Path: filepath.Join(dir, "frame.raw"), FPS: 1000})
	rec := sourcetest.NewLiveRecorder(t)
	stop := run(t, s, rec)
	sourcetest.WaitFor(t, "two frames", func() bool { return len(rec.Frames()) >= 2 })
	stop()
	for _, f := range rec.Frames() {
		if f.RequestID != "frame.raw" || string(f.Data) != "bytes" {
			t.Errorf("frame = %q %q", f.RequestID, f.Data)
		}
	}
}

func TestNewErrors(t *testing.T) {
	empty := t.TempDir()
	onlyText := imageDir(t, map[string]string{"a.txt": "x"})
	big := imageDir(t, map[string]string{"a.jpg": "12345", "b.jpg": "67890"})
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{}, []string{"name: must not be empty", "path: must not be empty"}},
		{Config{Name: "d", Path: empty, FPS: -1}, []string{"fps: must be > 0 and <= 1000"}},
		{Config{Name: "d", Path: empty, FPS: 1001}, []string{"fps: must be > 0 and <= 1000"}},
		{Config{Name: "d", Path: empty}, []string{"path: no jpg/jpeg/png/gif/bmp/webp images in"}},
		{Config{Name: "d", Path: onlyText}, []string{"path: no"}},
		{Config{Name: "d", Path: filepath.Join(empty, "missing")}, []string{"path:", "no such file"}},
		{Config{Name: "d", Path: big, MaxBytes: 9}, []string{"max_bytes: the images total more than 9 bytes"}},
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
	if _, err := New(Config{Name: "d", Path: big, MaxBytes: 10}, nil); err != nil {
		t.Errorf("images of exactly max_bytes: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	cfg := Config{Name: "d", Path: "/x"}
	cfg.SetDefaults()
	if cfg.FPS != 1 || cfg.Loop == nil || !*cfg.Loop || cfg.MaxBytes != 256<<20 || len(cfg.Extensions) != 6 {
		t.Errorf("defaults = %+v", cfg)
	}
	cfg = Config{Name: "d", Path: "/x", Loop: new(false)}
	cfg.SetDefaults()
	if *cfg.Loop {
		t.Error("SetDefaults overrode loop: false")
	}
}
