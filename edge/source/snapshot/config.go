package snapshot

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config configures a snapshot source. The zero value of every field
// except Name and URL means its default; see SetDefaults.
type Config struct {
	// Name names the source in frames, state and logs ("door").
	Name string `mapstructure:"name"`
	// URL is the camera's snapshot URL, http or https. Credentials in it
	// ("http://user:pass@cam/snap.jpg") are used when Username and
	// Password are empty, and never logged.
	URL string `mapstructure:"url"`
	// Interval is the time between two snapshots. Default 5s.
	Interval time.Duration `mapstructure:"interval"`
	// Timeout bounds one request, body included. Default 5s.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxBytes is the largest snapshot accepted. Default 16 MiB.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// Username and Password, if set, are sent with HTTP basic
	// authentication. They are never logged.
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	// InsecureSkipVerify accepts any TLS certificate: for cameras with a
	// self-signed one. It makes the connection open to interception.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// SetDefaults fills the fields left at their zero value.
func (c *Config) SetDefaults() {
	if c.Interval == 0 {
		c.Interval = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 16 << 20
	}
}

// Validate reports every problem with c, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Name == "" {
		bad("name: must not be empty")
	}
	if c.URL == "" {
		bad("url: must not be empty")
	} else if _, err := parseURL(c.URL); err != nil {
		bad("url: %w", err)
	}
	if c.Interval <= 0 {
		bad("interval: must be > 0")
	}
	if c.Timeout <= 0 {
		bad("timeout: must be > 0")
	}
	if c.MaxBytes <= 0 {
		bad("max_bytes: must be > 0")
	}
	return errors.Join(errs...)
}

// parseURL parses an http(s) URL. Its errors do not quote the URL's
// userinfo, which may hold a password.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", redact(raw))
	}
	return u, nil
}

// redact returns raw without its userinfo, for logs and errors.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" {
		u.User = nil
		return u.String()
	}
	// Unparseable ("user:pass@host" even parses, as an opaque URL): drop
	// everything up to the last "@", erring on the side of hiding.
	if j := strings.LastIndex(raw, "@"); j >= 0 {
		prefix := ""
		if i := strings.Index(raw, "://"); i >= 0 && i < j {
			prefix = raw[:i+3]
		}
		return prefix + raw[j+1:]
	}
	return raw
}
