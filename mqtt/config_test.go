package mqtt

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error, none = valid
	}{
		{name: "off", cfg: Config{}},
		{name: "embedded", cfg: Config{Broker: "embedded"}},
		{name: "tcp", cfg: Config{Broker: "tcp://broker.lan:1883"}},
		{name: "ssl with tls", cfg: Config{Broker: "ssl://broker.lan:8883", TLS: TLSConfig{CAFile: "/etc/ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}}},
		{name: "ws", cfg: Config{Broker: "ws://broker.lan:9001/mqtt"}},
		{name: "wss without port", cfg: Config{Broker: "wss://broker.lan/mqtt"}},
		{name: "qos 0 explicit", cfg: Config{Broker: "embedded", QoS: new(0)}},
		{name: "everything", cfg: Config{
			Broker: "tcp://h:1", ClientID: "x", Username: "u", Password: "p", Prefix: "site/edgeinfer", QoS: new(2),
			KeepAlive: time.Second, ConnectTimeout: time.Second, PublishTimeout: time.Second, MaxReconnectInterval: time.Second,
			PersistentSession: true, Buffer: 1, MaxPayloadBytes: 1, Inflight: 1,
			State: StateConfig{Enabled: new(false), MinFrames: 1, MinDwell: time.Second, Sources: []string{"camera", "http"}},
		}},
		{name: "unknown scheme", cfg: Config{Broker: "mqtt://h:1883"}, want: []string{`broker: "mqtt://h:1883" is not tcp://, ssl://, ws://, wss:// or "embedded"`}},
		{name: "bare host", cfg: Config{Broker: "broker.lan"}, want: []string{`broker: "broker.lan" is not tcp://`}},
		{name: "scheme-less with password", cfg: Config{Broker: "u:s3cret@h:1883"}, want: []string{`broker: "xxxxx@h:1883" is not tcp://`}},
		{name: "no port", cfg: Config{Broker: "tcp://broker.lan"}, want: []string{`broker: "tcp://broker.lan" has no port (tcp://broker.lan:1883)`}},
		{name: "no host", cfg: Config{Broker: "tcp://:1883"}, want: []string{"broker: \"tcp://:1883\" has no host"}},
		{name: "password twice", cfg: Config{Broker: "tcp://u:p@h:1", Username: "u", Password: "q"}, want: []string{"password: set both here and in the broker URL"}},
		{name: "password alone", cfg: Config{Broker: "tcp://h:1", Password: "p"}, want: []string{"password: set without username"}},
		{name: "prefix wildcard", cfg: Config{Prefix: "a/+"}, want: []string{`prefix: "a/+" contains a wildcard`}},
		{name: "prefix slash", cfg: Config{Prefix: "/a"}, want: []string{`prefix: "/a" has an empty topic level`}},
		{name: "qos", cfg: Config{QoS: new(3)}, want: []string{"qos: 3 is not 0, 1 or 2"}},
		{name: "negatives", cfg: Config{PublishTimeout: -1, Buffer: -1, Inflight: -1, MaxPayloadBytes: -1, State: StateConfig{MinFrames: -1, MinDwell: -1}},
			want: []string{"publish_timeout: must be >= 0", "buffer: must be >= 0", "inflight: must be >= 0", "max_payload_bytes: -1 is not between", "state.min_frames: must be >= 0", "state.min_dwell: must be >= 0"}},
		{name: "keepalive", cfg: Config{KeepAlive: time.Millisecond}, want: []string{"keepalive: 1ms is not between 1s and 65535s"}},
		{name: "payload too large for MQTT", cfg: Config{MaxPayloadBytes: 1 << 30}, want: []string{"max_payload_bytes: 1073741824 is not between 0 and 268435455"}},
		{name: "tls on tcp", cfg: Config{Broker: "tcp://h:1", TLS: TLSConfig{CAFile: "ca.pem"}}, want: []string{"tls: set, but broker is tcp://, not ssl:// or wss://"}},
		{name: "tls on embedded", cfg: Config{Broker: "embedded", TLS: TLSConfig{InsecureSkipVerify: true}}, want: []string{"tls: set, but the embedded broker"}},
		{name: "key without cert", cfg: Config{Broker: "ssl://h:1", TLS: TLSConfig{KeyFile: "k"}}, want: []string{"tls.cert_file: required with tls.key_file"}},
		{name: "cert without key", cfg: Config{Broker: "ssl://h:1", TLS: TLSConfig{CertFile: "c"}}, want: []string{"tls.key_file: required with tls.cert_file"}},
		{name: "state source", cfg: Config{State: StateConfig{Sources: []string{"camera", "webcam"}}}, want: []string{`state.sources: "webcam" is not one of camera, folder, snapshot, replay, http, mqtt`}},
		{name: "embedded listen", cfg: Config{Broker: "embedded", Embedded: EmbeddedConfig{Listen: "1883"}}, want: []string{`embedded.listen: "1883" is not host:port`}},
		{name: "several at once", cfg: Config{Broker: "x", QoS: new(-1)}, want: []string{"broker:", "qos:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				c := tc.cfg
				c.SetDefaults()
				if err := c.Validate(); err != nil {
					t.Fatalf("Validate after SetDefaults: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", tc.cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); n != len(tc.want) {
				t.Errorf("%d problems reported, want %d: %v", n, len(tc.want), err)
			}
		})
	}
}

func TestSetDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Prefix != "edgeinfer" || *c.QoS != 1 || c.KeepAlive != 30*time.Second || c.ConnectTimeout != 10*time.Second ||
		c.PublishTimeout != 10*time.Second || c.MaxReconnectInterval != 30*time.Second || c.Buffer != 1000 ||
		c.MaxPayloadBytes != 10<<20 || c.Inflight != 4 || !c.State.On() || c.State.MinFrames != 3 ||
		c.Embedded.Listen != "127.0.0.1:1883" || c.ShutdownTimeout != 2*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	c = Config{QoS: new(0), State: StateConfig{Enabled: new(false)}}
	c.SetDefaults()
	if *c.QoS != 0 || c.State.On() {
		t.Errorf("explicit qos 0 and enabled false not kept: qos %d, state on %v", *c.QoS, c.State.On())
	}
}
