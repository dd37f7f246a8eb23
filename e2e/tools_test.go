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
	missingTool(t, name+" not found on PATH; install it: apt-get install -y "+debianPackage)
	return ""
}

// missingTool skips the test with msg, which says how to install what is
// missing, or fails it under CI=true.
func missingTool(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
