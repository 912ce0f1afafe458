// Package camera is a source that runs a capture command, such as ffmpeg
// reading a V4L2 device or an RTSP stream or rpicam-vid, and offers the
// MJPEG frames it writes to stdout.
//
// The command is supervised: it is restarted with a growing backoff when it
// exits or stops producing frames, and it runs in its own process group so
// that everything it started can be stopped with it.
package camera

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgeinfer/edgeinfer/edge/source"
	"github.com/edgeinfer/edgeinfer/edge/source/mjpeg"
)

const (
	// killDelay is how long the command gets to exit after SIGTERM before
	// SIGKILL, and how long Wait waits for stray holders of its stderr.
	killDelay = 2 * time.Second
	// drainGrace is how long the command and the frame reader get to
	// finish on their own once the other has.
	drainGrace = time.Second
	// healthyRun is how long a run must have delivered frames for the
	// backoff to start again from RestartMin.
	healthyRun = 10 * time.Second
	// stderrBytes bounds the stderr kept for error reports.
	stderrBytes = 4 << 10
	// stderrLines is how many of its last lines an error report quotes.
	stderrLines = 5
	// maxInterval caps the fps interval so that a tiny fps cannot
	// overflow a time.Duration.
	maxInterval = 24 * time.Hour
)

// Camera is a source running a capture command.
type Camera struct {
	cfg      Config
	argv     []string
	interval time.Duration // between offered frames; 0 means no limit
	log      *slog.Logger
	tracker  *source.Tracker
	skipped  atomic.Uint64
	pid      atomic.Int64

	// Used by one frame reader at a time; Run starts the next reader only
	// after the previous one has returned.
	id   uint64    // of the last parsed frame
	next time.Time // earliest time for the next offered frame
}

// New returns a Camera for cfg, after SetDefaults and Validate. A nil log
// means slog.Default().
func New(cfg Config, log *slog.Logger) (*Camera, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("camera %s: %w", cfg.Name, err)
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Camera{
		cfg:  cfg,
		argv: cfg.Argv(),
		log:  log.With("source", cfg.Name),
	}
	if cfg.FPS > 0 {
		c.interval = time.Duration(min(float64(time.Second)/cfg.FPS, float64(maxInterval)))
	}
	c.tracker = source.NewTracker(cfg.Name, source.KindCamera, c.scrub(strings.Join(c.argv, " ")))
	return c, nil
}

// Name returns the configured name.
func (c *Camera) Name() string { return c.cfg.Name }

// Kind returns source.KindCamera.
func (c *Camera) Kind() string { return source.KindCamera }

// State returns the current state.
func (c *Camera) State() source.State { return c.tracker.State() }

// Skipped counts the frames dropped to keep to the fps limit.
func (c *Camera) Skipped() uint64 { return c.skipped.Load() }

// Pid returns the process id of the running capture command, 0 if there
// is none. The command leads its own process group.
func (c *Camera) Pid() int { return int(c.pid.Load()) }

// Run runs the capture command and offers its frames to out until ctx is
// done, restarting the command whenever it exits or stalls. It returns nil
// once ctx is done and the command and everything Run started have
// stopped. Run must not be called again while it is running.
func (c *Camera) Run(ctx context.Context, out source.Output) error {
	defer c.tracker.Set(source.Stopped)
	backoff := c.cfg.RestartMin
	for ctx.Err() == nil {
		c.tracker.Set(source.Starting)
		healthy, err := c.runOnce(ctx, out)
		if ctx.Err() != nil {
			return nil
		}
		if healthy {
			backoff = c.cfg.RestartMin
		}
		c.tracker.Fail(err)
		c.log.Info("waiting before restart", "backoff", backoff)
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, c.cfg.RestartMax)
		c.tracker.Restart()
	}
	return nil
}

// readResult is how a frame reader ended.
type readResult struct {
	first, last time.Time // of the first and last frame; zero if none
	err         error     // nil at the end of the stream
}

