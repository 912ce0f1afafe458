// Package config loads and validates edgeinfer's configuration: a YAML
// file, EDGEINFER_* environment variables and command-line flags, merged
// by viper in that order of increasing precedence.
//
// Loading is strict: an unknown key or a value of the wrong type is an
// error naming the key path ("engine.thread: unknown key"), because a
// typo in a daemon's config must not silently fall back to a default. All
// validation lives in Validate, so `edgeinfer config check` and the daemon
// agree on what a good file is. A file holding only `model: PATH` is a
// working configuration.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/edgeinfer/edgeinfer/edge/source/camera"
	"github.com/edgeinfer/edgeinfer/edge/source/folder"
	"github.com/edgeinfer/edgeinfer/edge/source/replay"
	"github.com/edgeinfer/edgeinfer/edge/source/snapshot"
)

// DefaultPath is where the daemon looks for its configuration.
const DefaultPath = "/etc/edgeinfer/edgeinfer.yaml"

// EnvPrefix prefixes environment overrides: EDGEINFER_HTTP_LISTEN sets
// http.listen.
const EnvPrefix = "EDGEINFER"

// Config is the whole configuration of the daemon.
type Config struct {
	// DeviceID names this device in results and topics; default the hostname.
	DeviceID string `mapstructure:"device_id"`
	// Model is a model folder (with model.yaml), a manifest, or a .tflite file.
	Model string `mapstructure:"model"`
	// Labels overrides the model's labels file.
	Labels   string   `mapstructure:"labels"`
	Engine   Engine   `mapstructure:"engine"`
	Classify Classify `mapstructure:"classify"`
	Limits   Limits   `mapstructure:"limits"`
	HTTP     HTTP     `mapstructure:"http"`
	Log      Log      `mapstructure:"log"`
	Watchdog Watchdog `mapstructure:"watchdog"`
	// MQTT connects to a broker (or runs the embedded one); see MQTT.
	MQTT MQTT `mapstructure:"mqtt"`

	Cameras   []camera.Config   `mapstructure:"cameras"`
	Folders   []folder.Config   `mapstructure:"folders"`
	Snapshots []snapshot.Config `mapstructure:"snapshots"`
	Replays   []replay.Config   `mapstructure:"replays"`
}

// Engine configures inference.
type Engine struct {
	// Threads per interpreter and Interpreters in parallel; 0 lets the
	// daemon pick from the core count: one single-threaded interpreter per
	// core, at most 4 (cmd/edgeinfer's engineShape).
	Threads      int `mapstructure:"threads"`
	Interpreters int `mapstructure:"interpreters"`
	// XNNPACK hands the model to the XNNPACK delegate when the TensorFlow
	// Lite library has it (the default); false keeps TensorFlow Lite's own
	// kernels, for comparison or if a model misbehaves under XNNPACK.
	XNNPACK bool `mapstructure:"xnnpack"`
}

// Classify configures what a result reports.
type Classify struct {
	Top       int     `mapstructure:"top"`
	Threshold float64 `mapstructure:"threshold"`
}

// Limits bound what the daemon accepts from outside.
type Limits struct {
	MaxImageBytes int64 `mapstructure:"max_image_bytes"`
	MaxPixels     int64 `mapstructure:"max_pixels"`
}

// HTTP configures the LAN API and status page.
type HTTP struct {
	// Listen is host:port; empty disables the HTTP server.
	Listen string `mapstructure:"listen"`
	// Token, when set, is required as "Authorization: Bearer <token>" by
	// the mutating endpoints (classify, reload). TokenFile reads it from a
	// file instead, so that it stays out of the config.
	Token     string `mapstructure:"token"`
	TokenFile string `mapstructure:"token_file"`
	// MaxQueue bounds classify requests waiting for an interpreter; more
	// are answered 429.
	MaxQueue int `mapstructure:"max_queue"`
	// RequestTimeout bounds one classify request, waiting included.
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
}

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // text or json
}

// Watchdog configures the systemd watchdog's idea of progress.
type Watchdog struct {
	// StallTimeout: a classification running longer than this, or frames
	// waiting with no classification finished for this long, is a stall,
	// and WATCHDOG=1 stops.
	StallTimeout time.Duration `mapstructure:"stall_timeout"`
}

// Defaults returns the configuration used for keys a file leaves out.
func Defaults() Config {
	return Config{
		Engine:   Engine{XNNPACK: true},
		Classify: Classify{Top: 5},
		Limits:   Limits{MaxImageBytes: 32 << 20, MaxPixels: 40_000_000},
		HTTP:     HTTP{Listen: ":8080", MaxQueue: 16, RequestTimeout: 30 * time.Second},
		Log:      Log{Level: "info", Format: "text"},
		Watchdog: Watchdog{StallTimeout: 30 * time.Second},
	}
}

