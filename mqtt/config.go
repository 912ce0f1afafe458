package mqtt

import (
	"github.com/edgeinfer/edgeinfer/edge/config"
)

// The configuration types live in edge/config (key "mqtt"), so that the
// daemon's configuration is read and checked in one place without edge
// importing this package.
type (
	// Config configures the MQTT client; see config.MQTT.
	Config = config.MQTT
	// TLSConfig configures TLS to the broker; see config.MQTTTLS.
	TLSConfig = config.MQTTTLS
	// StateConfig configures the state topic; see config.MQTTState.
	StateConfig = config.MQTTState
	// EmbeddedConfig configures the embedded broker; see config.MQTTEmbedded.
	EmbeddedConfig = config.MQTTEmbedded
)

// BrokerEmbedded as Config.Broker runs the embedded broker.
const BrokerEmbedded = config.MQTTBrokerEmbedded

// Defaults that Config.SetDefaults fills in.
const (
	DefaultPrefix               = config.MQTTDefaultPrefix
	DefaultQoS                  = config.MQTTDefaultQoS
	DefaultKeepAlive            = config.MQTTDefaultKeepAlive
	DefaultConnectTimeout       = config.MQTTDefaultConnectTimeout
	DefaultPublishTimeout       = config.MQTTDefaultPublishTimeout
	DefaultMaxReconnectInterval = config.MQTTDefaultMaxReconnectInterval
	DefaultShutdownTimeout      = config.MQTTDefaultShutdownTimeout
	DefaultBuffer               = config.MQTTDefaultBuffer
	DefaultMaxPayloadBytes      = config.MQTTDefaultMaxPayloadBytes
	DefaultInflight             = config.MQTTDefaultInflight
	DefaultMinFrames            = config.MQTTDefaultMinFrames
	DefaultEmbeddedListen       = config.MQTTDefaultEmbeddedListen
)

// checkTopicPart reports why s cannot be a part of a topic name.
func checkTopicPart(s string) error { return config.CheckTopicPart(s) }
