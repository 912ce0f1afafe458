// Package daemon runs edgeinfer as a service: it loads the configuration
// and the model, runs the pipeline with its sources and sinks, serves the
// HTTP API, talks to systemd, reloads on request and shuts down in order.
//
// The model engine is injected (Loader), so this package stays pure Go;
// cmd/edgeinfer provides the TensorFlow Lite one.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"

	"github.com/edgeinfer/edgeinfer/edge"
	"github.com/edgeinfer/edgeinfer/edge/config"
	"github.com/edgeinfer/edgeinfer/edge/httpapi"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/edge/source/camera"
	"github.com/edgeinfer/edgeinfer/edge/source/folder"
	"github.com/edgeinfer/edgeinfer/edge/source/replay"
	"github.com/edgeinfer/edgeinfer/edge/source/snapshot"
	"github.com/edgeinfer/edgeinfer/edge/status"
)

// Model is a loaded, warmed-up and self-tested model.
type Model interface {
	Classify(ctx context.Context, data []byte) (edge.Result, error)
	Status() httpapi.ModelStatus
	// Close releases the model once nothing uses it any more.
	Close() error
}

// Loader loads the model cfg names. It must self-test the model before
// returning it: a model that loads but gives wrong answers must not
// replace a working one on reload.
type Loader func(ctx context.Context, cfg *config.Config) (Model, error)

// Notifier reports to the service manager (package systemd).
type Notifier interface {
	Ready(status string)
	Reloading()
	Status(status string)
	Stopping()
	Watchdog(ctx context.Context, healthy func() error)
}

// Plugin adds a transport (MQTT) built from the configuration around the
// pipeline: it may return a sink for the pipeline's events, a service run
// alongside the daemon (started before the sources, stopped after them, so
// that the last results still go out), and a status for the page. A nil
// Extension means the plugin is not configured.
type Plugin func(cfg *config.Config, p *pipeline.Pipeline, reg prometheus.Registerer, log *slog.Logger) (*Extension, error)

// Extension is what a configured Plugin contributes.
type Extension struct {
	Sink   pipeline.Sink
	Run    func(ctx context.Context) error
	Status func() edge.BrokerStatus
	// Close releases what the plugin holds once Run has returned (an
	// embedded broker); may be nil.
	Close func() error
}

// Options configure a Daemon.
type Options struct {
	// ConfigPath is the YAML file ("" for none: flags and environment only).
	ConfigPath string
	// Flags are the command's flags; those set override the file.
	Flags    *pflag.FlagSet
	Loader   Loader
	Notifier Notifier
	Version  string
	Engine   string
	Log      *slog.Logger
	// Plugins add transports that need the pipeline (MQTT); see Plugin.
	Plugins []Plugin
	// ShutdownTimeout bounds the orderly shutdown (default 5s).
	ShutdownTimeout time.Duration
}

// Daemon is one running edgeinfer service.
type Daemon struct {
	opts     Options
	cfg      config.Config
	log      *slog.Logger
	started  time.Time
	model    *modelHolder
	pipeline *pipeline.Pipeline
	recorder *status.Recorder
	registry *prometheus.Registry
	http     *http.Server
	listener net.Listener
	reloads  *prometheus.CounterVec
	exts     []*Extension

	reloadMu sync.Mutex // one reload at a time
	mu       sync.Mutex
	reload   httpapi.ReloadStatus
	running  bool
}

// New loads the configuration and the model and builds every part. Errors
// here are configuration or model errors: the daemon cannot start.
func New(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	cfg, err := loadConfig(opts.ConfigPath, opts.Flags)
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, cfg: cfg, log: opts.Log, started: time.Now(), registry: prometheus.NewRegistry()}
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeinfer_reloads_total", Help: "Reloads of configuration and model by outcome.",
	}, []string{"outcome"})
	d.registry.MustRegister(d.reloads)

	m, err := opts.Loader(ctx, &d.cfg)
	if err != nil {
		return nil, err
	}
	d.model = newModelHolder(m)
	d.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "edgeinfer_model_loaded_timestamp_seconds", Help: "Unix time the model in use was loaded.",
	}, func() float64 { return float64(d.model.info().LoadedAt.UnixNano()) / 1e9 }))

	d.recorder = status.NewRecorder(nil)
	sinks := []pipeline.Sink{d.recorder, logSink{d.log}}
	engine := m.Status()
	d.pipeline = pipeline.New(pipeline.Config{
		DeviceID:     cfg.DeviceID,
		MaxQueue:     cfg.HTTP.MaxQueue,
		StallTimeout: cfg.Watchdog.StallTimeout,
		Workers:      pipeline.WorkersFor(engine.Interpreters, engine.Threads, runtime.NumCPU()),
	}, d.model, sinks, pipeline.NewMetrics(d.registry), d.log)
	d.registry.MustRegister(pipeline.NewSourceCollector(d.pipeline.Sources))
	if err := d.addSources(); err != nil {
		d.model.close()
		return nil, err
	}
	for _, plug := range opts.Plugins {
		ext, err := plug(&d.cfg, d.pipeline, d.registry, d.log)
		if err != nil {
			d.closeExtensions()
			d.model.close()
			return nil, err
		}
		if ext == nil {
			continue
		}
		if ext.Sink != nil {
			d.pipeline.AddSink(ext.Sink)
		}
		d.exts = append(d.exts, ext)
	}
	if cfg.HTTP.Listen != "" {
		if err := d.setupHTTP(); err != nil {
			d.closeExtensions()
			d.model.close()
			return nil, err
		}
	}
	return d, nil
}

