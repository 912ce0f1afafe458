// Package folder is a source that classifies each image file that appears
// in a directory, once.
//
// The directory is polled rather than watched with inotify: polling works
// the same on SD cards, network mounts and bind mounts, where change
// notifications are missing or unreliable. A file is read only once its
// size and modification time have stayed the same for Config.Settle, so
// files still being copied in are left alone; names starting with "." or
// ending in ".tmp" or ".part" are never taken, which lets writers that
// write-then-rename stay invisible until they are done.
//
// Files are handed over with source.Output.Submit, one at a time in name
// order. A classified file is then kept, moved or deleted (Config.After);
// one that stays in the directory is recorded in a state file, so that a
// restart does not classify it again. A file that is not an image, or is
// larger than Config.MaxBytes, is recorded and left in place whatever
// After says, so that it can be looked at and is not retried for ever. A
// file replaced by another with the same name is classified again.
package folder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/edgeinfer/edgeinfer/edge/classify"
	"github.com/edgeinfer/edgeinfer/edge/source"
)

// errChanged means a file changed between the listing that found it
// settled and its reading: it is being written again.
var errChanged = errors.New("file changed while being read")

// Source is a folder source. Its methods are safe for concurrent use, but
// Run must not be called again before it returned.
type Source struct {
	cfg  Config
	log  *slog.Logger
	exts map[string]bool
	tr   *source.Tracker
}

// New returns a folder source for cfg, after filling its defaults and
// validating it. Path must be a directory; MoveTo is created if missing.
// A nil log means slog.Default().
func New(cfg Config, log *slog.Logger) (*Source, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("folder %s: %w", cfg.Name, err)
	}
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("folder %s: path: %w", cfg.Name, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("folder %s: path: %s is not a directory", cfg.Name, cfg.Path)
	}
	if cfg.After == AfterMove {
		if err := os.MkdirAll(cfg.MoveTo, 0o755); err != nil {
			return nil, fmt.Errorf("folder %s: move_to: %w", cfg.Name, err)
		}
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Source{
		cfg:  cfg,
		log:  log.With("source", cfg.Name, "kind", source.KindFolder),
		exts: make(map[string]bool),
		tr:   source.NewTracker(cfg.Name, source.KindFolder, cfg.Path),
	}
	for _, e := range cfg.Extensions {
		s.exts["."+strings.ToLower(strings.TrimPrefix(e, "."))] = true
	}
	return s, nil
}

// Name returns the configured name.
func (s *Source) Name() string { return s.cfg.Name }

// Kind returns source.KindFolder.
func (s *Source) Kind() string { return source.KindFolder }

// State returns the source's current state. It is Running while there
// are files to classify, Idle when every file present has been done, and
// Backoff while the directory cannot be read.
func (s *Source) State() source.State { return s.tr.State() }

// Run polls the directory and submits new files to out until ctx is done,
// then returns nil. Failures (an unreadable directory, a pipeline error)
// are reported in State and retried at the next poll, not returned.
func (s *Source) Run(ctx context.Context, out source.Output) error {
	defer s.tr.Set(source.Stopped)
	r := &run{Source: s, out: out, seen: make(map[string]observation)}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		r.poll(ctx)
		t.Reset(s.cfg.Poll)
	}
}

// run is the state of one Run: only its goroutine touches it.
type run struct {
	*Source
	out      source.Output
	done     map[string]stamp // nil until the state file has been read
	seen     map[string]observation
	pass     uint64 // counts listings, to forget files no longer listed
	id       uint64
	dirError bool
}

// observation is how a file not yet done last looked.
type observation struct {
	stamp
	since time.Time // when stamp was first seen
	pass  uint64    // last listing that had the file
}

