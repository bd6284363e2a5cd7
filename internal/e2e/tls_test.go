package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and returns
// the cert and key paths and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dashstream test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCoreTLS: with TLS_CERT_FILE/TLS_KEY_FILE the gateway serves HTTPS and
// wss://, and a client trusting the certificate resumes and receives records
// exactly as over plain WebSocket.
func TestCoreTLS(t *testing.T) {
	k, topic := kafkaEnv(t, 1)
	certFile, keyFile, pool := selfSigned(t)
	env := gatewayEnv(k, topic)
	env["TLS_CERT_FILE"], env["TLS_KEY_FILE"] = certFile, keyFile
	g := startGateway(t, env)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	resp, err := client.Get("https://" + g.HTTPAddr() + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET https /readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(g.URL(), "https://") {
		t.Fatalf("URL() = %q, want https", g.URL())
	}

	offs, _ := produceEvents(t, k, topic, 0, 0, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+g.HTTPAddr()+"/ws", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"resume","from":"earliest","lastOffsetsByPartition":{}}`)); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for len(got) < len(offs) {
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read over wss after %v: %v", got, err)
		}
		if typ == websocket.MessageText && strings.Contains(string(b), `"type":"cursor"`) {
			i := strings.Index(string(b), `"offset":"`) + len(`"offset":"`)
			got = append(got, mustAtoi64(t, string(b)[i:strings.LastIndex(string(b), `"`)]))
		}
	}
	if !slices.Equal(got, offs) {
		t.Fatalf("offsets over wss %v, want %v", got, offs)
	}
}

func mustAtoi64(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("bad offset %q", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
