package tflite

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// invokeThreads counts this process's threads named tflite-invoke.
func invokeThreads(t *testing.T) int {
	t.Helper()
	comms, err := filepath.Glob("/proc/self/task/*/comm")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err == nil && strings.TrimSpace(string(b)) == "tflite-invoke" {
			n++
		}
	}
	return n
}

// TestInvokerThreads: every interpreter has its own inference thread while
// it lives, and Close stops it (including after runs, and when several
// interpreters run at once).
func TestInvokerThreads(t *testing.T) {
	m := loadFile(t, mnistPath)
	before := invokeThreads(t)
	var its []*Interpreter
	for range 5 {
		it, err := m.NewInterpreter(Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		its = append(its, it)
	}
	if got := invokeThreads(t) - before; got != 5 {
		t.Fatalf("%d inference threads for 5 interpreters", got)
	}
	var wg sync.WaitGroup
	for _, it := range its {
		wg.Go(func() {
			for range 50 {
				if err := it.Invoke(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, it := range its {
		it.Close()
		it.Close() // idempotent
	}
	// A joined thread can stay listed in /proc for a moment after it
	// returned; one that was not stopped stays for good.
	deadline := time.Now().Add(10 * time.Second)
	for invokeThreads(t)-before != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d inference threads left after Close", invokeThreads(t)-before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := its[0].Invoke(); !errors.Is(err, ErrClosed) {
		t.Errorf("Invoke after Close: %v, want ErrClosed", err)
	}
}

// TestInvokeResultsRepeat: the same input run through the inference
// thread gives the same output every time, from several goroutines in
// turn (the hand-over carries the tensors' memory both ways).
func TestInvokeResultsRepeat(t *testing.T) {
	it := interpreter(t, mobilenetPath, Options{Threads: 1})
	in := it.Input()
	pixels := make([]byte, in.Shape[1]*in.Shape[2]*in.Shape[3])
	var first []float32
	for round := range 6 {
		for i := range pixels {
			pixels[i] = byte(i*7 + round%2*101) // two different inputs, alternately
		}
		if err := it.SetPixels(pixels, Normalization{}); err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- it.Invoke() }()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		got, err := it.Scores(0, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case round == 0:
			first = got
		case round%2 == 0 && !equalFloats(got, first):
			t.Fatalf("round %d: scores differ from round 0 for the same input", round)
		case round%2 == 1 && equalFloats(got, first):
			t.Fatalf("round %d: a different input gave round 0's scores", round)
		}
	}
}

// TestInvokeWaitsWhenTheEventfdFails: should reading the end-of-run
// eventfd fail, Invoke still returns only once the run has ended (with
// its outputs), and the next runs stay in step.
func TestInvokeWaitsWhenTheEventfdFails(t *testing.T) {
	it := interpreter(t, mobilenetPath, Options{Threads: 1})
	in := it.Input()
	input := func(seed int) []byte {
		p := make([]byte, in.Shape[1]*in.Shape[2]*in.Shape[3])
		for i := range p {
			p[i] = byte(i*seed + seed)
		}
		return p
	}
	run := func(pixels []byte) []float32 { return runScores(t, it, pixels, Normalization{}, 0) }
	a, b := input(7), input(13)
	wantA, wantB := run(a), run(b)
	if equalFloats(wantA, wantB) {
		t.Fatal("two inputs gave the same scores; the test cannot tell runs apart")
	}

	real := it.inv.done
	broken, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	broken.Close() // reads fail at once
	it.inv.done = broken
	if got := run(a); !equalFloats(got, wantA) {
		t.Error("with a failing eventfd, Invoke returned before its run ended")
	}
	it.inv.done = real
	for range 3 {
		if got := run(b); !equalFloats(got, wantB) {
			t.Fatal("after a failed eventfd read, runs are out of step")
		}
		if got := run(a); !equalFloats(got, wantA) {
			t.Fatal("after a failed eventfd read, runs are out of step")
		}
	}
}