// Load reads the file at path (none if path is ""), then the environment,
// then the flags in fs that were set (fs may be nil; flag names are key
// paths with dots as dashes: --http-listen sets http.listen), and fills the
// defaults (Defaults, then SetDefaults). It does not validate: call
// Validate.
func Load(path string, fs *pflag.FlagSet) (Config, error) {
	v := viper.New()
	setDefaults(v, "", reflect.ValueOf(Defaults()))
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if fs != nil {
		var err error
		fs.Visit(func(f *pflag.Flag) {
			if key, ok := flagKey(f.Name); ok {
				if e := v.BindPFlag(key, f); e != nil {
					err = errors.Join(err, e)
				}
			}
		})
		if err != nil {
			return Config{}, fmt.Errorf("config: flags: %w", err)
		}
	}
	var c Config
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = false
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			stringToScalarHook,
		)
	})
	if err != nil {
		return Config{}, fmt.Errorf("config: %s", keyPathErrors(err))
	}
	c.SetDefaults()
	return c, nil
}

// SetDefaults fills the defaults that Defaults cannot express: those of the
// mqtt section and of each configured source. Load calls it.
func (c *Config) SetDefaults() {
	c.MQTT.SetDefaults()
	for _, s := range c.sources() {
		s.cfg.SetDefaults()
	}
}

// sourceConfig is what each source's configuration offers.
type sourceConfig interface {
	SetDefaults()
	Validate() error
}

// configuredSource is one entry of a source list, with its key path
// ("cameras[0]") and name.
type configuredSource struct {
	key, name string
	cfg       sourceConfig
}

// sources lists every configured source in file order, kind by kind.
func (c *Config) sources() []configuredSource {
	var all []configuredSource
	add := func(kind string, i int, name string, cfg sourceConfig) {
		all = append(all, configuredSource{fmt.Sprintf("%s[%d]", kind, i), name, cfg})
	}
	for i := range c.Cameras {
		add("cameras", i, c.Cameras[i].Name, &c.Cameras[i])
	}
	for i := range c.Folders {
		add("folders", i, c.Folders[i].Name, &c.Folders[i])
	}
	for i := range c.Snapshots {
		add("snapshots", i, c.Snapshots[i].Name, &c.Snapshots[i])
	}
	for i := range c.Replays {
		add("replays", i, c.Replays[i].Name, &c.Replays[i])
	}
	return all
}

// flagKey maps a flag name to the key it sets: each dash is either a
// level separator or an underscore (--http-listen is http.listen,
// --device-id is device_id). Flags naming no key (--config) map to none.
func flagKey(name string) (string, bool) {
	parts := strings.Split(name, "-")
	n := len(parts) - 1
	if n > 8 {
		return "", false
	}
	for mask := range 1 << n {
		var b strings.Builder
		b.WriteString(parts[0])
		for i, p := range parts[1:] {
			if mask&(1<<i) != 0 {
				b.WriteByte('_')
			} else {
				b.WriteByte('.')
			}
			b.WriteString(p)
		}
		if isKey(b.String()) {
			return b.String(), true
		}
	}
	return "", false
}

