package main

import "syscall"

// childAttr puts a child in its own process group, so stopping it stops
// what it started too, and has the kernel kill it if the harness dies
// without cleaning up (kill -9, a crash).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
