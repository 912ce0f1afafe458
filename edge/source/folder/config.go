package folder

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// What to do with a file once it has been classified (Config.After).
const (
	AfterKeep   = "keep"   // leave it; the state file remembers it was done
	AfterMove   = "move"   // move it into Config.MoveTo
	AfterDelete = "delete" // remove it
)

// Config configures a folder source. The zero value of every field except
// Name and Path means its default; see SetDefaults.
type Config struct {
	// Name names the source in frames, state and logs ("inbox").
	Name string `mapstructure:"name"`
	// Path is the directory watched. Only its top level is read.
	Path string `mapstructure:"path"`
	// Extensions are the file name extensions taken, without the dot and
	// compared case-insensitively. Default: jpg jpeg png gif bmp webp.
	Extensions []string `mapstructure:"extensions"`
	// After is AfterKeep (default), AfterMove or AfterDelete.
	After string `mapstructure:"after"`
	// MoveTo is the directory files are moved into when After is
	// AfterMove. It is created if missing.
	MoveTo string `mapstructure:"move_to"`
	// StateFile records which files were done, so that a restart does not
	// classify them again. Default: Path/.edgeinfer-<Name>.state.
	StateFile string `mapstructure:"state_file"`
	// Poll is how often Path is listed. Default 1s.
	Poll time.Duration `mapstructure:"poll"`
	// Settle is how long a file's size and modification time must stay
	// unchanged before it is read, so that files still being written are
	// left alone. Default 1s.
	Settle time.Duration `mapstructure:"settle"`
	// MaxBytes is the largest file read. Larger files are recorded as
	// failed and never retried. Default 32 MiB.
	MaxBytes int64 `mapstructure:"max_bytes"`
}

// DefaultExtensions returns the extensions taken when Config.Extensions
// is empty.
func DefaultExtensions() []string {
	return []string{"jpg", "jpeg", "png", "gif", "bmp", "webp"}
}

// SetDefaults fills the fields left at their zero value.
func (c *Config) SetDefaults() {
	if len(c.Extensions) == 0 {
		c.Extensions = DefaultExtensions()
	}
	if c.After == "" {
		c.After = AfterKeep
	}
	if c.StateFile == "" && c.Path != "" && c.Name != "" {
		c.StateFile = filepath.Join(c.Path, ".edgeinfer-"+c.Name+".state")
	}
	if c.Poll == 0 {
		c.Poll = time.Second
	}
	if c.Settle == 0 {
		c.Settle = time.Second
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 32 << 20
	}
}

// Validate reports every problem with c, each naming its key. It does not
// touch the file system; New does.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.Name == "":
		bad("name: must not be empty")
	case strings.ContainsAny(c.Name, `/\`):
		// The name becomes part of the default state file name.
		bad("name: %q must not contain a path separator", c.Name)
	}
	if c.Path == "" {
		bad("path: must not be empty")
	}
	for _, e := range c.Extensions {
		if strings.TrimPrefix(e, ".") == "" {
			bad("extensions: empty extension")
		}
	}
	switch c.After {
	case AfterKeep, AfterDelete:
	case AfterMove:
		if c.MoveTo == "" {
			bad("move_to: required when after is %q", AfterMove)
		}
	default:
		bad("after: %q is not one of %s, %s, %s", c.After, AfterKeep, AfterMove, AfterDelete)
	}
	if c.Poll <= 0 {
		bad("poll: must be > 0")
	}
	if c.Settle < 0 {
		bad("settle: must be >= 0")
	}
	if c.MaxBytes <= 0 {
		bad("max_bytes: must be > 0")
	}
	return errors.Join(errs...)
}
