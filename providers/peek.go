package providers

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// peek.go reads a compact JWS (RFC 7515 §7.1) before its signature is
// checked, for bearer tokens and back-channel logout tokens. Two things
// are looked at, and both can only narrow what is accepted: the payload's
// iss picks the keys that will verify the token (the verifier then checks
// iss itself), and the header's typ refuses a kind of JWT that is never
// accepted in that place (RFC 8725 §3.11). Nothing else is believed before
// the signature (SECURITY.md).

// maxUnverifiedJWT bounds what is decoded before verification.
const maxUnverifiedJWT = 16 << 10

// unverifiedJWT is what peekJWT read.
type unverifiedJWT struct {
	typ string // the JOSE header's typ (RFC 7515 §4.1.9); "" when absent
	iss string // the payload's iss; "" when absent
}

// peekJWT decodes the header and payload of raw without verifying it. They
// are decoded with encoding/json into the two fields, as go-oidc decodes
// iss for its own check, so the issuer whose keys are picked is the one
// the verifier will compare.
func peekJWT(raw string) (unverifiedJWT, error) {
	if len(raw) > maxUnverifiedJWT {
		return unverifiedJWT{}, errors.New("token too large")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return unverifiedJWT{}, errors.New("not a signed JWT")
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if decodeSegment(parts[0], &h) != nil {
		return unverifiedJWT{}, errors.New("malformed header")
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if decodeSegment(parts[1], &c) != nil {
		return unverifiedJWT{}, errors.New("malformed payload")
	}
	return unverifiedJWT{typ: h.Typ, iss: c.Iss}, nil
}

// peekIssuer is the iss of raw, to pick the keys that will verify it.
func peekIssuer(raw string) (string, error) {
	jwt, err := peekJWT(raw)
	if err != nil {
		return "", err
	}
	if jwt.iss == "" {
		return "", errors.New("no iss")
	}
	return jwt.iss, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
