// Package source defines what image sources hand to the pipeline: a Frame,
// the Output they hand it to, and the State they report. The sources live
// in sub-packages, one per kind: camera (an MJPEG capture command), folder
// (new files in a directory), snapshot (an HTTP JPEG polled at an interval)
// and replay (the images of a folder cycled at a given rate).
package source

import (
	"context"
	"sync"
	"time"
)

// Kinds of source, as they appear in the result's "source" field.
const (
	KindCamera   = "camera"
	KindFolder   = "folder"
	KindSnapshot = "snapshot"
	KindReplay   = "replay"
	KindHTTP     = "http"
	KindMQTT     = "mqtt"
)

// Frame is one encoded image (JPEG, PNG, ...) from a source.
type Frame struct {
	// Source is the configured name of the source ("cam0").
	Source string
	// Kind is the source's kind (KindCamera, ...).
	Kind string
	// ID increases by one per frame the source produced, dropped or not,
	// so that consumers can count gaps.
	ID uint64
	// RequestID identifies the input where the source has a name for it:
	// the file name for a folder source, the request id for HTTP and MQTT.
	RequestID string
	// CapturedAt is when the source got the frame.
	CapturedAt time.Time
	// Data is the encoded image. The receiver owns it.
	Data []byte
}

// Output receives frames from a source. Implementations are safe for
// concurrent use.
type Output interface {
	// Offer hands over a frame from a live source (camera, snapshot,
	// replay): latest frame wins. It never blocks; a frame not yet taken
	// when the next one arrives is dropped and counted.
	Offer(Frame)
	// Submit hands over a frame that must not be lost (folder) and waits
	// until it has been classified and the result published. A non-nil
	// error means the frame was not classified: the image was bad (the
	// error wraps classify.ErrBadImage) or the pipeline is shutting down
	// (the error wraps ctx.Err()).
	Submit(ctx context.Context, f Frame) error
}

// Condition is a source's state in one word.
type Condition string

// Conditions a source reports.
const (
	Starting Condition = "starting" // not yet producing
	Running  Condition = "running"  // producing frames
	Backoff  Condition = "backoff"  // failed; waiting before a retry
	Idle     Condition = "idle"     // healthy, nothing to do (folder with no new files)
	Stopped  Condition = "stopped"  // Run returned
)

// State is what a source reports about itself for the status page and
// metrics.
type State struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Condition Condition `json:"state"`
	// Since is when Condition last changed.
	Since time.Time `json:"since"`
	// Frames counts frames handed to the Output.
	Frames uint64 `json:"frames"`
	// Restarts counts restarts of a capture command or reconnections.
	Restarts uint64 `json:"restarts"`
	// LastError is the most recent failure, "" if none.
	LastError string `json:"last_error,omitempty"`
	// Detail is a short human description ("ffmpeg -f v4l2 /dev/video0").
	Detail string `json:"detail,omitempty"`
}

// Tracker holds a State and updates it safely from the source's
// goroutines. Sources embed one and return Tracker.State() from State().
type Tracker struct {
	mu sync.Mutex
	st State
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// NewTracker returns a Tracker in the Starting condition.
func NewTracker(name, kind, detail string) *Tracker {
	t := &Tracker{}
	t.st = State{Name: name, Kind: kind, Detail: detail, Condition: Starting, Since: t.now()}
	return t
}

func (t *Tracker) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// State returns a copy of the current state.
func (t *Tracker) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// Set changes the condition (and Since, if it changed).
func (t *Tracker) Set(c Condition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.st.Condition != c {
		t.st.Condition, t.st.Since = c, t.now()
	}
}

// Fail records err and moves to Backoff.
func (t *Tracker) Fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.st.LastError = err.Error()
	}
	if t.st.Condition != Backoff {
		t.st.Condition, t.st.Since = Backoff, t.now()
	}
}

// Frame counts one frame handed over and moves to Running.
func (t *Tracker) Frame() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.Frames++
	if t.st.Condition != Running {
		t.st.Condition, t.st.Since = Running, t.now()
	}
}

// Restart counts one restart.
func (t *Tracker) Restart() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.Restarts++
}
