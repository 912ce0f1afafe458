package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/edgeinfer/edgeinfer/edge/source/camera"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOnlyModelIsAWorkingConfig(t *testing.T) {
	model := t.TempDir()
	c, err := Load(writeConfig(t, "model: "+model+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	if c.HTTP != d.HTTP || c.Classify != d.Classify || c.Watchdog != d.Watchdog || c.Model != model {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	model := t.TempDir()
	path := writeConfig(t, "model: "+model+"\nhttp:\n  listen: :1111\n  max_queue: 3\nengine:\n  threads: 1\n")
	t.Setenv("EDGEINFER_HTTP_LISTEN", ":2222")
	t.Setenv("EDGEINFER_ENGINE_THREADS", "4")
	t.Setenv("EDGEINFER_WATCHDOG_STALL_TIMEOUT", "7s")
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.String("http-listen", "", "")
	fs.String("device-id", "", "")
	fs.String("config", "", "")
	if err := fs.Parse([]string{"--http-listen", ":3333", "--device-id", "cam-9", "--config", "x"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != ":3333" || c.DeviceID != "cam-9" {
		t.Errorf("flags did not win: listen %q device %q", c.HTTP.Listen, c.DeviceID)
	}
	if c.Engine.Threads != 4 || c.Watchdog.StallTimeout != 7*time.Second {
		t.Errorf("environment did not override the file: %+v %v", c.Engine, c.Watchdog)
	}
	if c.HTTP.MaxQueue != 3 {
		t.Errorf("file value lost: %d", c.HTTP.MaxQueue)
	}
}

func TestStrictLoad(t *testing.T) {
	for name, c := range map[string]struct{ yaml, want string }{
		"unknown key":        {"model: x\nmodle: y\n", "modle: unknown key"},
		"unknown nested key": {"model: x\nhttp:\n  lisen: :80\n", "http.lisen: unknown key"},
		"unknown source key": {"model: x\ncameras:\n  - name: c\n    devise: /dev/video0\n", "cameras[0].devise: unknown key"},
		"wrong type int":     {"model: x\nengine:\n  threads: two\n", "engine.threads"},
		"bool for int":       {"model: x\nengine:\n  threads: true\n", "engine.threads"},
		"wrong duration":     {"model: x\nhttp:\n  request_timeout: soon\n", "http.request_timeout"},
		"list for string":    {"model: [a, b]\n", "model"},
		"bad yaml":           {"model: x\n  bad: [\n", "config"},
	} {
		_, err := Load(writeConfig(t, c.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to mention %q", name, err, c.want)
		}
	}
	t.Setenv("EDGEINFER_ENGINE_THREADS", "lots")
	if _, err := Load(writeConfig(t, "model: x\n"), nil); err == nil || !strings.Contains(err.Error(), "engine.threads") {
		t.Errorf("bad environment value: %v", err)
	}
}

func TestValidate(t *testing.T) {
	model := t.TempDir()
	base := "model: " + model + "\n"
	for name, c := range map[string]struct{ yaml, want string }{
		"missing model":   {"http:\n  listen: :80\n", "model: required"},
		"model not found": {"model: /nonexistent/m\n", "model: stat /nonexistent/m"},
		"bad listen":      {base + "http:\n  listen: localhost\n", "http.listen"},
		"bad port":        {base + "http:\n  listen: :99999\n", "http.listen"},
		"top 0":           {base + "classify:\n  top: 0\n", "classify.top"},
		"threshold":       {base + "classify:\n  threshold: 1.5\n", "classify.threshold"},
		"log level":       {base + "log:\n  level: loud\n", "log.level"},
		"token twice":     {base + "http:\n  token: a\n  token_file: /etc/hostname\n", "http.token_file"},
		"snapshot url":    {base + "snapshots:\n  - name: s\n    url: ftp://x/y.jpg\n", "snapshots[0].url"},
		"rtsp url":        {base + "cameras:\n  - name: c\n    preset: rtsp\n    url: \"::bad\"\n", "cameras[0].url"},
		"duplicate names": {base + "snapshots:\n  - name: a\n    url: http://x/a.jpg\n  - name: a\n    url: http://x/b.jpg\n", "snapshots[1].name"},
		"no name":         {base + "snapshots:\n  - url: http://x/a.jpg\n", "snapshots[0].name: required"},
	} {
		cfg, err := Load(writeConfig(t, c.yaml), nil)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestFlagKey(t *testing.T) {
	for flag, want := range map[string]string{
		"http-listen": "http.listen", "device-id": "device_id", "log-level": "log.level",
		"watchdog-stall-timeout": "watchdog.stall_timeout", "config": "", "http": "",
	} {
		got, ok := flagKey(flag)
		if (want == "") == ok || got != want {
			t.Errorf("flagKey(%q) = %q, %v; want %q", flag, got, ok, want)
		}
	}
}

// TestLoadFillsDefaultsValidateChangesNothing: Load fills the defaults of
// sources and of mqtt; Validate only reads, so validating a Config made by
// hand leaves it as it was (a camera's zero values stand for its defaults,
// so this one is valid either way).
func TestLoadFillsDefaultsValidateChangesNothing(t *testing.T) {
	model := t.TempDir()
	c, err := Load(writeConfig(t, "model: "+model+"\ncameras:\n  - name: c\n    preset: command\n    command: [ffmpeg]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cam := c.Cameras[0]; cam.RestartMin == 0 || cam.MaxFrameBytes == 0 || c.MQTT.Prefix == "" || c.MQTT.QoS == nil {
		t.Fatalf("Load left defaults out: camera %+v, mqtt prefix %q", cam, c.MQTT.Prefix)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	bare := Defaults()
	bare.Model = model
	bare.Cameras = []camera.Config{{Name: "c", Preset: camera.PresetCommand, Command: []string{"ffmpeg"}}}
	before := fmt.Sprintf("%+v", bare)
	if err := bare.Validate(); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprintf("%+v", bare); after != before {
		t.Errorf("Validate changed the config:\n%s\n%s", before, after)
	}
	bare.SetDefaults()
	if fmt.Sprintf("%+v", bare) == before {
		t.Error("SetDefaults filled nothing")
	}
}
