package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeinfer/edgeinfer/edge/config"
	"github.com/edgeinfer/edgeinfer/edge/daemon"
	"github.com/edgeinfer/edgeinfer/edge/pipeline"
	"github.com/edgeinfer/edgeinfer/mqtt"
)

// mqttPlugin wires the MQTT client (and, for `mqtt.broker: embedded`, the
// embedded broker) into the daemon.
func mqttPlugin(cfg *config.Config, p *pipeline.Pipeline, reg prometheus.Registerer, log *slog.Logger) (*daemon.Extension, error) {
	mc := cfg.MQTT
	if mc.Broker == "" {
		return nil, nil
	}
	mc.SetDefaults()
	var embedded *mqtt.Embedded
	if mc.Broker == mqtt.BrokerEmbedded {
		var err error
		if embedded, err = mqtt.StartEmbedded(mc.Embedded.Listen, log.With("component", "broker")); err != nil {
			return nil, err
		}
		mc.Broker = "tcp://" + embedded.Addr()
		log.Info("embedded MQTT broker", "listen", embedded.Addr(),
			"watch", fmt.Sprintf("mosquitto_sub -h %s -p %s -t '%s/#' -v", hostOf(embedded.Addr()), portOf(embedded.Addr()), prefixOr(mc.Prefix)))
	}
	client, err := mqtt.New(mc, cfg.DeviceID, p, reg, log.With("component", "mqtt"))
	if err != nil {
		if embedded != nil {
			embedded.Close()
		}
		return nil, err
	}
	ext := &daemon.Extension{
		Sink:   client,
		Run:    func(ctx context.Context) error { return client.Run(ctx) },
		Status: client.Status,
	}
	if embedded != nil {
		ext.Close = embedded.Close
	}
	return ext, nil
}

func hostOf(addr string) string { return addr[:strings.LastIndexByte(addr, ':')] }
func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func prefixOr(p string) string {
	if p == "" {
		return mqtt.DefaultPrefix
	}
	return p
}