// poll lists the directory once and submits the files that have settled.
func (r *run) poll(ctx context.Context) {
	entries, err := os.ReadDir(r.cfg.Path)
	if err != nil {
		if !r.dirError {
			r.log.Error("cannot read directory; retrying", "path", r.cfg.Path, "err", err)
		}
		r.dirError = true
		r.tr.Fail(fmt.Errorf("folder %s: %w", r.cfg.Name, err))
		return
	}
	if r.dirError {
		r.log.Info("directory readable again", "path", r.cfg.Path)
		r.dirError = false
	}
	if r.done == nil {
		r.loadState(entries)
	}

	r.pass++
	now := time.Now()
	var ready []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !r.wanted(name) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed since the listing
		}
		st := stampOf(fi)
		if d, ok := r.done[name]; ok && d == st {
			continue
		}
		o, ok := r.seen[name]
		if !ok || o.stamp != st {
			o = observation{stamp: st, since: now}
		}
		o.pass = r.pass
		r.seen[name] = o
		if now.Sub(o.since) >= r.cfg.Settle {
			ready = append(ready, name)
		}
	}
	for name, o := range r.seen {
		if o.pass != r.pass {
			delete(r.seen, name)
		}
	}
	if len(r.seen) == 0 {
		r.tr.Set(source.Idle)
		return
	}
	r.tr.Set(source.Running)
	for _, name := range ready { // ReadDir sorts by name
		if ctx.Err() != nil || !r.process(ctx, name) {
			return
		}
	}
}

// wanted reports whether name is an image file name to take.
func (r *run) wanted(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".part") {
		return false
	}
	return r.exts[strings.ToLower(filepath.Ext(name))]
}

// process reads and submits one settled file. It returns false when the
// rest of the files should wait for the next poll.
func (r *run) process(ctx context.Context, name string) bool {
	want := r.seen[name].stamp
	data, st, err := r.read(name, want)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		delete(r.seen, name)
		return true
	case errors.Is(err, errChanged):
		r.seen[name] = observation{stamp: st, since: time.Now(), pass: r.pass}
		return true
	case err != nil:
		// Too large or unreadable: record it, or it would be retried
		// (and logged) at every poll for ever.
		err = fmt.Errorf("folder %s: %s: %w", r.cfg.Name, name, err)
		r.log.Error("cannot read file; skipping it", "file", name, "err", err)
		r.tr.Fail(err)
		r.finish(name, want, false)
		return true
	}

	r.id++
	err = r.out.Submit(ctx, source.Frame{
		Source:     r.cfg.Name,
		Kind:       source.KindFolder,
		ID:         r.id,
		RequestID:  name,
		CapturedAt: time.Unix(0, st.mtime),
		Data:       data,
	})
	classified := err == nil
	switch {
	case err == nil:
		r.tr.Frame()
	case errors.Is(err, classify.ErrBadImage):
		err = fmt.Errorf("folder %s: %s: %w", r.cfg.Name, name, err)
		r.log.Warn("bad image; skipping it", "file", name, "err", err)
		r.tr.Fail(err)
		r.tr.Frame()
	case ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// Shutting down: not recorded, so that the file is classified
		// after the restart.
		return false
	default:
		// The pipeline failed, not the image: retry at the next poll.
		err = fmt.Errorf("folder %s: %s: %w", r.cfg.Name, name, err)
		r.log.Error("classification failed; retrying", "file", name, "err", err)
		r.tr.Fail(err)
		return false
	}
	r.finish(name, st, classified)
	return true
}

// read reads the file name if it still has the stamp want.
func (r *run) read(name string, want stamp) ([]byte, stamp, error) {
	f, err := os.Open(filepath.Join(r.cfg.Path, name))
	if err != nil {
		return nil, stamp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, stamp{}, err
	}
	st := stampOf(fi)
	if st != want {
		return nil, st, errChanged
	}
	if st.size > r.cfg.MaxBytes {
		return nil, st, fmt.Errorf("file too large: %d bytes, max_bytes is %d", st.size, r.cfg.MaxBytes)
	}
	data := make([]byte, st.size)
	if _, err := io.ReadFull(f, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, st, errChanged // truncated since Stat
		}
		return nil, st, err
	}
	if n, _ := f.Read(make([]byte, 1)); n > 0 {
		return nil, st, errChanged // grown since Stat
	}
	return data, st, nil
}

