package mqtt

import (
	"time"
)

// State is the debounced top-1 label, published retained on
// <prefix>/<device>/state so that automations can react to "what the
// camera sees" without acting on every flicker of the model.
type State struct {
	// Label is the top-1 label.
	Label string `json:"label"`
	// Score is its score in the result that confirmed it.
	Score float32 `json:"score"`
	// Since is when the first result of the run that confirmed it was
	// captured: when the label actually appeared, not when it was trusted.
	Since time.Time `json:"since"`
	// FrameID and Source identify the result that confirmed it.
	FrameID uint64 `json:"frame_id"`
	Source  string `json:"source"`
}

// Debouncer applies hysteresis to a stream of top-1 labels: the state
// moves to a new label only once that label has been the top label of
// MinFrames consecutive observations and for at least MinDwell between
// the first and the latest of them. Any other label in between starts the
// count again, so labels alternating from frame to frame never move it.
// The first label is confirmed the same way.
//
// A Debouncer is not safe for concurrent use; the zero value confirms
// every label at once (MinFrames 0 counts as 1).
type Debouncer struct {
	MinFrames int
	MinDwell  time.Duration

	cur, cand   State
	has         bool
	run         int       // consecutive observations of cand.Label
	first, last time.Time // earliest and latest capture time in the run
}

// Observe feeds one observation: the top label of a result with its
// score, capture time (obs.Since), frame id and source. It returns the
// current state and whether this observation changed it. Capture times
// may arrive out of order (requests are classified in parallel): the
// dwell is the span between the earliest and the latest of the run.
func (d *Debouncer) Observe(obs State) (State, bool) {
	if d.has && obs.Label == d.cur.Label {
		d.run = 0
		return d.cur, false
	}
	if d.run > 0 && obs.Label == d.cand.Label {
		d.run++
		if obs.Since.Before(d.first) {
			d.first = obs.Since
		}
		if obs.Since.After(d.last) {
			d.last = obs.Since
		}
	} else {
		d.cand, d.run = obs, 1
		d.first, d.last = obs.Since, obs.Since
	}
	if d.run < max(d.MinFrames, 1) || d.last.Sub(d.first) < d.MinDwell {
		return d.cur, false
	}
	d.cur = State{Label: obs.Label, Score: obs.Score, Since: d.first, FrameID: obs.FrameID, Source: obs.Source}
	d.has, d.run = true, 0
	return d.cur, true
}

// Current returns the state and whether there is one yet.
func (d *Debouncer) Current() (State, bool) { return d.cur, d.has }
