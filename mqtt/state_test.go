package mqtt

import (
	"strings"
	"testing"
	"time"
)

func TestDebouncer(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type obs struct {
		label string
		at    float64 // seconds after t0
	}
	// seq builds observations one second apart from labels "a b a ...".
	seq := func(labels string) []obs {
		var out []obs
		for i, l := range strings.Fields(labels) {
			out = append(out, obs{l, float64(i)})
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		minFrames int
		minDwell  time.Duration
		obs       []obs
		// changes lists, per change, the index of the observation that
		// made it and the new label.
		changes []string // "index:label"
		since   []float64
	}{
		{name: "stable label confirmed after min_frames", minFrames: 3, obs: seq("a a a a a"), changes: []string{"2:a"}, since: []float64{0}},
		{name: "alternating labels never flap", minFrames: 3, obs: seq("a a a b a b a b a b b a b"), changes: []string{"2:a"}},
		{name: "alternating from the start never sets a state", minFrames: 2, obs: seq("a b a b a b a b")},
		{name: "stable change moves exactly once", minFrames: 3, obs: seq("a a a b b b b b b b"), changes: []string{"2:a", "5:b"}, since: []float64{0, 3}},
		{name: "a blip does not count", minFrames: 3, obs: seq("a a a b b a b b b"), changes: []string{"2:a", "8:b"}, since: []float64{0, 6}},
		{name: "back to the current label resets the run", minFrames: 2, obs: seq("a a b a b a"), changes: []string{"1:a"}},
		{name: "min_frames 1 follows every label", minFrames: 1, obs: seq("a b a"), changes: []string{"0:a", "1:b", "2:a"}},
		{name: "zero value follows every label", minFrames: 0, obs: seq("a b"), changes: []string{"0:a", "1:b"}},
		{
			name: "min_dwell holds a label back", minFrames: 2, minDwell: 3 * time.Second,
			obs:     seq("a a a a a b b b b b"),
			changes: []string{"3:a", "8:b"}, since: []float64{0, 5},
		},
		{
			name: "min_dwell with fast frames", minFrames: 3, minDwell: time.Second,
			obs:     []obs{{"a", 0}, {"a", 0.1}, {"a", 0.2}, {"a", 0.5}, {"a", 1.0}, {"a", 1.1}},
			changes: []string{"4:a"}, since: []float64{0},
		},
		{
			name: "capture times out of order", minFrames: 3,
			obs:     []obs{{"a", 2}, {"a", 1}, {"a", 3}},
			changes: []string{"2:a"}, since: []float64{1},
		},
		{
			name: "min_dwell over out-of-order times", minFrames: 3, minDwell: 2 * time.Second,
			obs:     []obs{{"a", 2}, {"a", 0}, {"a", 1}, {"a", 1.5}},
			changes: []string{"2:a"}, since: []float64{0},
		},
		{
			name: "min_dwell needs the frames too", minFrames: 3, minDwell: time.Second,
			obs:     []obs{{"a", 0}, {"a", 5}, {"a", 6}},
			changes: []string{"2:a"}, since: []float64{0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Debouncer{MinFrames: tc.minFrames, MinDwell: tc.minDwell}
			var changes []string
			var since []float64
			for i, o := range tc.obs {
				st, changed := d.Observe(State{Label: o.label, Score: 0.5, Since: sec(o.at), FrameID: uint64(i + 1), Source: "camera"})
				if changed {
					changes = append(changes, itoa(i)+":"+st.Label)
					since = append(since, st.Since.Sub(t0).Seconds())
					if st.FrameID != uint64(i+1) || st.Source != "camera" || st.Score != 0.5 {
						t.Errorf("state %+v: want frame %d", st, i+1)
					}
				}
			}
			if strings.Join(changes, " ") != strings.Join(tc.changes, " ") {
				t.Errorf("changes %v, want %v", changes, tc.changes)
			}
			if tc.since != nil && !equalFloats(since, tc.since) {
				t.Errorf("since %v, want %v", since, tc.since)
			}
		})
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