// finish deals with a file that is done: classified, or failed for good.
// A classified file gets Config.After; a file that stays in Path is
// recorded, so that it is not taken again, even after a restart. Moving
// or deleting before recording means a crash in between cannot leave a
// file recorded but not moved.
func (r *run) finish(name string, st stamp, classified bool) {
	delete(r.seen, name)
	if classified && r.after(name) {
		return // gone from Path: nothing to remember
	}
	r.done[name] = st
	if err := appendState(r.cfg.StateFile, name, st); err != nil {
		err = fmt.Errorf("folder %s: state file: %w", r.cfg.Name, err)
		r.log.Error("cannot record file as done; it will be classified again after a restart", "file", name, "err", err)
		r.tr.Fail(err)
	}
}

// after moves or deletes name as configured. It reports whether name is
// no longer in Path.
func (r *run) after(name string) bool {
	path := filepath.Join(r.cfg.Path, name)
	var err error
	switch r.cfg.After {
	case AfterKeep:
		return false
	case AfterDelete:
		err = os.Remove(path)
	case AfterMove:
		err = moveFile(path, r.cfg.MoveTo, name)
	}
	if err != nil {
		err = fmt.Errorf("folder %s: %s %s: %w", r.cfg.Name, r.cfg.After, name, err)
		r.log.Error("cannot "+r.cfg.After+" file", "file", name, "err", err)
		r.tr.Fail(err)
		return false
	}
	return true
}

// loadState reads the state file and rewrites it without the records of
// files no longer in entries, so that it does not grow for ever.
func (r *run) loadState(entries []os.DirEntry) {
	done, skipped, err := readState(r.cfg.StateFile)
	if err != nil {
		// Carry on: classifying some files twice beats classifying none.
		err = fmt.Errorf("folder %s: state file: %w", r.cfg.Name, err)
		r.log.Error("cannot read state file; files already done may be classified again", "err", err)
		r.tr.Fail(err)
		r.done = make(map[string]stamp)
		return
	}
	present := make(map[string]stamp, len(entries))
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && e.Type().IsRegular() {
			present[e.Name()] = stampOf(fi)
		}
	}
	kept := make(map[string]stamp, len(done))
	for name, st := range done {
		if p, ok := present[name]; ok && p == st {
			kept[name] = st
		}
	}
	r.done = kept
	if len(r.done) != len(done) || skipped > 0 {
		if err := writeState(r.cfg.StateFile, r.done); err != nil {
			r.log.Warn("cannot compact state file", "file", r.cfg.StateFile, "err", err)
		}
	}
	r.log.Debug("state file read", "file", r.cfg.StateFile, "records", len(done), "kept", len(r.done), "skipped", skipped)
}

// moveFile moves src into dir under name, or under a unique variant of
// name if dir already has one, so that a file is never overwritten.
func moveFile(src, dir, name string) error {
	dst := filepath.Join(dir, name)
	if _, err := os.Lstat(dst); err == nil {
		ext := filepath.Ext(name)
		dst = filepath.Join(dir, fmt.Sprintf("%s-%d%s", strings.TrimSuffix(name, ext), time.Now().UnixNano(), ext))
	}
	err := os.Rename(src, dst)
	if errors.Is(err, syscall.EXDEV) {
		// MoveTo is on another file system (a USB stick, a network
		// mount): rename cannot cross it, a copy can.
		if err := copyFile(src, dst); err != nil {
			return err
		}
		return os.Remove(src)
	}
	return err
}

// copyFile copies src to dst through a temporary file, so that dst
// appears complete or not at all, keeping src's modification time.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.part")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Chtimes(tmp.Name(), fi.ModTime(), fi.ModTime()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
