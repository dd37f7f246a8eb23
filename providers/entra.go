package providers

import "errors"

// newEntra builds the Microsoft Entra ID provider (entra.go is being
// written).
func newEntra(cfg Config, opts Options) (Provider, error) {
	return nil, errors.New("providers: entra: not available yet")
}