// isKey reports whether key names a scalar of Config.
func isKey(key string) bool {
	t := reflect.TypeOf(Config{})
	for _, part := range strings.Split(key, ".") {
		f, ok := fieldByTag(t, part)
		if !ok {
			return false
		}
		t = f.Type
	}
	return t.Kind() != reflect.Struct && t.Kind() != reflect.Slice
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("mapstructure") == tag {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// setDefaults registers every scalar of the defaults with viper, which is
// also what lets AutomaticEnv find EDGEINFER_* for keys the file lacks.
func setDefaults(v *viper.Viper, prefix string, val reflect.Value) {
	t := val.Type()
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("mapstructure")
		if tag == "" {
			continue
		}
		key := prefix + tag
		switch f := val.Field(i); f.Kind() {
		case reflect.Struct:
			setDefaults(v, key+".", f)
		case reflect.Slice:
			// Lists of sources come from the file only.
		default:
			v.SetDefault(key, f.Interface())
		}
	}
}

// stringToScalarHook parses strings (from the environment and flags) into
// numbers and booleans. Values from YAML arrive typed; with weak typing
// off, a YAML `threads: true` stays an error instead of becoming 1.
func stringToScalarHook(from, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if !ok || from.Kind() != reflect.String {
		return data, nil
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if to == reflect.TypeOf(time.Duration(0)) {
			return data, nil
		}
		return strconv.ParseInt(strings.TrimSpace(s), 0, 64)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.ParseUint(strings.TrimSpace(s), 0, 64)
	case reflect.Float32, reflect.Float64:
		return strconv.ParseFloat(strings.TrimSpace(s), 64)
	case reflect.Bool:
		return strconv.ParseBool(strings.TrimSpace(s))
	}
	return data, nil
}

var (
	invalidKeysRE = regexp.MustCompile(`'([^']*)' has invalid keys: (.*)`)
	wrongTypeRE   = regexp.MustCompile(`'([^']*)' expected type '([^']*)', got (?:unconvertible )?type '([^']*)'(?:, value: '(.*)')?`)
	parseErrRE    = regexp.MustCompile(`'([^']*)' (?:cannot parse|error decoding).*?: (.*)`)
)

// keyPathErrors rewrites mapstructure's messages into "key.path: problem"
// lines.
func keyPathErrors(err error) string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
		switch {
		case line == "" || strings.HasPrefix(line, "decoding failed due to") || strings.HasSuffix(line, "error(s) decoding:"):
			continue
		case invalidKeysRE.MatchString(line):
			m := invalidKeysRE.FindStringSubmatch(line)
			for _, k := range strings.Split(m[2], ",") {
				out = append(out, join(m[1], strings.TrimSpace(k))+": unknown key")
			}
		case wrongTypeRE.MatchString(line):
			m := wrongTypeRE.FindStringSubmatch(line)
			msg := fmt.Sprintf("%s: wrong type: want %s, got %s", m[1], m[2], m[3])
			if m[4] != "" {
				msg += fmt.Sprintf(" %q", m[4])
			}
			out = append(out, msg)
		case parseErrRE.MatchString(line):
			m := parseErrRE.FindStringSubmatch(line)
			out = append(out, fmt.Sprintf("%s: %s", m[1], m[2]))
		default:
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// Validate checks everything Load cannot: required keys, ranges, URLs,
// addresses, unique source names, files that must exist. The error lists
// every problem, each prefixed with its key path. It changes nothing: a
// Config not made by Load needs SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	add := func(key string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	// nested prefixes each line of a source's own validation, whose lines
	// already start with the source's key ("fps: must be >= 0").
	nested := func(prefix string, err error) {
		if err == nil {
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if line != "" {
				errs = append(errs, fmt.Errorf("%s.%s", prefix, line))
			}
		}
	}
	if c.Model == "" {
		add("model", errors.New("required: a model folder, manifest or .tflite file"))
	} else if _, err := os.Stat(c.Model); err != nil {
		add("model", err)
	}
	if c.Labels != "" {
		if _, err := os.Stat(c.Labels); err != nil {
			add("labels", err)
		}
	}
	if c.Engine.Threads < 0 || c.Engine.Threads > 64 {
		add("engine.threads", errors.New("must be between 0 (auto) and 64"))
	}
	if c.Engine.Interpreters < 0 || c.Engine.Interpreters > 64 {
		add("engine.interpreters", errors.New("must be between 0 (auto) and 64"))
	}
	if c.Classify.Top < 1 || c.Classify.Top > 1000 {
		add("classify.top", errors.New("must be between 1 and 1000"))
	}
	if c.Classify.Threshold < 0 || c.Classify.Threshold > 1 {
		add("classify.threshold", errors.New("must be between 0 and 1"))
	}
	if c.Limits.MaxImageBytes <= 0 {
		add("limits.max_image_bytes", errors.New("must be > 0"))
	}
	if c.Limits.MaxPixels <= 0 {
		add("limits.max_pixels", errors.New("must be > 0"))
	}
	if c.HTTP.Listen != "" {
		if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			add("http.listen", fmt.Errorf("%q is not host:port: %w", c.HTTP.Listen, err))
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			add("http.listen", fmt.Errorf("%q: bad port", c.HTTP.Listen))
		}
	}
	if c.HTTP.Token != "" && c.HTTP.TokenFile != "" {
		add("http.token_file", errors.New("set http.token or http.token_file, not both"))
	}
	if c.HTTP.TokenFile != "" {
		if _, err := os.Stat(c.HTTP.TokenFile); err != nil {
			add("http.token_file", err)
		}
	}
	if c.HTTP.MaxQueue < 1 {
		add("http.max_queue", errors.New("must be >= 1"))
	}
	if c.HTTP.RequestTimeout <= 0 {
		add("http.request_timeout", errors.New("must be > 0"))
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", fmt.Errorf("%q is not debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format", fmt.Errorf("%q is not text or json", c.Log.Format))
	}
	if c.Watchdog.StallTimeout <= 0 {
		add("watchdog.stall_timeout", errors.New("must be > 0"))
	}
	nested("mqtt", c.MQTT.Validate())

	names := map[string]string{}
	for _, s := range c.sources() {
		if s.name == "" {
			add(s.key+".name", errors.New("required"))
		} else {
			if prev, dup := names[s.name]; dup {
				add(s.key+".name", fmt.Errorf("%q is already the name of %s", s.name, prev))
			}
			names[s.name] = s.key
		}
		nested(s.key, s.cfg.Validate())
	}
	return errors.Join(errs...)
}

// HTTPToken returns the bearer token, read from TokenFile if set.
func (c *Config) HTTPToken() (string, error) {
	if c.HTTP.TokenFile == "" {
		return c.HTTP.Token, nil
	}
	b, err := os.ReadFile(c.HTTP.TokenFile)
	if err != nil {
		return "", fmt.Errorf("config: http.token_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
