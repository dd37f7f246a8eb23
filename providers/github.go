package providers

import "errors"

// newGitHub builds the GitHub provider (github.go is being written).
func newGitHub(cfg Config, opts Options) (Provider, error) {
	return nil, errors.New("providers: github: not available yet")
}
