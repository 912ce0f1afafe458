package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gateClassifier is a test double for the pipeline's Classifier port: it
// answers with the frame's first byte as the label index once the gate
// lets it, so tests control timing. The real classifier over TensorFlow
// Lite is tested in cmd/edgeinfer.
type gateClassifier struct {
	gate    chan struct{} // one receive per classification; nil = no wait
	calls   atomic.Int64
	delayOf func(data []byte) time.Duration
}

func (g *gateClassifier) Classify(ctx context.Context, data []byte) (edge.Result, error) {
	g.calls.Add(1)
	if g.gate != nil {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return edge.Result{}, ctx.Err()
		}
	}
	if g.delayOf != nil {
		time.Sleep(g.delayOf(data))
	}
	if len(data) == 0 {
		return edge.Result{}, classify.ErrBadImage
	}
	return edge.Result{Predictions: []edge.Prediction{{Index: int(data[0])}}}, nil
}

// recordSink records events in order.
type recordSink struct {
	mu     sync.Mutex
	events []Event
}

func (r *recordSink) Publish(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recordSink) snapshot() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// pushSource offers the frames sent on its channel and, if offered is
// not nil, reports each offer on it.
type pushSource struct {
	name    string
	frames  chan source.Frame
	offered chan uint64
}

func (s *pushSource) Name() string        { return s.name }
func (s *pushSource) Kind() string        { return source.KindCamera }
func (s *pushSource) State() source.State { return source.State{Name: s.name, Kind: source.KindCamera} }
func (s *pushSource) Run(ctx context.Context, out source.Output) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-s.frames:
			out.Offer(f)
			if s.offered != nil {
				s.offered <- f.ID
			}
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// runLive runs a pipeline with cfg over g, fed by one live source whose
// frames the test pushes (and, with offered, learns when each was
// offered), recording what it publishes. stop ends the run and waits.
func runLive(cfg Config, g *gateClassifier, offered chan uint64) (src *pushSource, sink *recordSink, stop func()) {
	sink = &recordSink{}
	p := New(cfg, g, []Sink{sink}, nil, nil)
	src = &pushSource{name: "cam", frames: make(chan source.Frame), offered: offered}
	p.AddSource(src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	return src, sink, func() { cancel(); <-done }
}

func TestLatestFrameWins(t *testing.T) {
	g := &gateClassifier{gate: make(chan struct{})}
	src, sink, stop := runLive(Config{DeviceID: "d"}, g, make(chan uint64, 100))
	defer func() {
		close(g.gate) // release anything still waiting, then stop
		stop()
	}()

	// Frame 1 is taken and blocks in the classifier; 2..50 pile up in the
	// one-frame mailbox, each replacing the last.
	src.frames <- source.Frame{ID: 1, Data: []byte{1}}
	<-src.offered
	waitFor(t, "first classification", func() bool { return g.calls.Load() == 1 })
	for id := uint64(2); id <= 50; id++ {
		src.frames <- source.Frame{ID: id, Data: []byte{byte(id)}}
		<-src.offered
	}
	g.gate <- struct{}{} // finish frame 1
	g.gate <- struct{}{} // finish the one frame left: 50
	waitFor(t, "two results", func() bool { return len(sink.snapshot()) == 2 })
	ev := sink.snapshot()
	if ev[0].Result.FrameID != 1 || ev[1].Result.FrameID != 50 {
		t.Errorf("published frames %d, %d; want 1, 50", ev[0].Result.FrameID, ev[1].Result.FrameID)
	}
	if ev[1].Result.DeviceID != "d" || ev[1].Result.Source != source.KindCamera {
		t.Errorf("result fields %+v", ev[1].Result)
	}
}

func TestPublishInFrameOrderWithWorkers(t *testing.T) {
	// Odd frames take longer: without ordering they would overtake.
	g := &gateClassifier{delayOf: func(b []byte) time.Duration {
		if b[0]%2 == 1 {
			return 3 * time.Millisecond
		}
		return 0
	}}
	src, sink, stop := runLive(Config{Workers: 3}, g, nil)
	for id := uint64(1); id <= 200; id++ {
		src.frames <- source.Frame{ID: id, Data: []byte{byte(id)}}
		time.Sleep(200 * time.Microsecond)
	}
	time.Sleep(50 * time.Millisecond)
	stop()
	last := uint64(0)
	for _, e := range sink.snapshot() {
		if e.Result.FrameID <= last {
			t.Fatalf("frame %d published after %d", e.Result.FrameID, last)
		}
		last = e.Result.FrameID
	}
	if last == 0 {
		t.Fatal("nothing published")
	}
}

// TestWorkerNotHeldByEarlierFrame: a worker whose frame finishes before an
// earlier, slower one goes on to the next frame at once; the results still
// come out in frame order.
func TestWorkerNotHeldByEarlierFrame(t *testing.T) {
	release := make(chan struct{})
	g := &gateClassifier{delayOf: func(b []byte) time.Duration {
		if b[0] == 1 {
			<-release // frame 1 is slow until the test says so
		}
		return 0
	}}
	src, sink, stop := runLive(Config{Workers: 2}, g, nil)
	for id := uint64(1); id <= 3; id++ {
		src.frames <- source.Frame{ID: id, Data: []byte{byte(id)}}
		want := int64(id)
		waitFor(t, fmt.Sprintf("frame %d taken", id), func() bool { return g.calls.Load() == want })
	}
	// Frames 2 and 3 were classified by the second worker while frame 1
	// held the first; nothing may be published before frame 1.
	if n := len(sink.snapshot()); n != 0 {
		t.Errorf("%d results published before frame 1", n)
	}
	close(release)
	waitFor(t, "three results", func() bool { return len(sink.snapshot()) == 3 })
	for i, e := range sink.snapshot() {
		if e.Result.FrameID != uint64(i+1) {
			t.Errorf("result %d is frame %d", i, e.Result.FrameID)
		}
	}
	stop()
}

func TestRequestAdmission(t *testing.T) {
	g := &gateClassifier{gate: make(chan struct{})}
	p := New(Config{MaxQueue: 2}, g, nil, nil, nil)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Request(context.Background(), source.Frame{Data: []byte{7}}); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, "two requests admitted", func() bool { return p.QueueDepth() == 2 })
	if _, err := p.Request(context.Background(), source.Frame{Data: []byte{7}}); !errors.Is(err, ErrOverloaded) {
		t.Errorf("third request: %v, want ErrOverloaded", err)
	}
	g.gate <- struct{}{}
	g.gate <- struct{}{}
	wg.Wait()
	if p.QueueDepth() != 0 {
		t.Errorf("queue depth %d after the requests", p.QueueDepth())
	}
	g.gate = nil
	if _, err := p.Request(context.Background(), source.Frame{}); !errors.Is(err, classify.ErrBadImage) {
		t.Errorf("empty frame: %v", err)
	}
}

