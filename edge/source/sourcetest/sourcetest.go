// Package sourcetest helps test sources: a source.Output that records what
// a live source offers, and polling waits for conditions that depend on
// the source's goroutines.
package sourcetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/edgeinfer/edgeinfer/edge/source"
)

// LiveRecorder records the frames a live source (camera, snapshot,
// replay) offers, and fails the test if the source calls Submit, which
// live sources must never do. It is safe for concurrent use.
type LiveRecorder struct {
	t      testing.TB
	mu     sync.Mutex
	frames []source.Frame
}

// NewLiveRecorder returns an empty LiveRecorder reporting to t.
func NewLiveRecorder(t testing.TB) *LiveRecorder { return &LiveRecorder{t: t} }

// Offer implements source.Output.
func (r *LiveRecorder) Offer(f source.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, f)
}

// Submit implements source.Output; a live source calling it is a bug.
func (r *LiveRecorder) Submit(_ context.Context, f source.Frame) error {
	r.t.Errorf("live source %s called Submit", f.Source)
	return nil
}

// Frames returns a copy of the frames offered so far, in order.
func (r *LiveRecorder) Frames() []source.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]source.Frame(nil), r.frames...)
}

// WaitFor is Eventually with a bound of 10 s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Eventually(t, 10*time.Second, what, cond)
}

// Eventually polls cond every 5 ms and fails the test if it does not hold
// within timeout; what names the condition in the failure. The bound only
// limits how long a failing test hangs; it is not a timing assertion.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
