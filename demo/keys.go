package demo

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// signingKey is the provider's one RSA key: it signs ID tokens and JWT
// access tokens (RS256), and its public half is published at the keys
// endpoint.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

var _ op.SigningKey = signingKey{}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// publicKey is the published half of signingKey.
type publicKey struct{ signingKey }

var _ op.Key = publicKey{}

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// newSigningKey uses key and keyID when given; otherwise it generates an
// RSA-2048 key, and names it by its RFC 7638 thumbprint.
func newSigningKey(key *rsa.PrivateKey, keyID string) (signingKey, error) {
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return signingKey{}, fmt.Errorf("demo: generating signing key: %w", err)
		}
	}
	if keyID == "" {
		tp, err := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
		if err != nil {
			return signingKey{}, fmt.Errorf("demo: deriving key ID: %w", err)
		}
		keyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	return signingKey{id: keyID, key: key}, nil
}

// SigningKey implements op.Storage.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

// SignatureAlgorithms implements op.Storage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet implements op.Storage: the public keys that verify our tokens.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}
