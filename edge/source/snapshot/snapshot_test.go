package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/edge/source/sourcetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// jpegServer serves a numbered fake JPEG per request.
func jpegServer(t *testing.T) *httptest.Server {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "jpeg %d", n.Add(1))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// start runs a new source over cfg until the test ends or stop is called.
func start(t *testing.T, cfg Config) (s *Source, rec *sourcetest.LiveRecorder, stop func()) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "cam"
	}
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rec = sourcetest.NewLiveRecorder(t)
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
			case <-time.After(2 * time.Second):
				t.Fatal("Run did not return promptly after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return s, rec, stop
}

func waitError(t *testing.T, s *Source, want string) source.State {
	t.Helper()
	var st source.State
	sourcetest.WaitFor(t, "an error containing "+want, func() bool {
		st = s.State()
		return st.Condition == source.Backoff && strings.Contains(st.LastError, want)
	})
	t.Logf("state: %+v", st)
	return st
}

func TestFramesAtInterval(t *testing.T) {
	srv := jpegServer(t)
	const interval = 50 * time.Millisecond
	s, rec, stop := start(t, Config{URL: srv.URL + "/snap.jpg", Interval: interval})
	begin := time.Now()
	sourcetest.WaitFor(t, "5 frames", func() bool { return len(rec.Frames()) >= 5 })
	elapsed := time.Since(begin)
	stop()

	// The first frame comes at once, the next four an interval apart.
	// Only a lower bound is safe on a loaded machine, and a generous one.
	if elapsed < 2*interval {
		t.Errorf("5 frames in %v, want about %v", elapsed, 4*interval)
	}
	for i, f := range rec.Frames() {
		if f.ID != uint64(i+1) || f.Source != "cam" || f.Kind != source.KindSnapshot || f.RequestID != "" || f.CapturedAt.IsZero() {
			t.Errorf("frame %d = %+v", i, f)
		}
		if want := fmt.Sprintf("jpeg %d", i+1); string(f.Data) != want {
			t.Errorf("frame %d data = %q, want %q", i, f.Data, want)
		}
	}
	if st := s.State(); st.Frames < 5 || st.Detail != srv.URL+"/snap.jpg" {
		t.Errorf("state = %+v", st)
	}
}

func TestBasicAuth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "s3cret" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		w.Write([]byte("jpeg"))
	}))
	defer srv.Close()
	withUserinfo := strings.Replace(srv.URL, "http://", "http://admin:s3cret@", 1)

	for name, cfg := range map[string]Config{
		"fields":   {URL: srv.URL, Username: "admin", Password: "s3cret"},
		"userinfo": {URL: withUserinfo},
		"wrong":    {URL: srv.URL, Username: "admin", Password: "guess"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.Interval = 10 * time.Millisecond
			s, rec, stop := start(t, cfg)
			defer stop()
			if name == "wrong" {
				waitError(t, s, "401")
				return
			}
			sourcetest.WaitFor(t, "a frame", func() bool { return len(rec.Frames()) > 0 })
		})
	}
}

func TestErrorStatusBacksOffThenRecovers(t *testing.T) {
	var requests atomic.Int64
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		if !healthy.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("jpeg"))
	}))
	defer srv.Close()

	const interval = 20 * time.Millisecond
	s, rec, _ := start(t, Config{URL: srv.URL, Interval: interval})
	waitError(t, s, "500 Internal Server Error")
	time.Sleep(20 * interval)
	// Without backoff there would be about 20 requests; with it, waits of
	// 1, 2, 4, 8, 8... intervals leave room for about 5.
	if n := requests.Load(); n > 10 {
		t.Errorf("%d requests in %v of failures: no backoff", n, 20*interval)
	}
	if len(rec.Frames()) != 0 {
		t.Error("frames offered from failed requests")
	}

	healthy.Store(true)
	sourcetest.WaitFor(t, "recovery", func() bool { return s.State().Condition == source.Running })
	if len(rec.Frames()) == 0 {
		t.Error("running but no frame")
	}
}

func TestBackoff(t *testing.T) {
	const i = time.Second
	for failures, want := range []time.Duration{0: i, 1: i, 2: 2 * i, 3: 4 * i, 4: 8 * i, 5: 8 * i, 100: 8 * i} {
		if want == 0 {
			continue
		}
		if got := backoff(i, failures); got != want {
			t.Errorf("backoff(%v, %d) = %v, want %v", i, failures, got, want)
		}
	}
}

