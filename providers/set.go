package providers

import (
	"context"
	"errors"
	"fmt"
)

// Set is the configured providers, in configuration order. It owns what
// must hold across them: every id and every issuer is unique (RFC 9207 §4:
// a response from one provider must not pass for another's). Immutable.
type Set struct {
	list     []Provider
	byID     map[string]Provider
	warnings []string
}

// NewSet validates and builds every provider in cfgs, reporting every
// problem at once. It does no I/O.
func NewSet(cfgs []Config, opts Options) (*Set, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("providers: configure at least one identity provider")
	}
	s := &Set{byID: make(map[string]Provider, len(cfgs))}
	var errs []error
	seen := map[string]bool{}
	for _, c := range cfgs {
		dup := seen[c.ID]
		if dup {
			errs = append(errs, fmt.Errorf("providers: id %q is used twice", c.ID))
		}
		seen[c.ID] = true
		p, err := New(c, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dup {
			continue
		}
		if err := s.add(p); err != nil {
			errs = append(errs, err)
			continue
		}
		if c.InsecureAllowUnverifiedEmail {
			s.warnings = append(s.warnings, fmt.Sprintf("providers: %s: insecure_allow_unverified_email is on: every email the provider sends is trusted as verified", c.ID))
		}
		if c.LogoutTokenWithoutExp {
			s.warnings = append(s.warnings, fmt.Sprintf("providers: %s: logout_token_without_exp is on: back-channel logout tokens without exp are accepted when issued in the last %v (Back-Channel Logout 1.0 §2.4 requires exp)", c.ID, logoutTokenWindow))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// SetOf makes a set of providers built elsewhere (tests), checking the
// same rules as NewSet.
func SetOf(ps ...Provider) (*Set, error) {
	if len(ps) == 0 {
		return nil, errors.New("providers: configure at least one identity provider")
	}
	s := &Set{byID: make(map[string]Provider, len(ps))}
	var errs []error
	for _, p := range ps {
		if err := s.add(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// add appends p unless its id or issuer is taken. Issuers are compared
// after each type's defaults: two github entries share https://github.com.
func (s *Set) add(p Provider) error {
	if _, dup := s.byID[p.ID()]; dup {
		return fmt.Errorf("providers: id %q is used twice", p.ID())
	}
	for _, other := range s.list {
		if other.Issuer() == p.Issuer() {
			return fmt.Errorf("providers: %s and %s have the same issuer %s; each provider needs its own issuer", other.ID(), p.ID(), p.Issuer())
		}
	}
	s.byID[p.ID()] = p
	s.list = append(s.list, p)
	return nil
}

// All returns the providers in configuration order.
func (s *Set) All() []Provider { return s.list }

// Get returns the provider with id, or nil.
func (s *Set) Get(id string) Provider { return s.byID[id] }

// Only returns the one provider when exactly one is configured, else nil.
func (s *Set) Only() Provider {
	if len(s.list) == 1 {
		return s.list[0]
	}
	return nil
}

// IDs returns the providers' ids in configuration order.
func (s *Set) IDs() []string {
	out := make([]string, len(s.list))
	for i, p := range s.list {
		out[i] = p.ID()
	}
	return out
}

// Warnings lists settings that are valid but risky.
func (s *Set) Warnings() []string { return s.warnings }

// VerifyLogoutToken validates a back-channel logout token with the keys of
// the provider whose issuer it names. Only iss is read before the
// signature is checked, to pick those keys. A token no provider accepts
// wraps ErrInvalidLogoutToken; keys that cannot be fetched are
// ErrUnavailable.
func (s *Set) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	iss, err := peekIssuer(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidLogoutToken, err)
	}
	for _, p := range s.list {
		if lv, ok := p.(LogoutVerifier); ok && p.Issuer() == iss {
			return lv.VerifyLogoutToken(ctx, raw)
		}
	}
	return nil, fmt.Errorf("%w: no provider with issuer %q accepts logout tokens", ErrInvalidLogoutToken, truncateString(iss, 128))
}

// ByIssuer returns the provider whose issuer is iss, compared as strings
// (RFC 3986 §6.2.1, as RFC 9207 §2.4 and Front-Channel Logout §3 ask), or
// nil.
func (s *Set) ByIssuer(iss string) Provider {
	for _, p := range s.list {
		if p.Issuer() == iss {
			return p
		}
	}
	return nil
}
