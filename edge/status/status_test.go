package status

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/edge/source"
)

func TestRecorder(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRecorder(func() time.Time { return now })
	if s := r.Snapshot(); s.Last != nil || len(s.Recent) != 0 || s.FPS != 0 {
		t.Fatalf("empty recorder: %+v", s)
	}
	// 100 results, inference 1..100 ms, one every 100 ms.
	for i := 1; i <= 100; i++ {
		now = now.Add(100 * time.Millisecond)
		r.Publish(pipeline.Event{
			Result: edge.Result{FrameID: uint64(i), Timings: edge.Timings{Inference: edge.Millis(time.Duration(i) * time.Millisecond)}},
			Frame:  source.Frame{Data: []byte{0xff, 0xd8, 0xff, 0xe0}},
		})
	}
	r.Publish(pipeline.Event{Frame: source.Frame{RequestID: "bad-1", Kind: "http"}, Err: fmt.Errorf("x: %w", classify.ErrBadImage)})
	r.Publish(pipeline.Event{Frame: source.Frame{RequestID: "e-1"}, Err: errors.New("engine broke")})

	s := r.Snapshot()
	if s.Last == nil || s.Last.FrameID != 100 || len(s.Recent) != recentResults || s.Recent[0].FrameID != 100 || s.Recent[recentResults-1].FrameID != 81 {
		t.Errorf("last/recent wrong: last %+v, %d recent", s.Last, len(s.Recent))
	}
	if s.Counts != (Counts{Classified: 100, Rejected: 1, Failed: 1}) {
		t.Errorf("counts %+v", s.Counts)
	}
	if len(s.Errors) != 2 || s.Errors[0].RequestID != "e-1" || s.Errors[1].Source != "http" {
		t.Errorf("errors %+v", s.Errors)
	}
	var inf Latency
	for _, l := range s.Latency {
		if l.Stage == "inference" {
			inf = l
		}
	}
	if inf.P50 != 50 || inf.P95 != 95 || inf.P99 != 99 {
		t.Errorf("inference percentiles %+v", inf)
	}
	if s.FPS != 10 { // 100 results in the last 10 s
		t.Errorf("fps %v, want 10", s.FPS)
	}
	if data, typ := r.LastFrame(); len(data) != 4 || typ != "image/jpeg" {
		t.Errorf("last frame %d bytes %s", len(data), typ)
	}
	now = now.Add(time.Minute)
	if s := r.Snapshot(); s.FPS != 0 {
		t.Errorf("fps a minute later %v", s.FPS)
	}
}

// TestRateAboveLatencyWindow: the results-per-second figure is not capped
// by the latency rings' size (1000 results in 10 s used to read 100/s at
// most), and results older than the window stop counting.
func TestRateAboveLatencyWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRecorder(func() time.Time { return now })
	for i := range 3000 { // 300 a second for 10 s
		now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second / 300)
		r.Publish(pipeline.Event{Result: edge.Result{FrameID: uint64(i)}})
	}
	if s := r.Snapshot(); s.FPS != 300 {
		t.Errorf("fps %v, want 300", s.FPS)
	}
	now = now.Add(5 * time.Second)
	if s := r.Snapshot(); s.FPS != 150 {
		t.Errorf("fps 5 s later %v, want 150 (the last 5 s of results)", s.FPS)
	}
}

func TestRingWraps(t *testing.T) {
	r := newRing[int](3)
	for i := 1; i <= 7; i++ {
		r.add(i)
	}
	got := r.newestFirst()
	if len(got) != 3 || got[0] != 7 || got[2] != 5 {
		t.Errorf("ring %v", got)
	}
}
