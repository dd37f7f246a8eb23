package providers

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// claimtypes.go checks the JSON type of the registered claims before any
// of them is believed. go-oidc decodes exp, iat, nbf and auth_time with a
// type that also takes a JSON string holding a number, and matches claim
// names case-insensitively, so "exp": "9999999999" or "EXP": … would be
// honoured; the gateway reads the decoded claim map itself instead.

// numericDateClaims are NumericDate values (RFC 7519 §2, §4.1.4–4.1.6;
// OpenID Connect Core §2 for auth_time): JSON numbers of seconds, possibly
// with a fraction.
var numericDateClaims = []string{"exp", "iat", "nbf", "auth_time"}

// stringClaims are StringOrURI or plain string claims (RFC 7519 §4.1.1,
// §4.1.2, §4.1.7; Core §2 azp, nonce; Front/Back-Channel Logout sid).
var stringClaims = []string{"iss", "sub", "azp", "nonce", "jti", "sid"}

// maxNumericDate is the largest NumericDate accepted: int64 seconds, the
// range time.Unix can represent.
const maxNumericDate = float64(math.MaxInt64)

// checkClaimTypes refuses claims whose JSON type is not the one the specs
// give them (RFC 7519 §4.1), and any spelling of a registered claim name in
// another case: claim names are case-sensitive (RFC 7519 §4), and a
// case-folded duplicate is what go-oidc's struct decoding would read.
func checkClaimTypes(all map[string]any) error {
	for k := range all {
		for _, name := range registeredClaims() {
			if k != name && strings.EqualFold(k, name) {
				return fmt.Errorf("claim %q is %s in another case", k, name)
			}
		}
	}
	for _, name := range numericDateClaims {
		if v, ok := all[name]; ok {
			if err := checkNumericDate(v); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
		}
	}
	for _, name := range stringClaims {
		if v, ok := all[name]; ok {
			if _, isString := v.(string); !isString {
				return fmt.Errorf("%s is a JSON %s, not a string", name, jsonKind(v))
			}
		}
	}
	if v, ok := all["aud"]; ok {
		if err := checkAudience(v); err != nil {
			return fmt.Errorf("aud: %v", err)
		}
	}
	return nil
}

func registeredClaims() []string {
	return append(append([]string{"aud"}, numericDateClaims...), stringClaims...)
}

// checkNumericDate: a JSON number (encoding/json gives float64), not
// negative and within int64 seconds. A fraction is allowed (RFC 7519 §2).
func checkNumericDate(v any) error {
	f, ok := v.(float64)
	switch {
	case !ok:
		return fmt.Errorf("a JSON %s, not a NumericDate number", jsonKind(v))
	case math.IsNaN(f) || math.IsInf(f, 0):
		return errors.New("not a finite number")
	case f < 0:
		return errors.New("negative")
	case f >= maxNumericDate:
		return errors.New("beyond the representable range")
	}
	return nil
}

// checkAudience: aud is one string or an array of strings (RFC 7519
// §4.1.3).
func checkAudience(v any) error {
	switch a := v.(type) {
	case string:
		return nil
	case []any:
		for _, e := range a {
			if _, ok := e.(string); !ok {
				return fmt.Errorf("an array holding a JSON %s", jsonKind(e))
			}
		}
		return nil
	}
	return fmt.Errorf("a JSON %s, not a string or an array of strings", jsonKind(v))
}

// jsonKind names the JSON type of a value decoded by encoding/json.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
