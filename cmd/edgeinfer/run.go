package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/edgeinfer/edgeinfer/edge/config"
	"github.com/edgeinfer/edgeinfer/edge/daemon"
	"github.com/edgeinfer/edgeinfer/edge/imageio"
	"github.com/edgeinfer/edgeinfer/systemd"
	"github.com/edgeinfer/edgeinfer/tflite"
)

func newRunCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "run [--config FILE] [flags]",
		Short: "Run the daemon: classify images from the configured sources and serve the HTTP API",
		Long: `Run the daemon with the configuration in --config (default ` + config.DefaultPath + `).
Keys can be overridden by EDGEINFER_<KEY> environment variables (EDGEINFER_HTTP_LISTEN=:9090)
and by the flags below. SIGHUP (or POST /api/v1/reload) reloads configuration and model;
SIGTERM and SIGINT shut down in order.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := configPath
			if !cmd.Flags().Changed("config") {
				if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
					path = "" // no file: flags and environment only
				}
			}
			return runDaemon(cmd.Context(), path, cmd, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", config.DefaultPath, "configuration file (YAML)")
	f.String("model", "", "model folder, manifest or .tflite file (key: model)")
	f.String("device-id", "", "device id (key: device_id)")
	f.String("http-listen", "", "HTTP listen address, host:port (key: http.listen)")
	f.String("log-level", "", "debug, info, warn or error (key: log.level)")
	f.String("log-format", "", "text or json (key: log.format)")
	return cmd
}

// runDaemon wires the daemon's parts together and runs it until ctx ends.
func runDaemon(ctx context.Context, path string, cmd *cobra.Command, stderr io.Writer) error {
	// Read the configuration once here for the logger; daemon.New reads
	// and validates it again and reports its errors.
	logCfg := config.Defaults().Log
	if c, err := config.Load(path, cmd.Flags()); err == nil {
		logCfg = c.Log
	}
	log := newLogger(stderr, logCfg)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default: // a reload is already pending
				}
			}
		}
	}()

	d, err := daemon.New(ctx, daemon.Options{
		ConfigPath: path,
		Flags:      cmd.Flags(),
		Loader:     loadTFLite,
		Plugins:    []daemon.Plugin{mqttPlugin},
		Notifier:   systemd.NewNotifier(log),
		Version:    version,
		Engine:     tflite.EngineName(),
		Log:        log,
	})
	if err != nil {
		return err
	}
	return d.Run(ctx, reload)
}

// engineShape picks interpreters x threads when the config leaves them
// at 0: one single-threaded interpreter per core, at most 4. A daemon
// serves concurrent work (cameras, several HTTP clients, MQTT), and
// measured on a 2-core machine with XNNPACK (make bench) that shape
// classifies the most: 2 x 1 gives 123 classifications/s in-process, 108
// HTTP requests/s at concurrency 2 and 108 camera frames/s, against 110,
// 87 and 93 for 1 x 2, whose two threads stall whenever a decode takes one
// of their cores. A single request waits longer (mobilenet Invoke 14.5 ms
// against 7.6 ms), which is why the CLI, classifying one image at a time,
// keeps 1 x cores (it asks for 1 interpreter). A thread count alone spreads
// the cores over that many threads per interpreter. Both the CLI and the
// daemon resolve their shape here (openModel).
func engineShape(interpreters, threads, cores int) (int, int) {
	cores = min(max(cores, 1), 4)
	switch {
	case interpreters == 0 && threads == 0:
		return cores, 1
	case interpreters == 0:
		return max(1, cores/threads), threads
	case threads == 0:
		return interpreters, max(1, cores/interpreters)
	}
	return interpreters, threads
}

// loadTFLite is the daemon's Loader over TensorFlow Lite.
func loadTFLite(ctx context.Context, cfg *config.Config) (daemon.Model, error) {
	lm, err := openModel(engineOptions{
		Model:        cfg.Model,
		Labels:       cfg.Labels,
		Threads:      cfg.Engine.Threads,
		Interpreters: cfg.Engine.Interpreters,
		NoXNNPACK:    !cfg.Engine.XNNPACK,
		TopK:         cfg.Classify.Top,
		Threshold:    float32(cfg.Classify.Threshold),
		Limits:       imageio.Limits{MaxBytes: cfg.Limits.MaxImageBytes, MaxPixels: cfg.Limits.MaxPixels},
	})
	if err != nil {
		return nil, err
	}
	if err := lm.selfTest(ctx); err != nil {
		lm.Close()
		return nil, err
	}
	return lm, nil
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(c.Level))); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