func TestBadBodies(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		chunked    bool
		want       string
	}{
		{"oversize with length", strings.Repeat("x", 101), false, "larger than max_bytes"},
		{"oversize chunked", strings.Repeat("x", 101), true, "larger than max_bytes"},
		{"empty", "", false, "empty body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.chunked {
					w.(http.Flusher).Flush() // no Content-Length
				}
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			s, rec, stop := start(t, Config{URL: srv.URL, Interval: 10 * time.Millisecond, MaxBytes: 100})
			waitError(t, s, tc.want)
			stop()
			if len(rec.Frames()) != 0 {
				t.Error("frame offered from a bad body")
			}
		})
	}
	t.Run("exactly max_bytes", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(strings.Repeat("x", 100)))
		}))
		defer srv.Close()
		_, rec, _ := start(t, Config{URL: srv.URL, Interval: 10 * time.Millisecond, MaxBytes: 100})
		sourcetest.WaitFor(t, "a frame", func() bool { return len(rec.Frames()) > 0 })
	})
}

func TestHangingServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before srv.Close, which waits for handlers

	s, _, stop := start(t, Config{URL: srv.URL, Interval: 10 * time.Millisecond, Timeout: 50 * time.Millisecond})
	waitError(t, s, "timeout")

	// Cancel while a request hangs: Run must not wait for the timeout.
	slow, _, stopSlow := start(t, Config{URL: srv.URL, Timeout: time.Hour})
	time.Sleep(50 * time.Millisecond)
	begin := time.Now()
	stopSlow()
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Run took %v to return after cancel", d)
	}
	if c := slow.State().Condition; c != source.Stopped {
		t.Errorf("condition after Run = %s", c)
	}
	stop()
}

func TestCredentialsNeverShown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // connection refused

	for name, cfg := range map[string]Config{
		"userinfo 403": {URL: strings.Replace(srv.URL, "http://", "http://admin:s3cret@", 1)},
		"fields 403":   {URL: srv.URL, Username: "admin", Password: "s3cret"},
		"refused":      {URL: strings.Replace(closed.URL, "http://", "http://admin:s3cret@", 1)},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.Interval = 10 * time.Millisecond
			s, _, stop := start(t, cfg)
			defer stop()
			st := waitError(t, s, "")
			for _, secret := range []string{"s3cret", "admin"} {
				if strings.Contains(st.Detail, secret) || strings.Contains(st.LastError, secret) {
					t.Errorf("%q shown in state %+v", secret, st)
				}
			}
		})
	}

	for _, raw := range []string{"ftp://admin:s3cret@cam/x", "admin:s3cret@cam/x", "http://admin:s3cret@cam:bad/x", "http://admin:s3%zz@cam/x"} {
		_, err := New(Config{Name: "cam", URL: raw}, nil)
		if err == nil {
			t.Errorf("New(%q) = nil error", raw)
		} else if strings.Contains(err.Error(), "s3") {
			t.Errorf("New(%q) = %q: shows the password", raw, err)
		}
	}
}

func TestTLSVerification(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("jpeg"))
	}))
	defer srv.Close()

	s, rec, stop := start(t, Config{URL: srv.URL, Interval: 10 * time.Millisecond})
	waitError(t, s, "certificate")
	stop()
	if len(rec.Frames()) != 0 {
		t.Error("frame from an unverified server")
	}

	_, rec, _ = start(t, Config{URL: srv.URL, Interval: 10 * time.Millisecond, InsecureSkipVerify: true})
	sourcetest.WaitFor(t, "a frame", func() bool { return len(rec.Frames()) > 0 })
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{}, []string{"name: must not be empty", "url: must not be empty"}},
		{Config{Name: "c", URL: "x"}, []string{`url: "x" is not an http(s) URL`}},
		{Config{Name: "c", URL: "http://"}, []string{"is not an http(s) URL"}},
		{Config{Name: "c", URL: "http://cam", Interval: -1, Timeout: -1, MaxBytes: -1}, []string{"interval: must be > 0", "timeout: must be > 0", "max_bytes: must be > 0"}},
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
	cfg := Config{Name: "c", URL: "https://cam/snap.jpg"}
	cfg.SetDefaults()
	if cfg.Interval != 5*time.Second || cfg.Timeout != 5*time.Second || cfg.MaxBytes != 16<<20 || cfg.InsecureSkipVerify {
		t.Errorf("defaults = %+v", cfg)
	}
}
