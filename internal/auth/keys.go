package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"slices"
)

// The algorithms a key verifies follow from its type alone: that is the
// algorithm-confusion defence. A secret only ever verifies HS*, a public key
// only the signature schemes of its type, so a token cannot make an RSA
// public key serve as an HMAC secret, nor an ECDSA key verify RS256.
var (
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
	rsaAlgs  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	// asymmetricAlgs is every algorithm a JWKS key may verify.
	asymmetricAlgs = append(slices.Clone(rsaAlgs), "ES256", "ES384", "ES512", "EdDSA")
)

// verifyKey is one public key with the algorithms it may verify.
type verifyKey struct {
	kid  string   // JWKS key id; empty for the key file
	key  any      // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	algs []string // never empty
}

func (k verifyKey) allows(alg string) bool { return slices.Contains(k.algs, alg) }

// newVerifyKey checks that pub is a supported, strong enough public key and
// derives its algorithms.
func newVerifyKey(kid string, pub any) (verifyKey, error) {
	k := verifyKey{kid: kid, key: pub}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return k, fmt.Errorf("RSA key of %d bits, need at least %d", p.N.BitLen(), minRSABits)
		}
		k.algs = rsaAlgs
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			k.algs = []string{"ES256"}
		case elliptic.P384():
			k.algs = []string{"ES384"}
		case elliptic.P521():
			k.algs = []string{"ES512"}
		default:
			return k, fmt.Errorf("unsupported ECDSA curve %s", p.Curve.Params().Name)
		}
		if _, err := p.ECDH(); err != nil { // also refuses a point off the curve
			return k, fmt.Errorf("ECDSA key: %w", err)
		}
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return k, fmt.Errorf("Ed25519 key of %d bytes", len(p))
		}
		k.algs = []string{"EdDSA"}
	default:
		return k, fmt.Errorf("unsupported key type %T (want RSA, ECDSA or Ed25519 public key)", pub)
	}
	return k, nil
}

// loadPublicKey reads a bounded PEM file holding an RSA, ECDSA or Ed25519
// public key: PKIX ("PUBLIC KEY"), PKCS#1 ("RSA PUBLIC KEY") or a
// certificate whose key is used (its validity dates are not checked).
func loadPublicKey(path string) (verifyKey, error) {
	f, err := os.Open(path) //nolint:gosec // G304: WEBSOCKET_JWT_PUBLIC_KEY_FILE, set by the operator
	if err != nil {
		return verifyKey{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return verifyKey{}, err
	}
	if len(data) > maxKeyFileBytes {
		return verifyKey{}, fmt.Errorf("larger than %d bytes", maxKeyFileBytes)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return verifyKey{}, fmt.Errorf("no PEM block")
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return verifyKey{}, fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
	}
	if err != nil {
		return verifyKey{}, err
	}
	return newVerifyKey("", pub)
}
