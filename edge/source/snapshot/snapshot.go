// Package snapshot is a source that fetches a JPEG from an HTTP(S) URL at
// a fixed interval: the "snapshot URL" most IP cameras have, which is
// cheaper for them and for the board than decoding a video stream when a
// frame every few seconds is enough.
//
// Frames are handed over with source.Output.Offer. A failed fetch (an
// error status, a timeout, an empty or oversized body) moves the source to
// Backoff and doubles the wait before the next attempt, up to 8 times the
// interval; the first success resets it. Credentials, whether configured
// or in the URL, are sent with HTTP basic authentication and kept out of
// logs, errors and State.
package snapshot

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/edgeinfer/edgeinfer/edge/source"
)

// maxBackoff is how many intervals the wait after failures grows to.
const maxBackoff = 8

// Source is a snapshot source. Its methods are safe for concurrent use,
// but Run must not be called again before it returned.
type Source struct {
	cfg    Config
	url    string // cfg.URL without its userinfo
	log    *slog.Logger
	client *http.Client
	tr     *source.Tracker
}

// New returns a snapshot source for cfg, after filling its defaults and
// validating it. A nil log means slog.Default().
func New(cfg Config, log *slog.Logger) (*Source, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", cfg.Name, err)
	}
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: url: %w", cfg.Name, err)
	}
	if u.User != nil && cfg.Username == "" && cfg.Password == "" {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	// Requests go to the URL without userinfo, so that the errors of
	// net/http, which quote the URL, cannot leak it.
	u.User = nil
	if log == nil {
		log = slog.Default()
	}
	log = log.With("source", cfg.Name, "kind", source.KindSnapshot)
	if cfg.InsecureSkipVerify {
		log.Warn("TLS certificate verification disabled", "url", u.String())
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify},
		// One camera, one request at a time: one connection to keep.
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &Source{
		cfg:    cfg,
		url:    u.String(),
		log:    log,
		client: &http.Client{Transport: transport},
		tr:     source.NewTracker(cfg.Name, source.KindSnapshot, u.String()),
	}, nil
}

// Name returns the configured name.
func (s *Source) Name() string { return s.cfg.Name }

// Kind returns source.KindSnapshot.
func (s *Source) Kind() string { return source.KindSnapshot }

// State returns the source's current state.
func (s *Source) State() source.State { return s.tr.State() }

// Run fetches a snapshot every Interval and offers it to out until ctx is
// done, then returns nil. Failures are reported in State and retried.
func (s *Source) Run(ctx context.Context, out source.Output) error {
	defer s.tr.Set(source.Stopped)
	defer s.client.CloseIdleConnections()
	var id uint64
	failures := 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		start := time.Now()
		data, at, err := s.fetch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			if failures == 1 {
				s.log.Warn("snapshot failed; backing off", "err", err)
			}
			s.tr.Fail(err)
			t.Reset(backoff(s.cfg.Interval, failures))
			continue
		}
		if failures > 0 {
			s.log.Info("snapshot recovered", "failures", failures)
			failures = 0
		}
		id++
		out.Offer(source.Frame{
			Source:     s.cfg.Name,
			Kind:       source.KindSnapshot,
			ID:         id,
			CapturedAt: at,
			Data:       data,
		})
		s.tr.Frame()
		// Keep to the interval however long the fetch took.
		t.Reset(max(0, s.cfg.Interval-time.Since(start)))
	}
}

// backoff returns the wait after the given number of consecutive
// failures: interval, then doubling up to maxBackoff intervals.
func backoff(interval time.Duration, failures int) time.Duration {
	d := interval
	for i := 1; i < failures && d < maxBackoff*interval; i++ {
		d *= 2
	}
	return min(d, maxBackoff*interval)
}

// fetch gets one snapshot, returning it with the time its response
// arrived.
func (s *Source) fetch(ctx context.Context) ([]byte, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	data, at, err := s.get(ctx)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Name the cause rather than a bare "context deadline exceeded".
		return nil, at, s.errorf("no complete response within timeout %s: %w", s.cfg.Timeout, context.DeadlineExceeded)
	}
	return data, at, err
}

func (s *Source) get(ctx context.Context) ([]byte, time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("snapshot %s: %w", s.cfg.Name, err)
	}
	if s.cfg.Username != "" || s.cfg.Password != "" {
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	}
	req.Header.Set("Accept", "image/jpeg, image/*;q=0.9")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("snapshot %s: %w", s.cfg.Name, err)
	}
	defer resp.Body.Close()
	at := time.Now()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, at, s.errorf("status %s", resp.Status)
	}
	if resp.ContentLength > s.cfg.MaxBytes {
		return nil, at, s.errorf("body of %d bytes is larger than max_bytes (%d)", resp.ContentLength, s.cfg.MaxBytes)
	}
	// One byte more than allowed tells an oversized body from one that
	// fits exactly, without reading all of it.
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxBytes+1))
	switch {
	case err != nil:
		return nil, at, s.errorf("reading body: %w", err)
	case int64(len(data)) > s.cfg.MaxBytes:
		return nil, at, s.errorf("body is larger than max_bytes (%d)", s.cfg.MaxBytes)
	case len(data) == 0:
		return nil, at, s.errorf("empty body")
	}
	return data, at, nil
}

// errorf returns an error naming the source and the (redacted) URL.
func (s *Source) errorf(format string, args ...any) error {
	return fmt.Errorf("snapshot %s: GET %s: "+format, append([]any{s.cfg.Name, s.url}, args...)...)
}