func TestHealthy(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	advance := func(d time.Duration) { now.Add(int64(d)) }

	g := &gateClassifier{gate: make(chan struct{})}
	p := New(Config{StallTimeout: 10 * time.Second, Now: clock}, g, nil, nil, nil)
	if err := p.Healthy(); err != nil {
		t.Fatalf("idle pipeline unhealthy: %v", err)
	}
	advance(time.Hour)
	if err := p.Healthy(); err != nil {
		t.Fatalf("long-idle pipeline unhealthy: %v", err)
	}
	done := make(chan struct{})
	go func() {
		p.Request(context.Background(), source.Frame{Data: []byte{1}})
		close(done)
	}()
	waitFor(t, "classification started", func() bool { return g.calls.Load() == 1 })
	advance(5 * time.Second)
	if err := p.Healthy(); err != nil {
		t.Fatalf("5 s into a classification: %v", err)
	}
	advance(6 * time.Second)
	if err := p.Healthy(); err == nil {
		t.Fatal("a classification stuck for 11 s is healthy")
	}
	g.gate <- struct{}{}
	<-done
	if err := p.Healthy(); err != nil {
		t.Fatalf("after the stuck classification finished: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := New(Config{}, &gateClassifier{}, nil, NewMetrics(reg), nil)
	for range 3 {
		if _, err := p.Request(context.Background(), source.Frame{Source: "http", Kind: "http", Data: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	p.Request(context.Background(), source.Frame{Source: "http", Kind: "http"}) // rejected: empty
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]uint64{}
	rejected, classified := 0.0, 0.0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "edgeinfer_stage_duration_seconds":
				stages[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
			case "edgeinfer_frames_total":
				for _, l := range m.GetLabel() {
					switch {
					case l.GetName() == "outcome" && l.GetValue() == "rejected":
						rejected = m.GetCounter().GetValue()
					case l.GetName() == "outcome" && l.GetValue() == "classified":
						classified = m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	for _, st := range []string{"decode", "preprocess", "inference", "postprocess", "total"} {
		if stages[st] != 3 {
			t.Errorf("stage %s observed %d times, want 3", st, stages[st])
		}
	}
	if rejected != 1 || classified != 3 {
		t.Errorf("rejected %v, classified %v; want 1 and 3", rejected, classified)
	}
}

func TestWorkersFor(t *testing.T) {
	for _, c := range []struct{ interpreters, threads, cores, want int }{
		{2, 1, 2, 2}, // the cores are covered: no extra decoder
		{1, 2, 2, 1},
		{1, 1, 2, 2}, // a core would be idle: decode the next frame on it
		{4, 1, 4, 4},
		{1, 1, 1, 1},
		{3, 2, 2, 3},
	} {
		if got := WorkersFor(c.interpreters, c.threads, c.cores); got != c.want {
			t.Errorf("WorkersFor(%d, %d, %d) = %d, want %d", c.interpreters, c.threads, c.cores, got, c.want)
		}
	}
}
