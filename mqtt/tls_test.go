package mqtt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeinfer/edgeinfer/mqtt/mqtttest"
)

// pki is a test CA with a server and a client certificate, as PEM files.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

// newPKI writes a CA, a server certificate for 127.0.0.1 and localhost,
// and a client certificate into dir.
func newPKI(t *testing.T, dir, name string) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := pki{ca: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, p.ca, "CERTIFICATE", caDER)

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, server bool) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile := filepath.Join(dir, name+"-"+cn+".pem"), filepath.Join(dir, name+"-"+cn+".key")
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", keyDER)
		return certFile, keyFile
	}
	p.serverCert, p.serverKey = leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, true)
	p.clientCert, p.clientKey = leaf(3, "edgeinfer-client", x509.ExtKeyUsageClientAuth, false)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLS runs mosquitto with TLS and required client certificates.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	good := newPKI(t, dir, "good")
	other := newPKI(t, dir, "other")
	port := mqtttest.FreePort(t)
	// A second listener, TLS only, on the same broker.
	m := mqtttest.Start(t, fmt.Sprintf("listener %d 127.0.0.1", port),
		"cafile "+good.ca, "certfile "+good.serverCert, "keyfile "+good.serverKey, "require_certificate true")
	broker := fmt.Sprintf("ssl://127.0.0.1:%d", port)

	t.Run("right CA and client certificate", func(t *testing.T) {
		leakCheck(t)
		cfg := Config{Broker: broker, TLS: TLSConfig{CAFile: good.ca, CertFile: good.clientCert, KeyFile: good.clientKey}}
		c, _ := runClient(t, cfg, "tls", &fakeClassifier{}, testLogger(t))
		waitFor(t, 20*time.Second, "TLS connection", connected(c))
		// A request over the TLS connection is answered.
		col := newCollector(t, m.URL(), "test-tls-sub", false, c.Topics().Predictions)
		pub := outsidePublisher(t, m.URL())
		pub.Publish(c.Topics().Classify+"/over-tls", 1, false, "IMG:tls").Wait()
		waitFor(t, 20*time.Second, "the answer over TLS", func() bool { return len(col.on(c.Topics().Predictions)) == 1 })
	})

	t.Run("localhost as server name", func(t *testing.T) {
		leakCheck(t)
		cfg := Config{Broker: broker, TLS: TLSConfig{CAFile: good.ca, CertFile: good.clientCert, KeyFile: good.clientKey, ServerName: "localhost"}}
		c, _ := runClient(t, cfg, "tls-name", &fakeClassifier{}, testLogger(t))
		waitFor(t, 20*time.Second, "TLS connection", connected(c))
	})

	t.Run("wrong CA", func(t *testing.T) {
		leakCheck(t)
		cfg := Config{Broker: broker, TLS: TLSConfig{CAFile: other.ca, CertFile: good.clientCert, KeyFile: good.clientKey}}
		c, stop := runClient(t, cfg, "tls-wrong", &fakeClassifier{}, testLogger(t))
		waitFor(t, 20*time.Second, "a connection error", func() bool { return c.Status().LastError != "" })
		st := c.Status()
		if st.Connected {
			t.Fatal("connected with the wrong CA")
		}
		if !strings.Contains(st.LastError, "certificate") || !strings.Contains(st.LastError, "authority") {
			t.Errorf("LastError = %q, want it to mention the certificate authority", st.LastError)
		}
		stop()
	})

	t.Run("wrong CA with insecure_skip_verify", func(t *testing.T) {
		leakCheck(t)
		cfg := Config{Broker: broker, TLS: TLSConfig{CAFile: other.ca, CertFile: good.clientCert, KeyFile: good.clientKey, InsecureSkipVerify: true}}
		c, _ := runClient(t, cfg, "tls-insecure", &fakeClassifier{}, testLogger(t))
		waitFor(t, 20*time.Second, "TLS connection", connected(c))
	})

	t.Run("no client certificate", func(t *testing.T) {
		leakCheck(t)
		cfg := Config{Broker: broker, TLS: TLSConfig{CAFile: good.ca}}
		c, _ := runClient(t, cfg, "tls-nocert", &fakeClassifier{}, testLogger(t))
		waitFor(t, 20*time.Second, "a connection error", func() bool { return c.Status().LastError != "" })
		if c.Status().Connected {
			t.Fatal("connected without the client certificate the broker requires")
		}
	})

	t.Run("bad files", func(t *testing.T) {
		empty := filepath.Join(dir, "empty.pem")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		secretKey := filepath.Join(dir, "secret.key")
		if err := os.WriteFile(secretKey, []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		missing := filepath.Join(dir, "missing.pem")
		for _, tc := range []struct {
			name string
			tls  TLSConfig
			want string
			is   error
		}{
			{"missing CA file", TLSConfig{CAFile: missing}, missing, os.ErrNotExist},
			{"empty CA file", TLSConfig{CAFile: empty}, empty, ErrNoCertificates},
			{"bad key", TLSConfig{CAFile: good.ca, CertFile: good.clientCert, KeyFile: secretKey}, secretKey, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := New(Config{Broker: broker, TLS: tc.tls}, "tls-bad", &fakeClassifier{}, nil, nil)
				if err == nil {
					t.Fatal("New succeeded")
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q does not name %s", err, tc.want)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("error %q is not %v", err, tc.is)
				}
				if strings.Contains(err.Error(), "c2VjcmV0") {
					t.Errorf("error %q shows the key's contents", err)
				}
			})
		}
	})
}
