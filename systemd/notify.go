// Package systemd tells systemd how the daemon is doing over the
// sd_notify protocol (through github.com/coreos/go-systemd/v22/daemon):
// READY=1 once the model is loaded and warmed up, RELOADING=1 around
// reloads, STATUS= lines, STOPPING=1 at shutdown, and WATCHDOG=1 only
// while the pipeline makes progress, so that systemd restarts a daemon
// that is alive but stuck. Without NOTIFY_SOCKET every call is a no-op.
//
// The folder also holds the unit file and the default configuration that
// scripts/install.sh installs.
package systemd

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends sd_notify messages.
type Notifier struct {
	log *slog.Logger

	mu     sync.Mutex
	status string // the last status line set, shown again after a stall
}

// NewNotifier returns a Notifier; log may be nil.
func NewNotifier(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{log: log}
}

func (n *Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// Ready says the daemon serves, with a status line.
func (n *Notifier) Ready(status string) { n.sendStatus("READY=1\n", status) }

// Reloading says a reload started. MONOTONIC_USEC lets systemd (253 and
// later, Type=notify-reload) match it with the READY=1 that follows.
func (n *Notifier) Reloading() {
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
}

// Status sets the one-line status systemctl shows.
func (n *Notifier) Status(status string) { n.sendStatus("", status) }

// sendStatus sends prefix and a status line and keeps the line for after
// a stall; under the lock, so that a restore cannot overtake a newer line.
func (n *Notifier) sendStatus(prefix, status string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.status = status
	n.send(prefix + "STATUS=" + status)
}

// restoreStatus sends the last status line again, if there is one.
func (n *Notifier) restoreStatus() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.status != "" {
		n.send("STATUS=" + n.status)
	}
}

// Stopping says shutdown began.
func (n *Notifier) Stopping() { n.send("STOPPING=1") }

// Watchdog sends WATCHDOG=1 at half the interval systemd asked for
// (WATCHDOG_USEC), but only while healthy returns nil; when it does not,
// the keep-alives stop, the status line says why, and systemd's watchdog
// restarts the service. If progress resumes first, the keep-alives and
// the status line from before the stall come back. It returns when ctx
// ends, at once if the watchdog is not enabled.
func (n *Notifier) Watchdog(ctx context.Context, healthy func() error) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	stalled := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := healthy(); err != nil {
			if !stalled {
				n.log.Error("pipeline stalled: withholding the watchdog keep-alive", "err", err)
				n.send("STATUS=stalled: " + err.Error())
			}
			stalled = true
			continue
		}
		if stalled {
			n.log.Info("pipeline progressing again")
			n.restoreStatus()
			stalled = false
		}
		n.send("WATCHDOG=1")
	}
}