// runOnce runs the command once. It reports whether the run was healthy
// (delivered frames for longer than healthyRun) and why it ended. It
// returns only once the command has been reaped and the reader has
// returned.
func (c *Camera) runOnce(ctx context.Context, out source.Output) (healthy bool, err error) {
	// An os.Pipe rather than cmd.StdoutPipe, which Wait would close
	// while the reader may still be draining the last frames.
	pr, pw, err := os.Pipe()
	if err != nil {
		return false, fmt.Errorf("camera %s: %w", c.cfg.Name, err)
	}
	defer pr.Close()
	stderr := newTail(stderrBytes)
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Stdout = pw
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Bounds Wait when a process that left the group holds stderr open.
	cmd.WaitDelay = killDelay
	err = cmd.Start()
	pw.Close()
	if err != nil {
		err = fmt.Errorf("camera %s: start %s: %w", c.cfg.Name, c.argv[0], err)
		c.log.Warn("capture command failed to start", "error", err)
		return false, err
	}
	pid := cmd.Process.Pid
	c.pid.Store(int64(pid))
	defer c.pid.Store(0)
	log := c.log.With("pid", pid)
	log.Info("capture command started", "command", c.tracker.State().Detail)

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	progress := make(chan struct{}, 1)
	readDone := make(chan readResult, 1)
	go func() { readDone <- c.read(ctx, pr, out, progress, log) }()

	var (
		cause    error // why the run was stopped, if it did not end by itself
		waitErr  error
		reaped   bool
		res      readResult
		readOver bool
	)
	stall := time.NewTimer(c.cfg.StallTimeout)
	defer stall.Stop()
wait:
	for {
		select {
		case <-progress:
			stall.Reset(c.cfg.StallTimeout)
		case <-ctx.Done():
			cause = ctx.Err()
			break wait
		case <-stall.C:
			cause = fmt.Errorf("no frame for %v", c.cfg.StallTimeout)
			break wait
		case res = <-readDone:
			readOver = true
			break wait
		case waitErr = <-exited:
			reaped = true
			break wait
		}
	}
	if readOver && res.err == nil {
		// stdout was closed, most likely because the command is exiting:
		// let it, so that its exit status is reported.
		waitErr, reaped = receive(exited, drainGrace)
	}
	if !reaped {
		waitErr = terminate(pid, exited)
	}
	// The leader is gone; take any stragglers of its group with it, as
	// they may hold the camera open. The group id cannot have been reused
	// while its members live.
	signalGroup(pid, syscall.SIGKILL)
	if !readOver {
		var ok bool
		if res, ok = receive(readDone, drainGrace); !ok {
			// Something outside the group holds stdout open.
			pr.Close()
			res = <-readDone
		}
	}

	healthy = res.last.Sub(res.first) > healthyRun
	switch {
	case cause != nil:
		err = fmt.Errorf("camera %s: %w", c.cfg.Name, cause)
	case res.err != nil:
		err = fmt.Errorf("camera %s: read %s output: %w", c.cfg.Name, c.argv[0], res.err)
	case waitErr != nil:
		err = fmt.Errorf("camera %s: %s exited: %w", c.cfg.Name, c.argv[0], waitErr)
	default:
		err = fmt.Errorf("camera %s: %s exited", c.cfg.Name, c.argv[0])
	}
	if s := stderr.lines(stderrLines); s != "" {
		err = fmt.Errorf("%w; stderr: %s", err, c.scrub(s))
	}
	if ctx.Err() != nil {
		log.Info("capture command stopped")
	} else {
		log.Warn("capture command ended", "error", err)
	}
	return healthy, err
}

