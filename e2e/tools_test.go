package e2e

import (
	"os"
	"os/exec"
	"testing"
)

// requireTool returns the path of an external program the test needs. When
// it is missing the test is skipped with the package to install, except in
// CI (CI=true), where a missing tool is a failure.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " not found on PATH; install it: apt-get install -y " + debianPackage
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
