package e2e

import (
	"context"
	"net/http"

	"github.com/portcullis/portcullis/demo"
)

func demoSignIn(c *http.Client, loginURL, user, password string) (*http.Response, error) {
	return demo.SignIn(context.Background(), c, loginURL, user, password)
}
