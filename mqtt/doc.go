// Package mqtt is edgeinfer's MQTT side, over
// github.com/eclipse/paho.mqtt.golang, plus an embedded broker over
// github.com/mochi-mqtt/server/v2 for single-box setups.
//
// A Client owns one connection to the broker and these topics, under
// <prefix>/<device>/ (prefix default "edgeinfer"):
//
//	availability        retained "online"/"offline", QoS 1; "offline" is also the Will
//	predictions         the edge.Result JSON of every classified image, QoS qos (default 1)
//	errors              the edge.Rejection JSON of every image that could not be classified, QoS 1
//	state               retained State JSON: the top-1 label, debounced (see Debouncer)
//	classify/<id>       subscribed, QoS 1: the payload is an image; the answer comes on
//	                    predictions or errors with request_id <id>
//
// The Client is a pipeline.Sink (Publish never blocks: events go to a
// bounded buffer that drops the oldest when full) and a request source
// (classify requests go to a Classifier, normally the pipeline, whose
// events come back through Publish like any other source's).
//
// # Delivery
//
// Predictions and errors are published by one goroutine, one message at a
// time, in the order Publish received them: across broker restarts and
// network outages, each is delivered once, in order, or counted as dropped
// (buffer full, or left over at shutdown). How that holds:
//
//   - Run owns the connection: paho's AutoReconnect and ConnectRetry are
//     off, and Run's loop reconnects with its own backoff. paho with
//     AutoReconnect keeps the tokens of unacknowledged publishes alive
//     across a reconnect and resends the packets from its store (resume()
//     runs on every reconnect, even with CleanSession), completing the
//     first token without error; a publisher that also retried would
//     duplicate the message, and one that did not could not tell an
//     acknowledged message from a requeued one. paho's reconnect loop also
//     sleeps uninterruptibly, so it could outlive Run.
//   - paho's store is given no outgoing PUBLISH packets (sessionStore), so
//     paho never resends a prediction by itself, with or without a
//     persistent session. The publisher alone retries.
//   - A message is handed to paho only while connected, and the next one
//     only after the broker acknowledged it. If the connection is lost
//     first, the message goes back to the head of the buffer and is sent
//     again on the next connection, before anything newer. paho completes
//     the token of a PUBACK it read before it noticed the loss, so a
//     message acknowledged just before the broker went away is not resent.
//   - A token that takes longer than PublishTimeout is logged and waited
//     for again rather than resent: on a live connection the
//     acknowledgement either comes or the keep-alive declares the
//     connection lost.
//   - At shutdown the message in flight is waited for, then the buffer is
//     flushed, until ShutdownTimeout after Run's context ended. A message
//     still unacknowledged then is counted as dropped, never resent.
//
// The limit is the one of MQTT QoS 1 itself: if the broker forwarded a
// message to subscribers and then died (or the connection did) before its
// PUBACK reached the client, the message is sent again and subscribers see
// it twice. A broker stopped cleanly (SIGTERM, a restart) acknowledges
// what it read before it closes the connection, so this takes a crash in
// that window (TestOutage stops mosquitto under back-to-back results and
// finds no duplicate). QoS 2 removes it only within one connection. One
// message in flight also bounds the rate to one per round trip to the
// broker.
//
// # Requests
//
// classify/<id> messages are handled in their own goroutines (paho's
// OrderMatters off), at most Inflight at once, and acknowledged by hand
// once the outcome is queued: QoS 1 requests beyond Inflight stay
// unacknowledged, so the broker's in-flight window holds the rest back,
// and with persistent_session a daemon killed mid-request gets it again.
// Every message is acknowledged exactly once, whatever its fate:
//
//   - no request id, an image over max_payload_bytes, a retained request
//     (it would come back on every reconnect), a QoS 0 request beyond
//     Inflight waiting ones, or shutdown: an error on the errors topic,
//     the classifier not called;
//   - a classifier error or panic: an error on the errors topic;
//   - a redelivery (DUP) of a request answered recently (same id and
//     image, its PUBACK lost with the connection): no second answer;
//   - any other redelivery is acknowledged before it is classified, so
//     that an image that crashes the process is not redelivered forever.
package mqtt
