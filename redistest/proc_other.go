//go:build !linux

package redistest

import "os/exec"

// setProcAttr does nothing here: only Linux can tie a child's life to ours;
// t.Cleanup still kills every server.
func setProcAttr(cmd *exec.Cmd) {}
