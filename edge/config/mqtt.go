package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/edgeinfer/edgeinfer/edge/source"
)

// MQTTBrokerEmbedded as MQTT.Broker runs the embedded broker (see
// StartEmbedded) on MQTT.Embedded.Listen and connects to it.
const MQTTBrokerEmbedded = "embedded"

// Defaults that SetDefaults fills in.
const (
	MQTTDefaultPrefix               = "edgeinfer"
	MQTTDefaultQoS                  = 1
	MQTTDefaultKeepAlive            = 30 * time.Second
	MQTTDefaultConnectTimeout       = 10 * time.Second
	MQTTDefaultPublishTimeout       = 10 * time.Second
	MQTTDefaultMaxReconnectInterval = 30 * time.Second
	MQTTDefaultShutdownTimeout      = 2 * time.Second
	MQTTDefaultBuffer               = 1000
	MQTTDefaultMaxPayloadBytes      = 10 << 20
	MQTTDefaultInflight             = 4
	MQTTDefaultMinFrames            = 3
	MQTTDefaultEmbeddedListen       = "127.0.0.1:1883"
)

// mqttMaxPacketPayload is the largest payload an MQTT packet can carry.
const mqttMaxPacketPayload = 268_435_455

// MQTT configures the MQTT client. The zero value of every field except
// Broker stands for its default, so a config holding only a broker works.
type MQTT struct {
	// Broker is "" (MQTT off), "embedded", or a URL: tcp://host:1883,
	// ssl://host:8883, ws://host:port/path or wss://host:port/path.
	// Credentials in the URL (tcp://user:pass@host:1883) take precedence
	// over Username and Password and are redacted wherever the URL is shown.
	Broker string `mapstructure:"broker"`
	// ClientID is the MQTT client id, default "edgeinfer-<device>".
	ClientID string `mapstructure:"client_id"`
	// Username and Password authenticate to the broker. The password is
	// never logged nor reported.
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	// Prefix is the first part of every topic, default "edgeinfer"; it may
	// have several levels ("site/edgeinfer").
	Prefix string `mapstructure:"prefix"`
	// QoS is the QoS of predictions, 0, 1 or 2; nil means 1. A pointer so
	// that an explicit `qos: 0` is not mistaken for "unset".
	QoS *int `mapstructure:"qos"`
	// KeepAlive is the MQTT keep-alive, default 30s: a dead connection is
	// noticed within about 1.5 times this.
	KeepAlive time.Duration `mapstructure:"keepalive"`
	// ConnectTimeout bounds one connection attempt, default 10s.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	// PublishTimeout bounds each wait for the broker's acknowledgement,
	// default 10s; a wait that times out is logged and continued on the
	// same connection (see the package documentation for why).
	PublishTimeout time.Duration `mapstructure:"publish_timeout"`
	// MaxReconnectInterval caps the exponential backoff between connection
	// attempts (1s, 2s, 4s, ...), default 30s.
	MaxReconnectInterval time.Duration `mapstructure:"max_reconnect_interval"`
	// ShutdownTimeout bounds, after Run's context ends, finishing the
	// classify requests in progress, the message in flight and publishing
	// what is buffered; publishing "offline" then gets as long again.
	// Default 2s.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// PersistentSession asks the broker to keep the session (CleanSession
	// false): classify requests sent while the daemon is down are queued
	// by the broker and delivered when it reconnects.
	PersistentSession bool `mapstructure:"persistent_session"`
	// Buffer is how many predictions and errors are kept while the broker
	// is unreachable, default 1000; when full the oldest is dropped and
	// counted.
	Buffer int `mapstructure:"buffer"`
	// MaxPayloadBytes is the largest image accepted on the classify topic,
	// default 10 MiB; larger ones are answered on the errors topic.
	MaxPayloadBytes int64 `mapstructure:"max_payload_bytes"`
	// Inflight is how many classify requests are processed at once,
	// default 4. QoS 1 and 2 requests beyond it stay unacknowledged, so
	// the broker's in-flight window holds the rest back.
	Inflight int `mapstructure:"inflight"`
	// TLS configures ssl:// and wss:// brokers.
	TLS MQTTTLS `mapstructure:"tls"`
	// State configures the debounced state topic.
	State MQTTState `mapstructure:"state"`
	// Embedded configures the embedded broker of Broker "embedded".
	Embedded MQTTEmbedded `mapstructure:"embedded"`
}

