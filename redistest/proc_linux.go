package redistest

import (
	"os/exec"
	"syscall"
)

// setProcAttr has the kernel kill the server when the test binary dies, so
// a panic or a -timeout kill leaves no redis-server behind.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