// read parses frames from r and offers them to out until r ends.
func (c *Camera) read(ctx context.Context, r io.Reader, out source.Output, progress chan<- struct{}, log *slog.Logger) readResult {
	var res readResult
	sc := mjpeg.NewScanner(r, c.cfg.MaxFrameBytes)
	warned := false
	for {
		data, err := sc.Next()
		switch {
		case errors.Is(err, mjpeg.ErrFrameTooLarge):
			// Once per run: a misconfigured camera would log every frame.
			if !warned {
				log.Warn("frame skipped", "error", err)
				warned = true
			}
			continue
		case err == io.EOF, err == io.ErrUnexpectedEOF, errors.Is(err, os.ErrClosed):
			// The command ended, possibly killed mid-frame; its exit
			// status tells more.
			return res
		case err != nil:
			res.err = err
			return res
		}
		now := time.Now()
		if res.first.IsZero() {
			res.first = now
		}
		res.last = now
		select {
		case progress <- struct{}{}:
		default:
		}
		c.id++
		if !c.allow(now) {
			c.skipped.Add(1)
			continue
		}
		if ctx.Err() != nil {
			continue // shutting down; the pipeline may be gone
		}
		out.Offer(source.Frame{
			Source:     c.cfg.Name,
			Kind:       source.KindCamera,
			ID:         c.id,
			CapturedAt: now,
			Data:       bytes.Clone(data),
		})
		c.tracker.Frame()
	}
}

// allow reports whether a frame parsed at now may be offered under the
// fps limit. Offers keep to a grid of one interval, so that jitter in
// arrival times does not lower the rate below fps; a frame more than half
// an interval late starts a new grid. Two offers are never closer than
// half an interval.
func (c *Camera) allow(now time.Time) bool {
	if c.interval == 0 {
		return true
	}
	if now.Before(c.next) {
		return false
	}
	c.next = c.next.Add(c.interval)
	if c.next.Before(now.Add(c.interval / 2)) {
		c.next = now.Add(c.interval)
	}
	return true
}

// scrub hides the RTSP password in s, which may be ffmpeg's stderr.
func (c *Camera) scrub(s string) string {
	if c.cfg.Preset != PresetRTSP {
		return s
	}
	u, err := url.Parse(c.cfg.URL)
	if err != nil {
		return s
	}
	s = strings.ReplaceAll(s, c.cfg.URL, source.RedactURL(c.cfg.URL))
	if pw, ok := u.User.Password(); ok && pw != "" {
		s = strings.ReplaceAll(s, pw, "xxxxx")
	}
	return s
}

// terminate stops the process group led by pid: SIGTERM, then SIGKILL if
// the leader has not exited after killDelay. It returns the leader's Wait
// error.
func terminate(pid int, exited <-chan error) error {
	signalGroup(pid, syscall.SIGTERM)
	if err, ok := receive(exited, killDelay); ok {
		return err
	}
	signalGroup(pid, syscall.SIGKILL)
	return <-exited
}

// signalGroup sends sig to the process group pgid.
func signalGroup(pgid int, sig syscall.Signal) {
	// kill(0) and kill(-1) would signal our own group or every process.
	if pgid > 1 {
		_ = syscall.Kill(-pgid, sig)
	}
}

// receive waits up to d for a value from ch.
func receive[T any](ch <-chan T, d time.Duration) (T, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case v := <-ch:
		return v, true
	case <-t.C:
		var zero T
		return zero, false
	}
}

// sleep waits for d or until ctx is done, and reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// tail is an io.Writer that keeps the last bytes written to it: the end of
// a command's stderr, without letting a chatty command use up memory.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func newTail(size int) *tail { return &tail{buf: make([]byte, 0, size)} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, size := len(p), cap(t.buf)
	if len(p) > size {
		p = p[len(p)-size:]
	}
	if over := len(t.buf) + len(p) - size; over > 0 {
		t.buf = t.buf[:copy(t.buf, t.buf[over:])]
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// lines returns the last n non-empty lines, joined by " | ".
func (t *tail) lines(n int) string {
	t.mu.Lock()
	s := strings.ReplaceAll(string(t.buf), "\r", "\n")
	t.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], " | ")
}