// MQTTTLS configures TLS to the broker. Without a CA file the system's
// roots are used.
type MQTTTLS struct {
	// CAFile holds the PEM certificates that may sign the broker's.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that require one.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ServerName overrides the name the broker's certificate must carry
	// (default: the broker URL's host).
	ServerName string `mapstructure:"server_name"`
	// InsecureSkipVerify accepts any broker certificate. Only for tests
	// and first setups; a warning is logged at every start.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// configured reports whether any TLS setting is set.
func (t MQTTTLS) Configured() bool { return t != MQTTTLS{} }

// MQTTState configures the retained state topic: the top-1 label,
// changed only once a new label has held for MinFrames results in a row
// and for at least MinDwell.
type MQTTState struct {
	// Enabled turns the state topic on or off; nil means on. A pointer so
	// that `enabled: false` can be told from an absent key.
	Enabled *bool `mapstructure:"enabled"`
	// MinFrames is how many consecutive results must agree on a new
	// label, default 3.
	MinFrames int `mapstructure:"min_frames"`
	// MinDwell is how long they must agree, default 0 (frames only).
	MinDwell time.Duration `mapstructure:"min_dwell"`
	// Sources restricts the results that feed the state to these source
	// kinds (camera, folder, snapshot, replay, http, mqtt); empty means all.
	Sources []string `mapstructure:"sources"`
}

// On reports whether the state topic is enabled.
func (s MQTTState) On() bool { return s.Enabled == nil || *s.Enabled }

// MQTTEmbedded configures the embedded broker.
type MQTTEmbedded struct {
	// Listen is the broker's host:port, default 127.0.0.1:1883 (this host
	// only; use ":1883" to serve the LAN).
	Listen string `mapstructure:"listen"`
}

// SetDefaults fills the zero fields that have a default. ClientID depends
// on the device id, so New fills it.
func (c *MQTT) SetDefaults() {
	if c.Prefix == "" {
		c.Prefix = MQTTDefaultPrefix
	}
	if c.QoS == nil {
		c.QoS = new(MQTTDefaultQoS)
	}
	setDefaultDuration(&c.KeepAlive, MQTTDefaultKeepAlive)
	setDefaultDuration(&c.ConnectTimeout, MQTTDefaultConnectTimeout)
	setDefaultDuration(&c.PublishTimeout, MQTTDefaultPublishTimeout)
	setDefaultDuration(&c.MaxReconnectInterval, MQTTDefaultMaxReconnectInterval)
	setDefaultDuration(&c.ShutdownTimeout, MQTTDefaultShutdownTimeout)
	if c.Buffer == 0 {
		c.Buffer = MQTTDefaultBuffer
	}
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = MQTTDefaultMaxPayloadBytes
	}
	if c.Inflight == 0 {
		c.Inflight = MQTTDefaultInflight
	}
	if c.State.Enabled == nil {
		c.State.Enabled = new(true)
	}
	if c.State.MinFrames == 0 {
		c.State.MinFrames = MQTTDefaultMinFrames
	}
	if c.Embedded.Listen == "" {
		c.Embedded.Listen = MQTTDefaultEmbeddedListen
	}
}

func setDefaultDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Validate reports every problem with c, each naming its key. Zero values
// stand for the defaults, so Validate accepts a config before and after
// SetDefaults. Messages never contain the password.
func (c MQTT) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf(key+": "+format, args...))
	}
	scheme := ""
	switch c.Broker {
	case "", MQTTBrokerEmbedded:
	default:
		u, err := url.Parse(c.Broker)
		if err != nil {
			// url's error quotes the whole URL, password included.
			add("broker", "not a URL")
			break
		}
		scheme = u.Scheme
		switch {
		case !slices.Contains([]string{"tcp", "ssl", "ws", "wss"}, u.Scheme):
			add("broker", `%q is not tcp://, ssl://, ws://, wss:// or %q`, source.RedactURL(c.Broker), MQTTBrokerEmbedded)
		case u.Hostname() == "":
			add("broker", "%q has no host", source.RedactURL(c.Broker))
		case (u.Scheme == "tcp" || u.Scheme == "ssl") && u.Port() == "":
			add("broker", "%q has no port (%s://%s:%d)", source.RedactURL(c.Broker), u.Scheme, u.Hostname(), map[string]int{"tcp": 1883, "ssl": 8883}[u.Scheme])
		}
		if _, ok := u.User.Password(); ok && c.Password != "" {
			add("password", "set both here and in the broker URL")
		}
	}
	if c.Password != "" && c.Username == "" {
		add("password", "set without username (MQTT sends a password only with a username)")
	}
	if strings.ContainsAny(c.ClientID, "\x00") {
		add("client_id", "contains NUL")
	}
	if c.Prefix != "" {
		if err := CheckTopicPart(c.Prefix); err != nil {
			add("prefix", "%q %v", c.Prefix, err)
		}
	}
	if c.QoS != nil && (*c.QoS < 0 || *c.QoS > 2) {
		add("qos", "%d is not 0, 1 or 2", *c.QoS)
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{
		{"keepalive", c.KeepAlive}, {"connect_timeout", c.ConnectTimeout}, {"publish_timeout", c.PublishTimeout},
		{"max_reconnect_interval", c.MaxReconnectInterval}, {"shutdown_timeout", c.ShutdownTimeout},
		{"state.min_dwell", c.State.MinDwell},
	} {
		if d.val < 0 {
			add(d.key, "must be >= 0")
		}
	}
	if c.KeepAlive > 0 && (c.KeepAlive < time.Second || c.KeepAlive > 65535*time.Second) {
		add("keepalive", "%s is not between 1s and 65535s", c.KeepAlive)
	}
	if c.Buffer < 0 {
		add("buffer", "must be >= 0")
	}
	if c.MaxPayloadBytes < 0 || c.MaxPayloadBytes > mqttMaxPacketPayload {
		add("max_payload_bytes", "%d is not between 0 and %d", c.MaxPayloadBytes, mqttMaxPacketPayload)
	}
	if c.Inflight < 0 {
		add("inflight", "must be >= 0")
	}
	if c.TLS.Configured() {
		switch {
		case c.Broker == MQTTBrokerEmbedded:
			add("tls", "set, but the embedded broker listens on plain TCP")
		case c.Broker != "" && scheme != "" && scheme != "ssl" && scheme != "wss":
			add("tls", "set, but broker is %s://, not ssl:// or wss://", scheme)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		if c.TLS.CertFile == "" {
			add("tls.cert_file", "required with tls.key_file")
		} else {
			add("tls.key_file", "required with tls.cert_file")
		}
	}
	if c.State.MinFrames < 0 {
		add("state.min_frames", "must be >= 0")
	}
	kinds := []string{source.KindCamera, source.KindFolder, source.KindSnapshot, source.KindReplay, source.KindHTTP, source.KindMQTT}
	for _, k := range c.State.Sources {
		if !slices.Contains(kinds, k) {
			add("state.sources", "%q is not one of %s", k, strings.Join(kinds, ", "))
		}
	}
	if c.Broker == MQTTBrokerEmbedded && c.Embedded.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Embedded.Listen); err != nil {
			add("embedded.listen", "%q is not host:port", c.Embedded.Listen)
		}
	}
	return errors.Join(errs...)
}

// CheckTopicPart reports why s cannot be a part of a topic name.
func CheckTopicPart(s string) error {
	switch {
	case strings.ContainsAny(s, "+#"):
		return errors.New("contains a wildcard (+ or #)")
	case strings.ContainsRune(s, 0):
		return errors.New("contains NUL")
	case strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//"):
		return errors.New("has an empty topic level")
	}
	return nil
}
