package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machine.go says what the numbers were measured on.

// machineLines are the table's first lines: cores and versions.
func machineLines() []string {
	nproc := strings.TrimSpace(commandOutput("nproc"))
	cores := fmt.Sprintf("runtime.NumCPU %d, nproc %s, GOMAXPROCS %d, %s/%s",
		runtime.NumCPU(), nproc, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	if m := cpuModel(); m != "" {
		cores += ", " + m
	}
	versions := fmt.Sprintf("%s, wrk %s, nginx %s, redis %s", runtime.Version(),
		firstMatch(`wrk (\S+)`, commandOutput("wrk", "-v")),
		firstMatch(`nginx/(\S+)`, commandOutput("nginx", "-v")),
		firstMatch(`v=(\S+)`, commandOutput("redis-server", "--version")))
	return []string{"cores      " + cores, "versions   " + versions}
}

// commandOutput is a program's combined output, whatever its exit status
// (wrk -v exits 1).
func commandOutput(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	return string(out)
}

func firstMatch(re, s string) string {
	if m := regexp.MustCompile(re).FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return "(not found)"
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// cpuMeter measures how much CPU other work on the machine used while the
// harness ran: the machine's busy time (/proc/stat) less the harness's own
// and that of its children. Other work makes the numbers noisy, and on a
// shared machine there can be a lot of it.
type cpuMeter struct {
	start   time.Time
	machine int64 // busy ticks of the whole machine
	own     time.Duration
}

// userHZ is the unit of /proc/stat, USER_HZ, 100 on every Linux
// architecture Go supports.
const userHZ = 100

func startCPUMeter() (*cpuMeter, error) {
	busy, err := busyTicks()
	if err != nil {
		return nil, err
	}
	return &cpuMeter{start: time.Now(), machine: busy, own: ownCPU()}, nil
}

// otherCores is the average number of cores other work kept busy since
// the start. Call it once every child has exited, so their time is in.
func (m *cpuMeter) otherCores() (float64, error) {
	busy, err := busyTicks()
	if err != nil {
		return 0, err
	}
	machine := time.Duration(busy-m.machine) * time.Second / userHZ
	other := machine - (ownCPU() - m.own)
	return max(0, other.Seconds()/time.Since(m.start).Seconds()), nil
}

// ownCPU is the CPU time of the harness and of every child it has waited
// for (their children included).
func ownCPU() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// busyTicks is the machine's non-idle time so far, from the first line of
// /proc/stat: user, nice, system, irq, softirq and steal (guest time is
// already in user).
func busyTicks() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat: %q", line)
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	return busy, nil
}
