package systemd

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// listen makes a notify socket like systemd's and points NOTIFY_SOCKET at
// it; the returned function gives the next message (failing the test after
// 10 s without one).
func listen(t *testing.T) func() string {
	t.Helper()
	next, _ := listenWithin(t)
	return next
}

// listenWithin is listen that also returns a function waiting at most d
// for a message (false if none came).
func listenWithin(t *testing.T) (next func() string, within func(d time.Duration) (string, bool)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	within = func(d time.Duration) (string, bool) {
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(d))
		n, err := conn.Read(buf)
		if err != nil {
			return "", false
		}
		return string(buf[:n]), true
	}
	next = func() string {
		t.Helper()
		msg, ok := within(10 * time.Second)
		if !ok {
			t.Fatal("no sd_notify message within 10 s")
		}
		return msg
	}
	return next, within
}

func TestNotifierMessages(t *testing.T) {
	next := listen(t)
	n := NewNotifier(nil)
	n.Ready("serving m1")
	if got := next(); got != "READY=1\nSTATUS=serving m1" {
		t.Errorf("Ready sent %q", got)
	}
	n.Reloading()
	if got := next(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("Reloading sent %q", got)
	}
	n.Status("serving m2")
	if got := next(); got != "STATUS=serving m2" {
		t.Errorf("Status sent %q", got)
	}
	n.Stopping()
	if got := next(); got != "STOPPING=1" {
		t.Errorf("Stopping sent %q", got)
	}
}

// TestWatchdogStallAndRecovery: keep-alives stop while the pipeline is
// stalled, the status line says so, and once it progresses again both the
// keep-alives and the status line from before the stall come back.
func TestWatchdogStallAndRecovery(t *testing.T) {
	next, within := listenWithin(t)
	t.Setenv("WATCHDOG_USEC", "20000") // keep-alives every 10 ms
	n := NewNotifier(nil)
	n.Ready("serving m1")
	if got := next(); got != "READY=1\nSTATUS=serving m1" {
		t.Fatalf("Ready sent %q", got)
	}

	stalled := runWatchdog(t, n, errors.New("no frame for 30s"))

	if got := next(); got != "STATUS=stalled: no frame for 30s" {
		t.Fatalf("on a stall the watchdog sent %q", got)
	}
	// Nothing more while stalled: no keep-alive, no repeated status
	// (ten keep-alive intervals).
	if got, ok := within(100 * time.Millisecond); ok {
		t.Fatalf("while stalled the watchdog sent %q", got)
	}
	stalled.Store(false)
	if got := next(); got != "STATUS=serving m1" {
		t.Fatalf("after the stall the status line is %q, want the one from before", got)
	}
	for range 3 {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("progressing: sent %q, want keep-alives", got)
		}
	}
}

func TestWatchdogDisabled(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	done := make(chan struct{})
	go func() {
		NewNotifier(nil).Watchdog(context.Background(), func() error { return nil })
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watchdog did not return without WATCHDOG_USEC")
	}
}

// TestWatchdogRecoveryWithoutStatus: with no status line set before the
// stall there is none to restore, and no empty STATUS= is sent.
func TestWatchdogRecoveryWithoutStatus(t *testing.T) {
	next := listen(t)
	t.Setenv("WATCHDOG_USEC", "20000")
	n := NewNotifier(nil)
	stalled := runWatchdog(t, n, errors.New("stuck"))
	if got := next(); got != "STATUS=stalled: stuck" {
		t.Fatalf("on a stall the watchdog sent %q", got)
	}
	stalled.Store(false)
	if got := next(); got != "WATCHDOG=1" {
		t.Fatalf("after the stall the watchdog sent %q, want a keep-alive", got)
	}
}

// runWatchdog runs n.Watchdog until the test ends, with a health check
// that fails with stallErr while the returned flag is set (it starts set).
func runWatchdog(t *testing.T, n *Notifier, stallErr error) *atomic.Bool {
	t.Helper()
	stalled := new(atomic.Bool)
	stalled.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		n.Watchdog(ctx, func() error {
			if stalled.Load() {
				return stallErr
			}
			return nil
		})
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return stalled
}
