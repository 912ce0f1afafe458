package camera

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/edgeinfer/edgeinfer/edge/source"
)

// Presets: which capture command Argv builds.
const (
	PresetV4L2    = "v4l2"    // a USB or CSI camera through ffmpeg's v4l2 input
	PresetRPiCam  = "rpicam"  // a Raspberry Pi camera through rpicam-vid
	PresetRTSP    = "rtsp"    // a network camera through ffmpeg
	PresetCommand = "command" // any program writing MJPEG to stdout
)

// Defaults that SetDefaults fills in.
const (
	DefaultDevice        = "/dev/video0"
	DefaultWidth         = 640
	DefaultHeight        = 480
	DefaultMaxFrameBytes = 8 << 20
	DefaultRestartMin    = time.Second
	DefaultRestartMax    = 30 * time.Second
	DefaultStallTimeout  = 10 * time.Second
)

// Config configures a camera source.
type Config struct {
	// Name names the source in frames, logs and the status page.
	Name string `mapstructure:"name"`
	// Preset selects the capture command: "v4l2" (default), "rpicam",
	// "rtsp" or "command".
	Preset string `mapstructure:"preset"`
	// Device is the V4L2 device of preset v4l2, default /dev/video0.
	Device string `mapstructure:"device"`
	// URL is the rtsp:// or rtsps:// URL of preset rtsp.
	URL string `mapstructure:"url"`
	// Command is the argv of preset command: any program that writes
	// MJPEG to its stdout.
	Command []string `mapstructure:"command"`
	// Width and Height are the capture size of presets v4l2 and rpicam,
	// default 640x480.
	Width  int `mapstructure:"width"`
	Height int `mapstructure:"height"`
	// FPS caps the frames offered per second; 0 offers every frame. The
	// v4l2, rpicam and rtsp presets also ask the command for this rate.
	FPS float64 `mapstructure:"fps"`
	// MaxFrameBytes is the largest frame accepted, default 8 MiB.
	MaxFrameBytes int `mapstructure:"max_frame_bytes"`
	// RestartMin is the wait before restarting a command that ended,
	// default 1s. It doubles on each failure up to RestartMax, default
	// 30s, and falls back to RestartMin after a run that delivered frames
	// for more than 10s.
	RestartMin time.Duration `mapstructure:"restart_min"`
	RestartMax time.Duration `mapstructure:"restart_max"`
	// StallTimeout is how long the command may go without producing a
	// frame before it is killed and restarted, default 10s.
	StallTimeout time.Duration `mapstructure:"stall_timeout"`
}

// SetDefaults fills the zero fields that have a default.
func (c *Config) SetDefaults() {
	if c.Preset == "" {
		c.Preset = PresetV4L2
	}
	if c.Device == "" && c.Preset == PresetV4L2 {
		c.Device = DefaultDevice
	}
	if c.Width == 0 && c.Height == 0 {
		c.Width, c.Height = DefaultWidth, DefaultHeight
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.RestartMin == 0 {
		c.RestartMin = DefaultRestartMin
	}
	if c.RestartMax == 0 {
		c.RestartMax = max(DefaultRestartMax, c.RestartMin)
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
}

// Validate reports every problem with c, each naming its key. Zero values
// stand for the defaults, so Validate accepts a config before and after
// SetDefaults.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf(key+": "+format, args...))
	}
	if c.Name == "" {
		add("name", "required")
	}
	switch c.Preset {
	case "", PresetV4L2, PresetRPiCam:
		switch {
		case c.Width < 0:
			add("width", "must be > 0")
		case c.Height < 0:
			add("height", "must be > 0")
		case c.Width == 0 && c.Height != 0:
			add("width", "required with height")
		case c.Height == 0 && c.Width != 0:
			add("height", "required with width")
		}
	case PresetRTSP:
		if c.URL == "" {
			add("url", "required with preset %q", PresetRTSP)
		} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
			add("url", "%q is not an rtsp:// URL", source.RedactURL(c.URL))
		}
	case PresetCommand:
		if len(c.Command) == 0 || c.Command[0] == "" {
			add("command", "required with preset %q", PresetCommand)
		}
	default:
		add("preset", "unknown preset %q, want %q, %q, %q or %q",
			c.Preset, PresetV4L2, PresetRPiCam, PresetRTSP, PresetCommand)
	}
	if c.FPS < 0 || math.IsNaN(c.FPS) || math.IsInf(c.FPS, 0) {
		add("fps", "must be >= 0")
	}
	if c.MaxFrameBytes < 0 {
		add("max_frame_bytes", "must be >= 0")
	}
	if c.RestartMin < 0 {
		add("restart_min", "must be >= 0")
	}
	if c.RestartMax < 0 {
		add("restart_max", "must be >= 0")
	} else if c.RestartMax > 0 && c.RestartMax < c.RestartMin {
		add("restart_max", "must be >= restart_min (%v)", c.RestartMin)
	}
	if c.StallTimeout < 0 {
		add("stall_timeout", "must be >= 0")
	}
	return errors.Join(errs...)
}

// Argv returns the capture command line. It expects a config after
// SetDefaults.
func (c Config) Argv() []string {
	fps := strconv.FormatFloat(c.FPS, 'f', -1, 64)
	switch c.Preset {
	case PresetRPiCam:
		argv := []string{"rpicam-vid", "-t", "0", "-n", "--codec", "mjpeg",
			"--width", strconv.Itoa(c.Width), "--height", strconv.Itoa(c.Height)}
		if c.FPS > 0 {
			argv = append(argv, "--framerate", fps)
		}
		return append(argv, "-o", "-")
	case PresetRTSP:
		argv := []string{"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
			"-rtsp_transport", "tcp", "-i", c.URL, "-an", "-c:v", "mjpeg", "-q:v", "5"}
		if c.FPS > 0 {
			argv = append(argv, "-r", fps)
		}
		return append(argv, "-f", "mjpeg", "-")
	case PresetCommand:
		return append([]string(nil), c.Command...)
	default:
		argv := []string{"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
			"-f", "v4l2", "-input_format", "mjpeg",
			"-video_size", strconv.Itoa(c.Width) + "x" + strconv.Itoa(c.Height)}
		if c.FPS > 0 {
			argv = append(argv, "-framerate", fps)
		}
		return append(argv, "-i", c.Device, "-c:v", "copy", "-f", "mjpeg", "-")
	}
}
