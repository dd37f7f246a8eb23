//go:build !linux

package main

import "syscall"

// childAttr puts a child in its own process group. Only Linux can also tie
// the child's life to the harness; elsewhere a killed harness may leave
// children behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
