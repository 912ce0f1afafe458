// Package replay is a source that cycles through the images of a folder at
// a fixed rate, for demos and benchmarks: it behaves like a camera without
// needing one, and gives the same frames on every run.
//
// All images are read into memory by New, so that playback measures the
// pipeline rather than the storage. Frames are handed over with
// source.Output.Offer. The Data of every frame of one file is the same
// slice, shared rather than copied to save an allocation per frame: the
// receiver must treat it as read-only, an exception to source.Frame's
// "the receiver owns it".
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgeinfer/edgeinfer/edge/source"
)

// Config configures a replay source. The zero value of every field
// except Name and Path means its default; see SetDefaults.
type Config struct {
	// Name names the source in frames, state and logs ("demo").
	Name string `mapstructure:"name"`
	// Path is a directory, whose images are played in name order, or a
	// single file, played whatever its extension.
	Path string `mapstructure:"path"`
	// FPS is the number of frames per second, at most 1000. Default 1.
	FPS float64 `mapstructure:"fps"`
	// Loop, true by default, cycles through the images for ever; false
	// plays them once. A pointer, because false must differ from unset.
	Loop *bool `mapstructure:"loop"`
	// Extensions are the file name extensions played from a directory,
	// without the dot and compared case-insensitively. Default: jpg jpeg
	// png gif bmp webp.
	Extensions []string `mapstructure:"extensions"`
	// MaxBytes bounds the total size of the images, all held in memory.
	// Default 256 MiB.
	MaxBytes int64 `mapstructure:"max_bytes"`
}

// SetDefaults fills the fields left at their zero value.
func (c *Config) SetDefaults() {
	if c.FPS == 0 {
		c.FPS = 1
	}
	if c.Loop == nil {
		c.Loop = new(true)
	}
	if len(c.Extensions) == 0 {
		c.Extensions = []string{"jpg", "jpeg", "png", "gif", "bmp", "webp"}
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 256 << 20
	}
}

// Validate reports every problem with c, each naming its key. It does not
// touch the file system; New does.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Name == "" {
		bad("name: must not be empty")
	}
	if c.Path == "" {
		bad("path: must not be empty")
	}
	if !(c.FPS > 0 && c.FPS <= 1000) { // also catches NaN
		bad("fps: must be > 0 and <= 1000")
	}
	for _, e := range c.Extensions {
		if strings.TrimPrefix(e, ".") == "" {
			bad("extensions: empty extension")
		}
	}
	if c.MaxBytes <= 0 {
		bad("max_bytes: must be > 0")
	}
	return errors.Join(errs...)
}

// image is one file played.
type image struct {
	name string
	data []byte // shared by all the frames of the file: never modified
}

// Source is a replay source. Its methods are safe for concurrent use, but
// Run must not be called again before it returned.
type Source struct {
	cfg    Config
	log    *slog.Logger
	images []image
	period time.Duration
	tr     *source.Tracker
}

// New returns a replay source for cfg, after filling its defaults,
// validating it and reading all its images. It fails if there are none or
// if together they exceed MaxBytes. A nil log means slog.Default().
func New(cfg Config, log *slog.Logger) (*Source, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replay %s: %w", cfg.Name, err)
	}
	images, err := load(cfg)
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", cfg.Name, err)
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Source{
		cfg:    cfg,
		log:    log.With("source", cfg.Name, "kind", source.KindReplay),
		images: images,
		period: time.Duration(math.Round(float64(time.Second) / cfg.FPS)),
		tr:     source.NewTracker(cfg.Name, source.KindReplay, fmt.Sprintf("%s at %g fps", cfg.Path, cfg.FPS)),
	}
	s.log.Debug("images loaded", "path", cfg.Path, "images", len(images))
	return s, nil
}

// load reads the images cfg names, in name order.
func load(cfg Config) ([]image, error) {
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	var names []string
	dir := cfg.Path
	if fi.IsDir() {
		entries, err := os.ReadDir(cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("path: %w", err)
		}
		exts := make(map[string]bool)
		for _, e := range cfg.Extensions {
			exts["."+strings.ToLower(strings.TrimPrefix(e, "."))] = true
		}
		for _, e := range entries { // sorted by name
			if n := e.Name(); e.Type().IsRegular() && !strings.HasPrefix(n, ".") && exts[strings.ToLower(filepath.Ext(n))] {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("path: no %s images in %s", strings.Join(cfg.Extensions, "/"), cfg.Path)
		}
	} else {
		dir, names = filepath.Dir(cfg.Path), []string{filepath.Base(cfg.Path)}
	}

	images := make([]image, 0, len(names))
	left := cfg.MaxBytes
	for _, name := range names {
		data, ok, err := readAtMost(filepath.Join(dir, name), left)
		switch {
		case err != nil:
			return nil, fmt.Errorf("path: %w", err)
		case !ok:
			return nil, fmt.Errorf("max_bytes: the images total more than %d bytes", cfg.MaxBytes)
		case len(data) == 0:
			return nil, fmt.Errorf("path: %s is empty", filepath.Join(dir, name))
		}
		left -= int64(len(data))
		images = append(images, image{name: name, data: data})
	}
	return images, nil
}

// readAtMost reads the file at path if it holds at most limit bytes,
// without reading more than limit+1 of them.
func readAtMost(path string, limit int64) (data []byte, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, false, err
	}
	return data, int64(len(data)) <= limit, nil
}

// Name returns the configured name.
func (s *Source) Name() string { return s.cfg.Name }

// Kind returns source.KindReplay.
func (s *Source) Kind() string { return source.KindReplay }

// State returns the source's current state: Running while playing, Idle
// once a non-looping replay has played every image.
func (s *Source) State() source.State { return s.tr.State() }

// Run offers an image to out at every tick of FPS, the first at once,
// until ctx is done; then it returns nil. When Loop is false it goes Idle
// after the last image and waits for ctx rather than returning early, so
// that a supervisor does not take the end of the replay for a failure.
func (s *Source) Run(ctx context.Context, out source.Output) error {
	defer s.tr.Set(source.Stopped)
	t := time.NewTicker(s.period)
	defer t.Stop()
	var id uint64
	for i := 0; ; i++ {
		if i == len(s.images) {
			if !*s.cfg.Loop {
				s.tr.Set(source.Idle)
				<-ctx.Done()
				return nil
			}
			i = 0
		}
		id++
		out.Offer(source.Frame{
			Source:     s.cfg.Name,
			Kind:       source.KindReplay,
			ID:         id,
			RequestID:  s.images[i].name,
			CapturedAt: time.Now(),
			Data:       s.images[i].data,
		})
		s.tr.Frame()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