func (d *Daemon) closeExtensions() {
	for _, ext := range d.exts {
		if ext.Close != nil {
			if err := ext.Close(); err != nil {
				d.log.Warn("closing", "err", err)
			}
		}
	}
}

// loadConfig loads and validates, and fills the device id.
func loadConfig(path string, fs *pflag.FlagSet) (config.Config, error) {
	cfg, err := config.Load(path, fs)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if cfg.DeviceID == "" {
		cfg.DeviceID, _ = os.Hostname()
	}
	return cfg, nil
}

func (d *Daemon) addSources() error {
	if err := addAll(d.pipeline, d.cfg.Cameras, camera.New, d.log); err != nil {
		return err
	}
	if err := addAll(d.pipeline, d.cfg.Folders, folder.New, d.log); err != nil {
		return err
	}
	if err := addAll(d.pipeline, d.cfg.Snapshots, snapshot.New, d.log); err != nil {
		return err
	}
	return addAll(d.pipeline, d.cfg.Replays, replay.New, d.log)
}

// addAll makes a source of each configuration and adds it to p. Each
// source names itself in its log lines.
func addAll[C any, S pipeline.Source](p *pipeline.Pipeline, cfgs []C, newSource func(C, *slog.Logger) (S, error), log *slog.Logger) error {
	for _, c := range cfgs {
		s, err := newSource(c, log)
		if err != nil {
			return err
		}
		p.AddSource(s)
	}
	return nil
}

func (d *Daemon) setupHTTP() error {
	token, err := d.cfg.HTTPToken()
	if err != nil {
		return err
	}
	srv, err := httpapi.New(httpapi.Config{
		Token:          token,
		MaxBodyBytes:   d.cfg.Limits.MaxImageBytes,
		RequestTimeout: d.cfg.HTTP.RequestTimeout,
	}, d.pipeline, d, d.recorder, d.registry, d.registry, d.log)
	if err != nil {
		return err
	}
	// Listen now, so that a port in use fails the start, not later.
	d.listener, err = net.Listen("tcp", d.cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	d.http = httpapi.NewHTTPServer(d.cfg.HTTP.Listen, srv, d.log)
	return nil
}

// Addr is the HTTP server's address, or nil without one.
func (d *Daemon) Addr() net.Addr {
	if d.listener == nil {
		return nil
	}
	return d.listener.Addr()
}

// Run serves until ctx ends, reloading on every receive from reload, then
// shuts down in order: HTTP (finishing requests in flight), sources and
// pipeline, then the model.
func (d *Daemon) Run(ctx context.Context, reload <-chan struct{}) error {
	d.mu.Lock()
	d.running = true
	d.mu.Unlock()
	// Extensions (MQTT) run until after the pipeline has stopped, so the
	// last results are still published.
	ectx, stopExtensions := context.WithCancel(context.WithoutCancel(ctx))
	defer stopExtensions()
	var ewg sync.WaitGroup
	for _, ext := range d.exts {
		if ext.Run == nil {
			continue
		}
		ewg.Add(1)
		go func() {
			defer ewg.Done()
			if err := ext.Run(ectx); err != nil {
				d.log.Error("extension stopped", "err", err)
			}
		}()
	}
	pctx, stopPipeline := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = d.pipeline.Run(pctx)
	}()
	go func() {
		defer wg.Done()
		d.opts.Notifier.Watchdog(pctx, d.Ready)
	}()
	httpErr := make(chan error, 1)
	if d.http != nil {
		go func() {
			if err := d.http.Serve(d.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				httpErr <- err
			}
		}()
	}
	info := d.model.info()
	d.log.Info("edgeinfer ready", "device_id", d.cfg.DeviceID, "model", info.Name, "delegate", info.Delegate, "http", d.Addr(), "sources", len(d.pipeline.Sources()))
	d.opts.Notifier.Ready(d.statusLine())

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-httpErr:
			runErr = fmt.Errorf("http: %w", err)
			break loop
		case <-reload:
			if err := d.Reload(ctx); err != nil {
				d.log.Error("reload failed; still serving the previous model", "err", err)
			}
		}
	}

	d.log.Info("shutting down")
	d.opts.Notifier.Stopping()
	deadline, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.ShutdownTimeout)
	defer cancel()
	if d.http != nil {
		if err := d.http.Shutdown(deadline); err != nil {
			d.log.Warn("http shutdown", "err", err)
			d.http.Close()
		}
	}
	stopPipeline()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-deadline.Done():
		d.log.Warn("sources did not stop in time")
	}
	stopExtensions()
	edone := make(chan struct{})
	go func() { ewg.Wait(); close(edone) }()
	select {
	case <-edone:
	case <-deadline.Done():
		d.log.Warn("extensions did not stop in time")
	}
	d.closeExtensions()
	if err := d.model.close(); err != nil {
		d.log.Warn("closing the model", "err", err)
	}
	d.log.Info("stopped")
	return runErr
}

