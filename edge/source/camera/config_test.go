package camera

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := func(c *Config) {}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"v4l2 defaults", ok, nil},
		{"empty preset is v4l2", func(c *Config) { c.Preset = "" }, nil},
		{"rpicam", func(c *Config) { c.Preset = PresetRPiCam; c.FPS = 7.5 }, nil},
		{"rtsp", func(c *Config) { c.Preset = PresetRTSP; c.URL = "rtsp://cam.local:554/stream1" }, nil},
		{"rtsps", func(c *Config) { c.Preset = PresetRTSP; c.URL = "rtsps://u:p@cam.local/s" }, nil},
		{"command", func(c *Config) { c.Preset = PresetCommand; c.Command = []string{"cat"} }, nil},
		{"unset numbers", func(c *Config) {
			c.Width, c.Height, c.MaxFrameBytes, c.RestartMin, c.RestartMax, c.StallTimeout = 0, 0, 0, 0, 0, 0
		}, nil},
		{"no name", func(c *Config) { c.Name = "" }, []string{"name: required"}},
		{"unknown preset", func(c *Config) { c.Preset = "gopro" }, []string{`preset: unknown preset "gopro"`}},
		{"negative fps", func(c *Config) { c.FPS = -1 }, []string{"fps: must be >= 0"}},
		{"width without height", func(c *Config) { c.Height = 0 }, []string{"height: required with width"}},
		{"negative width", func(c *Config) { c.Width = -640 }, []string{"width: must be > 0"}},
		{"rtsp without url", func(c *Config) { c.Preset = PresetRTSP }, []string{`url: required with preset "rtsp"`}},
		{"http url", func(c *Config) { c.Preset = PresetRTSP; c.URL = "http://cam/x" },
			[]string{`url: "http://cam/x" is not an rtsp:// URL`}},
		{"url without host", func(c *Config) { c.Preset = PresetRTSP; c.URL = "x" },
			[]string{`url: "x" is not an rtsp:// URL`}},
		{"url password not echoed", func(c *Config) { c.Preset = PresetRTSP; c.URL = "http://u:secret@cam/x" },
			[]string{`url: "http://u:xxxxx@cam/x" is not`}},
		{"unparseable url password not echoed", func(c *Config) { c.Preset = PresetRTSP; c.URL = "rtsp://u:s3%zz@cam/x" },
			[]string{`url: "rtsp://xxxxx@cam/x" is not`}},
		{"scheme-less url password not echoed", func(c *Config) { c.Preset = PresetRTSP; c.URL = "u:secret@cam/x" },
			[]string{`url: "xxxxx@cam/x" is not`}},
		{"command missing", func(c *Config) { c.Preset = PresetCommand }, []string{`command: required with preset "command"`}},
		{"command empty", func(c *Config) { c.Preset = PresetCommand; c.Command = []string{""} },
			[]string{`command: required with preset "command"`}},
		{"negative max frame", func(c *Config) { c.MaxFrameBytes = -1 }, []string{"max_frame_bytes: must be >= 0"}},
		{"restart max below min", func(c *Config) { c.RestartMin, c.RestartMax = time.Minute, time.Second },
			[]string{"restart_max: must be >= restart_min (1m0s)"}},
		{"negative stall", func(c *Config) { c.StallTimeout = -time.Second }, []string{"stall_timeout: must be >= 0"}},
		{"several", func(c *Config) { c.Name, c.FPS = "", -2 }, []string{"name: required", "fps: must be >= 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Name: "cam0"}
			c.SetDefaults()
			tt.modify(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestSetDefaults(t *testing.T) {
	c := Config{Name: "cam0"}
	c.SetDefaults()
	want := Config{
		Name: "cam0", Preset: PresetV4L2, Device: "/dev/video0", Width: 640, Height: 480,
		MaxFrameBytes: 8 << 20, RestartMin: time.Second, RestartMax: 30 * time.Second, StallTimeout: 10 * time.Second,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("SetDefaults() = %+v, want %+v", c, want)
	}
	c = Config{Name: "cam0", Preset: PresetRTSP, Width: 1280, Height: 720, RestartMin: time.Minute}
	c.SetDefaults()
	if c.Device != "" || c.Width != 1280 || c.Height != 720 || c.RestartMax != time.Minute {
		t.Errorf("SetDefaults() overrode or misfilled fields: %+v", c)
	}
}

func TestArgv(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"v4l2", Config{Preset: PresetV4L2},
			"ffmpeg -hide_banner -loglevel error -nostdin -f v4l2 -input_format mjpeg -video_size 640x480 -i /dev/video0 -c:v copy -f mjpeg -"},
		{"v4l2 fps", Config{Device: "/dev/video2", Width: 1280, Height: 720, FPS: 15},
			"ffmpeg -hide_banner -loglevel error -nostdin -f v4l2 -input_format mjpeg -video_size 1280x720 -framerate 15 -i /dev/video2 -c:v copy -f mjpeg -"},
		{"rpicam", Config{Preset: PresetRPiCam},
			"rpicam-vid -t 0 -n --codec mjpeg --width 640 --height 480 -o -"},
		{"rpicam fps", Config{Preset: PresetRPiCam, Width: 1296, Height: 972, FPS: 2.5},
			"rpicam-vid -t 0 -n --codec mjpeg --width 1296 --height 972 --framerate 2.5 -o -"},
		{"rtsp", Config{Preset: PresetRTSP, URL: "rtsp://u:p@cam/s"},
			"ffmpeg -hide_banner -loglevel error -nostdin -rtsp_transport tcp -i rtsp://u:p@cam/s -an -c:v mjpeg -q:v 5 -f mjpeg -"},
		{"rtsp fps", Config{Preset: PresetRTSP, URL: "rtsp://cam/s", FPS: 1},
			"ffmpeg -hide_banner -loglevel error -nostdin -rtsp_transport tcp -i rtsp://cam/s -an -c:v mjpeg -q:v 5 -r 1 -f mjpeg -"},
		{"command", Config{Preset: PresetCommand, Command: []string{"my cam", "--fps", "5"}, FPS: 5},
			"my cam|--fps|5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name = "cam0"
			tt.cfg.SetDefaults()
			want := strings.Split(tt.want, " ")
			if tt.cfg.Preset == PresetCommand {
				want = strings.Split(tt.want, "|")
			}
			if got := tt.cfg.Argv(); !slices.Equal(got, want) {
				t.Errorf("Argv() =\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestArgvCopy checks that changing the argv does not change the config.
func TestArgvCopy(t *testing.T) {
	c := Config{Preset: PresetCommand, Command: []string{"cat"}}
	c.Argv()[0] = "rm"
	if c.Command[0] != "cat" {
		t.Error("Argv returned the config's own slice")
	}
}
