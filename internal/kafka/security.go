package kafka

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Values of Security.Protocol (KAFKA_SECURITY_PROTOCOL), compared without
// regard to case.
const (
	ProtocolPlaintext     = "plaintext"
	ProtocolSSL           = "ssl"
	ProtocolSASLPlaintext = "sasl_plaintext"
	ProtocolSASLSSL       = "sasl_ssl"
)

// Values of Security.SASLMechanism (KAFKA_SASL_MECHANISM), compared without
// regard to case.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
)

// Security holds the Kafka security settings (README.md, Configuration),
// applied to every client (consumer, DLQ producer, admin, deep replay).
type Security struct {
	// Protocol is one of the Protocol* values. Empty: plaintext.
	Protocol string
	// SASLMechanism is one of the Mechanism* values; required with the
	// sasl_* protocols and refused with the others.
	SASLMechanism string
	// Username is the SASL user (PLAIN, SCRAM; for OAUTHBEARER an optional
	// authorization id).
	Username string
	// Password is the SASL password, or for OAUTHBEARER the bearer token
	// itself (a static token: a refreshing token provider is not built in).
	Password string
	// CAFile is a PEM bundle of the CAs to trust. Empty: the system pool.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key for
	// mutual TLS; both or neither.
	CertFile, KeyFile string
}

// ClientOpts turns sec into franz-go options: TLS dialing for ssl and
// sasl_ssl, a SASL mechanism for sasl_plaintext and sasl_ssl. Invalid or
// contradictory settings are errors wrapping ErrInvalidSecurity; nothing is
// silently ignored.
func ClientOpts(sec Security) ([]kgo.Opt, error) {
	proto := strings.ToLower(cmp.Or(sec.Protocol, ProtocolPlaintext))
	useTLS, useSASL, err := protocolNeeds(proto)
	if err != nil {
		return nil, err
	}
	if err := checkCombination(sec, useTLS, useSASL); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if useTLS {
		cfg, err := tlsConfig(sec)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if useSASL {
		mech, err := saslMechanism(sec)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

func protocolNeeds(proto string) (useTLS, useSASL bool, err error) {
	switch proto {
	case ProtocolPlaintext:
		return false, false, nil
	case ProtocolSSL:
		return true, false, nil
	case ProtocolSASLPlaintext:
		return false, true, nil
	case ProtocolSASLSSL:
		return true, true, nil
	}
	return false, false, fmt.Errorf("%w: unknown security protocol %q", ErrInvalidSecurity, proto)
}

func checkCombination(sec Security, useTLS, useSASL bool) error {
	switch {
	case !useSASL && (sec.SASLMechanism != "" || sec.Username != "" || sec.Password != ""):
		return fmt.Errorf("%w: SASL settings need protocol sasl_plaintext or sasl_ssl", ErrInvalidSecurity)
	case useSASL && sec.SASLMechanism == "":
		return fmt.Errorf("%w: protocol %s needs a SASL mechanism", ErrInvalidSecurity, sec.Protocol)
	case !useTLS && (sec.CAFile != "" || sec.CertFile != "" || sec.KeyFile != ""):
		return fmt.Errorf("%w: TLS files need protocol ssl or sasl_ssl", ErrInvalidSecurity)
	case (sec.CertFile == "") != (sec.KeyFile == ""):
		return fmt.Errorf("%w: client certificate and key go together", ErrInvalidSecurity)
	}
	return nil
}

func tlsConfig(sec Security) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if sec.CAFile != "" {
		pem, err := os.ReadFile(sec.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: read CA file: %w", ErrInvalidSecurity, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: no PEM certificate in CA file %s", ErrInvalidSecurity, sec.CAFile)
		}
		cfg.RootCAs = pool
	}
	if sec.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(sec.CertFile, sec.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: load client certificate: %w", ErrInvalidSecurity, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func saslMechanism(sec Security) (sasl.Mechanism, error) {
	mech := strings.ToUpper(sec.SASLMechanism)
	if mech == MechanismOAuthBearer {
		if sec.Password == "" {
			return nil, fmt.Errorf("%w: OAUTHBEARER needs a token (the SASL password)", ErrInvalidSecurity)
		}
		return oauth.Auth{Zid: sec.Username, Token: sec.Password}.AsMechanism(), nil
	}
	if sec.Username == "" || sec.Password == "" {
		return nil, fmt.Errorf("%w: %s needs a user name and a password", ErrInvalidSecurity, mech)
	}
	switch mech {
	case MechanismPlain:
		return plain.Auth{User: sec.Username, Pass: sec.Password}.AsMechanism(), nil
	case MechanismScramSHA256:
		return scram.Auth{User: sec.Username, Pass: sec.Password}.AsSha256Mechanism(), nil
	case MechanismScramSHA512:
		return scram.Auth{User: sec.Username, Pass: sec.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("%w: unknown SASL mechanism %q", ErrInvalidSecurity, sec.SASLMechanism)
}