// Reload reads the configuration again and loads the model it names. The
// new model is warmed up and self-tested by the loader before it replaces
// the old one; requests in flight finish on the old one. A failure keeps
// the old model and is reported on the status page.
func (d *Daemon) Reload(ctx context.Context) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.opts.Notifier.Reloading()
	// The status line names the model in use after the reload, not before.
	defer func() { d.opts.Notifier.Ready(d.statusLine()) }()
	err := d.reloadModel(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if err != nil {
		d.reload.LastError, d.reload.ErrorAt = err.Error(), now
		d.reloads.WithLabelValues("error").Inc()
		return err
	}
	d.reload.Count++
	d.reload.LastAt, d.reload.LastError = now, ""
	d.reloads.WithLabelValues("success").Inc()
	return nil
}

func (d *Daemon) reloadModel(ctx context.Context) error {
	cfg, err := loadConfig(d.opts.ConfigPath, d.opts.Flags)
	if err != nil {
		return err
	}
	for _, k := range restartOnlyChanges(d.cfg, cfg) {
		d.log.Warn("config change needs a restart to apply", "key", k)
	}
	m, err := d.opts.Loader(ctx, &cfg)
	if err != nil {
		return err
	}
	d.model.swap(m, d.log)
	d.mu.Lock()
	d.cfg.Model, d.cfg.Labels, d.cfg.Engine, d.cfg.Classify = cfg.Model, cfg.Labels, cfg.Engine, cfg.Classify
	d.mu.Unlock()
	info := m.Status()
	d.log.Info("model reloaded", "model", info.Name, "sha256", info.SHA256, "delegate", info.Delegate)
	return nil
}

// restartOnlyChanges lists changed keys a reload cannot apply.
func restartOnlyChanges(old, cur config.Config) []string {
	var keys []string
	for _, c := range []struct {
		key  string
		a, b any
	}{
		{"device_id", old.DeviceID, cur.DeviceID},
		{"http", old.HTTP, cur.HTTP},
		{"limits", old.Limits, cur.Limits},
		{"log", old.Log, cur.Log},
		{"watchdog", old.Watchdog, cur.Watchdog},
		{"cameras", old.Cameras, cur.Cameras},
		{"folders", old.Folders, cur.Folders},
		{"snapshots", old.Snapshots, cur.Snapshots},
		{"replays", old.Replays, cur.Replays},
		{"mqtt", old.MQTT, cur.MQTT},
	} {
		if !reflect.DeepEqual(c.a, c.b) {
			keys = append(keys, c.key)
		}
	}
	return keys
}

// Ready reports nil when the daemon serves and its pipeline progresses.
func (d *Daemon) Ready() error {
	d.mu.Lock()
	running := d.running
	d.mu.Unlock()
	if !running {
		return errors.New("starting")
	}
	return d.pipeline.Healthy()
}

// Status implements httpapi.Daemon.
func (d *Daemon) Status() httpapi.Status {
	ready := d.Ready()
	d.mu.Lock()
	reload, deviceID := d.reload, d.cfg.DeviceID
	d.mu.Unlock()
	st := httpapi.Status{
		DeviceID:  deviceID,
		Version:   d.opts.Version,
		Engine:    d.opts.Engine,
		StartedAt: d.started.UTC(),
		UptimeS:   time.Since(d.started).Seconds(),
		Ready:     ready == nil,
		Health:    "ok",
		Model:     d.model.info(),
		Reload:    reload,
		Sources:   d.pipeline.Sources(),
		Stats:     d.recorder.Snapshot(),
		Queue:     httpapi.QueueStatus{Depth: d.pipeline.QueueDepth(), Max: d.cfg.HTTP.MaxQueue},
	}
	if ready != nil {
		st.Health = ready.Error()
	}
	for _, ext := range d.exts {
		if ext.Status != nil {
			b := ext.Status()
			st.MQTT = &b
		}
	}
	return st
}

func (d *Daemon) statusLine() string {
	info := d.model.info()
	return fmt.Sprintf("serving %s on %d source(s)", info.Name, len(d.pipeline.Sources()))
}

// logSink logs rejected inputs and failures at debug and warn level.
type logSink struct{ log *slog.Logger }

func (l logSink) Publish(e pipeline.Event) {
	if e.Err == nil {
		return
	}
	l.log.Warn("frame not classified", "source", e.Frame.Source, "request_id", e.Frame.RequestID, "frame_id", e.Frame.ID, "err", e.Err)
}
